package metricstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"

	"github.com/lookout-dev/lookout/internal/exemplars"
)

// This file codes the whole life of an exemplar after the TSDB took it. The
// exemplar feed carries it to the exemplars.Writer (the durable index) and
// is the one owner of that path:
//
//	appender.go         notes each exemplar the TSDB took with a sample
//	  │ commit          the TSDB logs it to its WAL, under the commit barrier
//	  ▼
//	exemplarfilter.go   Prometheus's duplicate and out-of-order rules; the
//	  │                 fresh exemplars are counted in queued, and only then
//	  │                 is the barrier released
//	  ▼
//	queue ─▶ forwarder ─▶ Writer.WriteExemplars ─▶ counted in written
//	  └─ full for 5 s: the batch is dropped and counted (it stays in the WAL)
//
//	WAL marks         every 10 s, once written has caught up with a snapshot
//	                  (last WAL segment, queued) taken under the barrier:
//	                  Writer.SetWALMark(segment); at a clean stop with
//	                  nothing lost, past the whole WAL
//	recovery          at Open, before any commit: the exemplars of the WAL
//	                  from Writer.WALMark() on, through the same rules,
//	                  written again (the writer ignores those it has)
//	read-after-write  ReadAfterWrite: a query waits until written reaches
//	                  queued as it was when the query came, then reads the
//	                  writer's index

const (
	// queueFullWait is how long a commit waits for room in a full queue
	// (backpressure) before its batch is dropped.
	queueFullWait = 5 * time.Second
	// writeTimeout bounds one WriteExemplars call.
	writeTimeout = 30 * time.Second
	// walMarkInterval is how often the WAL mark moves forward.
	walMarkInterval = 10 * time.Second
	// replayBatch is how many exemplars recovery writes at a time.
	replayBatch = 5000
	// readAfterWriteWait bounds how long a query waits for the writer to
	// catch up: past it the index is merely behind (a burst being
	// indexed), and the query gets what the index holds.
	readAfterWriteWait = 2 * time.Second
)

// exemplarFeed is described at the top of this file. Its methods are safe
// for concurrent use; commit may run in many requests at once.
type exemplarFeed struct {
	w       exemplars.Writer // nil: exemplars are judged and counted only
	db      *tsdb.DB
	walDir  string
	logger  *slog.Logger
	metrics *storeMetrics

	filter *exemplarFilter
	keys   sync.Pool // *[]exemplarKey, an appender's exemplar keys
	recs   sync.Pool // *[]exemplars.Record the writer is done with

	queue         chan []exemplars.Record
	forwarderDone chan struct{}

	// barrier is held for reading from a TSDB commit until its exemplars
	// are counted in queued, and for writing while a WAL mark snapshot is
	// taken: a snapshot's queued then covers every exemplar in the WAL
	// segments before its own.
	barrier sync.RWMutex
	queued  atomic.Uint64 // batches counted after their commit

	mu       sync.Mutex
	written  uint64        // batches written, failed or dropped
	lost     uint64        // of those, batches dropped or failed: only in the WAL
	progress chan struct{} // closed when written grows; nil when nobody waits

	marks *walMarks // nil: the mark does not move (no writer, failed recovery)
	// recovered and recoverErr are recovery's outcome, logged at open.
	recovered  int
	recoverErr error
}

