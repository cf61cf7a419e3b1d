package tailexemplar_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"

	"github.com/lookout-dev/lookout/tailexemplar"
)

// The tests here run the SDK's real pipeline (MeterProvider, View, exemplar
// filter, aggregation, ManualReader) over random measurements and compare
// every collected exemplar with a brute-force reference computed from the
// same measurements.

// rec is one measurement: its series, value and place in the order of
// Record calls, which is also its trace ID (and its filtered "req"
// attribute), so every exemplar names the measurement it came from.
type rec struct {
	series string
	value  float64
	seq    uint64
}

// ranksBelow orders measurements as the reservoirs do: by value, equal
// values by arrival.
func ranksBelow(a, b rec) bool {
	return a.value < b.value || a.value == b.value && a.seq < b.seq
}

func traceID(seq uint64) trace.TraceID {
	var tid trace.TraceID
	tid[0] = 0xAA
	for i := range 8 {
		tid[15-i] = byte(seq >> (8 * i))
	}
	return tid
}

func seqOf(id []byte) uint64 {
	var n uint64
	for _, b := range id[8:] {
		n = n<<8 | uint64(b)
	}
	return n
}

// got is one collected exemplar, reduced to what the checks compare.
type got struct {
	value float64
	seq   uint64
}

// how a case identifies the measurement behind an exemplar.
const (
	bySpan     = iota // a sampled span with trace ID seq; the SDK's default filter
	byFiltered        // a filtered-out attribute req=seq; the always-on filter, no span
)

// recordFunc makes one measurement with an instrument.
type recordFunc func(context.Context, float64, metric.MeasurementOption)

// pipeline is one MeterProvider with a ManualReader.
type pipeline struct {
	t      *testing.T
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	ident  int
	seq    uint64
}

func newPipeline(t *testing.T, temporality metricdata.Temporality, ident int, view sdkmetric.View) *pipeline {
	reader := sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(func(sdkmetric.InstrumentKind) metricdata.Temporality {
		return temporality
	}))
	opts := []sdkmetric.Option{sdkmetric.WithReader(reader), sdkmetric.WithView(view)}
	if ident == byFiltered {
		opts = append(opts, sdkmetric.WithExemplarFilter(exemplar.AlwaysOnFilter))
	}
	mp := sdkmetric.NewMeterProvider(opts...)
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &pipeline{t: t, reader: reader, mp: mp, ident: ident}
}

// record makes one measurement of r's value with record and returns r with
// its seq.
func (p *pipeline) record(r rec, record recordFunc) rec {
	p.seq++
	r.seq = p.seq
	ctx := context.Background()
	attrs := []attribute.KeyValue{attribute.String("series", r.series)}
	switch p.ident {
	case bySpan:
		ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: traceID(r.seq), SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled,
		}))
	case byFiltered:
		attrs = append(attrs, attribute.Int64("req", int64(r.seq)))
	}
	record(ctx, r.value, metric.WithAttributes(attrs...))
	return r
}

// collect returns the exemplars of the one metric by series.
func (p *pipeline) collect() map[string][]got {
	p.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := p.reader.Collect(context.Background(), &rm); err != nil {
		p.t.Fatal(err)
	}
	out := map[string][]got{}
	if len(rm.ScopeMetrics) == 0 {
		return out
	}
	if n := len(rm.ScopeMetrics[0].Metrics); n != 1 {
		p.t.Fatalf("%d metrics, want 1 (two Views matched?)", n)
	}
	add := func(attrs attribute.Set, exs []got) {
		s, _ := attrs.Value("series")
		if _, dup := out[s.AsString()]; dup {
			p.t.Fatalf("series %q twice", s.AsString())
		}
		out[s.AsString()] = exs
	}
	switch d := rm.ScopeMetrics[0].Metrics[0].Data.(type) {
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			add(dp.Attributes, p.reduce(dp.Exemplars))
		}
	case metricdata.Histogram[int64]:
		for _, dp := range d.DataPoints {
			add(dp.Attributes, p.reduce(toFloat(dp.Exemplars)))
		}
	case metricdata.Sum[float64]:
		for _, dp := range d.DataPoints {
			add(dp.Attributes, p.reduce(dp.Exemplars))
		}
	case metricdata.Gauge[int64]:
		for _, dp := range d.DataPoints {
			add(dp.Attributes, p.reduce(toFloat(dp.Exemplars)))
		}
	case metricdata.ExponentialHistogram[float64]:
		for _, dp := range d.DataPoints {
			add(dp.Attributes, p.reduce(dp.Exemplars))
		}
	default:
		p.t.Fatalf("unexpected data %T", d)
	}
	return out
}

