package shop

import (
	"fmt"

	"go.opentelemetry.io/otel/metric"
)

// Instrument names, units and buckets as in the seed guide.
const (
	PaymentDurationName = "webstore.payment.duration"
	CheckoutAmountName  = "webstore.checkout.amount"
	OrdersName          = "webstore.orders"
)

// PaymentDurationBuckets are explicit bucket bounds in seconds: a 5.8 s
// payment lands in the (5, 7.5] bucket, a 7 s provider delay is visible.
var PaymentDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7.5, 10, 15, 30}

// CheckoutAmountBuckets are explicit bucket bounds in USD, up to the
// $15,000+ orders of the seed's 500x bug.
var CheckoutAmountBuckets = []float64{10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000}

// instruments are main-service's business metrics.
type instruments struct {
	paymentDuration metric.Float64Histogram
	checkoutAmount  metric.Float64Histogram
	orders          metric.Int64Counter
}

func newInstruments(mp metric.MeterProvider) (*instruments, error) {
	m := mp.Meter(instrumentationName)
	pd, err := m.Float64Histogram(PaymentDurationName,
		metric.WithDescription("Payment processing duration, measured around process_payment"),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(PaymentDurationBuckets...))
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", PaymentDurationName, err)
	}
	ca, err := m.Float64Histogram(CheckoutAmountName,
		metric.WithDescription("Checkout amount in USD of completed orders"),
		metric.WithUnit("USD"),
		metric.WithExplicitBucketBoundaries(CheckoutAmountBuckets...))
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", CheckoutAmountName, err)
	}
	oc, err := m.Int64Counter(OrdersName,
		metric.WithDescription("Checkouts by outcome (status)"),
		metric.WithUnit("{order}"))
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", OrdersName, err)
	}
	return &instruments{paymentDuration: pd, checkoutAmount: ca, orders: oc}, nil
}
