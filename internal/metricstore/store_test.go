package metricstore

import (
	"context"
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/goleak"

	"github.com/lookout-dev/lookout/internal/exemplars"
	"github.com/lookout-dev/lookout/internal/ingest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recordingWriter stands in for the exemplar index built in another
// package; it keeps what it was given.
type recordingWriter struct {
	mu   sync.Mutex
	recs []exemplars.Record
}

func (w *recordingWriter) WriteExemplars(_ context.Context, recs []exemplars.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.recs = append(w.recs, recs...)
	return nil
}

// WALMark reports no mark: the recorder keeps nothing across restarts.
func (w *recordingWriter) WALMark() (int, bool, error) { return 0, false, nil }

// SetWALMark keeps nothing.
func (w *recordingWriter) SetWALMark(int) error { return nil }

func openStore(t *testing.T, mod func(*Options)) *Store {
	t.Helper()
	opts := DefaultOptions()
	if mod != nil {
		mod(&opts)
	}
	s, err := Open(t.TempDir(), opts, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

var t0 = time.Now().Add(-time.Hour).Truncate(time.Minute)

func ts(d time.Duration) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t0.Add(d)) }

func newScope(md pmetric.Metrics) pmetric.MetricSlice {
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "svc")
	rm.Resource().Attributes().PutStr("service.instance.id", "i1")
	return rm.ScopeMetrics().AppendEmpty().Metrics()
}

func gauge(ms pmetric.MetricSlice, name string, points map[time.Duration]float64) {
	m := ms.AppendEmpty()
	m.SetName(name)
	g := m.SetEmptyGauge()
	for _, d := range slices.Sorted(maps.Keys(points)) {
		dp := g.DataPoints().AppendEmpty()
		dp.SetTimestamp(ts(d))
		dp.SetDoubleValue(points[d])
	}
}

// histogramWithExemplars adds a histogram point with bounds 1, 5, 10 and
// one exemplar per value, in the given order.
func histogramWithExemplars(ms pmetric.MetricSlice, at time.Duration, values ...float64) {
	m := ms.AppendEmpty()
	m.SetName("webstore.payment.duration")
	m.SetUnit("s")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := h.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts(at))
	dp.SetStartTimestamp(ts(-time.Minute))
	dp.ExplicitBounds().FromRaw([]float64{1, 5, 10})
	dp.BucketCounts().FromRaw([]uint64{1, 1, 1, 1})
	dp.SetCount(4)
	dp.SetSum(20)
	for i, v := range values {
		e := dp.Exemplars().AppendEmpty()
		e.SetDoubleValue(v)
		e.SetTimestamp(ts(at - time.Duration(len(values)-i)*time.Millisecond))
		e.SetTraceID(pcommon.TraceID{byte(i + 1)})
		e.SetSpanID(pcommon.SpanID{byte(i + 1)})
	}
}

// series returns name's samples as "labels" → values.
func samples(t *testing.T, s *Store, sel ...*labels.Matcher) map[string][]float64 {
	t.Helper()
	q, err := s.Queryable().Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := map[string][]float64{}
	ss := q.Select(context.Background(), true, nil, sel...)
	for ss.Next() {
		it := ss.At().Iterator(nil)
		key := ss.At().Labels().String()
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			switch vt {
			case chunkenc.ValFloat:
				_, v := it.At()
				out[key] = append(out[key], v)
			case chunkenc.ValHistogram, chunkenc.ValFloatHistogram:
				_, fh := it.AtFloatHistogram(nil)
				out[key] = append(out[key], fh.Count)
			}
		}
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func exemplarBuckets(t *testing.T, s *Store) map[float64]string {
	t.Helper()
	q, err := s.ExemplarQueryable().ExemplarQuerier(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res, err := q.Select(math.MinInt64, math.MaxInt64, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "webstore_payment_duration_bucket")})
	if err != nil {
		t.Fatal(err)
	}
	out := map[float64]string{}
	for _, r := range res {
		for _, e := range r.Exemplars {
			out[e.Value] = r.SeriesLabels.Get("le")
		}
	}
	return out
}

func TestExemplarsLandOnFirstMatchingBucket(t *testing.T) {
	for name, values := range map[string][]float64{
		"sorted":   {0.5, 1, 3, 7, 12},
		"unsorted": {12, 0.5, 7, 1, 3},
		"reversed": {12, 7, 3, 1, 0.5},
	} {
		t.Run(name, func(t *testing.T) {
			s := openStore(t, nil)
			md := pmetric.NewMetrics()
			histogramWithExemplars(newScope(md), 0, values...)
			res, err := s.ConsumeMetrics(context.Background(), md)
			if err != nil || res.Rejected != 0 {
				t.Fatalf("consume: %+v %v", res, err)
			}
			want := map[float64]string{0.5: "1", 1: "1", 3: "5", 7: "10", 12: "+Inf"}
			got := exemplarBuckets(t, s)
			for v, le := range want {
				if got[v] != le {
					t.Errorf("exemplar %v on le=%q, want le=%q (all: %v)", v, got[v], le, got)
				}
			}
		})
	}
}

