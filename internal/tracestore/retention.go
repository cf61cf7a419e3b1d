package tracestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/lookout-dev/lookout/internal/pebbledb"
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
	walBytes := s.db.Metrics().WAL.BytesIn // the WAL's bytes written at the last flush
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
			s.flushWritten(ctx, &walBytes)
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

// flushWritten flushes the memtable if the WAL took writes since
// *walBytes was read, and updates *walBytes. Flushing an empty memtable
// would still start a new WAL file, so an idle store does nothing. When
// little was written (under trimWALBelow) the flush is synchronous and
// trims the WAL files kept for reuse (trimWAL); otherwise it runs in the
// background, beside ingest.
func (s *Store) flushWritten(ctx context.Context, walBytes *uint64) {
	in := s.db.Metrics().WAL.BytesIn
	if in == *walBytes {
		return
	}
	written := in - *walBytes
	*walBytes = in
	if written < trimWALBelow {
		if err := s.trimWAL(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrClosed) {
			s.logger.Warn("trace store WAL trim failed", "err", err)
		}
		*walBytes = s.db.Metrics().WAL.BytesIn
		return
	}
	if _, err := s.db.AsyncFlush(); err != nil {
		s.logger.Warn("trace store memtable flush failed", "err", err)
	}
}

// trimWALBelow is the most written in a flush interval for which the
// background loop trims the WAL: the flush holds back ingest while it
// runs, a few milliseconds for this much.
const trimWALBelow = 4 << 20

