package telemetry

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// BenchmarkPaymentDurationRecord compares a webstore.payment.duration
// Record inside a sampled span (the SDK offers it to the exemplar reservoir)
// with the same Record outside any span (no exemplar), with the SDK's
// default trace-based exemplar filter and aligned-histogram reservoir.
func BenchmarkPaymentDurationRecord(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	h, err := mp.Meter("bench").Float64Histogram(PaymentDurationMetric, metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7.5, 10, 15, 30))
	if err != nil {
		b.Fatal(err)
	}
	// Precomputed, as main-service does.
	attrs := metric.WithAttributeSet(attribute.NewSet(attribute.String("country", "US"), attribute.String("payment_method", "card")))
	spanCtx, span := tp.Tracer("bench").Start(context.Background(), "process_payment")
	defer span.End()
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{
		{"plain", context.Background()},
		{"exemplar", spanCtx},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			v := 0.0
			for b.Loop() {
				v += 0.001
				if v > 12 {
					v = 0
				}
				h.Record(c.ctx, v, attrs)
			}
		})
	}
}
