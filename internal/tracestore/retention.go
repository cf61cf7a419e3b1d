package tracestore

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// memtableFlushInterval is how often the background loop flushes the
// memtable when anything was written since its last flush. Spans are
// durable in the WAL either way, but there they take their full batch size
// on disk until a flush compresses them into an sstable, and a 32 MiB
// memtable takes several minutes of a small deployment's traffic to fill:
// without these flushes the demo's trace directory was 2.7 times its
// sstables after 10 minutes, with them 1.6 times (BENCHMARKS.md).
// Under heavy ingest the memtable fills in seconds, so the extra flush
// adds one small L0 file per interval.
const memtableFlushInterval = 30 * time.Second

func (s *Store) retentionLoop() {
	defer close(s.done)
	t := time.NewTicker(s.opts.RetentionInterval)
	defer t.Stop()
	flush := time.NewTicker(memtableFlushInterval)
	defer flush.Stop()
	var walBytes uint64 // the WAL's bytes written at the last flush
	// The sampling pass, when a policy is set, runs on its own tick.
	var sampling <-chan time.Time
	if s.sampler != nil {
		st := time.NewTicker(samplingInterval)
		defer st.Stop()
		sampling = st.C
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.RunRetention(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("trace retention failed", "err", err)
			}
		case <-flush.C:
			s.flushWritten(&walBytes)
			if err := s.CutPages(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrClosed) {
				s.logger.Warn("trace store page cut failed", "err", err)
			}
		case <-sampling:
			if err := s.RunSampling(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("trace sampling failed", "err", err)
			}
		}
	}
}

// flushWritten starts a flush of the memtable if the WAL took writes since
// *walBytes was read, and updates *walBytes. Flushing an empty memtable
// would still start a new WAL file, so an idle store does nothing.
func (s *Store) flushWritten(walBytes *uint64) {
	in := s.db.Metrics().WAL.BytesIn
	if in == *walBytes {
		return
	}
	*walBytes = in
	if _, err := s.db.AsyncFlush(); err != nil {
		s.logger.Warn("trace store memtable flush failed", "err", err)
	}
}