func toFloat(exs []metricdata.Exemplar[int64]) []metricdata.Exemplar[float64] {
	out := make([]metricdata.Exemplar[float64], len(exs))
	for i, e := range exs {
		out[i] = metricdata.Exemplar[float64]{FilteredAttributes: e.FilteredAttributes, Value: float64(e.Value), TraceID: e.TraceID, SpanID: e.SpanID}
	}
	return out
}

func (p *pipeline) reduce(exs []metricdata.Exemplar[float64]) []got {
	p.t.Helper()
	out := make([]got, 0, len(exs))
	for _, e := range exs {
		g := got{value: e.Value}
		switch p.ident {
		case bySpan:
			if len(e.TraceID) != 16 {
				p.t.Fatalf("exemplar %+v without trace ID", e)
			}
			g.seq = seqOf(e.TraceID)
		case byFiltered:
			if len(e.FilteredAttributes) != 1 || e.FilteredAttributes[0].Key != "req" {
				p.t.Fatalf("exemplar %+v: want the filtered attribute req alone", e)
			}
			g.seq = uint64(e.FilteredAttributes[0].Value.AsInt64())
		}
		out = append(out, g)
	}
	return out
}

// interval draws the measurements of one interval: each series is left
// out with probability 1/5, else gets up to maxN measurements from value,
// the series interleaved at random.
func interval(rng *rand.Rand, series []string, maxN int, value func() float64) []rec {
	var out []rec
	for _, s := range series {
		if rng.IntN(5) == 0 {
			continue
		}
		for range rng.IntN(maxN + 1) {
			out = append(out, rec{series: s, value: value()})
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

var temporalities = []metricdata.Temporality{metricdata.CumulativeTemporality, metricdata.DeltaTemporality}

// TestHistogramLargestPerBucket: for every series, bucket and interval the
// exported exemplar is the largest measurement of that bucket in that
// interval, the latest of equal ones; with cumulative temporality a bucket
// without measurements exports its last exemplar again, with delta it has
// none (and a series without measurements no point).
func TestHistogramLargestPerBucket(t *testing.T) {
	bounds := []float64{1, 2, 5, 10, 20}
	bucketOf := func(v float64) int { return sort.SearchFloat64s(bounds, v) }
	for _, temporality := range temporalities {
		for _, c := range []struct {
			name  string
			ident int
			ints  bool
		}{
			{"float/span", bySpan, false},
			{"float/filtered-attribute", byFiltered, false},
			{"int/span", bySpan, true},
		} {
			t.Run(fmt.Sprintf("%s/%s", temporality, c.name), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(1, uint64(temporality)))
				view := tailexemplar.View("latency")
				if c.ident == byFiltered {
					view = sdkmetric.NewView(sdkmetric.Instrument{Name: "latency"}, sdkmetric.Stream{
						AttributeFilter:                   attribute.NewAllowKeysFilter("series"),
						ExemplarReservoirProviderSelector: tailexemplar.Selector,
					})
				}
				p := newPipeline(t, temporality, c.ident, view)
				meter := p.mp.Meter("t")
				var record recordFunc
				// Quarter steps up to 25 (integers up to 25) make ties and
				// values on the bounds common.
				value := func() float64 { return float64(rng.IntN(100)) / 4 }
				if c.ints {
					h, err := meter.Int64Histogram("latency", metric.WithExplicitBucketBoundaries(bounds...))
					if err != nil {
						t.Fatal(err)
					}
					record = func(ctx context.Context, v float64, o metric.MeasurementOption) { h.Record(ctx, int64(v), o) }
					value = func() float64 { return float64(rng.IntN(26)) }
				} else {
					h, err := meter.Float64Histogram("latency", metric.WithExplicitBucketBoundaries(bounds...))
					if err != nil {
						t.Fatal(err)
					}
					record = func(ctx context.Context, v float64, o metric.MeasurementOption) { h.Record(ctx, v, o) }
				}

				type key struct {
					series string
					bucket int
				}
				kept := map[key]rec{} // the reference reservoir's state
				checked := 0
				for i := range 12 {
					fresh := map[key]rec{}
					for _, r := range interval(rng, []string{"a", "b", "c"}, 60, value) {
						r = p.record(r, record)
						k := key{r.series, bucketOf(r.value)}
						if cur, ok := fresh[k]; !ok || !ranksBelow(r, cur) {
							fresh[k] = r
						}
					}
					if temporality == metricdata.DeltaTemporality {
						kept = map[key]rec{}
					}
					for k, r := range fresh {
						kept[k] = r
					}
					want := map[string]map[int]rec{}
					for k, r := range kept {
						if want[k.series] == nil {
							want[k.series] = map[int]rec{}
						}
						want[k.series][k.bucket] = r
					}

					exported := p.collect()
					if len(exported) != len(want) {
						t.Errorf("interval %d: points for %d series, want %d", i, len(exported), len(want))
					}
					for series, exs := range exported {
						byBucket := map[int]got{}
						for _, e := range exs {
							b := bucketOf(e.value)
							if prev, dup := byBucket[b]; dup {
								t.Errorf("interval %d, series %s, bucket %d: two exemplars %v and %v", i, series, b, prev, e)
							}
							byBucket[b] = e
						}
						if len(byBucket) != len(want[series]) {
							t.Errorf("interval %d, series %s: exemplars in %d buckets, want %d", i, series, len(byBucket), len(want[series]))
						}
						for b, w := range want[series] {
							if g := byBucket[b]; g.value != w.value || g.seq != w.seq {
								t.Errorf("interval %d, series %s, bucket %d: exemplar %v (measurement %d), want %v (measurement %d)",
									i, series, b, g.value, g.seq, w.value, w.seq)
							}
							checked++
						}
					}
				}
				if checked < 100 {
					t.Errorf("only %d (series, bucket, interval) exemplars checked", checked)
				}
			})
		}
	}
}

// TestLargestK: for sums, gauges and exponential histograms Selector keeps
// the k largest measurements of each interval (k as the SDK's default:
// GOMAXPROCS, and min(20, MaxSize) for exponential histograms); an interval
// with fewer than k measurements keeps the largest earlier exemplars in the
// remaining places under cumulative temporality.
func TestLargestK(t *testing.T) {
	type instrument struct {
		name   string
		k      int
		view   sdkmetric.View
		create func(metric.Meter) (recordFunc, error)
	}
	instruments := []instrument{
		{"sum", max(runtime.GOMAXPROCS(0), 1), tailexemplar.View("x"),
			func(m metric.Meter) (recordFunc, error) {
				c, err := m.Float64Counter("x")
				return func(ctx context.Context, v float64, o metric.MeasurementOption) { c.Add(ctx, v, o) }, err
			}},
		{"gauge", max(runtime.GOMAXPROCS(0), 1), tailexemplar.View("x"),
			func(m metric.Meter) (recordFunc, error) {
				g, err := m.Int64Gauge("x")
				return func(ctx context.Context, v float64, o metric.MeasurementOption) { g.Record(ctx, int64(v), o) }, err
			}},
		{"exponential-histogram", 20, sdkmetric.NewView(sdkmetric.Instrument{Name: "x"}, sdkmetric.Stream{
			Aggregation:                       sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20},
			ExemplarReservoirProviderSelector: tailexemplar.Selector,
		}),
			func(m metric.Meter) (recordFunc, error) {
				h, err := m.Float64Histogram("x")
				return func(ctx context.Context, v float64, o metric.MeasurementOption) { h.Record(ctx, v, o) }, err
			}},
		{"fixed-size-3", 3, sdkmetric.NewView(sdkmetric.Instrument{Name: "x"}, sdkmetric.Stream{
			ExemplarReservoirProviderSelector: func(sdkmetric.Aggregation) exemplar.ReservoirProvider {
				return tailexemplar.FixedSizeReservoirProvider(3)
			},
		}),
			func(m metric.Meter) (recordFunc, error) {
				c, err := m.Float64Counter("x")
				return func(ctx context.Context, v float64, o metric.MeasurementOption) { c.Add(ctx, v, o) }, err
			}},
	}
	for _, temporality := range temporalities {
		for _, in := range instruments {
			t.Run(fmt.Sprintf("%s/%s", temporality, in.name), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(2, uint64(temporality)))
				p := newPipeline(t, temporality, bySpan, in.view)
				record, err := in.create(p.mp.Meter("t"))
				if err != nil {
					t.Fatal(err)
				}
				kept := map[string][]rec{}
				value := func() float64 { return float64(rng.IntN(50)) }
				// Up to k+k/2+1 per series and interval: some intervals have
				// fewer measurements than places, some more.
				maxN := in.k + in.k/2 + 1
				for i := range 15 {
					fresh := map[string][]rec{}
					for _, r := range interval(rng, []string{"a", "b"}, maxN, value) {
						r = p.record(r, record)
						fresh[r.series] = append(fresh[r.series], r)
					}
					if temporality == metricdata.DeltaTemporality {
						kept = map[string][]rec{}
					}
					for s, rs := range fresh {
						kept[s] = reference(in.k, kept[s], rs)
					}
					exported := p.collect()
					if len(exported) != len(kept) {
						t.Errorf("interval %d: points for %d series, want %d", i, len(exported), len(kept))
					}
					for s, want := range kept {
						var wantGot []got
						for _, r := range want {
							wantGot = append(wantGot, got{r.value, r.seq})
						}
						have := exported[s]
						byValueSeq := func(a, b got) int { return cmp.Or(cmp.Compare(a.value, b.value), cmp.Compare(a.seq, b.seq)) }
						slices.SortFunc(have, byValueSeq)
						slices.SortFunc(wantGot, byValueSeq)
						if !slices.Equal(have, wantGot) {
							t.Errorf("interval %d, series %s: exemplars %v, want %v", i, s, have, wantGot)
						}
					}
				}
			})
		}
	}
}

