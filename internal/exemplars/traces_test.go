package exemplars_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/exemplars"
	"github.com/lookout-dev/lookout/internal/tracestore"
)

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
	x, err := exemplars.Open(t.TempDir(), exemplars.Options{Traces: store, DanglingGrace: time.Minute, CheckInterval: time.Hour, Now: clock}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
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
	x, err := exemplars.Open(t.TempDir(), exemplars.Options{Traces: store, DanglingGrace: time.Minute, CheckInterval: time.Hour, MaxPending: 3, Now: clock}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
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
	opts := exemplars.Options{Traces: store, DanglingGrace: time.Minute, CheckInterval: time.Hour, Now: clock}
	x, err := exemplars.Open(dir, opts, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
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
