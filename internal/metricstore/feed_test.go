package metricstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/lookout-dev/lookout/internal/exemplars"
)

// crashingIndex is the real exemplar index behind a switch that makes
// writes vanish (lose: a crash before they reached the index's disk) or
// fail, and that notes every trace it was handed.
type crashingIndex struct {
	*exemplars.Index
	mu     sync.Mutex
	lose   bool
	fail   bool
	traces map[string]int
}

func (c *crashingIndex) WriteExemplars(ctx context.Context, recs []exemplars.Record) error {
	c.mu.Lock()
	lose, fail := c.lose, c.fail
	for _, r := range recs {
		c.traces[r.Exemplar.Labels.Get("trace_id")]++
	}
	c.mu.Unlock()
	switch {
	case fail:
		return errors.New("index unavailable")
	case lose:
		return nil
	}
	return c.Index.WriteExemplars(ctx, recs)
}

func (c *crashingIndex) set(lose, fail bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lose, c.fail = lose, fail
	c.traces = map[string]int{}
}

func (c *crashingIndex) handed(trace string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.traces[trace]
}

// indexed reports whether the index answers an exemplar pointing at trace.
func (c *crashingIndex) indexed(t *testing.T, trace string) bool {
	t.Helper()
	q, err := c.Index.ExemplarQuerier(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res, err := q.Select(0, time.Now().UnixMilli(), []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+")})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		for _, e := range r.Exemplars {
			if e.Labels.Get("trace_id") == trace {
				return true
			}
		}
	}
	return false
}

// traceHex is the trace_id label of traceHistogram(n)'s exemplar.
func traceHex(n byte) string {
	return "0000000000000000000000000000" + string("0123456789abcdef"[n>>4]) + string("0123456789abcdef"[n&15]) + "00"
}

