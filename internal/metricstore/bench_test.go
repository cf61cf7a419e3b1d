package metricstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/lookout-dev/lookout/internal/exemplars"
)

// benchBatch is one OTLP request of the bench/metrics workload: 1000
// explicit-histogram points (11 bounds, 2 exemplars each) of one service.
func benchBatch(b *testing.B, svc, step int, at time.Time) []byte {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", svc))
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("bench.request.duration")
	m.SetUnit("s")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i := range 1000 {
		dp := h.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("route", fmt.Sprintf("/api/r%d", i%100))
		dp.Attributes().PutStr("series", fmt.Sprint(i))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
		dp.ExplicitBounds().FromRaw([]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})
		counts := make([]uint64, 12)
		for k := range counts {
			counts[k] = uint64(step + k)
		}
		dp.BucketCounts().FromRaw(counts)
		dp.SetCount(uint64(12*step + 66))
		dp.SetSum(float64(step))
		for e := range 2 {
			ex := dp.Exemplars().AppendEmpty()
			ex.SetDoubleValue(float64(e) * 3)
			ex.SetTimestamp(pcommon.NewTimestampFromTime(at.Add(-time.Millisecond)))
			ex.SetTraceID(pcommon.TraceID{byte(i), byte(i >> 8), byte(step), byte(e), 1})
		}
	}
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkConsumeMetrics measures decode + translate + append per request
// of 1000 histogram points (14 samples each), on 10k series.
func BenchmarkConsumeMetrics(b *testing.B) { benchConsume(b, DefaultOptions()) }

// BenchmarkConsumeMetricsExemplarFeed is BenchmarkConsumeMetrics with an
// exemplar writer (one that keeps nothing), so that the exemplar feed's
// commit barrier, queue and forwarder are on the path: each request hands
// it up to 2,000 new exemplars.
func BenchmarkConsumeMetricsExemplarFeed(b *testing.B) {
	opts := DefaultOptions()
	opts.ExemplarWriter = discardWriter{}
	benchConsume(b, opts)
}

// discardWriter is an exemplar writer that keeps nothing.
type discardWriter struct{}

func (discardWriter) WriteExemplars(context.Context, []exemplars.Record) error { return nil }
func (discardWriter) WALMark() (int, bool, error)                              { return 0, false, nil }
func (discardWriter) SetWALMark(int) error                                     { return nil }

func benchConsume(b *testing.B, opts Options) {
	s, err := Open(b.TempDir(), opts, nil, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	base := time.Now().Add(-time.Hour)
	steps := 100
	bodies := make([][]byte, 0, 10*steps)
	for st := range steps {
		for svc := range 10 {
			bodies = append(bodies, benchBatch(b, svc, st, base.Add(time.Duration(st)*10*time.Second)))
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i >= len(bodies) {
			b.StopTimer()
			break
		}
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(bodies[i]); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ConsumeMetrics(context.Background(), req.Metrics()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(14000*min(b.N, len(bodies)))/b.Elapsed().Seconds(), "samples/s")
}