// openFeed opens the feed of db's exemplars to w (nil: none). With a
// writer it first re-indexes the WAL segments that w may lack, then
// starts the forwarder and the WAL marks. A failed recovery is logged and
// leaves the mark where it was, so the next start tries again.
func openFeed(db *tsdb.DB, dir string, w exemplars.Writer, queueSize int, logger *slog.Logger, metrics *storeMetrics) *exemplarFeed {
	f := &exemplarFeed{
		w:       w,
		db:      db,
		walDir:  filepath.Join(dir, "wal"),
		logger:  logger,
		metrics: metrics,
		filter:  newExemplarFilter(1 << 22),
	}
	f.keys.New = func() any { return new([]exemplarKey) }
	if w == nil {
		return f
	}
	start := time.Now()
	from, err := f.recoverFromWAL(context.Background())
	f.recoverErr = err
	switch {
	case err != nil:
		logger.Warn("re-indexing exemplars from the metrics WAL failed", "err", err)
	case f.recovered > 0:
		logger.Info("re-indexed exemplars from the metrics WAL", "exemplars", f.recovered, "took", time.Since(start).Round(time.Millisecond))
	}
	if queueSize <= 0 {
		queueSize = 1024
	}
	f.queue = make(chan []exemplars.Record, queueSize)
	f.forwarderDone = make(chan struct{})
	go f.forward()
	if err == nil {
		f.marks = &walMarks{stop: make(chan struct{}), done: make(chan struct{}), lastMark: from}
		go f.marks.run(f)
	}
	return f
}

// collects reports whether appenders keep exemplar records for a writer.
func (f *exemplarFeed) collects() bool { return f.w != nil }

// buffers gives app its exemplar buffers from the feed's pools: keys for
// the rules and, when the feed has a writer, records for it. The keys go
// back with releaseKeys; the records go to the writer, which gives them
// back when done, or stay with app.
func (f *exemplarFeed) buffers(app *appender) (keys *[]exemplarKey) {
	app.collect = f.collects()
	keys = f.keys.Get().(*[]exemplarKey)
	app.exKeys = (*keys)[:0]
	if b, ok := f.recs.Get().(*[]exemplars.Record); ok {
		app.recs = (*b)[:0]
	}
	return keys
}

// releaseKeys takes back the keys buffer of app, which is done with it.
func (f *exemplarFeed) releaseKeys(keys *[]exemplarKey, app *appender) {
	*keys = app.exKeys[:0]
	f.keys.Put(keys)
}

// commit commits app's TSDB transaction, judges the exemplars it stored by
// Prometheus's rules, counts them, and hands the fresh ones to the writer.
func (f *exemplarFeed) commit(app *appender) error {
	recs, err := f.commitCounted(app)
	if err != nil {
		return err
	}
	f.enqueue(recs)
	return nil
}

// commitCounted commits app under the barrier and counts its fresh
// exemplars in queued before releasing it.
func (f *exemplarFeed) commitCounted(app *appender) ([]exemplars.Record, error) {
	f.barrier.RLock()
	defer f.barrier.RUnlock()
	if err := app.Commit(); err != nil {
		return nil, err
	}
	return f.judge(app), nil
}

// judge counts app's exemplars (new, duplicate, out of order) and returns
// the new ones for the writer, counted in queued.
func (f *exemplarFeed) judge(app *appender) []exemplars.Record {
	if len(app.exKeys) == 0 {
		return nil
	}
	fresh, ooo := f.filter.filter(app.exKeys)
	f.metrics.exemplarsAppended.Add(float64(len(fresh)))
	f.metrics.exemplarsRejected.Add(float64(ooo))
	f.metrics.exemplarsDuplicate.Add(float64(len(app.exKeys) - len(fresh) - ooo))
	if !app.collect || len(fresh) == 0 {
		return nil
	}
	// fresh ascends, so the records are filtered in place; app is done
	// with them.
	recs := app.recs[:0]
	for _, i := range fresh {
		recs = append(recs, app.recs[i])
	}
	f.queued.Add(1)
	return recs
}

// enqueue hands recs, counted by judge, to the forwarder.
func (f *exemplarFeed) enqueue(recs []exemplars.Record) {
	if recs == nil {
		return
	}
	select {
	case f.queue <- recs:
		return
	default:
	}
	// The index is behind: hold this request (backpressure) for a while
	// rather than drop exemplars at once. Dropped exemplars stay in the
	// WAL, and the WAL marks stop so that the next start re-indexes them.
	t := time.NewTimer(queueFullWait)
	defer t.Stop()
	select {
	case f.queue <- recs:
	case <-t.C:
		f.metrics.exemplarWriterDropped.Add(float64(len(recs)))
		f.done(true)
	}
}

