package tracestore

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/lookout-dev/lookout/internal/traceql"
)

func TestSearchRecordRoundTrip(t *testing.T) {
	td := makeTraces(
		spanSpec{trace: 1, span: 1, service: "a", name: "root", kind: 2, status: 2, dur: time.Second,
			attrs: map[string]any{"s": "x", "i": -7, "f": 1.5, "b": true, "m": map[string]any{"k": "v"}}},
		spanSpec{trace: 1, span: 2, parent: 1, service: "b", name: "child", dur: time.Millisecond},
	)
	var rec []byte
	for _, rs := range td.ResourceSpans().All() {
		spans := rs.ScopeSpans().At(0).Spans()
		rec = appendResource(rec, rs.Resource())
		rec = binary.AppendUvarint(rec, uint64(spans.Len()))
		for _, sp := range spans.All() {
			rec = appendSpan(rec, sp)
		}
	}
	sd := searchDecoder{spanAttrs: true, resAttrs: true}
	got, err := sd.decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	want := spansFromTraces(td, nil)
	if len(got) != len(want) {
		t.Fatalf("%d spans, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := cloneSpan(got[i]), want[i]
		if g.Name != w.Name || g.SpanID != w.SpanID || g.ParentSpanID != w.ParentSpanID || g.Kind != w.Kind ||
			g.StatusCode != w.StatusCode || g.StartUnixNano != w.StartUnixNano || g.EndUnixNano != w.EndUnixNano ||
			len(g.Attrs) != len(w.Attrs) || len(g.Resource) != len(w.Resource) || g.ServiceName() != w.ServiceName() {
			t.Errorf("span %d: got %+v, want %+v", i, g, w)
		}
		for _, a := range w.Attrs {
			v, ok := traceql.FieldValue(traceql.Field{Scope: traceql.ScopeSpan, Name: a.Key}, &g, nil)
			if !ok || v != a.Value {
				t.Errorf("span %d attr %s = %v, want %v", i, a.Key, v, a.Value)
			}
		}
	}
	// Skipping attributes decodes the same spans without them.
	sd = searchDecoder{}
	got, err = sd.decode(rec)
	if err != nil || len(got) != 2 || got[0].Attrs != nil || got[0].Name != "root" {
		t.Errorf("without attributes: %v %+v", err, got)
	}
}

// FuzzDecodeSearch feeds arbitrary bytes to the stored-record decoders: a
// corrupt record must give an error, never a panic or a hang.
func FuzzDecodeSearch(f *testing.F) {
	td := makeTraces(spanSpec{trace: 1, span: 1, service: "a", name: "root", dur: time.Second, attrs: map[string]any{"s": "x", "i": 3}})
	rs := td.ResourceSpans().At(0)
	rec := appendResource(nil, rs.Resource())
	rec = binary.AppendUvarint(rec, 1)
	rec = appendSpan(rec, rs.ScopeSpans().At(0).Spans().At(0))
	f.Add(rec)
	f.Add((&summary{MinStart: 1, MaxEnd: 2, Spans: 3, HasRoot: true, RootName: "r", Chunks: []chunkRef{{1, 2}}}).encode())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, all := range []bool{true, false} {
			sd := searchDecoder{spanAttrs: all, resAttrs: all}
			_, _ = sd.decode(b)
		}
		_, _ = decodeSummary(b)
	})
}
