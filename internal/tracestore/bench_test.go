package tracestore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/traceql"
)

// benchRequest builds a telemetrygen-like request of n spans in 5-span traces.
func benchRequest(n int, rng *rand.Rand, seq int) ptrace.Traces {
	td := ptrace.NewTraces()
	svcs := map[int]ptrace.SpanSlice{}
	for i := range n {
		s := rng.IntN(4)
		ss, ok := svcs[s]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", s))
			ss = rs.ScopeSpans().AppendEmpty().Spans()
			svcs[s] = ss
		}
		sp := ss.AppendEmpty()
		var id pcommon.TraceID
		binary.BigEndian.PutUint64(id[:], uint64(seq))
		binary.BigEndian.PutUint64(id[8:], uint64(i/5+1))
		sp.SetTraceID(id)
		sp.SetSpanID(pcommon.SpanID{byte(i%5 + 1), 1})
		if i%5 > 0 {
			sp.SetParentSpanID(pcommon.SpanID{byte(i % 5), 1})
		}
		sp.SetName(fmt.Sprintf("op-%d", rng.IntN(8)))
		start := base.Add(time.Duration(seq) * time.Millisecond)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(rng.IntN(100)) * time.Millisecond)))
		sp.Attributes().PutStr("http.request.method", "GET")
		sp.Attributes().PutInt("http.response.status_code", 200)
		sp.Attributes().PutStr("url.path", fmt.Sprintf("/items/%d", rng.IntN(1000)))
	}
	return td
}

// BenchmarkConsumeTraces measures durable ingest of 500-span requests;
// spans/s is reported per b.N request, with 4 requests in flight.
func BenchmarkConsumeTraces(b *testing.B) {
	s := openBench(b)
	rng := rand.New(rand.NewPCG(1, 1))
	reqs := make([]ptrace.Traces, 64)
	for i := range reqs {
		reqs[i] = benchRequest(500, rng, i)
	}
	b.ResetTimer()
	b.SetParallelism(2) // 2 x GOMAXPROCS(2) = 4 requests in flight
	var n int64
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.ConsumeTraces(context.Background(), reqs[i%len(reqs)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	n = int64(b.N) * 500
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "spans/s")
}

func openBench(b *testing.B) *Store {
	s, err := Open(b.TempDir(), Options{Now: func() time.Time { return base.Add(time.Hour) }, RetentionInterval: time.Hour, SizeLimit: -1}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func fill(b *testing.B, s *Store, requests int) {
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range requests {
		if _, err := s.ConsumeTraces(context.Background(), benchRequest(500, rng, i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetTrace measures GetTrace on a store of 200k spans.
func BenchmarkGetTrace(b *testing.B) {
	s := openBench(b)
	fill(b, s, 400)
	getRandomTraces(b, s)
}

// getRandomTraces reads b.N random traces of a store that fill wrote.
func getRandomTraces(b *testing.B, s *Store) {
	rng := rand.New(rand.NewPCG(3, 3))
	b.ResetTimer()
	for range b.N {
		var id pcommon.TraceID
		binary.BigEndian.PutUint64(id[:], uint64(rng.IntN(400)))
		binary.BigEndian.PutUint64(id[8:], uint64(rng.IntN(100)+1))
		if _, ok, err := s.GetTrace(context.Background(), id); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkSearch measures searches over 200k spans that match nothing: the
// first three are ruled out by block summaries (Bloom filter, longest span,
// status bits); the last passes every minute's summary and so reads every
// search record.
func BenchmarkSearch(b *testing.B) {
	s := openBench(b)
	fill(b, s, 400)
	for _, q := range []string{
		`{ name = "nothing" }`,
		`{ duration > 1h }`,
		`{ .url.path = "/items/1" && status = error }`,
		`{ name = "op-1" && duration >= 99ms && .url.path = "/items/7" }`,
	} {
		b.Run(q, func(b *testing.B) {
			e := traceql.MustParse(q)
			for range b.N {
				res, err := s.Search(context.Background(), SearchRequest{Query: e})
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Traces) != 0 {
					b.Fatalf("%s matched %d traces", q, len(res.Traces))
				}
			}
			b.ReportMetric(200000*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
		})
	}
}
