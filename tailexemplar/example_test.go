package tailexemplar_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"

	"github.com/lookout-dev/lookout/tailexemplar"
)

// The one line is the WithView option: webstore.payment.duration then
// keeps, per bucket and interval, its slowest payment as exemplar.
func Example() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(reader),
		sdkmetric.WithView(tailexemplar.View("webstore.payment.duration")),
	)
	defer mp.Shutdown(context.Background())

	h, _ := mp.Meter("shop").Float64Histogram("webstore.payment.duration",
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.1, 1, 5))
	// Payments, each in its own sampled span (the SDK's default exemplar
	// filter offers only those); the 7.3 s one is the slow tail.
	for i, seconds := range []float64{0.05, 0.08, 0.4, 7.3, 0.07, 6.1, 0.6} {
		ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{15: byte(i + 1)}, SpanID: trace.SpanID{7: 1}, TraceFlags: trace.FlagsSampled,
		}))
		h.Record(ctx, seconds)
	}

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	exs := rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Histogram[float64]).DataPoints[0].Exemplars
	slices.SortFunc(exs, func(a, b metricdata.Exemplar[float64]) int { return cmp.Compare(a.Value, b.Value) })
	for _, e := range exs {
		fmt.Printf("%.2f s, trace %x\n", e.Value, e.TraceID)
	}
	// Output:
	// 0.08 s, trace 00000000000000000000000000000002
	// 0.60 s, trace 00000000000000000000000000000007
	// 7.30 s, trace 00000000000000000000000000000004
}
