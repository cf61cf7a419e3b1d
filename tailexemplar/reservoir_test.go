package tailexemplar

import (
	"context"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/trace"
)

// spanCtx returns a context whose sampled span has trace ID n.
func spanCtx(n uint64) context.Context {
	var tid trace.TraceID
	tid[0] = 1
	for i := range 8 {
		tid[15-i] = byte(n >> (8 * i))
	}
	return trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled,
	}))
}

// traceNum is spanCtx's n back from an exemplar's trace ID.
func traceNum(e exemplar.Exemplar) uint64 {
	var n uint64
	for _, b := range e.TraceID[8:] {
		n = n<<8 | uint64(b)
	}
	return n
}

func collect(r exemplar.Reservoir) map[uint64]float64 {
	var dest []exemplar.Exemplar
	r.Collect(&dest)
	got := map[uint64]float64{}
	for _, e := range dest {
		got[traceNum(e)] = float(e.Value)
	}
	return got
}

// TestHistogramReservoir walks one reservoir through three intervals.
func TestHistogramReservoir(t *testing.T) {
	r := HistogramReservoirProvider([]float64{10, 1})(attribute.NewSet()) // unsorted on purpose
	offer := func(n uint64, v float64) {
		r.Offer(spanCtx(n), time.Now(), exemplar.NewValue(v), nil)
	}
	offer(1, 0.5)
	offer(2, 0.2)
	offer(3, 1) // the bound belongs to its bucket
	offer(4, 0.7)
	offer(5, 20)
	offer(6, 1) // ties: the latest
	offer(7, math.NaN())
	if got, want := collect(r), map[uint64]float64{6: 1, 5: 20}; !reflect.DeepEqual(got, want) {
		t.Errorf("interval 1: %v, want %v", got, want)
	}
	// Interval 2: a smaller value replaces the last interval's; (10, +Inf]
	// gets nothing and reports its last exemplar again.
	offer(8, 0.1)
	offer(9, 3)
	if got, want := collect(r), map[uint64]float64{8: 0.1, 9: 3, 5: 20}; !reflect.DeepEqual(got, want) {
		t.Errorf("interval 2: %v, want %v", got, want)
	}
	// Interval 3: NaN ranks below every number, in its bucket (+Inf's, as
	// sort.SearchFloat64s puts it) as first and as later offer.
	offer(10, math.NaN())
	offer(11, 11)
	offer(12, math.NaN())
	got := collect(r)
	if len(got) != 3 || got[11] != 11 {
		t.Errorf("interval 3: %v, want 11 kept over NaN", got)
	}
}

// TestLargestReservoir walks a k=3 reservoir through intervals with more
// and fewer than k measurements.
func TestLargestReservoir(t *testing.T) {
	r := FixedSizeReservoirProvider(3)(attribute.NewSet())
	offer := func(n uint64, v int64) {
		r.Offer(spanCtx(n), time.Now(), exemplar.NewValue(v), nil)
	}
	for i, v := range []int64{5, 1, 7, 3, 7, 2, 5} {
		offer(uint64(i+1), v)
	}
	// 7, 7 and the later 5.
	if got, want := collect(r), map[uint64]float64{3: 7, 5: 7, 7: 5}; !reflect.DeepEqual(got, want) {
		t.Errorf("interval 1: %v, want %v", got, want)
	}
	// One measurement: it takes the place of the smallest old one (the 5).
	offer(8, 1)
	if got, want := collect(r), map[uint64]float64{3: 7, 5: 7, 8: 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("interval 2: %v, want %v", got, want)
	}
	// None: all stay.
	if got, want := collect(r), map[uint64]float64{3: 7, 5: 7, 8: 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("interval 3: %v, want %v", got, want)
	}
	// Integers beyond 2^53 compare exactly.
	offer(9, 1<<60+1)
	offer(10, 1<<60)
	offer(11, 1<<60+1)
	offer(12, 1<<60)
	var dest []exemplar.Exemplar
	r.Collect(&dest)
	got := map[uint64]int64{}
	for _, e := range dest {
		got[traceNum(e)] = e.Value.Int64()
	}
	if want := map[uint64]int64{9: 1<<60 + 1, 11: 1<<60 + 1, 12: 1 << 60}; !reflect.DeepEqual(got, want) {
		t.Errorf("interval 4: %v, want %v", got, want)
	}

	empty := FixedSizeReservoirProvider(-1)(attribute.NewSet())
	empty.Offer(spanCtx(1), time.Now(), exemplar.NewValue(1.0), nil)
	if got := collect(empty); len(got) != 0 {
		t.Errorf("k=-1 kept %v", got)
	}
}