// trimWAL flushes the memtable and gives back the disk space of the WAL
// files Pebble keeps for reuse, each as large as the most ever written to
// it: about 120 MiB after heavy ingest, whatever the store holds, and in a
// small store most of its directory. Every writer waits meanwhile (ingest,
// retention, sampling, the page passes), as the trim is safe only while the
// newest WAL file is the only live one. A reused file then grows again
// with the writes, paying a new file's metadata updates on its first
// synced commits.
func (s *Store) trimWAL(ctx context.Context) error {
	s.retMu.Lock()
	defer s.retMu.Unlock()
	s.pageMu.Lock()
	defer s.pageMu.Unlock()
	held := 0
	defer func() {
		for range held {
			<-s.sem
		}
	}()
	for range cap(s.sem) {
		select {
		case s.sem <- struct{}{}:
			held++
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.closed.Load() {
		return ErrClosed
	}
	// The flush starts a new WAL file, most often a flushed one reused,
	// whose old bytes stay until overwritten: after trimming the others,
	// a second flush moves to a trimmed file and the first one's is
	// trimmed too.
	var freed int64
	for range 2 {
		if err := s.db.Flush(); err != nil {
			return err
		}
		// The flushed WAL files leave the live ones once Pebble has
		// noted the flush, just after it returns.
		for i := 0; s.db.Metrics().WAL.Files != 1; i++ {
			if i == 20 {
				return nil // not the moment: a later pass trims
			}
			select {
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		n, err := pebbledb.TrimFlushedWAL(s.dir)
		if freed += n; err != nil {
			return err
		}
	}
	if freed > 0 {
		s.logger.Debug("trimmed the trace store's flushed WAL files", "bytes", freed)
	}
	return nil
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

// deleteOlder deletes unpinned traces with a chunk whose index time is
// before cutoff, oldest first, until budget bytes (estimated) are freed;
// budget < 0 means no byte budget. The deleted range is then compacted so
// the space returns.
func (s *Store) deleteOlder(ctx context.Context, cutoff uint64, budget int64, reason string) error {
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
	err := s.walkChunks(ctx, 0, cutoff, func(k, v []byte, paged bool) error {
		if budget >= 0 && freed >= budget {
			return errStopWalk
		}
		tid := pcommon.TraceID(k[8:24])
		if _, seen := pinned[tid]; seen {
			return nil // kept, or deleted with all its chunks
		}
		isPinned := false
		if s.opts.Pinner != nil {
			var err error
			if isPinned, err = s.opts.Pinner.IsPinned(ctx, tid); err != nil {
				return err
			}
		}
		pinned[tid] = isPinned
		if isPinned {
			s.m.pinnedKept.Inc()
			return nil
		}
		sum, found, err := s.getSummary(tid)
		if err != nil {
			return err
		}
		if found {
			s.deleteTrace(b, tid, &sum)
			deleted++
		} else {
			// A chunk left by a trace deleted before a crash: its rows go
			// now, a page entry with its page's next rewrite.
			_ = b.Delete(chunkKey(pData, binary.BigEndian.Uint64(k[:8]), tid, binary.BigEndian.Uint64(k[24:])), nil)
			_ = b.Delete(chunkKey(pIndex, binary.BigEndian.Uint64(k[:8]), tid, binary.BigEndian.Uint64(k[24:])), nil)
		}
		// What a chunk takes at rest, roughly: as rows, its protobuf and
		// search record (about 3 times the record); paged, its protobuf
		// compressed about 2.5 times, and its search columns.
		if paged {
			freed += int64(len(v))/2 + 64
		} else {
			freed += int64(len(v)) * 3
		}
		last = append(last[:0], k...)
		if b.Count() >= 4096 {
			if err := flush(); err != nil {
				return err
			}
		}
		if len(pinned) > 1_000_000 {
			pinned = map[pcommon.TraceID]bool{} // bound memory on huge passes
		}
		return nil
	})
	if err != nil {
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
	end := append(slices.Clone(last), 0)
	for _, table := range []byte{pIndex, pData} {
		if err := s.db.Compact(ctx, []byte{table}, append([]byte{table}, end...), false); err != nil {
			return err
		}
	}
	// Pages end up to a minute after their first row.
	pEnd := binary.BigEndian.AppendUint64([]byte{pPage}, binary.BigEndian.Uint64(last[:8])+2*blockWidth)
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
	n, minutes, err := s.cutPages(ctx, before, busy)
	s.m.rowsPaged.Add(float64(n))
	if err != nil {
		return err
	}
	if err := s.mergeMinutes(ctx, minutes); err != nil {
		return err
	}
	if err := s.dropPagedRecords(ctx); err != nil {
		return err
	}
	if before > s.cutBefore.Load() {
		s.cutBefore.Store(before)
	}
	return s.collectPages(ctx, 0)
}

// pagedRecordsKey marks a store whose paged chunks have no search records.
var pagedRecordsKey = []byte{pMeta, 'x', 'p', 'a', 'g', 'e', 'd'}

// markNewStore marks an empty store as one whose paged chunks have no
// search records, so that its first cut pass does not read every row.
func (s *Store) markNewStore() error {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return err
	}
	empty := !it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil || !empty {
		return err
	}
	return s.db.Set(pagedRecordsKey, nil, pebble.Sync)
}

// dropPagedRecords deletes, once, the search records of chunks that are no
// longer rows: those kept by versions that cut rows into pages without
// deleting their records. It reads the x and d rows side by side and
// deletes the records without a row.
func (s *Store) dropPagedRecords(ctx context.Context) error {
	if _, closer, err := s.db.Get(pagedRecordsKey); err == nil {
		return closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	x, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{pIndex}, UpperBound: []byte{pIndex + 1}})
	if err != nil {
		return err
	}
	defer x.Close()
	d, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{pData}, UpperBound: []byte{pData + 1}})
	if err != nil {
		return err
	}
	defer d.Close()
	b := s.db.NewBatch()
	defer func() { b.Close() }()
	dok := d.First()
	for ok := x.First(); ok; ok = x.Next() {
		k := x.Key()[1:]
		for dok && bytes.Compare(d.Key()[1:], k) < 0 {
			dok = d.Next()
		}
		if dok && bytes.Equal(d.Key()[1:], k) {
			continue
		}
		_ = b.Delete(x.Key(), nil)
		if b.Len() >= pageBatchBytes {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Close()
			b = s.db.NewBatch()
		}
	}
	if err := errors.Join(x.Error(), d.Error()); err != nil {
		return err
	}
	_ = b.Set(pagedRecordsKey, nil, nil)
	return b.Commit(pebble.NoSync)
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
	if err := s.db.Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
		return err
	}
	return s.trimWAL(ctx)
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