// ingestTrace sends a histogram point whose one exemplar points at trace
// n, then, in another request, enough new series to fill several 32 KiB
// WAL segments (series records fill them despite the WAL's compression).
func ingestTrace(t *testing.T, s *Store, n byte, at time.Duration) {
	t.Helper()
	md := pmetric.NewMetrics()
	ms := newScope(md)
	histogramWithExemplars(ms, at, 0.5)
	ms.At(0).Histogram().DataPoints().At(0).Exemplars().At(0).SetTraceID([16]byte{14: n})
	filler := pmetric.NewMetrics()
	fs := newScope(filler)
	for i := range 2000 {
		gauge(fs, fmt.Sprintf("filler_%d_%x", n, uint64(i)*0x9e3779b97f4a7c15), map[time.Duration]float64{at: float64(i)})
	}
	for _, md := range []pmetric.Metrics{md, filler} {
		if _, err := s.ConsumeMetrics(context.Background(), md); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.feed.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// openWithIndex opens the store in dir writing exemplars to w; tune, if
// set, adjusts the options.
func openWithIndex(t *testing.T, dir string, w *crashingIndex, tune func(*Options)) *Store {
	t.Helper()
	opts := DefaultOptions()
	opts.ExemplarWriter = w
	if tune != nil {
		tune(&opts)
	}
	s, err := Open(dir, opts, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newCrashingIndex opens a crashingIndex over a real index in a temp dir,
// closed when the test ends.
func newCrashingIndex(t *testing.T) *crashingIndex {
	t.Helper()
	idx, err := exemplars.Open(t.TempDir(), exemplars.Options{Retention: 48 * time.Hour}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idx.Close() })
	return &crashingIndex{Index: idx}
}

// recovered is what the recovery at s's Open handed the index again, and
// its error.
func recovered(s *Store) (int, error) { return s.feed.recovered, s.feed.recoverErr }

// crash stops s as a kill would: no final mark.
func crash(t *testing.T, s *Store) {
	t.Helper()
	s.feed.marks.halt()
	s.feed.marks = nil
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRecoverExemplarsFromWAL(t *testing.T) {
	dir := t.TempDir()
	w := newCrashingIndex(t)
	w.set(false, false)
	open := func() *Store {
		t.Helper()
		return openWithIndex(t, dir, w, func(o *Options) { o.walSegmentSize = 32 << 10 })
	}
	mark := func() int {
		t.Helper()
		seg, ok, err := w.WALMark()
		if err != nil || !ok {
			t.Fatalf("WAL mark: %d, %v, %v", seg, ok, err)
		}
		return seg
	}
	s := open()
	if n, err := recovered(s); n != 0 || err != nil {
		t.Fatalf("recovering an empty WAL: %d, %v", n, err)
	}
	ingestTrace(t, s, 1, 0)
	if err := s.feed.marks.advance(s.feed); err != nil { // snapshot
		t.Fatal(err)
	}
	ingestTrace(t, s, 2, time.Second)
	if err := s.feed.marks.advance(s.feed); err != nil { // mark: trace 1's segments are indexed
		t.Fatal(err)
	}
	m1 := mark()
	if _, last, _ := wlog.Segments(s.feed.walDir); m1 < 2 || m1 >= last {
		t.Fatalf("mark %d after several segments (last %d)", m1, last)
	}
	// Trace 3 is acknowledged, then lost by the index before it reached
	// its disk; the process dies.
	w.set(true, false)
	ingestTrace(t, s, 3, 2*time.Second)
	crash(t, s)
	if w.indexed(t, traceHex(3)) {
		t.Fatal("the lost exemplar is in the index before recovery")
	}

	w.set(false, false)
	s = open()
	n, err := recovered(s)
	if err != nil {
		t.Fatal(err)
	}
	if !w.indexed(t, traceHex(3)) {
		t.Fatalf("after recovery (%d exemplars) the lost exemplar is not indexed", n)
	}
	if w.handed(traceHex(1)) != 0 {
		t.Errorf("recovery re-read segments before the mark %d (trace 1 handed again)", m1)
	}
	if w.handed(traceHex(2)) == 0 || w.handed(traceHex(3)) == 0 {
		t.Errorf("recovery skipped segments after the mark: traces 2, 3 handed %d, %d times", w.handed(traceHex(2)), w.handed(traceHex(3)))
	}

	// A batch the index failed to write stops the marks: it is re-indexed
	// at the next start even after a clean stop.
	w.set(false, true)
	ingestTrace(t, s, 4, 3*time.Second)
	if err := s.feed.marks.advance(s.feed); err != nil {
		t.Fatal(err)
	}
	ingestTrace(t, s, 5, 4*time.Second)
	m2 := mark()
	if err := s.feed.marks.advance(s.feed); err != nil {
		t.Fatal(err)
	}
	if got := mark(); got != m2 {
		t.Fatalf("the mark moved from %d to %d past a failed write", m2, got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	w.set(false, false)
	s = open()
	if _, err := recovered(s); err != nil {
		t.Fatal(err)
	}
	for _, n := range []byte{4, 5} {
		if !w.indexed(t, traceHex(n)) {
			t.Errorf("trace %d, failed at first, not re-indexed at the next start", n)
		}
	}

	// A clean stop with everything written re-indexes nothing.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	w.set(false, false)
	s = open()
	defer s.Close()
	if n, err := recovered(s); n != 0 || err != nil {
		t.Fatalf("recovery after a clean stop handed %d exemplars (%v), want 0", n, err)
	}
}

// TestRecoverExemplarsAfterTSDBReset: an index kept while the TSDB was
// deleted holds a mark past the new WAL; recovery must not skip the new
// WAL's segments because of it.
func TestRecoverExemplarsAfterTSDBReset(t *testing.T) {
	w := newCrashingIndex(t)
	if err := w.SetWALMark(1000); err != nil {
		t.Fatal(err)
	}
	w.set(false, false)
	dir := t.TempDir()
	open := func() *Store { t.Helper(); return openWithIndex(t, dir, w, nil) }
	s := open()
	if _, err := recovered(s); err != nil {
		t.Fatal(err)
	}
	w.set(true, false) // lost on the way to the index
	ingestTrace(t, s, 7, 0)
	crash(t, s)
	w.set(false, false)
	s = open()
	defer s.Close()
	if _, err := recovered(s); err != nil {
		t.Fatal(err)
	}
	if !w.indexed(t, traceHex(7)) {
		t.Fatal("after a TSDB reset, recovery skipped the new WAL because of the old mark")
	}
}

// TestRecoverSkipsRefusedExemplars: with the TSDB's exemplar ring at one
// exemplar, an out-of-order exemplar reaches the WAL although the store
// refused it; recovery from that WAL refuses it again.
func TestRecoverSkipsRefusedExemplars(t *testing.T) {
	dir := t.TempDir()
	w := newCrashingIndex(t)
	open := func() *Store {
		t.Helper()
		s := openWithIndex(t, dir, w, func(o *Options) { o.MaxExemplars = 1 })
		if _, err := recovered(s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	const refused = "09000000000000000000000000000000"
	w.set(true, false) // everything is lost before it reaches the index's disk
	s := open()
	// Exemplars on the le=1 and le=10 buckets; the ring keeps le=10's.
	first := pmetric.NewMetrics()
	histogramWithExemplars(newScope(first), 0, 0.5, 7)
	// An le=1 exemplar older than the first: out of order.
	late := pmetric.NewMetrics()
	histogramWithExemplars(newScope(late), time.Second, 0.5)
	e := late.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Histogram().DataPoints().At(0).Exemplars().At(0)
	e.SetTimestamp(ts(-time.Second))
	e.SetTraceID([16]byte{9})
	for _, md := range []pmetric.Metrics{first, late} {
		if _, err := s.ConsumeMetrics(context.Background(), md); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.feed.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.handed(refused) != 0 {
		t.Fatal("the out-of-order exemplar was handed to the index")
	}
	crash(t, s)

	w.set(false, false)
	s = open()
	defer s.Close()
	if !w.indexed(t, "01000000000000000000000000000000") {
		t.Error("recovery did not index the first exemplar")
	}
	if w.handed(refused) != 0 || w.indexed(t, refused) {
		t.Error("recovery indexed the out-of-order exemplar")
	}
}

// gatedWriter blocks every write until gate is closed.
type gatedWriter struct {
	recordingWriter
	gate chan struct{}
}

func (w *gatedWriter) WriteExemplars(ctx context.Context, recs []exemplars.Record) error {
	<-w.gate
	return w.recordingWriter.WriteExemplars(ctx, recs)
}

func TestWaitExemplars(t *testing.T) {
	w := &gatedWriter{gate: make(chan struct{})}
	s := openStore(t, func(o *Options) { o.ExemplarWriter = w })
	md := pmetric.NewMetrics()
	histogramWithExemplars(newScope(md), 0, 0.5, 7)
	if _, err := s.ConsumeMetrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.feed.wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitExemplars with the writer blocked = %v, want deadline exceeded", err)
	}
	close(w.gate)
	if err := s.feed.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	n := len(w.recs)
	w.mu.Unlock()
	if n != 2 {
		t.Fatalf("after WaitExemplars the writer holds %d exemplars, want 2", n)
	}
}

// indexProbe is the exemplar index as ReadAfterWrite sees it: its querier
// reports how many exemplars the writer held when the query reached it.
type indexProbe struct{ w *gatedWriter }

func (p indexProbe) ExemplarQuerier(context.Context) (storage.ExemplarQuerier, error) {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	return heldQuerier(len(p.w.recs)), nil
}

type heldQuerier int

func (h heldQuerier) Select(int64, int64, ...[]*labels.Matcher) ([]exemplar.QueryResult, error) {
	return []exemplar.QueryResult{{Exemplars: make([]exemplar.Exemplar, h)}}, nil
}

// TestReadAfterWrite: a query waits for the exemplars committed before it
// to reach the index, bounded by its context.
func TestReadAfterWrite(t *testing.T) {
	w := &gatedWriter{gate: make(chan struct{})}
	s := openStore(t, func(o *Options) { o.ExemplarWriter = w })
	md := pmetric.NewMetrics()
	histogramWithExemplars(newScope(md), 0, 0.5, 7)
	if _, err := s.ConsumeMetrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	q := s.ReadAfterWrite(indexProbe{w})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := q.ExemplarQuerier(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("querying with the writer blocked until the query's deadline = %v, want the deadline", err)
	}
	time.AfterFunc(10*time.Millisecond, func() { close(w.gate) })
	eq, err := q.ExemplarQuerier(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res, _ := eq.Select(0, 0)
	if n := len(res[0].Exemplars); n != 2 {
		t.Fatalf("the query reached the index when it held %d exemplars, want the 2 committed before it", n)
	}
}
