package tailexemplar

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
)

// FixedSizeReservoirProvider returns a provider of reservoirs that keep the
// k largest measurements of each collection interval (ties: the latest).
// It is the tail-keeping counterpart of exemplar.FixedSizeReservoirProvider,
// for sums, gauges and exponential histograms. A k of zero or less keeps
// nothing.
func FixedSizeReservoirProvider(k int) exemplar.ReservoirProvider {
	k = max(k, 0)
	return func(attribute.Set) exemplar.Reservoir {
		return newLargestReservoir(k)
	}
}

// largestReservoir keeps the k largest measurements of an interval in k
// places. While fewer than k of the current interval are kept, a new one
// takes an empty place, else that of the smallest measurement of an earlier
// interval; after that it replaces the lowest-ranked one if it ranks at or
// above it.
type largestReservoir struct {
	mu     sync.Mutex
	places []measurement
	// fresh counts the places holding measurements of this interval.
	fresh int
	// lowest is the place of the lowest-ranked measurement once all places
	// are fresh.
	lowest int
	// seq numbers the Offers, to rank equal values by arrival.
	seq uint64
}

var _ exemplar.Reservoir = (*largestReservoir)(nil)

func newLargestReservoir(k int) *largestReservoir {
	return &largestReservoir{places: make([]measurement, k)}
}

// Offer keeps the measurement if it is among the k largest of this
// interval so far. A measurement that is not costs one comparison.
func (r *largestReservoir) Offer(ctx context.Context, t time.Time, v exemplar.Value, attrs []attribute.KeyValue) {
	if len(r.places) == 0 || !known(v) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	if r.fresh < len(r.places) {
		r.places[r.vacancy()].store(ctx, t, v, attrs, r.seq)
		r.fresh++
		if r.fresh == len(r.places) {
			r.lowest = r.lowestPlace()
		}
		return
	}
	if !atLeast(v, r.places[r.lowest].value) {
		return
	}
	r.places[r.lowest].store(ctx, t, v, attrs, r.seq)
	r.lowest = r.lowestPlace()
}

// vacancy returns an empty place, else the place of the lowest-ranked
// measurement of an earlier interval. Some place is not fresh when it is
// called.
func (r *largestReservoir) vacancy() int {
	at := -1
	for i := range r.places {
		p := &r.places[i]
		switch {
		case !p.valid:
			return i
		case p.fresh:
		case at < 0 || p.below(&r.places[at]):
			at = i
		}
	}
	return at
}

// lowestPlace returns the place of the lowest-ranked measurement.
func (r *largestReservoir) lowestPlace() int {
	at := 0
	for i := 1; i < len(r.places); i++ {
		if r.places[i].below(&r.places[at]) {
			at = i
		}
	}
	return at
}

// Collect writes the kept measurements and starts a new interval: they stay
// until measurements of the next interval take their places.
func (r *largestReservoir) Collect(dest *[]exemplar.Exemplar) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*dest = resize(*dest, len(r.places))
	n := 0
	for i := range r.places {
		p := &r.places[i]
		if p.valid {
			p.exemplar(&(*dest)[n])
			n++
		}
		p.fresh = false
	}
	r.fresh = 0
	*dest = (*dest)[:n]
}