// forward writes the queued batches until the queue is closed.
func (f *exemplarFeed) forward() {
	defer close(f.forwarderDone)
	for recs := range f.queue {
		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		err := f.w.WriteExemplars(ctx, recs)
		cancel()
		if err != nil {
			f.metrics.exemplarWriterErrors.Add(float64(len(recs)))
			f.logger.Warn("exemplar index write failed", "exemplars", len(recs), "err", err)
		}
		f.done(err != nil)
		// The writer keeps no slice it was handed; the next request's
		// appender can fill this one.
		clear(recs[:cap(recs)])
		recs = recs[:0]
		f.recs.Put(&recs)
	}
}

// done counts a batch as finished (lost: dropped or failed) and wakes the
// queries waiting for it.
func (f *exemplarFeed) done(lost bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written++
	if lost {
		f.lost++
	}
	if f.progress != nil {
		close(f.progress)
		f.progress = nil
	}
}

// finished returns the batches finished so far and how many of those were
// lost.
func (f *exemplarFeed) finished() (written, lost uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written, f.lost
}

// wait returns once every exemplar committed before the call has been
// written (or dropped), or when ctx ends.
func (f *exemplarFeed) wait(ctx context.Context) error {
	target := f.queued.Load()
	for {
		grew := f.notBefore(target)
		if grew == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-grew:
		}
	}
}

// notBefore returns nil once target batches are finished, else a channel
// closed when the next one is.
func (f *exemplarFeed) notBefore(target uint64) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.written >= target {
		return nil
	}
	if f.progress == nil {
		f.progress = make(chan struct{})
	}
	return f.progress
}

// ReadAfterWrite answers exemplar queries from index, the exemplar
// writer's own index, once every exemplar committed before the query has
// been written to it: an exemplar is queryable as soon as its OTLP request
// was acknowledged, as with Prometheus's in-memory exemplar storage. A
// query waits at most until its context ends or for 2 seconds; past that
// the index is merely behind and the query gets what it holds.
func (s *Store) ReadAfterWrite(index storage.ExemplarQueryable) storage.ExemplarQueryable {
	return readAfterWrite{feed: s.feed, index: index}
}

type readAfterWrite struct {
	feed  *exemplarFeed
	index storage.ExemplarQueryable
}

var _ storage.ExemplarQueryable = readAfterWrite{}

// ExemplarQuerier implements storage.ExemplarQueryable.
func (r readAfterWrite) ExemplarQuerier(ctx context.Context) (storage.ExemplarQuerier, error) {
	wctx, cancel := context.WithTimeout(ctx, readAfterWriteWait)
	defer cancel()
	if err := r.feed.wait(wctx); err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return r.index.ExemplarQuerier(ctx)
}

// close writes what is queued, stops the forwarder and the marks and, when
// the writer has every exemplar, marks the whole WAL as written so that a
// clean restart re-indexes nothing. No commit may follow.
func (f *exemplarFeed) close() error {
	if f.queue == nil {
		return nil
	}
	close(f.queue)
	<-f.forwarderDone
	if f.marks == nil {
		return nil
	}
	return f.marks.close(f)
}

// recoverFromWAL re-indexes the exemplars of the WAL segments that the writer may
// not have written before the last stop (all of the WAL and its checkpoint
// when it never recorded a mark) and returns the mark to move on from.
func (f *exemplarFeed) recoverFromWAL(ctx context.Context) (int, error) {
	from, ok, err := f.w.WALMark()
	if err != nil {
		return 0, fmt.Errorf("read the exemplar index's WAL mark: %w", err)
	}
	if !ok {
		from = -1
	}
	first, last, err := wlog.Segments(f.walDir)
	if err != nil {
		return 0, fmt.Errorf("list WAL segments: %w", err)
	}
	if from > last+1 {
		// The mark is past this WAL: the TSDB was reset under a kept
		// index. Start over from this WAL's beginning.
		from = -1
	}
	f.recovered, err = f.replay(ctx, from, first, last, func(recs []exemplars.Record) error {
		return f.w.WriteExemplars(ctx, recs)
	})
	return from, err
}

