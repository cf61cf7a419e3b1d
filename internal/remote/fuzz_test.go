package remote

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// hexIDOracle says whether s is a valid ID of size bytes the slow way (hex
// digits only, at most 2*size of them, not all zeros) and returns its value
// as lower-case hex without leading zeros.
func hexIDOracle(s string, size int) (string, bool) {
	if s == "" || len(s) > 2*size || strings.Trim(strings.ToLower(s), "0123456789abcdef") != "" {
		return "", false
	}
	v := strings.TrimLeft(strings.ToLower(s), "0")
	return v, v != ""
}

// FuzzExemplarIDs checks the trace and span IDs that exemplarsFromAPI takes
// from exemplar labels against the oracle: exactly the valid hex IDs are
// accepted, with their value left-padded.
func FuzzExemplarIDs(f *testing.F) {
	for _, s := range [][2]string{
		{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"},
		{"C0FFEE", "F067AA0BA902B7"},
		{"0", "0"},
		{"", ""},
		{"4bf92f3577b34da6a3ce929d0e0e47360", "00f067aa0ba902b70"},
		{"xyz", "-1"},
		{"0x1f", " 1f"},
		{"00000000000000000000000000000001", "0000000000000001"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, traceID, spanID string) {
		for _, names := range [][2]model.LabelName{{"trace_id", "span_id"}, {"traceID", "spanID"}} {
			// The first exemplar tests the trace ID; the second, with a valid
			// trace ID, the span ID.
			got := exemplarsFromAPI([]promv1.ExemplarQueryResult{{Exemplars: []promv1.Exemplar{
				{Labels: model.LabelSet{names[0]: model.LabelValue(traceID), names[1]: model.LabelValue(spanID)}},
				{Labels: model.LabelSet{names[0]: "1", names[1]: model.LabelValue(spanID)}},
			}}})
			ok := len(got) == 2
			if !ok && len(got) != 1 {
				t.Fatalf("%d exemplars, want 1 or 2", len(got))
			}
			want, wantOK := hexIDOracle(traceID, 16)
			if ok != wantOK {
				t.Fatalf("trace ID %q: ok %v, want %v", traceID, ok, wantOK)
			}
			if id := got[0].TraceID; ok && strings.TrimLeft(hex.EncodeToString(id[:]), "0") != want {
				t.Fatalf("trace ID %q parsed as %s", traceID, id)
			}
			sid := got[len(got)-1].SpanID
			want, wantOK = hexIDOracle(spanID, 8)
			if !wantOK && !sid.IsEmpty() || wantOK && strings.TrimLeft(hex.EncodeToString(sid[:]), "0") != want {
				t.Fatalf("span ID %q parsed as %s", spanID, sid)
			}
		}
	})
}

// FuzzDecodeSearch checks search-answer decoding: no panics, and what it
// accepts are distinct valid IDs, at most limit of them, that come back the
// same when written as Tempo writes them (no leading zeros).
func FuzzDecodeSearch(f *testing.F) {
	for _, s := range []string{
		`{"traces":[{"traceID":"4bf92f3577b34da6a3ce929d0e0e4736","rootServiceName":"svc"},{"traceID":"c0ffee"}],"metrics":{}}`,
		`{"traces":[{"traceID":"abc"},{"traceID":"0ABC"}]}`,
		`{"traces":[{"traceID":"xyz"}]}`,
		`{"traces":null}`,
		`{}`,
		`[]`,
		`{"traces":[{"traceID":1}]}`,
		``,
	} {
		f.Add([]byte(s), 0)
		f.Add([]byte(s), 1)
	}
	f.Fuzz(func(t *testing.T, body []byte, limit int) {
		ids, err := decodeSearch(body, limit)
		if err != nil {
			return
		}
		if limit > 0 && len(ids) > limit {
			t.Fatalf("%d IDs, limit %d", len(ids), limit)
		}
		var again searchAnswer
		seen := map[string]bool{}
		for _, id := range ids {
			s := id.String()
			if id.IsEmpty() || seen[s] {
				t.Fatalf("ID %s is zero or repeated in %v", s, ids)
			}
			seen[s] = true
			again.Traces = append(again.Traces, struct {
				TraceID string `json:"traceID"`
			}{strings.TrimLeft(s, "0")})
		}
		b, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeSearch(b, 0)
		if err != nil || len(back) != len(ids) {
			t.Fatalf("re-decoding %s: %v, %v; want %v", b, back, err, ids)
		}
		for i := range ids {
			if back[i] != ids[i] {
				t.Fatalf("re-decoding %s: %v, want %v", b, back, ids)
			}
		}
	})
}

// FuzzDecodeTraceJSON checks Tempo-JSON trace decoding: no panics, and a
// trace it accepts survives being written as Lookout's Tempo API writes it
// (OTLP/JSON under "batches") and read again.
func FuzzDecodeTraceJSON(f *testing.F) {
	f.Add([]byte(tempoJSONTrace))
	f.Add([]byte(`{"batches":[]}`))
	f.Add([]byte(`{"trace":{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"a000000000000001"}]}]}]}}`))
	f.Add([]byte(`{"batches":[{"scopeSpans":[{"spans":[{"traceId":"AAAA"}]}]}]}`))
	f.Add([]byte(`{"batches":{}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		td, err := decodeTraceJSON(body)
		if err != nil {
			return
		}
		b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeTraceJSON([]byte(strings.Replace(string(b), `{"resourceSpans":`, `{"batches":`, 1)))
		if err != nil {
			t.Fatalf("re-decoding %s: %v", b, err)
		}
		if again.SpanCount() != td.SpanCount() {
			t.Fatalf("re-decoding %s: %d spans, want %d", b, again.SpanCount(), td.SpanCount())
		}
	})
}
