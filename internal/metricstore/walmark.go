package metricstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync"
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

// ExemplarMarker is implemented by an ExemplarWriter that can durably
// record how far the TSDB's WAL has been indexed, so that a restart after a
// crash re-indexes only the WAL segments that may hold exemplars the writer
// lost (those still queued, or dropped when its queue was full).
type ExemplarMarker interface {
	// WALMark returns the first WAL segment that may hold exemplars not
	// yet durably written; ok is false when no mark was ever set.
	WALMark() (seg int, ok bool, err error)
	// SetWALMark durably records that every exemplar in the WAL segments
	// before seg has been written.
	SetWALMark(seg int) error
}

// walMarkInterval is how often the WAL mark moves forward.
const walMarkInterval = 10 * time.Second

// replayBatch is how many exemplars RecoverExemplars writes at a time.
const replayBatch = 5000

// walMarks moves the writer's WAL mark forward as the writer catches up.
type walMarks struct {
	m    ExemplarMarker
	stop chan struct{}
	done chan struct{}

	mu sync.Mutex // serialises advance and close
	// pending is the snapshot waiting for the writer to catch up: every
	// exemplar in a WAL segment before seg was counted in exQueued <= target.
	pending  *markSnapshot
	lastMark int
}

type markSnapshot struct {
	seg    int
	target uint64
}

func (s *Store) walDir() string { return filepath.Join(s.dir, "wal") }

// RecoverExemplars re-indexes the exemplars of the WAL segments that the
// exemplar writer may not have written before the last stop (all of the WAL
// and its checkpoint when the writer never recorded a mark), then keeps the
// writer's mark moving. It returns how many exemplars it handed to the
// writer again; the writer ignores those it already has. It does nothing
// when the writer is not an ExemplarMarker. Call it once, after Open and
// before ingestion; until it runs no mark moves, so no WAL segment can be
// skipped by mistake.
func (s *Store) RecoverExemplars(ctx context.Context) (int, error) {
	m, ok := s.opts.ExemplarWriter.(ExemplarMarker)
	if !ok || s.marks != nil {
		return 0, nil
	}
	from, ok, err := m.WALMark()
	if err != nil {
		return 0, fmt.Errorf("read the exemplar index's WAL mark: %w", err)
	}
	if !ok {
		from = -1
	}
	first, last, err := wlog.Segments(s.walDir())
	if err != nil {
		return 0, fmt.Errorf("list WAL segments: %w", err)
	}
	if from > last+1 {
		// The mark is past this WAL: the TSDB was reset under a kept
		// index. Start over from this WAL's beginning.
		from = -1
	}
	n, err := s.replayExemplars(ctx, from, first, last, func(recs []exemplars.Record) error {
		return s.opts.ExemplarWriter.WriteExemplars(ctx, recs)
	})
	if err != nil {
		return n, err
	}
	s.marks = &walMarks{m: m, stop: make(chan struct{}), done: make(chan struct{}), lastMark: from}
	go s.marks.run(s)
	return n, nil
}

// replayExemplars reads the exemplars of WAL segments from on, of the WAL's
// first to last (and of the last checkpoint when it covers segments from
// on), and hands them to fn in batches.
func (s *Store) replayExemplars(ctx context.Context, from, first, last int, fn func([]exemplars.Record) error) (int, error) {
	dir := s.walDir()
	var ranges []wlog.SegmentRange
	cpDir, cpIdx, err := wlog.LastCheckpoint(dir)
	switch {
	case errors.Is(err, record.ErrNotFound):
	case err != nil:
		return 0, fmt.Errorf("find WAL checkpoint: %w", err)
	case from <= cpIdx:
		ranges = append(ranges, wlog.SegmentRange{Dir: cpDir, First: -1, Last: -1})
	}
	if first >= 0 && last >= max(from, first) {
		ranges = append(ranges, wlog.SegmentRange{Dir: dir, First: max(from, first), Last: -1})
	}
	if len(ranges) == 0 {
		return 0, nil
	}
	// Each range is read on its own: a checkpoint's segment numbers do not
	// continue into the WAL's.
	ir, err := s.db.Head().Index()
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

// run moves the mark forward every walMarkInterval until close.
func (w *walMarks) run(s *Store) {
	defer close(w.done)
	t := time.NewTicker(walMarkInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			if err := w.advance(s); err != nil {
				s.logger.Warn("recording the exemplar index's WAL mark failed", "err", err)
			}
		}
	}
}

// advance sets the mark of the pending snapshot once the writer has caught
// up with it, then takes a new snapshot.
func (w *walMarks) advance(s *Store) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var err error
	if p := w.pending; p != nil && s.exWritten.Load() >= p.target {
		w.pending = nil
		// A dropped or failed batch is only in the WAL: keep the mark
		// before it so the next start re-indexes it.
		if s.exDropped.Load() == 0 {
			err = w.set(p.seg)
		}
	}
	if w.pending == nil {
		p, serr := snapshot(s)
		if serr != nil {
			return errors.Join(err, serr)
		}
		w.pending = p
	}
	return err
}

// snapshot notes the current WAL segment and the exemplar batches queued so
// far, with no commit between its WAL write and its count in exQueued.
func snapshot(s *Store) (*markSnapshot, error) {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	_, last, err := wlog.Segments(s.walDir())
	if err != nil {
		return nil, fmt.Errorf("list WAL segments: %w", err)
	}
	return &markSnapshot{seg: last, target: s.exQueued.Load()}, nil
}

func (w *walMarks) set(seg int) error {
	if seg <= w.lastMark {
		return nil
	}
	if err := w.m.SetWALMark(seg); err != nil {
		return err
	}
	w.lastMark = seg
	return nil
}

// close stops the loop and, when the writer has everything (Close drained
// the queue, nothing was dropped), marks the whole WAL as written so that
// a clean restart re-indexes nothing.
func (w *walMarks) close(s *Store) error {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if s.exDropped.Load() != 0 {
		return nil
	}
	_, last, err := wlog.Segments(s.walDir())
	if err != nil {
		return fmt.Errorf("list WAL segments: %w", err)
	}
	return w.set(last + 1)
}
