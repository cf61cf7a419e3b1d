package exemplars_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/lookout-dev/lookout/internal/exemplars"
	"github.com/lookout-dev/lookout/internal/traceid"
	"github.com/lookout-dev/lookout/internal/tracestore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var base = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func openIndex(t *testing.T, dir string, opts exemplars.Options) *exemplars.Index {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return base }
	}
	x, err := exemplars.Open(dir, opts, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func traceHex(n int) string { return fmt.Sprintf("%032x", 0xabc000+n) }

// TestSelectMatchesPrometheus feeds the same exemplars to Prometheus's
// in-memory exemplar storage and to the index, then compares Select for
// many ranges and matchers: same series, same order, same exemplars.
func TestSelectMatchesPrometheus(t *testing.T) {
	ctx := context.Background()
	x := openIndex(t, t.TempDir(), exemplars.Options{})
	defer x.Close()
	prom, err := tsdb.NewCircularExemplarStorage(100_000, tsdb.NewExemplarMetrics(prometheus.NewRegistry()), 0)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var series []labels.Labels
	for _, name := range []string{"webstore_payment_duration_bucket", "http_server_duration_bucket", "b_total"} {
		for _, le := range []string{"0.1", "1", "+Inf"} {
			for _, country := range []string{"US", "DE"} {
				series = append(series, labels.FromStrings("__name__", name, "le", le, "country", country, "job", "main-service"))
			}
		}
	}
	var recs []exemplars.Record
	ts := base.UnixMilli()
	for i := range 2000 {
		s := series[rng.IntN(len(series))]
		ts += int64(rng.IntN(3)) // repeated timestamps happen
		e := exemplar.Exemplar{
			Labels: labels.FromStrings("trace_id", traceHex(i), "span_id", fmt.Sprintf("%016x", i)),
			Value:  float64(rng.IntN(5)) / 4,
			Ts:     ts,
			HasTs:  true,
		}
		if err := prom.AddExemplar(s, e); err != nil {
			continue // Prometheus rejects out-of-order or duplicate; skip those for both
		}
		recs = append(recs, exemplars.Record{Series: s, Exemplar: e})
	}
	// Write in chunks, twice: the second write must be a no-op (dedupe).
	for range 2 {
		for i := 0; i < len(recs); i += 100 {
			if err := x.WriteExemplars(ctx, recs[i:min(i+100, len(recs))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	pq, _ := prom.ExemplarQuerier(ctx)
	xq, err := x.ExemplarQuerier(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := func(t labels.MatchType, n, v string) *labels.Matcher { return labels.MustNewMatcher(t, n, v) }
	matcherSets := [][][]*labels.Matcher{
		nil, // no matchers select nothing
		{{m(labels.MatchEqual, "__name__", "webstore_payment_duration_bucket")}},
		{{m(labels.MatchRegexp, "__name__", ".+")}},
		{{m(labels.MatchEqual, "country", "US"), m(labels.MatchNotEqual, "le", "+Inf")}},
		{{m(labels.MatchEqual, "__name__", "b_total")}, {m(labels.MatchEqual, "le", "0.1")}},
		{{m(labels.MatchEqual, "__name__", "nope")}},
	}
	end := ts
	ranges := [][2]int64{{base.UnixMilli(), end}, {base.UnixMilli() + 500, base.UnixMilli() + 900}, {end, end}, {0, base.UnixMilli() - 1}, {end + 1, end + 100}, {end, base.UnixMilli()}}
	compared := 0
	for _, ms := range matcherSets {
		for _, r := range ranges {
			want, err := pq.Select(r[0], r[1], ms...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := xq.Select(r[0], r[1], ms...)
			if err != nil {
				t.Fatal(err)
			}
			compared += len(want)
			if !reflect.DeepEqual(normalize(got), normalize(want)) {
				t.Errorf("Select(%d, %d, %v): got %d series, Prometheus %d; first difference:\n got %v\nwant %v",
					r[0], r[1], ms, len(got), len(want), first(got), first(want))
			}
		}
	}
	if compared < 20 || len(recs) < 1000 {
		t.Errorf("comparison too weak: %d series results over %d exemplars", compared, len(recs))
	}
}

// normalize renders results as strings so DeepEqual ignores label storage details.
func normalize(rs []exemplar.QueryResult) []string {
	out := []string{}
	for _, r := range rs {
		s := r.SeriesLabels.String()
		for _, e := range r.Exemplars {
			s += fmt.Sprintf(" [%s %g %d %v]", e.Labels, e.Value, e.Ts, e.HasTs)
		}
		out = append(out, s)
	}
	return out
}

func first(rs []exemplar.QueryResult) string {
	if len(rs) == 0 {
		return "none"
	}
	return normalize(rs[:1])[0]
}

func rec(series string, trace string, ts int64, v float64) exemplars.Record {
	return exemplars.Record{
		Series:   labels.FromStrings("__name__", series),
		Exemplar: exemplar.Exemplar{Labels: labels.FromStrings("trace_id", trace), Value: v, Ts: ts, HasTs: true},
	}
}

func TestByTraceRetentionAndReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := base
	clock := func() time.Time { return now }
	x := openIndex(t, dir, exemplars.Options{Retention: time.Hour, Now: clock})
	tr := traceHex(1)
	ms := base.UnixMilli()
	if err := x.WriteExemplars(ctx, []exemplars.Record{
		rec("a_bucket", tr, ms-30*60_000, 1),
		rec("b_bucket", tr, ms, 2),
		rec("a_bucket", traceHex(2), ms, 3),
	}); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x = openIndex(t, dir, exemplars.Options{Retention: time.Hour, Now: clock})
	defer x.Close()
	id, _ := parseID(tr)
	got, err := x.ByTrace(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{`{__name__="a_bucket"} [{trace_id="` + tr + `"} 1 ` + fmt.Sprint(ms-30*60_000) + ` true]`,
		`{__name__="b_bucket"} [{trace_id="` + tr + `"} 2 ` + fmt.Sprint(ms) + ` true]`}; !reflect.DeepEqual(normalize(got), want) {
		t.Errorf("ByTrace = %v, want %v", normalize(got), want)
	}
	pinned := func() bool {
		p, err := x.IsPinned(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if !pinned() {
		t.Error("trace not pinned by a fresh exemplar")
	}
	// 45 minutes later the older exemplar has expired but the newer pins.
	now = base.Add(45 * time.Minute)
	if err := x.RunRetention(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ = x.ByTrace(ctx, id)
	if len(got) != 1 || got[0].SeriesLabels.Get("__name__") != "b_bucket" || !pinned() {
		t.Errorf("after partial expiry: %v pinned=%v", normalize(got), pinned())
	}
	q, _ := x.ExemplarQuerier(ctx)
	res, _ := q.Select(0, ms*2, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "a_bucket")})
	if len(res) != 1 || len(res[0].Exemplars) != 1 {
		t.Errorf("a_bucket after expiry = %v", normalize(res))
	}
	// Past every exemplar's retention the trace is released.
	now = base.Add(2 * time.Hour)
	if err := x.RunRetention(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := x.ByTrace(ctx, id); len(got) != 0 || pinned() {
		t.Errorf("after expiry: %v pinned=%v", normalize(got), pinned())
	}
	res, _ = q.Select(0, ms*2, []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")})
	if len(res) != 0 {
		t.Errorf("Select after expiry = %v", normalize(res))
	}
}

// clockedTraceStore opens a trace store whose clock reads *now.
func clockedTraceStore(t *testing.T, now *time.Time) (*tracestore.Store, func() time.Time) {
	t.Helper()
	clock := func() time.Time { return *now }
	store, err := tracestore.Open(t.TempDir(), tracestore.Options{Now: clock, RetentionInterval: time.Hour}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store, clock
}

// TestDangling uses the real trace store: an exemplar whose trace never
// arrives is counted once its grace period ends; one whose trace arrives
// late is not.
func TestDangling(t *testing.T) {
	ctx := context.Background()
	now := base
	store, clock := clockedTraceStore(t, &now)
	reg := prometheus.NewRegistry()
	x, err := exemplars.Open(t.TempDir(), exemplars.Options{DanglingGrace: time.Minute, CheckInterval: time.Hour, Now: clock}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	x.SetTraces(store) // connected after opening, as the app does (the store pins through the index)
	ms := base.UnixMilli()
	if err := x.WriteExemplars(ctx, []exemplars.Record{rec("a", traceHex(1), ms, 1), rec("a", traceHex(2), ms+1, 1)}); err != nil {
		t.Fatal(err)
	}
	// Trace 1 arrives within the grace period; trace 2 never does.
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	id1, _ := parseID(traceHex(1))
	sp.SetTraceID(id1)
	sp.SetSpanID(pcommon.SpanID{1})
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(base))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Millisecond)))
	if _, err := store.ConsumeTraces(ctx, td); err != nil {
		t.Fatal(err)
	}
	x.CheckDangling(ctx) // before the grace period: nothing decided
	if got := testutil.ToFloat64(gauge(t, reg, "lookout_exemplars_dangling")); got != 0 {
		t.Errorf("dangling before grace = %v", got)
	}
	now = base.Add(2 * time.Minute)
	x.CheckDangling(ctx)
	id2, _ := parseID(traceHex(2))
	if !x.Dangling(id2) || x.Dangling(id1) {
		t.Errorf("Dangling: trace1=%v trace2=%v", x.Dangling(id1), x.Dangling(id2))
	}
	if got := testutil.ToFloat64(gauge(t, reg, "lookout_exemplars_dangling")); got != 1 {
		t.Errorf("lookout_exemplars_dangling = %v, want 1", got)
	}
	if got := testutil.ToFloat64(gauge(t, reg, "lookout_exemplars_dangling_total")); got != 1 {
		t.Errorf("lookout_exemplars_dangling_total = %v, want 1", got)
	}
}

// TestDanglingChecksBounded: beyond MaxPending pending checks, further
// checks are skipped and counted; checks done make room again.
func TestDanglingChecksBounded(t *testing.T) {
	ctx := context.Background()
	now := base
	store, clock := clockedTraceStore(t, &now)
	reg := prometheus.NewRegistry()
	x, err := exemplars.Open(t.TempDir(), exemplars.Options{DanglingGrace: time.Minute, CheckInterval: time.Hour, MaxPending: 3, Now: clock}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	x.SetTraces(store)
	write := func(from, n int) {
		t.Helper()
		var recs []exemplars.Record
		for i := from; i < from+n; i++ {
			recs = append(recs, rec("a", traceHex(i), now.UnixMilli()+int64(i), 1))
		}
		if err := x.WriteExemplars(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	count := func(name string) float64 { t.Helper(); return testutil.ToFloat64(gauge(t, reg, name)) }
	write(1, 2)
	write(3, 3) // room for one
	if got := count("lookout_exemplars_dangling_checks_skipped_total"); got != 2 {
		t.Errorf("skipped = %v, want 2", got)
	}
	now = now.Add(2 * time.Minute)
	x.CheckDangling(ctx) // none of the traces arrived
	if got := count("lookout_exemplars_dangling_total"); got != 3 {
		t.Errorf("dangling = %v, want the 3 checked", got)
	}
	write(10, 3) // the queue is empty again
	if got := count("lookout_exemplars_dangling_checks_skipped_total"); got != 2 {
		t.Errorf("skipped after the checks ran = %v, want still 2", got)
	}
}

// TestDanglingChecksSurviveRestart: the checks due after a restart were
// only in memory; the index schedules them again from its exemplars.
func TestDanglingChecksSurviveRestart(t *testing.T) {
	ctx := context.Background()
	now := base
	store, clock := clockedTraceStore(t, &now)
	dir := t.TempDir()
	opts := exemplars.Options{DanglingGrace: time.Minute, CheckInterval: time.Hour, Now: clock}
	x, err := exemplars.Open(dir, opts, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	x.SetTraces(store)
	ms := base.UnixMilli()
	old := base.Add(-10 * time.Minute).UnixMilli() // checked before the restart
	if err := x.WriteExemplars(ctx, []exemplars.Record{rec("a", traceHex(1), ms, 1), rec("a", traceHex(3), old, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	now = base.Add(30 * time.Second) // restarted within the grace period
	x, err = exemplars.Open(dir, opts, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	x.SetTraces(store)
	now = base.Add(2 * time.Minute)
	x.CheckDangling(ctx)
	id1, _ := parseID(traceHex(1))
	id3, _ := parseID(traceHex(3))
	if !x.Dangling(id1) {
		t.Error("trace 1 never arrived, but after a restart within its grace period it is not dangling")
	}
	if x.Dangling(id3) {
		t.Error("an exemplar older than two grace periods was checked again after the restart")
	}
}

// gauge finds a registered collector by metric name.
func gauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			v := 0.0
			if g := mf.GetMetric()[0].GetGauge(); g != nil {
				v = g.GetValue()
			} else if c := mf.GetMetric()[0].GetCounter(); c != nil {
				v = c.GetValue()
			}
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
			g.Set(v)
			return g
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}

func TestWALMark(t *testing.T) {
	dir := t.TempDir()
	x := openIndex(t, dir, exemplars.Options{})
	if seg, ok, err := x.WALMark(); ok || err != nil {
		t.Fatalf("new index: WAL mark %d, %v, %v; want none", seg, ok, err)
	}
	if err := x.SetWALMark(-1); err == nil {
		t.Error("SetWALMark(-1) accepted")
	}
	for _, seg := range []int{0, 7, 1 << 40} {
		if err := x.SetWALMark(seg); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := x.WALMark(); got != seg || !ok || err != nil {
			t.Fatalf("after SetWALMark(%d): %d, %v, %v", seg, got, ok, err)
		}
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := x.WALMark(); !errors.Is(err, exemplars.ErrClosed) {
		t.Errorf("WALMark after Close: %v, want ErrClosed", err)
	}
	x = openIndex(t, dir, exemplars.Options{})
	defer x.Close()
	if got, ok, err := x.WALMark(); got != 1<<40 || !ok || err != nil {
		t.Fatalf("after reopening: WAL mark %d, %v, %v; want %d", got, ok, err, 1<<40)
	}
	if res, err := x.ByTrace(context.Background(), pcommon.TraceID{}); err != nil || len(res) != 0 {
		t.Errorf("the mark shows up as exemplars: %v, %v", res, err)
	}
}

// parseID parses a hex trace ID the tests wrote.
func parseID(s string) (pcommon.TraceID, error) { return traceid.Parse(s) }
