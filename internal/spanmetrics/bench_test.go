package spanmetrics

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/ingest"
)

// benchRequest is internal/tracestore's benchmark request: n spans in
// 5-span traces over 4 services and 8 operations, 0-100 ms long, so the
// figures compare with BenchmarkConsumeTraces there.
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
		sp.SetKind(ptrace.SpanKindServer)
		start := base.Add(time.Duration(seq) * time.Millisecond)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(rng.IntN(100)) * time.Millisecond)))
		sp.Attributes().PutStr("http.request.method", "GET")
		sp.Attributes().PutInt("http.response.status_code", 200)
		sp.Attributes().PutStr("url.path", fmt.Sprintf("/items/%d", rng.IntN(1000)))
	}
	return td
}

// BenchmarkConsumeTraces measures the span metrics' share of trace ingest:
// ConsumeTraces of 500-span requests with a next sink that does nothing,
// after the series exist (the steady state). spans/s is per request of
// b.N; "parallel" has 4 requests in flight on GOMAXPROCS goroutines x 2, as
// the trace store's benchmark.
func BenchmarkConsumeTraces(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		name := "serial"
		if parallel {
			name = "parallel"
		}
		b.Run(name, func(b *testing.B) {
			d, _, _ := newTestDeriver(b, DefaultOptions(), nopTraces{})
			rng := rand.New(rand.NewPCG(1, 1))
			reqs := make([]ptrace.Traces, 64)
			for i := range reqs {
				reqs[i] = benchRequest(500, rng, i)
				if _, err := d.ConsumeTraces(context.Background(), reqs[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			if parallel {
				b.SetParallelism(2)
				b.RunParallel(func(pb *testing.PB) {
					for i := 0; pb.Next(); i++ {
						if _, err := d.ConsumeTraces(context.Background(), reqs[i%len(reqs)]); err != nil {
							b.Error(err)
							return
						}
					}
				})
			} else {
				for i := 0; i < b.N; i++ {
					if _, err := d.ConsumeTraces(context.Background(), reqs[i%len(reqs)]); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N)*500/b.Elapsed().Seconds(), "spans/s")
		})
	}
}

// BenchmarkFlush measures building one flush of 1,000 series.
func BenchmarkFlush(b *testing.B) {
	d, _, _ := newTestDeriver(b, DefaultOptions(), nopTraces{})
	d.metrics = nopMetrics{}
	var specs []spanSpec
	for i := range 1000 {
		specs = append(specs, spanSpec{service: fmt.Sprintf("svc-%d", i%10), name: fmt.Sprintf("op-%d", i), duration: time.Duration(i) * time.Millisecond, trace: 1, span: 1})
	}
	td := traces(specs...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.ConsumeTraces(context.Background(), td); err != nil {
			b.Fatal(err)
		}
		d.flush(context.Background())
	}
}

type nopTraces struct{}

func (nopTraces) ConsumeTraces(context.Context, ptrace.Traces) (ingest.Result, error) {
	return ingest.Result{}, nil
}

type nopMetrics struct{}

func (nopMetrics) ConsumeMetrics(context.Context, pmetric.Metrics) (ingest.Result, error) {
	return ingest.Result{}, nil
}