// reference is the brute-force k largest: the k highest-ranked of this
// interval's measurements; when there are fewer than k, the highest-ranked
// earlier exemplars fill the remaining places.
func reference(k int, earlier, now []rec) []rec {
	top := func(rs []rec, n int) []rec {
		rs = slices.Clone(rs)
		slices.SortFunc(rs, func(a, b rec) int {
			switch {
			case ranksBelow(a, b):
				return 1
			case ranksBelow(b, a):
				return -1
			}
			return 0
		})
		return rs[:min(n, len(rs))]
	}
	out := top(now, k)
	return append(out, top(earlier, k-len(out))...)
}

// TestSelector checks the reservoir Selector picks for each aggregation by
// what it keeps.
func TestSelector(t *testing.T) {
	bounds := []float64{1, 2}
	for _, c := range []struct {
		agg  sdkmetric.Aggregation
		want int // exemplars kept of 40 measurements 0..39
	}{
		{sdkmetric.AggregationExplicitBucketHistogram{Boundaries: bounds}, 3},
		{sdkmetric.AggregationExplicitBucketHistogram{}, runtime.GOMAXPROCS(0)},
		{sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 5}, 5},
		{sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160}, 20},
		{sdkmetric.AggregationSum{}, runtime.GOMAXPROCS(0)},
		{sdkmetric.AggregationLastValue{}, runtime.GOMAXPROCS(0)},
	} {
		r := tailexemplar.Selector(c.agg)(attribute.NewSet())
		for i := range 40 {
			r.Offer(context.Background(), time.Time{}, exemplar.NewValue(float64(i)), nil)
		}
		var dest []exemplar.Exemplar
		r.Collect(&dest)
		var vals []float64
		for _, e := range dest {
			vals = append(vals, e.Value.Float64())
		}
		slices.Sort(vals)
		want := 39.0 // every reservoir keeps the largest
		if len(vals) != c.want || vals[len(vals)-1] != want {
			t.Errorf("%T%+v: kept %v, want %d values up to %v", c.agg, c.agg, vals, c.want, want)
		}
	}
}
