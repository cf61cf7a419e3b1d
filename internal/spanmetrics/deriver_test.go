package spanmetrics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/lookout-dev/lookout/internal/ingest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// base is the fixed clock's start.
var base = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// traceSink is the trace store stand-in: it answers with res and err.
type traceSink struct {
	res   ingest.Result
	err   error
	spans atomic.Int64
}

func (s *traceSink) ConsumeTraces(_ context.Context, td ptrace.Traces) (ingest.Result, error) {
	s.spans.Add(int64(td.SpanCount()))
	return s.res, s.err
}

// metricSink records every flush.
type metricSink struct {
	mu      sync.Mutex
	flushes []pmetric.Metrics
	err     error
}

func (s *metricSink) ConsumeMetrics(_ context.Context, md pmetric.Metrics) (ingest.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := pmetric.NewMetrics()
	md.CopyTo(c)
	s.flushes = append(s.flushes, c)
	return ingest.Result{}, s.err
}

func (s *metricSink) all() []pmetric.Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.flushes)
}

// clock is a settable time source for a Deriver.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestDeriver(t testing.TB, opts Options, next ingest.TracesSink) (*Deriver, *metricSink, *clock) {
	t.Helper()
	ms := &metricSink{}
	d, err := New(next, ms, opts, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: base}
	d.now = c.now
	return d, ms, c
}

// spanSpec describes one test span.
type spanSpec struct {
	service    string // "" leaves service.name out of the resource
	name       string
	kind       ptrace.SpanKind
	status     ptrace.StatusCode
	duration   time.Duration // negative: the end precedes the start
	trace      byte          // 0: empty trace ID
	span       byte
	tracestate string
}

// traces puts each spec into its own resource and scope, keyed by service;
// specs of one service share one resource.
func traces(specs ...spanSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	bySvc := map[string]ptrace.SpanSlice{}
	for _, sp := range specs {
		ss, ok := bySvc[sp.service]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			if sp.service != "" {
				rs.Resource().Attributes().PutStr("service.name", sp.service)
				rs.Resource().Attributes().PutStr("service.instance.id", sp.service+"-1")
			}
			ss = rs.ScopeSpans().AppendEmpty().Spans()
			bySvc[sp.service] = ss
		}
		s := ss.AppendEmpty()
		s.SetName(sp.name)
		s.SetKind(sp.kind)
		s.Status().SetCode(sp.status)
		if sp.trace != 0 {
			s.SetTraceID(pcommon.TraceID{15: sp.trace})
		}
		s.SetSpanID(pcommon.SpanID{7: sp.span})
		s.TraceState().FromRaw(sp.tracestate)
		start := base.Add(-time.Minute)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(sp.duration)))
	}
	return td
}

// point is one series of a flush: its calls and duration points.
type point struct {
	calls           int64
	count           uint64
	sum             float64
	buckets         []uint64
	start, ts       pcommon.Timestamp
	exemplars       []string // "trace/span=value@bucket"
	resourceService string
}