func TestExemplarDedupeAndWriter(t *testing.T) {
	w := &recordingWriter{}
	s := openStore(t, func(o *Options) { o.ExemplarWriter = w })
	for i := range 3 {
		// The same exemplars re-exported with a newer sample, as an SDK
		// does under cumulative temporality.
		md := pmetric.NewMetrics()
		histogramWithExemplars(newScope(md), time.Duration(i)*time.Minute, 0.5, 7)
		// Keep the exemplar timestamps of the first export.
		ex := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Histogram().DataPoints().At(0).Exemplars()
		for j := range ex.Len() {
			ex.At(j).SetTimestamp(ts(-time.Duration(2-j) * time.Millisecond))
		}
		if _, err := s.ConsumeMetrics(context.Background(), md); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil { // flushes the writer queue
		t.Fatal(err)
	}
	if len(w.recs) != 2 {
		t.Fatalf("writer got %d records, want 2: %v", len(w.recs), w.recs)
	}
	for _, r := range w.recs {
		if r.Series.Get("__name__") != "webstore_payment_duration_bucket" || r.Exemplar.Labels.Get("trace_id") == "" {
			t.Errorf("record %v: want a bucket series and a trace_id", r)
		}
	}
}

func TestPartialSuccess(t *testing.T) {
	s := openStore(t, nil)
	md := pmetric.NewMetrics()
	gauge(newScope(md), "temperature", map[time.Duration]float64{time.Minute: 1})
	if _, err := s.ConsumeMetrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}

	// One out-of-order sample, one sample too far in the future, two good.
	md = pmetric.NewMetrics()
	ms := newScope(md)
	gauge(ms, "temperature", map[time.Duration]float64{0: 5})
	gauge(ms, "humidity", map[time.Duration]float64{0: 40, time.Minute: 41})
	gauge(ms, "pressure", map[time.Duration]float64{24 * time.Hour: 1000})
	res, err := s.ConsumeMetrics(context.Background(), md)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejected != 2 || res.Message == "" {
		t.Errorf("result %+v, want 2 rejected with a message", res)
	}
	got := samples(t, s, labels.MustNewMatcher(labels.MatchEqual, "__name__", "humidity"))
	if len(got) != 1 {
		t.Errorf("humidity: %v, want the two good samples kept", got)
	}
	for _, v := range got {
		if len(v) != 2 {
			t.Errorf("humidity samples %v, want 2", v)
		}
	}

	// A histogram point too far in the future is one rejected data point,
	// though it is six samples (_bucket per bound, _sum, _count); two
	// good gauge points keep the request a partial success.
	md = pmetric.NewMetrics()
	ms = newScope(md)
	histogramWithExemplars(ms, 24*time.Hour, 0.5)
	gauge(ms, "humidity", map[time.Duration]float64{2 * time.Minute: 42, 3 * time.Minute: 43})
	res, err = s.ConsumeMetrics(context.Background(), md)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejected != 1 {
		t.Errorf("a rejected histogram point: %d rejected, want 1 (%s)", res.Rejected, res.Message)
	}

	// Nothing storable: bad data.
	md = pmetric.NewMetrics()
	gauge(newScope(md), "temperature", map[time.Duration]float64{0: 9})
	if _, err := s.ConsumeMetrics(context.Background(), md); !errors.Is(err, ingest.ErrBadData) {
		t.Errorf("all out of order: err %v, want ErrBadData", err)
	}
}

func TestTypes(t *testing.T) {
	s := openStore(t, nil)
	md := pmetric.NewMetrics()
	ms := newScope(md)
	gauge(ms, "weird", map[time.Duration]float64{0: math.NaN(), time.Second: math.Inf(1)})

	d := ms.AppendEmpty()
	d.SetName("delta.requests")
	ds := d.SetEmptySum()
	ds.SetIsMonotonic(true)
	ds.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	for i := range 3 {
		dp := ds.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(ts(time.Duration(i) * time.Minute))
		dp.SetTimestamp(ts(time.Duration(i+1) * time.Minute))
		dp.SetIntValue(5)
	}

	expHistogram(ms, ts(0), 2)

	sm := ms.AppendEmpty()
	sm.SetName("rpc.latency")
	sdp := sm.SetEmptySummary().DataPoints().AppendEmpty()
	sdp.SetTimestamp(ts(0))
	sdp.SetCount(4)
	sdp.SetSum(2)
	q := sdp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.5)
	q.SetValue(0.4)

	res, err := s.ConsumeMetrics(context.Background(), md)
	if err != nil || res.Rejected != 0 {
		t.Fatalf("consume: %+v %v", res, err)
	}
	eq := func(name string) *labels.Matcher { return labels.MustNewMatcher(labels.MatchEqual, "__name__", name) }
	for _, c := range []struct {
		name string
		want []float64
	}{
		{"delta_requests", []float64{5, 10, 15}}, // converted to cumulative
		{"request_size", []float64{3}},           // native histogram count
		{"rpc_latency", []float64{0.4}},
		{"rpc_latency_count", []float64{4}},
	} {
		got := samples(t, s, eq(c.name))
		if len(got) != 1 {
			t.Errorf("%s: %v, want one series", c.name, got)
			continue
		}
		for _, v := range got {
			if len(v) != len(c.want) {
				t.Errorf("%s: %v, want %v", c.name, v, c.want)
				continue
			}
			for i := range v {
				if v[i] != c.want[i] {
					t.Errorf("%s: %v, want %v", c.name, v, c.want)
				}
			}
		}
	}
	for _, v := range samples(t, s, eq("weird")) {
		if len(v) != 2 || !math.IsNaN(v[0]) || !math.IsInf(v[1], 1) {
			t.Errorf("weird: %v, want NaN, +Inf", v)
		}
	}
}

