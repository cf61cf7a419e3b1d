package exemplars

import (
	"bytes"
	"testing"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
)

func TestExemplarCodec(t *testing.T) {
	const tid, sid = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	for _, c := range []struct {
		name    string
		ls      labels.Labels
		compact bool // trace and span IDs stored as bytes
	}{
		{"OTLP IDs", labels.FromStrings("trace_id", tid, "span_id", sid), true},
		{"OTLP IDs and attributes", labels.FromStrings("trace_id", tid, "span_id", sid, "customer", "42", "a", ""), true},
		{"upper-case IDs", labels.FromStrings("trace_id", "0AF7651916CD43DD8448EB211C80319C", "span_id", sid), false},
		{"short trace ID", labels.FromStrings("trace_id", tid[:16], "span_id", sid), false},
		{"no span ID", labels.FromStrings("trace_id", tid), false},
		{"not hex", labels.FromStrings("trace_id", "zz"+tid[2:], "span_id", sid), false},
		{"traceID label", labels.FromStrings("traceID", tid, "span_id", sid), false},
		{"no labels", labels.EmptyLabels(), false},
		{"zero IDs", labels.FromStrings("trace_id", "00000000000000000000000000000000", "span_id", "0000000000000000"), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, hasTs := range []bool{true, false} {
				e := exemplar.Exemplar{Labels: c.ls, Value: -1.5, Ts: 1_700_000_000_123, HasTs: hasTs}
				v := encodeExemplarTo(nil, e)
				if got := v[8]&flagIDs != 0; got != c.compact {
					t.Errorf("IDs stored as bytes: %v, want %v", got, c.compact)
				}
				if c.compact && bytes.Contains(v, []byte(tid)) {
					t.Error("the trace ID is also stored as hex")
				}
				gotID, gotOK := storedTraceID(v, c.ls)
				if wantID, wantOK := TraceIDOf(c.ls); gotID != wantID || gotOK != wantOK {
					t.Errorf("stored trace ID %x, %v; want %x, %v", gotID, gotOK, wantID, wantOK)
				}
				var dec exemplarDecoder
				got, err := decodeExemplarWith(&dec, exemplarSuffix(nil, e), v)
				if err != nil {
					t.Fatal(err)
				}
				if !got.Equals(e) || got.HasTs != e.HasTs {
					t.Errorf("decoded %+v, want %+v", got, e)
				}
			}
		})
	}
}

// TestExemplarCodecCorrupt: truncated values are refused, not read past.
func TestExemplarCodecCorrupt(t *testing.T) {
	e := exemplar.Exemplar{Labels: labels.FromStrings("trace_id", "0af7651916cd43dd8448eb211c80319c", "span_id", "b7ad6b7169203331", "k", "v"), Ts: 5, HasTs: true}
	v := encodeExemplarTo(nil, e)
	suffix := exemplarSuffix(nil, e)
	var dec exemplarDecoder
	for n := range len(v) {
		if _, err := decodeExemplarWith(&dec, suffix, v[:n]); err == nil {
			t.Errorf("a value cut to %d of %d bytes decoded", n, len(v))
		}
	}
}