// replay reads the exemplars of WAL segments from on, of the WAL's first
// to last (and of the last checkpoint when it covers segments from on),
// and hands them to fn in batches.
func (f *exemplarFeed) replay(ctx context.Context, from, first, last int, fn func([]exemplars.Record) error) (int, error) {
	var ranges []wlog.SegmentRange
	cpDir, cpIdx, err := wlog.LastCheckpoint(f.walDir)
	switch {
	case errors.Is(err, record.ErrNotFound):
	case err != nil:
		return 0, fmt.Errorf("find WAL checkpoint: %w", err)
	case from <= cpIdx:
		ranges = append(ranges, wlog.SegmentRange{Dir: cpDir, First: -1, Last: -1})
	}
	if first >= 0 && last >= max(from, first) {
		ranges = append(ranges, wlog.SegmentRange{Dir: f.walDir, First: max(from, first), Last: -1})
	}
	if len(ranges) == 0 {
		return 0, nil
	}
	// Each range is read on its own: a checkpoint's segment numbers do not
	// continue into the WAL's.
	ir, err := f.db.Head().Index()
	if err != nil {
		return 0, err
	}
	defer ir.Close()
	r := &exemplarReplay{head: ir, fn: fn, series: map[chunks.HeadSeriesRef]labels.Labels{}, filter: newExemplarFilter(math.MaxInt)}
	for _, sr := range ranges {
		if err := r.read(ctx, sr); err != nil {
			return r.n, err
		}
	}
	return r.n, r.flush()
}

// exemplarReplay turns the WAL's exemplar records into Records.
type exemplarReplay struct {
	head tsdb.IndexReader
	fn   func([]exemplars.Record) error
	// series holds the labels of series records whose series the head no
	// longer has (the head is asked first: it has almost all of them).
	series map[chunks.HeadSeriesRef]labels.Labels
	// filter drops the duplicate and out-of-order exemplars that the WAL
	// holds (the TSDB logs them; the live path drops them after commit).
	filter *exemplarFilter
	sb     labels.ScratchBuilder
	recs   []exemplars.Record
	n      int
}

func (r *exemplarReplay) read(ctx context.Context, sr wlog.SegmentRange) error {
	rc, err := wlog.NewSegmentsRangeReader(sr)
	if err != nil {
		return fmt.Errorf("open WAL segments in %s: %w", sr.Dir, err)
	}
	defer rc.Close()
	dec := record.NewDecoder(nil, nil)
	rd := wlog.NewReader(rc)
	var (
		series []record.RefSeries
		exs    []record.RefExemplar
	)
	for i := 0; rd.Next(); i++ {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rec := rd.Record()
		switch dec.Type(rec) {
		case record.Series:
			if series, err = dec.Series(rec, series[:0]); err != nil {
				return fmt.Errorf("decode WAL series in %s: %w", sr.Dir, err)
			}
			for _, s := range series {
				if !r.inHead(s.Ref) {
					r.series[s.Ref] = s.Labels
				}
			}
		case record.Exemplars:
			if exs, err = dec.Exemplars(rec, exs[:0]); err != nil {
				return fmt.Errorf("decode WAL exemplars in %s: %w", sr.Dir, err)
			}
			for _, e := range exs {
				k := exemplarKey{storage.SeriesRef(e.Ref), exemplarOrder{e.T, e.V, e.Labels.Hash()}}
				if r.filter.decide(k) != fresh {
					continue
				}
				ls, ok := r.labels(e.Ref)
				if !ok {
					continue
				}
				r.recs = append(r.recs, exemplars.Record{Series: ls, Exemplar: exemplar.Exemplar{
					Labels: e.Labels, Value: e.V, Ts: e.T, HasTs: e.T != 0,
				}})
			}
			if len(r.recs) >= replayBatch {
				if err := r.flush(); err != nil {
					return err
				}
			}
		}
	}
	if err := rd.Err(); err != nil {
		return fmt.Errorf("read WAL in %s: %w", sr.Dir, err)
	}
	return nil
}

