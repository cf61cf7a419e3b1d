package remote

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Tempo's JSON trace (GET /api/traces/{id} without Accept: protobuf) is
// OTLP/JSON with two differences that pdata's OTLP/JSON decoder does not
// take:
//
//	{"batches": [ResourceSpans…]}          the top-level key ("resourceSpans" in OTLP)
//	"traceId": "AAAAAAAAAABhpxdWqBFhXw=="  IDs as base64 (protobuf's JSON mapping
//	                                        of bytes) where OTLP/JSON has hex
//
// Older Tempo versions also wrote instrumentationLibrarySpans /
// instrumentationLibrary for scopeSpans / scope. decodeTraceJSON rewrites
// those into OTLP/JSON and lets pdata decode the result, so every other
// field keeps pdata's semantics. Tempo's v2 shape {"trace": {...}} is taken
// as well.

// decodeTraceJSON decodes a trace in Tempo's JSON (or plain OTLP/JSON).
func decodeTraceJSON(body []byte) (ptrace.Traces, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // keep 64-bit timestamps exact through the rewrite
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		return ptrace.Traces{}, err
	}
	if dec.More() {
		return ptrace.Traces{}, errors.New("data after the trace object")
	}
	if inner, ok := top["trace"].(map[string]any); ok {
		top = inner
	}
	batches, ok := top["batches"]
	if !ok {
		batches, ok = top["resourceSpans"]
	}
	if !ok || batches == nil {
		return ptrace.NewTraces(), nil
	}
	list, ok := batches.([]any)
	if !ok {
		return ptrace.Traces{}, errors.New(`"batches" is not an array`)
	}
	for _, rs := range list {
		if err := rewriteResourceSpans(rs); err != nil {
			return ptrace.Traces{}, err
		}
	}
	b, err := json.Marshal(map[string]any{"resourceSpans": list})
	if err != nil {
		return ptrace.Traces{}, err
	}
	return (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(b)
}

func rewriteResourceSpans(v any) error {
	rs, ok := v.(map[string]any)
	if !ok {
		return errors.New("a batch is not an object")
	}
	renameKey(rs, "instrumentationLibrarySpans", "scopeSpans")
	scopes, _ := rs["scopeSpans"].([]any)
	for _, s := range scopes {
		ss, ok := s.(map[string]any)
		if !ok {
			return errors.New("a scopeSpans entry is not an object")
		}
		renameKey(ss, "instrumentationLibrary", "scope")
		spans, _ := ss["spans"].([]any)
		for _, sp := range spans {
			span, ok := sp.(map[string]any)
			if !ok {
				return errors.New("a span is not an object")
			}
			if err := rewriteIDs(span); err != nil {
				return err
			}
			links, _ := span["links"].([]any)
			for _, l := range links {
				link, ok := l.(map[string]any)
				if !ok {
					return errors.New("a span link is not an object")
				}
				if err := rewriteIDs(link); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// renameKey moves m[from] to m[to] unless m already has to.
func renameKey(m map[string]any, from, to string) {
	if v, ok := m[from]; ok {
		if _, exists := m[to]; !exists {
			m[to] = v
		}
		delete(m, from)
	}
}

// rewriteIDs turns the base64 IDs of a span or link into hex.
func rewriteIDs(m map[string]any) error {
	for _, f := range []struct {
		key  string
		size int
	}{{"traceId", 16}, {"spanId", 8}, {"parentSpanId", 8}} {
		key := f.key
		s, ok := m[key].(string)
		if !ok || s == "" {
			continue
		}
		id, err := idHex(s, f.size)
		if err != nil {
			return fmt.Errorf("%s %q: %w", key, quotable([]byte(s)), err)
		}
		m[key] = id
	}
	return nil
}

// idHex returns an ID of size bytes given in hex (2*size digits) or base64
// (standard or URL alphabet, padded or not) as hex. The lengths tell the
// two apart: 16 bytes are 32 hex or 22–24 base64 characters, 8 bytes are 16
// or 11–12.
func idHex(s string, size int) (string, error) {
	if len(s) == 2*size {
		if b, err := hex.DecodeString(s); err == nil {
			return hex.EncodeToString(b), nil // lower case, as OTLP/JSON
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == size {
			return hex.EncodeToString(b), nil
		}
	}
	return "", fmt.Errorf("want %d bytes in hex or base64", size)
}
