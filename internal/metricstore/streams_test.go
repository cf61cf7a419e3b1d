package metricstore

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// streamBatch is one export of a varied workload at step: resources with
// and without target_info, scope attributes, int and double gauges and
// sums (monotonic or not, with exemplars), histograms with and without
// sums, unsorted and integer exemplars, stale markers, and from step 3 a
// new stream in an old resource; one resource also carries an exponential
// histogram, which the cache never takes.
func streamBatch(step int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	at := func(d time.Duration) pcommon.Timestamp { return ts(time.Duration(step)*15*time.Second + d) }
	for r := range 3 {
		rm := md.ResourceMetrics().AppendEmpty()
		ra := rm.Resource().Attributes()
		ra.PutStr("service.name", fmt.Sprintf("svc-%d", r))
		ra.PutStr("service.instance.id", "i1")
		if r != 1 {
			ra.PutStr("host.name", fmt.Sprintf("host-%d", r))
			ra.PutInt("cpu.count", int64(r+2))
		}
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName("webstore")
		sm.Scope().SetVersion("1.0")
		sm.Scope().Attributes().PutStr("lib", "otel")
		ms := sm.Metrics()

		g := ms.AppendEmpty()
		g.SetName("queue.depth")
		g.SetUnit("{item}")
		gg := g.SetEmptyGauge()
		for i := range 2 {
			dp := gg.DataPoints().AppendEmpty()
			dp.SetTimestamp(at(0))
			dp.Attributes().PutStr("queue", fmt.Sprint("q", i))
			if i == 0 {
				dp.SetIntValue(int64(step * 3))
			} else {
				dp.SetDoubleValue(float64(step) / 3)
			}
			if step == 4 && i == 1 {
				dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
			}
		}
		for mono := range 2 {
			m := ms.AppendEmpty()
			m.SetName(fmt.Sprint("orders.", mono))
			sum := m.SetEmptySum()
			sum.SetIsMonotonic(mono == 1)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dp := sum.DataPoints().AppendEmpty()
			dp.SetStartTimestamp(ts(-time.Minute))
			dp.SetTimestamp(at(time.Second))
			dp.SetDoubleValue(float64(step * 10))
			dp.Attributes().PutStr("country", "DE")
			ex := dp.Exemplars().AppendEmpty()
			ex.SetTimestamp(at(time.Millisecond))
			ex.SetIntValue(int64(step))
			ex.SetTraceID(pcommon.TraceID{1, byte(step), byte(r)})
			ex.SetSpanID(pcommon.SpanID{2, byte(step)})
		}
		h := ms.AppendEmpty()
		h.SetName("payment.duration")
		h.SetUnit("s")
		hh := h.SetEmptyHistogram()
		hh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		methods := 2
		if step >= 3 && r == 2 {
			methods = 3 // a new stream in a known resource
		}
		for p := range methods {
			dp := hh.DataPoints().AppendEmpty()
			dp.Attributes().PutStr("payment_method", fmt.Sprint("m", p))
			dp.Attributes().PutBool("retry", p == 1)
			dp.SetStartTimestamp(ts(-time.Minute))
			dp.SetTimestamp(at(2 * time.Second))
			dp.ExplicitBounds().FromRaw([]float64{0.005, 0.5, 1, 5, 10})
			dp.BucketCounts().FromRaw([]uint64{uint64(step), 1, 0, 2, 1, uint64(p)})
			dp.SetCount(uint64(step + 4 + p))
			if p != 1 {
				dp.SetSum(float64(step) * 1.5)
			}
			for k, v := range []float64{7, 0.2, 12, 0.7, 5} {
				ex := dp.Exemplars().AppendEmpty()
				ex.SetTimestamp(at(time.Duration(k) * time.Millisecond))
				if k == 4 {
					ex.SetIntValue(int64(v))
				} else {
					ex.SetDoubleValue(v + float64(step)/100)
				}
				ex.SetTraceID(pcommon.TraceID{3, byte(step), byte(r), byte(p), byte(k)})
				if k != 2 {
					ex.SetSpanID(pcommon.SpanID{4, byte(k)})
				}
			}
			if step == 5 && p == 0 {
				dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
			}
		}
		if r == 0 {
			expHistogram(ms, at(0), uint64(step))
		}
	}
	return md
}