func (r *exemplarReplay) inHead(ref chunks.HeadSeriesRef) bool {
	return r.head.Series(storage.SeriesRef(ref), &r.sb, nil) == nil
}

func (r *exemplarReplay) labels(ref chunks.HeadSeriesRef) (labels.Labels, bool) {
	if r.head.Series(storage.SeriesRef(ref), &r.sb, nil) == nil {
		return r.sb.Labels(), true
	}
	ls, ok := r.series[ref]
	return ls, ok
}

func (r *exemplarReplay) flush() error {
	if len(r.recs) == 0 {
		return nil
	}
	if err := r.fn(r.recs); err != nil {
		return err
	}
	r.n += len(r.recs)
	// The writer may keep the records' labels but not the slice.
	r.recs = make([]exemplars.Record, 0, replayBatch)
	return nil
}

// walMarks moves the writer's WAL mark forward as the writer catches up.
type walMarks struct {
	stop chan struct{}
	done chan struct{}

	mu sync.Mutex // serialises advance and close
	// pending is the snapshot waiting for the writer to catch up: every
	// exemplar in a WAL segment before seg was counted in queued <= target.
	pending  *markSnapshot
	lastMark int
}

type markSnapshot struct {
	seg    int
	target uint64
}

// run moves the mark forward every walMarkInterval until stopped.
func (w *walMarks) run(f *exemplarFeed) {
	defer close(w.done)
	t := time.NewTicker(walMarkInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			if err := w.advance(f); err != nil {
				f.logger.Warn("recording the exemplar index's WAL mark failed", "err", err)
			}
		}
	}
}

// advance sets the mark of the pending snapshot once the writer has caught
// up with it, then takes a new snapshot.
func (w *walMarks) advance(f *exemplarFeed) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var err error
	if p := w.pending; p != nil {
		if written, lost := f.finished(); written >= p.target {
			w.pending = nil
			// A dropped or failed batch is only in the WAL: keep the mark
			// before it so the next start re-indexes it.
			if lost == 0 {
				err = w.set(f, p.seg)
			}
		}
	}
	if w.pending == nil {
		p, serr := f.snapshot()
		if serr != nil {
			return errors.Join(err, serr)
		}
		w.pending = p
	}
	return err
}

// snapshot notes the current WAL segment and the exemplar batches queued so
// far, with no commit between its WAL write and its count in queued.
func (f *exemplarFeed) snapshot() (*markSnapshot, error) {
	f.barrier.Lock()
	defer f.barrier.Unlock()
	_, last, err := wlog.Segments(f.walDir)
	if err != nil {
		return nil, fmt.Errorf("list WAL segments: %w", err)
	}
	return &markSnapshot{seg: last, target: f.queued.Load()}, nil
}

func (w *walMarks) set(f *exemplarFeed, seg int) error {
	if seg <= w.lastMark {
		return nil
	}
	if err := f.w.SetWALMark(seg); err != nil {
		return err
	}
	w.lastMark = seg
	return nil
}

// halt stops the loop without a last mark, as a crash would.
func (w *walMarks) halt() {
	close(w.stop)
	<-w.done
}

// close stops the loop and, when the writer has everything (the queue was
// drained, nothing was dropped), marks the whole WAL as written.
func (w *walMarks) close(f *exemplarFeed) error {
	w.halt()
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, lost := f.finished(); lost != 0 {
		return nil
	}
	_, last, err := wlog.Segments(f.walDir)
	if err != nil {
		return fmt.Errorf("list WAL segments: %w", err)
	}
	return w.set(f, last+1)
}