// points indexes a flush by the series' attributes, as
// "service|span|kind|status" or "overflow|<resource service.name>".
func points(t *testing.T, md pmetric.Metrics) map[string]*point {
	t.Helper()
	out := map[string]*point{}
	for _, rm := range md.ResourceMetrics().All() {
		rsvc, _ := rm.Resource().Attributes().Get("service.name")
		for _, sm := range rm.ScopeMetrics().All() {
			if sm.Scope().Name() != "spanmetricsconnector" {
				t.Errorf("scope %q", sm.Scope().Name())
			}
			for _, m := range sm.Metrics().All() {
				switch m.Name() {
				case "traces.span.metrics.calls":
					if !m.Sum().IsMonotonic() || m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
						t.Errorf("calls: want a monotonic cumulative sum")
					}
					for _, dp := range m.Sum().DataPoints().All() {
						p := pointFor(out, seriesName(dp.Attributes(), rsvc.Str()))
						p.calls, p.start, p.ts, p.resourceService = dp.IntValue(), dp.StartTimestamp(), dp.Timestamp(), rsvc.Str()
					}
				case "traces.span.metrics.duration":
					if m.Unit() != "ms" || m.Histogram().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
						t.Errorf("duration: want a cumulative histogram in ms")
					}
					for _, dp := range m.Histogram().DataPoints().All() {
						p := pointFor(out, seriesName(dp.Attributes(), rsvc.Str()))
						p.count, p.sum, p.buckets = dp.Count(), dp.Sum(), dp.BucketCounts().AsRaw()
						if dp.StartTimestamp() != p.start || dp.Timestamp() != p.ts {
							t.Errorf("duration point times differ from the calls point's")
						}
						bounds := dp.ExplicitBounds().AsRaw()
						for _, e := range dp.Exemplars().All() {
							i, _ := slices.BinarySearch(bounds, e.DoubleValue())
							p.exemplars = append(p.exemplars, fmt.Sprintf("%d/%d=%g@%d", e.TraceID()[15], e.SpanID()[7], e.DoubleValue(), i))
							if e.Timestamp() != dp.Timestamp() {
								t.Errorf("exemplar at %v, want the flush time %v", e.Timestamp(), dp.Timestamp())
							}
						}
					}
				default:
					t.Errorf("unexpected metric %q", m.Name())
				}
			}
		}
	}
	return out
}

func pointFor(m map[string]*point, k string) *point {
	if m[k] == nil {
		m[k] = &point{}
	}
	return m[k]
}

func seriesName(attrs pcommon.Map, resourceService string) string {
	if v, ok := attrs.Get("otel.metric.overflow"); ok {
		if !v.Bool() || attrs.Len() != 1 {
			panic(fmt.Sprintf("overflow point with attributes %v", attrs.AsRaw()))
		}
		return "overflow|" + resourceService
	}
	var parts []string
	for _, k := range []string{"service.name", "span.name", "span.kind", "status.code"} {
		v, _ := attrs.Get(k)
		parts = append(parts, v.Str())
	}
	return strings.Join(parts, "|")
}

// flush2 consumes td, flushes twice and returns the second flush, where
// calls are no longer the connector's initial 0.
func flush2(t *testing.T, d *Deriver, ms *metricSink, td ptrace.Traces) map[string]*point {
	t.Helper()
	if _, err := d.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	d.flush(context.Background())
	d.flush(context.Background())
	f := ms.all()
	if len(f) != 2 {
		t.Fatalf("want 2 flushes, got %d", len(f))
	}
	return points(t, f[1])
}

