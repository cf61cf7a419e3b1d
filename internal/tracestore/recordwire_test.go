package tracestore

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// wireSeeds are OTLP protobufs of chunks as the store writes them: random
// requests, and one whose values all take the wire path.
func wireSeeds(t testing.TB) [][]byte {
	var out [][]byte
	m := ptrace.ProtoMarshaler{}
	rng := rand.New(rand.NewPCG(3, 5))
	for i := range 8 {
		td := randomRequest(rng, 1+i, byte(i), base)
		pb, err := m.MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pb)
	}
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	rs.ScopeSpans().AppendEmpty() // no spans: no part of the record
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("scope")
	sp := ss.Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{1})
	sp.SetSpanID(pcommon.SpanID{2})
	sp.SetParentSpanID(pcommon.SpanID{3})
	sp.SetName("op")
	sp.SetKind(ptrace.SpanKindServer)
	sp.Status().SetCode(ptrace.StatusCodeError)
	sp.Status().SetMessage("boom")
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(base))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Second)))
	sp.Attributes().PutInt("n", -3)
	sp.Attributes().PutDouble("f", 1.5)
	sp.Attributes().PutBool("b", true)
	sp.Attributes().PutStr("s", "v")
	sp.Events().AppendEmpty().SetName("ev")
	sp.Links().AppendEmpty().SetSpanID(pcommon.SpanID{9})
	sp.TraceState().FromRaw("k=v")
	sp.SetFlags(1)
	pb, err := m.MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	return append(out, pb)
}

// TestRecordFromWire checks the wire path against pdata's on chunks as
// the store writes them, and that it takes them (but for values search
// sees by their string form).
func TestRecordFromWire(t *testing.T) {
	seeds := wireSeeds(t)
	var w wireRecord
	for i, pb := range seeds {
		want, err := recordFromPdata(nil, pb)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := w.recordFromWire([]byte("prefix"), pb)
		complexValues := bytes.Contains(pb, []byte("bytes")) || bytes.Contains(pb, []byte("map"))
		switch {
		case !ok && !complexValues:
			t.Errorf("seed %d: the wire path declined a chunk it handles", i)
		case ok && !bytes.Equal(got, append([]byte("prefix"), want...)):
			t.Errorf("seed %d: the wire path's record differs from pdata's", i)
		case !ok && string(got) != "prefix":
			t.Errorf("seed %d: declining changed the buffer", i)
		}
	}
}

// FuzzRecordFromWire: whatever the bytes, the wire path never panics, and
// where pdata decodes them and the wire path takes them, both make the
// same record.
func FuzzRecordFromWire(f *testing.F) {
	for _, pb := range wireSeeds(f) {
		if len(pb) <= 4<<10 { // the fuzzer slows to a halt on large inputs
			f.Add(pb)
		}
	}
	f.Fuzz(func(t *testing.T, pb []byte) {
		var w wireRecord
		got, ok := w.recordFromWire(nil, pb)
		want, err := recordFromPdata(nil, pb)
		if ok && err == nil && !bytes.Equal(got, want) {
			t.Fatalf("records differ:\nwire  %x\npdata %x", got, want)
		}
	})
}

// benchChunk is a chunk like bench/traces writes: a 5-span trace whose
// spans come from 5 services, with 5 attributes each.
func benchChunk(b *testing.B) []byte {
	td := ptrace.NewTraces()
	for k := range 5 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "payments-service")
		rs.Resource().Attributes().PutStr("telemetry.sdk.language", "go")
		rs.Resource().Attributes().PutStr("host.name", "host-3")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("bench")
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{1, 2})
		sp.SetSpanID(pcommon.SpanID{1, 2, byte(k + 1), 1})
		if k > 0 {
			sp.SetParentSpanID(pcommon.SpanID{1, 2, byte(k), 1})
		}
		sp.SetName("process_payment")
		sp.SetKind(ptrace.SpanKindClient)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(base))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(base.Add(40 * time.Millisecond)))
		a := sp.Attributes()
		a.PutStr("http.request.method", "POST")
		a.PutInt("http.response.status_code", 200)
		a.PutStr("country", "DE")
		a.PutStr("url.path", "/api/v1/items/123")
		a.PutStr("http.route", "/checkout")
	}
	pb, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		b.Fatal(err)
	}
	return pb
}

// BenchmarkRecordOf makes a search record of a bench/traces chunk from
// its protobuf, on the wire and through pdata.
func BenchmarkRecordOf(b *testing.B) {
	pb := benchChunk(b)
	var out []byte
	b.Run("wire", func(b *testing.B) {
		for b.Loop() {
			var err error
			if out, err = appendRecordOf(out[:0], pb); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pdata", func(b *testing.B) {
		for b.Loop() {
			var err error
			if out, err = recordFromPdata(out[:0], pb); err != nil {
				b.Fatal(err)
			}
		}
	})
}
