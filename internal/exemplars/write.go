package exemplars

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/prometheus/model/labels"
)

// keep returns labels the index may hold on to. Under the default
// stringlabels build they are an immutable string already; other builds
// may reuse the caller's slice, so they are copied.
func keep(ls labels.Labels) labels.Labels {
	if aliasLabels {
		return ls
	}
	return ls.Copy()
}

// kv locates one key and its value in a write's scratch buffer.
type kv struct{ k0, k1, v1 int }

// writeBuf is a write's scratch space, reused through Index.bufs: a batch
// of 2,000 exemplars needs about 400 KB, which allocated anew each time
// left the heap holding idle spans.
type writeBuf struct {
	scratch []byte
	kvs     []kv
	checks  []pendingCheck
}

// WriteExemplars indexes recs (see Options.SyncWrites for durability).
// Re-writing an exemplar already stored is a no-op.
func (x *Index) WriteExemplars(_ context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed.Load() {
		return ErrClosed
	}
	var newSeries map[uint64]*seriesEntry
	due := x.opts.Now().Add(x.opts.DanglingGrace).UnixMilli()
	checking := x.opts.Traces != nil
	// Keys and values go to one scratch buffer and are applied in key
	// order: Pebble's memtable inserts are cheaper when neighbouring keys
	// arrive together.
	buf, _ := x.bufs.Get().(*writeBuf)
	if buf == nil {
		buf = &writeBuf{}
	}
	defer x.bufs.Put(buf)
	scratch, kvs, checks := buf.scratch[:0], buf.kvs[:0], buf.checks[:0]
	defer func() { buf.scratch, buf.kvs, buf.checks = scratch[:0], kvs[:0], checks[:0] }()
	for _, r := range recs {
		h := labels.StableHash(r.Series)
		known, ok := x.series[h]
		if !ok {
			known, ok = newSeries[h]
		}
		if ok && !labels.Equal(known.ls, r.Series) {
			x.m.collisions.Inc()
			continue
		}
		if !ok {
			if newSeries == nil {
				newSeries = map[uint64]*seriesEntry{}
			}
			known = &seriesEntry{ls: keep(r.Series)}
			newSeries[h] = known
			k0 := len(scratch)
			scratch = binary.BigEndian.AppendUint64(append(scratch, pSeries), h)
			k1 := len(scratch)
			scratch = encodeLabels(scratch, r.Series, false)
			kvs = append(kvs, kv{k0, k1, len(scratch)})
		}
		ts := r.Exemplar.Ts
		for {
			n := known.newest.Load()
			if ts <= n || known.newest.CompareAndSwap(n, ts) {
				break
			}
		}
		k0 := len(scratch)
		scratch = binary.BigEndian.AppendUint32(append(scratch, pExemplar), bucketOf(ts, hourMs))
		scratch = binary.BigEndian.AppendUint64(scratch, h)
		scratch = exemplarSuffix(scratch, r.Exemplar)
		k1 := len(scratch)
		scratch = encodeExemplarTo(scratch, r.Exemplar)
		kvs = append(kvs, kv{k0, k1, len(scratch)})
		if tid, ok := storedTraceID(scratch[k1:], r.Exemplar.Labels); ok {
			k0 := len(scratch)
			scratch = binary.BigEndian.AppendUint32(append(scratch, pTrace), bucketOf(ts, dayMs))
			scratch = append(scratch, tid[:]...)
			scratch = binary.BigEndian.AppendUint64(scratch, h)
			scratch = binary.BigEndian.AppendUint64(scratch, orderedTs(ts))
			kvs = append(kvs, kv{k0, len(scratch), len(scratch)})
			if checking {
				checks = append(checks, pendingCheck{traceID: tid, due: due, ts: ts})
			}
		}
	}
	slices.SortFunc(kvs, func(a, b kv) int { return bytes.Compare(scratch[a.k0:a.k1], scratch[b.k0:b.k1]) })
	b := x.db.NewBatch()
	defer b.Close()
	for _, e := range kvs {
		_ = b.Set(scratch[e.k0:e.k1], scratch[e.k1:e.v1], nil)
	}
	wo := pebble.NoSync
	if x.opts.SyncWrites {
		wo = pebble.Sync
	}
	if err := b.Commit(wo); err != nil {
		return fmt.Errorf("write exemplars: %w", err)
	}
	x.m.written.Add(float64(len(recs)))
	if len(newSeries) > 0 {
		x.mu.RUnlock()
		x.mu.Lock()
		for h, e := range newSeries {
			if old, ok := x.series[h]; ok {
				// A concurrent write added it first: keep the newer time.
				old.newest.Store(max(old.newest.Load(), e.newest.Load()))
				continue
			}
			x.series[h] = e
		}
		x.mu.Unlock()
		x.mu.RLock()
	}
	if checking && len(checks) > 0 {
		x.pendMu.Lock()
		room := x.opts.MaxPending - len(x.pending)
		if room < len(checks) {
			x.m.skipped.Add(float64(len(checks) - max(room, 0)))
			checks = checks[:max(room, 0)]
		}
		if n := len(x.pending) + len(checks); n > cap(x.pending) {
			// Grow as append would, but never past MaxPending.
			grown := make([]pendingCheck, len(x.pending), min(max(2*cap(x.pending), n), x.opts.MaxPending))
			copy(grown, x.pending)
			x.pending = grown
		}
		x.pending = append(x.pending, checks...)
		x.pendMu.Unlock()
	}
	return nil
}

// walMarkKey holds the metrics TSDB WAL segment from which exemplars may
// be missing here (Writer.WALMark).
var walMarkKey = []byte{pMeta, 'w', 'a', 'l'}

// WALMark returns the first segment of the metrics TSDB's WAL that may hold
// exemplars this index has not durably written; ok is false when no mark
// was ever set (a new index, or one written before marks existed).
func (x *Index) WALMark() (seg int, ok bool, err error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed.Load() {
		return 0, false, ErrClosed
	}
	v, closer, err := x.db.Get(walMarkKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, fmt.Errorf("exemplar index: WAL mark of %d bytes", len(v))
	}
	return int(binary.BigEndian.Uint64(v)), true, nil
}

// SetWALMark records that every exemplar in the metrics TSDB's WAL
// segments before seg has been written. The write is synced, and with it
// every write before it.
func (x *Index) SetWALMark(seg int) error {
	if seg < 0 {
		return fmt.Errorf("exemplar index: negative WAL mark %d", seg)
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed.Load() {
		return ErrClosed
	}
	return x.db.Set(walMarkKey, binary.BigEndian.AppendUint64(nil, uint64(seg)), pebble.Sync)
}
