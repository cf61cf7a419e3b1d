package tailexemplar

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The benchmarks compare Offer of the reservoirs here with the SDK's
// counterparts on the same values, serially and in parallel (as the SDK's
// own BenchmarkHistogramReservoirOffer), and one Histogram.Record through
// the SDK's pipeline with each. Run with -benchmem: Offer must allocate
// nothing (TestOfferAllocatesNothing fails otherwise).

// benchBounds are the SDK benchmark's bounds.
var benchBounds = []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000}

// benchValues are the value streams: "same" offers each bucket one value
// again and again (the SDK benchmark's; every Offer of a tail reservoir
// replaces the kept tie), "rising" grows (every Offer replaces), "random"
// draws uniformly over the buckets (most Offers are rejected).
func benchValues() map[string][]exemplar.Value {
	const n = 4096
	out := map[string][]exemplar.Value{}
	same, rising, random := make([]exemplar.Value, n), make([]exemplar.Value, n), make([]exemplar.Value, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		same[i] = exemplar.NewValue(benchBounds[i%len(benchBounds)] + 1)
		rising[i] = exemplar.NewValue(float64(i))
		random[i] = exemplar.NewValue(rng.Float64() * 12000)
	}
	out["same"], out["rising"], out["random"] = same, rising, random
	return out
}

func BenchmarkOffer(b *testing.B) {
	ctx := context.Background()
	ts := time.Now()
	k := 4
	reservoirs := []struct {
		name string
		new  func() exemplar.Reservoir
	}{
		{"histogram/sdk", func() exemplar.Reservoir { return exemplar.NewHistogramReservoir(benchBounds) }},
		{"histogram/tail", func() exemplar.Reservoir { return newHistogramReservoir(benchBounds) }},
		{"fixed4/sdk", func() exemplar.Reservoir { return exemplar.NewFixedSizeReservoir(k) }},
		{"fixed4/tail", func() exemplar.Reservoir { return newLargestReservoir(k) }},
	}
	for stream, values := range benchValues() {
		for _, r := range reservoirs {
			b.Run(r.name+"/"+stream+"/serial", func(b *testing.B) {
				res := r.new()
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					res.Offer(ctx, ts, values[i%len(values)], nil)
					i++
				}
			})
			b.Run(r.name+"/"+stream+"/parallel", func(b *testing.B) {
				res := r.new()
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						res.Offer(ctx, ts, values[i%len(values)], nil)
						i++
					}
				})
			})
		}
	}
}

// BenchmarkRecord is one Histogram.Record inside a sampled span through the
// SDK's pipeline (exemplar filter, aggregation, and for a reservoir the SDK
// does not know to be concurrency-safe its per-series lock), with the SDK's
// default reservoir and with View, in parallel.
func BenchmarkRecord(b *testing.B) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("bench").Start(context.Background(), "op")
	defer span.End()
	// A ready-made option slice, as WebStore's main-service keeps: Record
	// then allocates nothing for it.
	opts := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("country", "US")))}
	for _, c := range []struct {
		name string
		opts []sdkmetric.Option
	}{
		{"sdk", nil},
		{"tail", []sdkmetric.Option{sdkmetric.WithView(View("d"))}},
	} {
		b.Run(c.name, func(b *testing.B) {
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(append(c.opts, sdkmetric.WithReader(reader))...)
			defer mp.Shutdown(context.Background())
			h, err := mp.Meter("bench").Float64Histogram("d", metric.WithExplicitBucketBoundaries(benchBounds...))
			if err != nil {
				b.Fatal(err)
			}
			values := benchValues()["random"]
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					h.Record(ctx, float(values[i%len(values)]), opts...)
					i++
				}
			})
			b.StopTimer()
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(context.Background(), &rm); err != nil {
				b.Fatal(err)
			}
			if n := len(rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Histogram[float64]).DataPoints[0].Exemplars); n == 0 {
				b.Fatal("no exemplars kept")
			}
		})
	}
}