// TestStreamCacheMatchesTranslator feeds the same exports to a store that
// uses the stream cache and to one that sends everything through the
// translator, and requires identical series, samples (bit for bit) and
// exemplars, and that the cache did take most points.
func TestStreamCacheMatchesTranslator(t *testing.T) {
	ctx := context.Background()
	cached := openStore(t, nil)
	plain := openStore(t, nil)
	plain.noStreamCache = true
	for step := range 8 {
		for _, s := range []*Store{cached, plain} {
			res, err := s.ConsumeMetrics(ctx, streamBatch(step))
			if err != nil || res.Rejected != 0 {
				t.Fatalf("step %d: %+v %v", step, res, err)
			}
		}
	}
	if got, want := dump(t, cached), dump(t, plain); !reflect.DeepEqual(got, want) {
		for k, v := range want {
			if !reflect.DeepEqual(got[k], v) {
				t.Errorf("%s:\n cached %v\n  plain %v", k, got[k], v)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: only with the cache", k)
			}
		}
	}
	if n := testutil.ToFloat64(cached.metrics.cachedPoints); n < 100 {
		t.Errorf("the cache took %v points, want most of them", n)
	}
	if n := testutil.ToFloat64(plain.metrics.cachedPoints); n != 0 {
		t.Errorf("the cache took %v points with it off", n)
	}
}

// dump returns every series' samples (as bits, so NaNs compare) and
// exemplars.
func dump(t *testing.T, s *Store) map[string]string {
	t.Helper()
	q, err := s.Queryable().Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := map[string]string{}
	all := labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")
	ss := q.Select(context.Background(), true, nil, all)
	for ss.Next() {
		it := ss.At().Iterator(nil)
		var b []string
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			switch vt {
			case chunkenc.ValFloat:
				tt, v := it.At()
				b = append(b, fmt.Sprintf("%d:%x", tt, math.Float64bits(v)))
			default:
				tt, fh := it.AtFloatHistogram(nil)
				b = append(b, fmt.Sprintf("%d:%s", tt, fh.String()))
			}
		}
		out[ss.At().Labels().String()] = fmt.Sprint(b)
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	eq, err := s.ExemplarQueryable().ExemplarQuerier(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res, err := eq.Select(math.MinInt64, math.MaxInt64, []*labels.Matcher{all})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		out["exemplars "+r.SeriesLabels.String()] = fmt.Sprint(r.Exemplars)
	}
	return out
}

// TestTargetInfoSpanBounded: a point stamped near 1970 beside current ones
// makes at most a day of target_info samples, on the translator's grid.
func TestTargetInfoSpanBounded(t *testing.T) {
	s := openStore(t, nil)
	ctx := context.Background()
	for step := range 2 {
		md := streamBatch(step) // the second batch takes the cache
		g := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().AppendEmpty()
		g.Attributes().PutStr("queue", "old")
		g.SetTimestamp(pcommon.Timestamp(time.Second))
		g.SetIntValue(1)
		if res, err := s.ConsumeMetrics(ctx, md); err != nil {
			t.Fatalf("step %d: %+v %v", step, res, err)
		}
	}
	got := samples(t, s, labels.MustNewMatcher(labels.MatchEqual, "__name__", "target_info"), labels.MustNewMatcher(labels.MatchEqual, "job", "svc-0"))
	for k, v := range got {
		if len(v) == 0 || len(v) > 2*(24*60/2+2) {
			t.Errorf("%s: %d target_info samples", k, len(v))
		}
	}
	if len(got) != 1 {
		t.Errorf("target_info series: %v", got)
	}
}