// RunRetention deletes traces whose first span is older than the retention
// and, while the store is larger than its size limit, the oldest traces;
// traces the Pinner pins are kept. It runs in the background every
// RetentionInterval; tests call it directly. Ingest is never blocked: the
// deletes are ordinary unsynced batches.
func (s *Store) RunRetention(ctx context.Context) error {
	s.retMu.Lock()
	defer s.retMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	s.m.retentionRuns.Inc()
	cutoff := uint64(max(s.opts.Now().Add(-s.opts.Retention).UnixNano(), 0))
	if err := s.deleteOlder(ctx, cutoff, -1, "age"); err != nil {
		return err
	}
	// Drop tag index hours entirely before the cutoff.
	hour := uint32(cutoff / uint64(time.Hour))
	b := s.db.NewBatch()
	_ = b.DeleteRange(tagKeyKey(nil, 0, 0, ""), tagKeyKey(nil, hour, 0, ""), nil)
	_ = b.DeleteRange(tagValPrefix(nil, 0, 0, ""), tagValPrefix(nil, hour, 0, ""), nil)
	// Block summaries of minutes before the cutoff; a pinned trace's minute
	// then has no summary, which search treats as "scan it".
	// Column blocks go with their summaries (see columns.go).
	_ = b.DeleteRange(blockKey(0), blockKey(cutoff/blockWidth), nil)
	_ = b.DeleteRange(columnBound(pColumns, 0), columnBound(pColumns, cutoff/blockWidth), nil)
	_ = b.DeleteRange(columnBound(pAttrCol, 0), columnBound(pAttrCol, cutoff/blockWidth), nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	if s.opts.SizeLimit > 0 {
		usage := int64(s.db.Metrics().DiskSpaceUsage())
		if usage > s.opts.SizeLimit {
			// Free down to 90% of the limit so retention does not run on every pass.
			excess := usage - s.opts.SizeLimit*9/10
			if err := s.deleteOlder(ctx, ^uint64(0), excess, "size"); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteOlder deletes unpinned traces whose index key is before cutoff,
// oldest first, until budget bytes (estimated) are freed; budget < 0 means
// no byte budget. The deleted range is then compacted so the space returns.
func (s *Store) deleteOlder(ctx context.Context, cutoff uint64, budget int64, reason string) error {
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: indexBound(0), UpperBound: indexBound(cutoff)})
	if err != nil {
		return err
	}
	defer it.Close()
	b := s.db.NewBatch()
	defer func() { b.Close() }()
	pinned := map[pcommon.TraceID]bool{}
	var freed int64
	var last []byte
	deleted := 0
	flush := func() error {
		if b.Empty() {
			return nil
		}
		err := b.Commit(pebble.NoSync)
		b.Close()
		b = s.db.NewBatch()
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		if budget >= 0 && freed >= budget {
			break
		}
		k := it.Key()
		if len(k) != 33 {
			continue
		}
		tid := pcommon.TraceID(k[9:25])
		if p, seen := pinned[tid]; seen {
			if !p {
				_ = b.Delete(k, nil) // a later chunk of a trace deleted in this pass
			}
			continue
		}
		isPinned := false
		if s.opts.Pinner != nil {
			isPinned, err = s.opts.Pinner.IsPinned(ctx, tid)
			if err != nil {
				return err
			}
		}
		pinned[tid] = isPinned
		if isPinned {
			s.m.pinnedKept.Inc()
			continue
		}
		// Data and search records are roughly 3x the search record alone.
		freed += int64(len(k)+len(it.Value())) * 3
		sum, found, err := s.getSummary(tid)
		if err != nil {
			return err
		}
		if found {
			s.deleteTrace(b, tid, &sum)
		}
		_ = b.Delete(k, nil)
		deleted++
		last = append(last[:0], k...)
		if b.Count() >= 4096 {
			if err := flush(); err != nil {
				return err
			}
		}
		if len(pinned) > 1_000_000 {
			pinned = map[pcommon.TraceID]bool{} // bound memory on huge passes
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	// The deleted traces' entries leave their pages: those the deletions
	// noted and, for age, every page older than the cutoff not yet
	// rewritten since it expired (deletions noted before a restart).
	expired := uint64(0)
	if budget < 0 {
		expired = cutoff
	}
	if err := s.rewritePages(ctx, expired); err != nil {
		return err
	}
	if deleted == 0 {
		return nil
	}
	s.m.tracesDeleted.WithLabelValues(reason).Add(float64(deleted))
	end := append([]byte(nil), last...)
	end = append(end, 0)
	dEnd := append([]byte{pData}, end[1:]...)
	if err := s.db.Compact(ctx, indexBound(0), end, false); err != nil {
		return err
	}
	if err := s.db.Compact(ctx, []byte{pData}, dEnd, false); err != nil {
		return err
	}
	// Pages end up to a minute after their first row.
	pEnd := binary.BigEndian.AppendUint64([]byte{pPage}, binary.BigEndian.Uint64(end[1:9])+2*blockWidth)
	return s.db.Compact(ctx, []byte{pPage}, pEnd, false)
}

// CutPages moves the OTLP protobuf rows of the minutes that ended more than
// the cut delay ago (and, with sampling, its window) and took no write for
// cutQuiet into pages, and drops deleted traces from the pages deletions
// noted. The background loop runs it every 30 seconds.
func (s *Store) CutPages(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	delay := uint64(cutDelay)
	if s.sampler != nil {
		delay += uint64(s.sampler.policy.Window)
	}
	now := uint64(max(s.opts.Now().UnixNano(), 0))
	if now < delay {
		return nil
	}
	before := (now - delay) / blockWidth * blockWidth
	return s.cutPagesBefore(ctx, before, s.recent.busy(int64(now)-cutQuiet))
}

// cutPagesBefore cuts the rows that started before the time before, but
// for those of the busy minutes (sorted), and rewrites the pages of the
// dirty minutes.
func (s *Store) cutPagesBefore(ctx context.Context, before uint64, busy []uint64) error {
	s.pageMu.Lock()
	defer s.pageMu.Unlock()
	n, err := s.cutPages(ctx, before, busy)
	s.m.rowsPaged.Add(float64(n))
	if err != nil {
		return err
	}
	return s.collectPages(ctx, 0)
}

// rewritePages drops deleted traces from the pages deletions noted and,
// when expired > 0, from the pages older than expired (gcExpiredPages).
func (s *Store) rewritePages(ctx context.Context, expired uint64) error {
	s.pageMu.Lock()
	defer s.pageMu.Unlock()
	return s.collectPages(ctx, expired)
}

// collectPages is rewritePages with pageMu held.
func (s *Store) collectPages(ctx context.Context, expired uint64) error {
	dropped, err := s.gcDirtyPages(ctx)
	s.m.pageEntriesDropped.Add(float64(dropped))
	if err != nil || expired == 0 {
		return err
	}
	dropped, err = s.gcExpiredPages(ctx, expired)
	s.m.pageEntriesDropped.Add(float64(dropped))
	return err
}

// Compact cuts every OTLP protobuf row into pages, whatever its age, and
// compacts the whole store, so that deleted traces' space returns now
// rather than with Pebble's next compactions of their files (bench/traces
// measures disk use after it).
func (s *Store) Compact(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.cutPagesBefore(ctx, ^uint64(0), nil); err != nil {
		return err
	}
	return s.db.Compact(ctx, []byte{0}, []byte{0xff}, true)
}

// deleteTrace adds to b the deletion of a trace's spans, search records and
// summary. Its minutes' block summaries and columns stay: search skips
// candidates whose records are gone. Its entries in pages stay until the
// pages of the minutes noted dirty are rewritten.
func (s *Store) deleteTrace(b *pebble.Batch, tid pcommon.TraceID, sum *summary) {
	s.dirty.note(sum.Chunks)
	for _, c := range sum.Chunks {
		_ = b.Delete(dataKey(c.MinStart, tid, c.Seq), nil)
		_ = b.Delete(indexKey(c.MinStart, tid, c.Seq), nil)
	}
	_ = b.Delete(summaryKey(tid), nil)
}