// expHistogram adds a cumulative exponential histogram "request.size" with
// one point: buckets 1 and n, count n+1, sum 9.
func expHistogram(ms pmetric.MetricSlice, at pcommon.Timestamp, n uint64) {
	x := ms.AppendEmpty()
	x.SetName("request.size")
	xh := x.SetEmptyExponentialHistogram()
	xh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	xdp := xh.DataPoints().AppendEmpty()
	xdp.SetTimestamp(at)
	xdp.SetScale(1)
	xdp.Positive().BucketCounts().FromRaw([]uint64{1, n})
	xdp.SetCount(n + 1)
	xdp.SetSum(9)
}

func TestValidate(t *testing.T) {
	for name, mod := range map[string]func(*Options){
		"bad strategy": func(o *Options) { o.OTLP.TranslationStrategy = "Nope" },
		"both deltas":  func(o *Options) { o.NativeDelta = true },
		"retention":    func(o *Options) { o.Retention = 0 },
	} {
		o := DefaultOptions()
		mod(&o)
		if o.Validate() == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if err := DefaultOptions().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestClosed(t *testing.T) {
	s := openStore(t, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeMetrics(context.Background(), pmetric.NewMetrics()); err == nil {
		t.Error("ConsumeMetrics after Close: want an error")
	}
}

// TestOversizedExemplarLabels: attributes that would take an exemplar's
// labels over Prometheus's 128-rune limit are dropped, the trace context is
// kept, as Prometheus's translator does.
func TestOversizedExemplarLabels(t *testing.T) {
	s := openStore(t, nil)
	md := pmetric.NewMetrics()
	histogramWithExemplars(newScope(md), 0, 3)
	ex := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Histogram().DataPoints().At(0).Exemplars().At(0)
	ex.FilteredAttributes().PutStr("user.comment", strings.Repeat("x", 200))
	if res, err := s.ConsumeMetrics(context.Background(), md); err != nil || res.Rejected != 0 {
		t.Fatalf("consume: %+v %v", res, err)
	}
	q, err := s.ExemplarQueryable().ExemplarQuerier(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res, err := q.Select(math.MinInt64, math.MaxInt64, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "le", "5")})
	if err != nil || len(res) != 1 || len(res[0].Exemplars) != 1 {
		t.Fatalf("select: %v %v", res, err)
	}
	l := res[0].Exemplars[0].Labels
	if l.Has("user.comment") || l.Get("trace_id") == "" {
		t.Errorf("exemplar labels %v: want trace_id kept, oversized attribute dropped", l)
	}
}

// TestInvalidNames: a metric the translator cannot name is refused, the rest
// of the batch is stored; odd characters are escaped as Prometheus does.
func TestInvalidNames(t *testing.T) {
	s := openStore(t, nil)
	md := pmetric.NewMetrics()
	ms := newScope(md)
	gauge(ms, "", map[time.Duration]float64{0: 1})
	gauge(ms, "héllo wörld/µs", map[time.Duration]float64{0: 2})
	ms.At(1).SetEmptyGauge().DataPoints().AppendEmpty().Attributes().PutStr("bad label!", "v")
	ms.At(1).Gauge().DataPoints().At(0).SetTimestamp(ts(0))
	res, err := s.ConsumeMetrics(context.Background(), md)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejected != 1 || res.Message == "" {
		t.Errorf("result %+v: want the unnamed metric rejected with a message", res)
	}
	got := samples(t, s, labels.MustNewMatcher(labels.MatchRegexp, "__name__", "h.*"))
	if len(got) != 1 {
		t.Fatalf("got %v", got)
	}
	for k := range got {
		if !strings.Contains(k, "bad_label_") {
			t.Errorf("series %s: want escaped names", k)
		}
	}
}