// TestExemplarFields checks what Collect copies from the measurement.
func TestExemplarFields(t *testing.T) {
	for _, r := range []exemplar.Reservoir{newHistogramReservoir([]float64{1}), newLargestReservoir(2)} {
		ts := time.Unix(100, 0)
		attrs := []attribute.KeyValue{attribute.String("req", "a")}
		r.Offer(spanCtx(7), ts, exemplar.NewValue(2.0), attrs)
		r.Offer(context.Background(), ts, exemplar.NewValue(0.5), nil)
		var dest []exemplar.Exemplar
		r.Collect(&dest)
		if len(dest) != 2 {
			t.Fatalf("%T: %d exemplars, want 2", r, len(dest))
		}
		for _, e := range dest {
			switch e.Value.Float64() {
			case 2:
				if traceNum(e) != 7 || len(e.SpanID) != 8 || !e.Time.Equal(ts) || len(e.FilteredAttributes) != 1 {
					t.Errorf("%T: %+v", r, e)
				}
			case 0.5:
				if len(e.TraceID) != 0 || len(e.SpanID) != 0 || e.FilteredAttributes != nil {
					t.Errorf("%T: exemplar without span: %+v", r, e)
				}
			}
		}
	}
}

// TestOfferAllocatesNothing is the measurement path's cost rule.
func TestOfferAllocatesNothing(t *testing.T) {
	ctx := spanCtx(1)
	ts := time.Now()
	attrs := []attribute.KeyValue{attribute.String("req", "a")}
	for _, r := range []exemplar.Reservoir{newHistogramReservoir([]float64{1, 2, 3}), newLargestReservoir(4)} {
		v := 0.0
		if n := testing.AllocsPerRun(1000, func() {
			v += 0.01
			r.Offer(ctx, ts, exemplar.NewValue(v), attrs)
		}); n != 0 {
			t.Errorf("%T: Offer allocates %v times", r, n)
		}
	}
}

// TestConcurrentOffersAndCollects runs Offers and Collects at once (under
// -race), then concurrent Offers alone, after which the reservoirs must hold
// exactly what one goroutine offering everything would have kept.
func TestConcurrentOffersAndCollects(t *testing.T) {
	for _, r := range []exemplar.Reservoir{newHistogramReservoir([]float64{100, 1000}), newLargestReservoir(2)} {
		offerAll := func(base uint64) {
			var wg sync.WaitGroup
			for g := range uint64(4) {
				wg.Go(func() {
					for i := range uint64(2000) {
						n := base + g*2000 + i
						// Distinct values: 4 goroutines x 2000 spread over 0..7999.
						r.Offer(spanCtx(n), time.Now(), exemplar.NewValue(float64((i*4+g)%8000)), nil)
					}
				})
			}
			wg.Wait()
		}
		var wg sync.WaitGroup
		wg.Go(func() { offerAll(0) })
		wg.Go(func() {
			for range 200 {
				collect(r)
			}
		})
		wg.Wait()
		collect(r)
		offerAll(10000)
		var want []float64
		switch r.(type) {
		case *histogramReservoir:
			want = []float64{100, 1000, 7999} // the largest of each bucket
		case *largestReservoir:
			want = []float64{7998, 7999}
		}
		got := collect(r)
		for _, v := range want {
			found := false
			for _, g := range got {
				found = found || g == v
			}
			if !found {
				t.Errorf("%T: %v, want %v among them", r, got, v)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%T: %d exemplars, want %d", r, len(got), len(want))
		}
	}
}

// TestCollectKeepsEarlierIDs: a second Collect into the same slice must not
// write into the ID slices the first one handed out.
func TestCollectKeepsEarlierIDs(t *testing.T) {
	for _, r := range []exemplar.Reservoir{newHistogramReservoir([]float64{1}), newLargestReservoir(1)} {
		var dest []exemplar.Exemplar
		r.Offer(spanCtx(1), time.Now(), exemplar.NewValue(2.0), nil)
		r.Collect(&dest)
		first := dest[0].TraceID
		r.Offer(spanCtx(2), time.Now(), exemplar.NewValue(3.0), nil)
		r.Collect(&dest)
		if traceNum(exemplar.Exemplar{TraceID: first}) != 1 || traceNum(dest[0]) != 2 {
			t.Errorf("%T: first Collect's trace ID now %x, second's %x", r, first, dest[0].TraceID)
		}
	}
}
