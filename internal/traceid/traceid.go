// Package traceid parses the trace and span IDs that reach Lookout as text
// (exemplar labels, URL paths, query parameters, remote APIs' answers) with
// one rule, and finds them in exemplar labels under one list of names.
package traceid

import (
	"encoding/hex"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// ErrInvalid is wrapped by every Parse and ParseSpan error.
var ErrInvalid = errors.New("invalid ID")

// invalidError says what is wrong with an ID, e.g. `invalid trace id "zz":
// not hexadecimal` (the Tempo API's words), and is ErrInvalid.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return ErrInvalid }

func invalid(format string, a ...any) error { return &invalidError{fmt.Sprintf(format, a...)} }

// Parse reads a trace ID in hex, in any case, with or without leading zeros,
// of up to 32 digits (8- and 16-byte IDs both), as Tempo reads them; the
// all-zero ID is invalid.
func Parse(s string) (pcommon.TraceID, error) {
	var id pcommon.TraceID
	err := decode(id[:], s, "trace")
	return id, err
}

// ParseSpan reads a span ID by the same rule, up to 16 digits.
func ParseSpan(s string) (pcommon.SpanID, error) {
	var id pcommon.SpanID
	err := decode(id[:], s, "span")
	return id, err
}

func decode(dst []byte, s, what string) error {
	switch {
	case s == "":
		return invalid("invalid %s id: empty", what)
	case len(s) > 2*len(dst):
		return invalid("invalid %s id %q: longer than %d hex digits", what, truncate(s), 2*len(dst))
	}
	var buf [32]byte
	n := 2 * len(dst)
	for i := range n - len(s) {
		buf[i] = '0'
	}
	copy(buf[n-len(s):n], s)
	if _, err := hex.Decode(dst, buf[:n]); err != nil {
		clear(dst)
		return invalid("invalid %s id %q: not hexadecimal", what, truncate(s))
	}
	for _, b := range dst {
		if b != 0 {
			return nil
		}
	}
	return invalid("invalid %s id %q: all zeros", what, truncate(s))
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Label names under which exemplars carry trace and span IDs: Prometheus's
// OTLP translation writes trace_id and span_id, Grafana's older convention
// (and the seed guide) traceID and spanID.
var (
	TraceLabels = [...]string{"trace_id", "traceID"}
	SpanLabels  = [...]string{"span_id", "spanID"}
)

// FromLabels returns the trace ID of the first of TraceLabels whose value
// parses; ok is false when none does.
func FromLabels(label func(name string) string) (pcommon.TraceID, bool) {
	for _, n := range TraceLabels {
		if id, err := Parse(label(n)); err == nil {
			return id, true
		}
	}
	return pcommon.TraceID{}, false
}

// SpanFromLabels returns the span ID of the first of SpanLabels whose value
// parses, or the zero ID.
func SpanFromLabels(label func(name string) string) pcommon.SpanID {
	for _, n := range SpanLabels {
		if id, err := ParseSpan(label(n)); err == nil {
			return id
		}
	}
	return pcommon.SpanID{}
}
