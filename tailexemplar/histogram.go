package tailexemplar

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
)

// HistogramReservoirProvider returns a provider of reservoirs that keep, for
// each bucket of an explicit bucket histogram with the upper bounds bounds,
// the largest measurement of each collection interval (ties: the latest).
// It is the tail-keeping counterpart of exemplar.HistogramReservoirProvider
// and takes the same bounds, which it copies and sorts.
func HistogramReservoirProvider(bounds []float64) exemplar.ReservoirProvider {
	b := slices.Clone(bounds)
	slices.Sort(b)
	return func(attribute.Set) exemplar.Reservoir {
		return newHistogramReservoir(b)
	}
}

// histogramReservoir keeps the largest measurement of each bucket per
// interval. Each bucket has its own lock, so Offers to different buckets
// never wait for each other.
type histogramReservoir struct {
	// bounds are the buckets' upper bounds in ascending order, shared by
	// every reservoir of one provider and never written.
	bounds  []float64
	buckets []bucket
}

type bucket struct {
	mu sync.Mutex
	m  measurement
}

var _ exemplar.Reservoir = (*histogramReservoir)(nil)

func newHistogramReservoir(bounds []float64) *histogramReservoir {
	return &histogramReservoir{bounds: bounds, buckets: make([]bucket, len(bounds)+1)}
}

// Offer keeps the measurement if it is the first of its bucket in this
// interval, or at least as large as the one kept.
func (r *histogramReservoir) Offer(ctx context.Context, t time.Time, v exemplar.Value, attrs []attribute.KeyValue) {
	if !known(v) {
		return
	}
	// The SDK's bucket: the first upper bound at or above the value.
	b := &r.buckets[sort.SearchFloat64s(r.bounds, float(v))]
	b.mu.Lock()
	if !b.m.fresh || atLeast(v, b.m.value) {
		b.m.store(ctx, t, v, attrs, 0)
	}
	b.mu.Unlock()
}

// Collect writes one exemplar for each bucket that ever had a measurement,
// in bucket order (ascending by value, which Prometheus's OTLP translator
// relies on to put each on its _bucket series),
// and starts a new interval: the kept measurements stay (a bucket without
// measurements in the next interval reports its last one again), but the
// next measurement of each bucket replaces its measurement whatever its
// value.
func (r *histogramReservoir) Collect(dest *[]exemplar.Exemplar) {
	*dest = resize(*dest, len(r.buckets))
	n := 0
	for i := range r.buckets {
		b := &r.buckets[i]
		b.mu.Lock()
		if b.m.valid {
			b.m.exemplar(&(*dest)[n])
			n++
		}
		b.m.fresh = false
		b.mu.Unlock()
	}
	*dest = (*dest)[:n]
}

// resize returns s with length n, reusing its array when large enough.
func resize(s []exemplar.Exemplar, n int) []exemplar.Exemplar {
	if cap(s) < n {
		return make([]exemplar.Exemplar, n)
	}
	return s[:n]
}