func TestAggregate(t *testing.T) {
	ms := time.Millisecond
	type want struct {
		calls   int64
		sum     float64
		buckets map[int]uint64 // bucket index → count; others 0
	}
	tests := []struct {
		name  string
		spans []spanSpec
		want  map[string]want
	}{
		{
			name: "counts per name, kind and status",
			spans: []spanSpec{
				{service: "api", name: "GET /a", kind: ptrace.SpanKindServer, duration: 3 * ms},
				{service: "api", name: "GET /a", kind: ptrace.SpanKindServer, duration: 3 * ms},
				{service: "api", name: "GET /a", kind: ptrace.SpanKindServer, status: ptrace.StatusCodeError, duration: 3 * ms},
				{service: "api", name: "GET /a", kind: ptrace.SpanKindClient, status: ptrace.StatusCodeOk, duration: 3 * ms},
				{service: "db", name: "GET /a", kind: ptrace.SpanKindServer, duration: 3 * ms},
			},
			want: map[string]want{
				"api|GET /a|SPAN_KIND_SERVER|STATUS_CODE_UNSET": {calls: 2, sum: 6, buckets: map[int]uint64{1: 2}},
				"api|GET /a|SPAN_KIND_SERVER|STATUS_CODE_ERROR": {calls: 1, sum: 3, buckets: map[int]uint64{1: 1}},
				"api|GET /a|SPAN_KIND_CLIENT|STATUS_CODE_OK":    {calls: 1, sum: 3, buckets: map[int]uint64{1: 1}},
				"db|GET /a|SPAN_KIND_SERVER|STATUS_CODE_UNSET":  {calls: 1, sum: 3, buckets: map[int]uint64{1: 1}},
			},
		},
		{
			name: "every kind and status string",
			spans: []spanSpec{
				{service: "s", name: "n", kind: ptrace.SpanKindUnspecified},
				{service: "s", name: "n", kind: ptrace.SpanKindInternal},
				{service: "s", name: "n", kind: ptrace.SpanKindProducer},
				{service: "s", name: "n", kind: ptrace.SpanKindConsumer},
				{service: "s", name: "n", kind: ptrace.SpanKind(42), status: ptrace.StatusCode(7)},
			},
			want: map[string]want{
				"s|n|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET": {calls: 1, buckets: map[int]uint64{0: 1}},
				"s|n|SPAN_KIND_INTERNAL|STATUS_CODE_UNSET":    {calls: 1, buckets: map[int]uint64{0: 1}},
				"s|n|SPAN_KIND_PRODUCER|STATUS_CODE_UNSET":    {calls: 1, buckets: map[int]uint64{0: 1}},
				"s|n|SPAN_KIND_CONSUMER|STATUS_CODE_UNSET":    {calls: 1, buckets: map[int]uint64{0: 1}},
				"s|n||": {calls: 1, buckets: map[int]uint64{0: 1}},
			},
		},
		{
			// Bounds are upper-inclusive: 2 ms is in (0, 2], a
			// nanosecond more is in (2, 4]; past 15 s is +Inf.
			name: "bucket boundaries",
			spans: []spanSpec{
				{service: "s", name: "0", duration: 0},
				{service: "s", name: "neg", duration: -5 * ms},
				{service: "s", name: "2", duration: 2 * ms},
				{service: "s", name: "2+", duration: 2*ms + 1},
				{service: "s", name: "1s", duration: time.Second},
				{service: "s", name: "15s", duration: 15 * time.Second},
				{service: "s", name: "15s+", duration: 15*time.Second + 1},
			},
			want: map[string]want{
				"s|0|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET":    {calls: 1, sum: 0, buckets: map[int]uint64{0: 1}},
				"s|neg|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET":  {calls: 1, sum: 0, buckets: map[int]uint64{0: 1}},
				"s|2|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET":    {calls: 1, sum: 2, buckets: map[int]uint64{0: 1}},
				"s|2+|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET":   {calls: 1, sum: 2.000001, buckets: map[int]uint64{1: 1}},
				"s|1s|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET":   {calls: 1, sum: 1000, buckets: map[int]uint64{10: 1}},
				"s|15s|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET":  {calls: 1, sum: 15000, buckets: map[int]uint64{15: 1}},
				"s|15s+|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET": {calls: 1, sum: 15000.000001, buckets: map[int]uint64{16: 1}},
			},
		},
		{
			name: "no service.name: not counted",
			spans: []spanSpec{
				{service: "", name: "orphan", duration: ms},
				{service: "s", name: "n", duration: ms},
			},
			want: map[string]want{
				"s|n|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET": {calls: 1, sum: 1, buckets: map[int]uint64{0: 1}},
			},
		},
		{
			// th:8 rejects half of the randomness values: each span
			// stands for 2 (an exact division, no random rounding).
			// th:c is 25% sampling: 4 each. A tracestate without a
			// threshold or a malformed one counts 1.
			name: "sampling threshold adjusts the count",
			spans: []spanSpec{
				{service: "s", name: "half", duration: ms, tracestate: "ot=th:8"},
				{service: "s", name: "half", duration: ms, tracestate: "ot=th:8"},
				{service: "s", name: "quarter", duration: ms, tracestate: "vendor=x,ot=rv:abcdefabcdefab;th:c"},
				{service: "s", name: "plain", duration: ms, tracestate: "vendor=x"},
				{service: "s", name: "plain", duration: ms, tracestate: "ot=th:zz"},
			},
			want: map[string]want{
				"s|half|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET":    {calls: 4, sum: 4, buckets: map[int]uint64{0: 4}},
				"s|quarter|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET": {calls: 4, sum: 4, buckets: map[int]uint64{0: 4}},
				"s|plain|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET":   {calls: 2, sum: 2, buckets: map[int]uint64{0: 2}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, ms, _ := newTestDeriver(t, DefaultOptions(), &traceSink{})
			got := flush2(t, d, ms, traces(tc.spans...))
			if len(got) != len(tc.want) {
				t.Errorf("got series %v, want %d", keysOf(got), len(tc.want))
			}
			for k, w := range tc.want {
				p := got[k]
				if p == nil {
					t.Errorf("no series %q; have %v", k, keysOf(got))
					continue
				}
				wb := make([]uint64, 17)
				for i, n := range w.buckets {
					wb[i] = n
				}
				if p.calls != w.calls || p.count != uint64(w.calls) || !slices.Equal(p.buckets, wb) || !near(p.sum, w.sum) {
					t.Errorf("%s: calls %d count %d sum %g buckets %v; want calls=count %d sum %g buckets %v",
						k, p.calls, p.count, p.sum, p.buckets, w.calls, w.sum, wb)
				}
			}
		})
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func keysOf(m map[string]*point) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestCumulative checks that values accumulate across flushes, that a new
// series' calls start at 0, and that the start time stays that of the
// series' first span while the point time is the flush's.
func TestCumulative(t *testing.T) {
	d, ms, clk := newTestDeriver(t, DefaultOptions(), &traceSink{})
	ctx := context.Background()
	created := pcommon.NewTimestampFromTime(clk.now())
	a := spanSpec{service: "s", name: "a", duration: 5 * time.Millisecond}
	b := spanSpec{service: "s", name: "b", duration: 500 * time.Millisecond}

	type step struct {
		spans        []spanSpec
		wantA, wantB int64 // calls; -1: no series
		wantCountA   uint64
	}
	steps := []step{
		{spans: []spanSpec{a, a}, wantA: 0, wantB: -1, wantCountA: 2},
		{spans: []spanSpec{a}, wantA: 3, wantB: -1, wantCountA: 3},
		{spans: []spanSpec{b}, wantA: 3, wantB: 0, wantCountA: 3},
		{spans: nil, wantA: 3, wantB: 1, wantCountA: 3},
	}
	var bCreated pcommon.Timestamp
	for i, st := range steps {
		if len(st.spans) > 0 {
			if i == 2 {
				bCreated = pcommon.NewTimestampFromTime(clk.now())
			}
			if _, err := d.ConsumeTraces(ctx, traces(st.spans...)); err != nil {
				t.Fatal(err)
			}
		}
		clk.advance(15 * time.Second)
		d.flush(ctx)
		f := ms.all()
		got := points(t, f[len(f)-1])
		pa := got["s|a|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET"]
		if pa.calls != st.wantA || pa.count != st.wantCountA {
			t.Errorf("flush %d: a calls %d count %d, want %d, %d", i, pa.calls, pa.count, st.wantA, st.wantCountA)
		}
		if pa.start != created || pa.ts != pcommon.NewTimestampFromTime(clk.now()) {
			t.Errorf("flush %d: a start %v time %v, want %v and the flush time %v", i, pa.start, pa.ts, created, clk.now())
		}
		pb := got["s|b|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET"]
		switch {
		case st.wantB < 0 && pb != nil:
			t.Errorf("flush %d: unexpected series b", i)
		case st.wantB >= 0 && (pb == nil || pb.calls != st.wantB || pb.start != bCreated):
			t.Errorf("flush %d: b = %+v, want calls %d from %v", i, pb, st.wantB, bCreated)
		}
	}
	if n := len(ms.all()); n != len(steps) {
		t.Errorf("%d flushes, want %d", n, len(steps))
	}
}

func TestOverflow(t *testing.T) {
	opts := DefaultOptions()
	opts.CardinalityLimit = 2
	reg := prometheus.NewRegistry()
	sink := &metricSink{}
	d, err := New(&traceSink{}, sink, opts, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: base}
	d.now = clk.now
	ms := time.Millisecond
	got := flush2(t, d, sink, traces(
		spanSpec{service: "api", name: "a", duration: ms, trace: 1, span: 1},
		spanSpec{service: "api", name: "b", duration: ms, trace: 1, span: 2},
		// The limit is reached: new combinations overflow, per resource.
		spanSpec{service: "api", name: "c", duration: 3 * ms, trace: 1, span: 3},
		spanSpec{service: "api", name: "d", duration: 3 * ms, trace: 1, span: 4},
		spanSpec{service: "db", name: "a", duration: 3 * ms, trace: 1, span: 5},
		// Known combinations still count in their own series.
		spanSpec{service: "api", name: "a", duration: ms, trace: 1, span: 6},
	))
	want := map[string]int64{
		"api|a|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET": 2,
		"api|b|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET": 1,
		"overflow|api": 2,
		"overflow|db":  1,
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", keysOf(got), want)
	}
	for k, calls := range want {
		p := got[k]
		if p == nil || p.calls != calls {
			t.Errorf("%s: %+v, want calls %d", k, p, calls)
			continue
		}
		if strings.HasPrefix(k, "overflow|") {
			if len(p.exemplars) != 0 {
				t.Errorf("%s: exemplars %v on an overflow series", k, p.exemplars)
			}
			if p.resourceService != strings.TrimPrefix(k, "overflow|") {
				t.Errorf("%s: on resource %q", k, p.resourceService)
			}
		}
	}
	if v := testutil.ToFloat64(d.m.overflowSpans); v != 3 {
		t.Errorf("lookout_spanmetrics_overflow_spans_total = %v, want 3", v)
	}
	if v := testutil.ToFloat64(d.m.series); v != 4 {
		t.Errorf("lookout_spanmetrics_series = %v, want 4", v)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP lookout_spanmetrics_spans_total Spans counted into span metrics.
# TYPE lookout_spanmetrics_spans_total counter
lookout_spanmetrics_spans_total 6
`), "lookout_spanmetrics_spans_total"); err != nil {
		t.Error(err)
	}
}

func TestExemplars(t *testing.T) {
	d, ms, _ := newTestDeriver(t, DefaultOptions(), &traceSink{})
	ctx := context.Background()
	milli := time.Millisecond
	if _, err := d.ConsumeTraces(ctx, traces(
		// Bucket (50, 100]: the largest wins, whatever the order.
		spanSpec{service: "s", name: "op", duration: 60 * milli, trace: 1, span: 1},
		spanSpec{service: "s", name: "op", duration: 90 * milli, trace: 2, span: 2},
		spanSpec{service: "s", name: "op", duration: 70 * milli, trace: 3, span: 3},
		// Bucket (1400, 2000]: one span.
		spanSpec{service: "s", name: "op", duration: 1500 * milli, trace: 4, span: 4},
		// Bucket (0, 2]: no trace ID, so no exemplar.
		spanSpec{service: "s", name: "op", duration: milli, trace: 0, span: 5},
		// Equal values: the first stays.
		spanSpec{service: "s", name: "op", duration: 20 * milli, trace: 6, span: 6},
		spanSpec{service: "s", name: "op", duration: 20 * milli, trace: 7, span: 7},
	)); err != nil {
		t.Fatal(err)
	}
	d.flush(ctx)
	first := points(t, ms.all()[0])["s|op|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET"]
	// One exemplar per point: the slowest span of the interval.
	want := []string{"4/4=1500@12"}
	if !slices.Equal(first.exemplars, want) {
		t.Errorf("exemplars %v, want %v", first.exemplars, want)
	}
	// Exemplars are of one interval: the next flush has only the new one.
	if _, err := d.ConsumeTraces(ctx, traces(spanSpec{service: "s", name: "op", duration: 55 * milli, trace: 8, span: 8})); err != nil {
		t.Fatal(err)
	}
	d.flush(ctx)
	second := points(t, ms.all()[1])["s|op|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET"]
	if !slices.Equal(second.exemplars, []string{"8/8=55@6"}) {
		t.Errorf("second flush exemplars %v, want [8/8=55@6]", second.exemplars)
	}
	d.flush(ctx)
	if third := points(t, ms.all()[2])["s|op|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET"]; len(third.exemplars) != 0 {
		t.Errorf("third flush, after no spans: exemplars %v", third.exemplars)
	}
}

// TestStoreFailure: what the trace store refused is not counted, and its
// answer reaches the receiver unchanged.
func TestStoreFailure(t *testing.T) {
	errDisk := fmt.Errorf("write spans: %w", ingest.ErrOverloaded)
	tests := []struct {
		name        string
		res         ingest.Result
		err         error
		wantSkipped float64
	}{
		{name: "error", res: ingest.Result{}, err: errDisk},
		{name: "bad data", res: ingest.Result{}, err: ingest.ErrBadData},
		{name: "partial success", res: ingest.Result{Rejected: 1, Message: "span with an empty trace ID"}, wantSkipped: 2},
		{name: "all rejected", res: ingest.Result{Rejected: 3, Message: "span ends before it starts"}, wantSkipped: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := &traceSink{res: tc.res, err: tc.err}
			d, ms, _ := newTestDeriver(t, DefaultOptions(), store)
			td := traces(
				spanSpec{service: "s", name: "a", trace: 1, span: 1},
				spanSpec{service: "s", name: "b", trace: 1, span: 2},
				spanSpec{service: "s", name: "c", trace: 1, span: 3},
			)
			res, err := d.ConsumeTraces(context.Background(), td)
			if err != tc.err || res != tc.res { //nolint:errorlint // the very error, unwrapped
				t.Errorf("got (%+v, %v), want (%+v, %v) unchanged", res, err, tc.res, tc.err)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.err)
			}
			if n := store.spans.Load(); n != 3 {
				t.Errorf("the store saw %d spans, want 3", n)
			}
			d.flush(context.Background())
			if f := ms.all(); len(f) != 0 {
				t.Errorf("flushed %d times after a refused request, want nothing to flush", len(f))
			}
			if v := testutil.ToFloat64(d.m.spans); v != 0 {
				t.Errorf("spans counted: %v", v)
			}
			if v := testutil.ToFloat64(d.m.skipped.WithLabelValues("partial_rejection")); v != tc.wantSkipped {
				t.Errorf("skipped{partial_rejection} = %v, want %v", v, tc.wantSkipped)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	opts := DefaultOptions()
	opts.CardinalityLimit = 1
	opts.SeriesExpiration = time.Minute
	d, ms, clk := newTestDeriver(t, opts, &traceSink{})
	ctx := context.Background()
	consume := func(specs ...spanSpec) {
		t.Helper()
		if _, err := d.ConsumeTraces(ctx, traces(specs...)); err != nil {
			t.Fatal(err)
		}
	}
	last := func() map[string]*point {
		f := ms.all()
		return points(t, f[len(f)-1])
	}
	consume(spanSpec{service: "s", name: "old"}, spanSpec{service: "s", name: "new"})
	clk.advance(30 * time.Second)
	d.flush(ctx)
	if got := keysOf(last()); !slices.Equal(got, []string{"overflow|s", "s|old|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET"}) {
		t.Fatalf("series %v", got)
	}
	// A minute without spans: both go at the next flush, which then has
	// nothing to send.
	clk.advance(61 * time.Second)
	n := len(ms.all())
	d.flush(ctx)
	if len(ms.all()) != n || testutil.ToFloat64(d.m.series) != 0 || len(d.resources) != 0 || len(d.order) != 0 || len(d.series) != 0 {
		t.Errorf("after all expired: %d flushes (want %d), %v series, %d resources", len(ms.all()), n, testutil.ToFloat64(d.m.series), len(d.resources))
	}
	if v := testutil.ToFloat64(d.m.expired); v != 2 {
		t.Errorf("expired = %v, want 2", v)
	}
	// The freed place goes to the next new combination, from scratch.
	consume(spanSpec{service: "s", name: "new"})
	d.flush(ctx)
	got := last()
	if keys := keysOf(got); !slices.Equal(keys, []string{"s|new|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET"}) {
		t.Fatalf("after expiry: series %v", keys)
	}
	if p := got["s|new|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET"]; p.calls != 0 || p.count != 1 || p.start != pcommon.NewTimestampFromTime(clk.now()) {
		t.Errorf("new series %+v: want a fresh start", p)
	}
}

// TestRun checks the periodic flush and the final one on cancellation,
// after which Run returns.
func TestRun(t *testing.T) {
	opts := DefaultOptions()
	opts.FlushInterval = 10 * time.Millisecond
	d, ms, _ := newTestDeriver(t, opts, &traceSink{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	if _, err := d.ConsumeTraces(context.Background(), traces(spanSpec{service: "s", name: "n"})); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(ms.all()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if len(ms.all()) < 2 {
		t.Fatal("no periodic flushes")
	}
	if _, err := d.ConsumeTraces(context.Background(), traces(spanSpec{service: "s", name: "n"}, spanSpec{service: "s", name: "last"})); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f := ms.all()
	got := points(t, f[len(f)-1])
	if p := got["s|n|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET"]; p == nil || p.calls != 2 {
		t.Errorf("final flush: n = %+v, want calls 2", p)
	}
	if got["s|last|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET"] == nil {
		t.Errorf("final flush lacks the last span's series")
	}
}

// TestConcurrent consumes from several goroutines while flushing: no
// span is lost or counted twice (and -race has its say).
func TestConcurrent(t *testing.T) {
	d, ms, _ := newTestDeriver(t, DefaultOptions(), &traceSink{})
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for {
			select {
			case <-stop:
				return
			default:
				d.flush(ctx)
			}
		}
	}()
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				td := traces(
					spanSpec{service: "s", name: "shared", trace: byte(g + 1), span: byte(i)},
					spanSpec{service: fmt.Sprintf("g%d", g), name: "own", trace: byte(g + 1), span: byte(i)},
				)
				if _, err := d.ConsumeTraces(ctx, td); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-flushed
	d.flush(ctx)
	d.flush(ctx)
	f := ms.all()
	got := points(t, f[len(f)-1])
	if p := got["s|shared|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET"]; p == nil || p.calls != 200 || p.count != 200 {
		t.Errorf("shared: %+v, want 200", p)
	}
	for g := range 4 {
		k := fmt.Sprintf("g%d|own|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET", g)
		if p := got[k]; p == nil || p.calls != 50 {
			t.Errorf("%s: %+v, want 50", k, p)
		}
	}
}

// TestFlushError: a refused flush is counted and the next one sends the
// cumulative values again.
func TestFlushError(t *testing.T) {
	d, ms, _ := newTestDeriver(t, DefaultOptions(), &traceSink{})
	ms.err = errors.New("metric store is closed")
	ctx := context.Background()
	if _, err := d.ConsumeTraces(ctx, traces(spanSpec{service: "s", name: "n"})); err != nil {
		t.Fatal(err)
	}
	d.flush(ctx)
	d.flush(ctx)
	ms.err = nil
	d.flush(ctx)
	if v := testutil.ToFloat64(d.m.flushErrors); v != 2 {
		t.Errorf("flush errors %v, want 2", v)
	}
	if p := points(t, ms.all()[2])["s|n|SPAN_KIND_UNSPECIFIED|STATUS_CODE_UNSET"]; p.calls != 1 || p.count != 1 {
		t.Errorf("after the store recovered: %+v, want calls 1", p)
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, mod := range map[string]func(*Options){
		"zero interval":      func(o *Options) { o.FlushInterval = 0 },
		"negative limit":     func(o *Options) { o.CardinalityLimit = -1 },
		"no buckets":         func(o *Options) { o.Buckets = nil },
		"unsorted buckets":   func(o *Options) { o.Buckets = []float64{1, 5, 5} },
		"negative expiry":    func(o *Options) { o.SeriesExpiration = -time.Second },
		"NaN bucket":         func(o *Options) { o.Buckets = []float64{1, nan()} },
		"decreasing buckets": func(o *Options) { o.Buckets = []float64{2, 1} },
	} {
		o := DefaultOptions()
		mod(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: want an error", name)
		}
		if _, err := New(&traceSink{}, &metricSink{}, o, nil, nil); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if _, err := New(nil, &metricSink{}, DefaultOptions(), nil, nil); err == nil {
		t.Error("New without a traces sink: want an error")
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}
