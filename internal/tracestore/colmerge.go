package tracestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Merging column blocks. Ingest writes one column block per request and
// minute. A request whose spans start in many minutes (a backfill, or
// bench/traces, which spreads each request over an hour) writes many
// blocks of a few spans each, whose dictionaries, resources and one Pebble
// key per attribute column take more room than their spans: at 1M spans of
// bench/traces, 22.8 bytes per span. When the cut moves a minute's rows
// into pages, it also merges the minute's column blocks into blocks of up
// to maxMergedSpans spans, and drops the chunks of deleted traces (those
// their trace's summary no longer lists) on the way. Searches then read a
// few large blocks per minute instead of many small ones.
//
// A merged block is an ordinary column block: chunks keep their IDs and
// index times, so every span keeps its start offset, and each attribute
// column keeps every span's first value. Minutes with a version 1 block
// (written before the start and parent columns existed) stay as they are.

// maxMergedSpans bounds a merged block: a minute of heavy traffic becomes
// several blocks, each decoded whole by a scan that reads it.
const maxMergedSpans = 1 << 16

// mergeMinutes merges the column blocks of each of minutes (see
// mergeColumns) but those older than the retention, which are being
// deleted. It runs before the pages of the dirty minutes are rewritten,
// which forgets them.
func (s *Store) mergeMinutes(ctx context.Context, minutes []uint64) error {
	first := uint64(0)
	if c := s.opts.Now().Add(-s.opts.Retention).UnixNano(); c > 0 {
		first = uint64(c)/blockWidth + 1
	}
	b := s.db.NewBatch()
	defer func() { b.Close() }()
	live := liveChunks{s: s}
	merged := 0
	for _, m := range minutes {
		if m < first {
			continue
		}
		// Only minutes that deletions touched (since the store opened)
		// can hold chunks of deleted traces: the others skip reading
		// every trace's summary, most of a merge's cost.
		live.all = !s.dirty.has(m)
		ok, err := s.mergeColumns(ctx, b, m, maxMergedSpans, &live)
		if err != nil {
			return err
		}
		if ok {
			merged++
		}
		if b.Len() >= pageBatchBytes {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Close()
			b = s.db.NewBatch()
		}
	}
	s.m.blocksMerged.Add(float64(merged))
	return b.Commit(pebble.NoSync)
}

// liveChunks tells whether a chunk's trace still lists it, caching the
// summaries it read. With all set, every chunk is live.
type liveChunks struct {
	s      *Store
	all    bool
	chunks map[pcommon.TraceID][]chunkRef
}

func (l *liveChunks) has(tid pcommon.TraceID, c chunkRef) (bool, error) {
	if l.all {
		return true, nil
	}
	chunks, seen := l.chunks[tid]
	if !seen {
		sum, found, err := l.s.getSummary(tid)
		if err != nil {
			return false, err
		}
		if found {
			chunks = sum.Chunks
		}
		if l.chunks == nil || len(l.chunks) >= 1<<16 {
			l.chunks = map[pcommon.TraceID][]chunkRef{}
		}
		l.chunks[tid] = chunks
	}
	return slices.Contains(chunks, c), nil
}

// sourceBlock is a column block of the minute being merged, with its
// attribute columns.
type sourceBlock struct {
	seq   uint64
	block []byte
	attrs map[string][]byte
}

// mergeColumns merges minute m's column blocks, when it has more than
// one, into blocks of up to maxSpans spans holding the chunks live keeps,
// and adds the writes to b: the merged blocks and the deletion of the
// blocks they replace (by key, so that a block written meanwhile stays).
// It reports whether it merged.
func (s *Store) mergeColumns(ctx context.Context, b *pebble.Batch, m uint64, maxSpans int, live *liveChunks) (bool, error) {
	srcs, err := s.minuteBlocks(ctx, m)
	if err != nil || len(srcs) < 2 {
		return false, err
	}
	cb := columnBuilders.Get().(*columnBuilder)
	defer func() {
		cb.reset()
		columnBuilders.Put(cb)
	}()
	// The merged blocks go to b only once every source block merged.
	out := s.db.NewBatch()
	defer out.Close()
	var cd colDecoder
	resIDs := map[string]uint64{}
	var newIdx []int
	emit := func() error {
		if cb.spans > 0 {
			if err := stageColumns(out, m, s.seq.Add(1), cb); err != nil {
				return err
			}
		}
		cb.reset()
		clear(resIDs)
		return nil
	}
	for _, src := range srcs {
		blk, err := parseColumnBlock(src.block)
		if err != nil || blk.version != colVersion {
			// A damaged block cannot be merged, and a version 1 block
			// lacks the start and parent columns: the minute stays.
			return false, nil
		}
		if cb.spans > 0 && cb.spans+blk.spans > maxSpans {
			if err := emit(); err != nil {
				return false, err
			}
		}
		d, err := decodeForMerge(&cd, &blk)
		if err != nil {
			return false, nil
		}
		newIdx = slices.Grow(newIdx[:0], blk.spans)[:blk.spans]
		for j := range blk.chunks {
			tid, seq, minStart := blk.chunkID(j)
			span0, span1 := d.starts[j], d.starts[j+1]
			ok, err := live.has(tid, chunkRef{MinStart: minStart, Seq: seq})
			if err != nil {
				return false, err
			}
			if !ok {
				for i := span0; i < span1; i++ {
					newIdx[i] = -1
				}
				continue
			}
			cb.addChunk(tid, seq, minStart)
			for i := span0; i < span1; i++ {
				newIdx[i] = cb.spans
				cb.copySpan(&d, int(i), resIDs)
			}
		}
		for _, key := range d.keys {
			raw := src.attrs[key]
			if raw == nil {
				continue // listed without its column: nothing to keep
			}
			var col attrColumn
			if err := decodeAttrColumn(&col, raw, blk.spans); err != nil {
				return false, nil
			}
			var dst *attrColumnBuilder
			for e, i := range col.idx {
				if n := newIdx[i]; n >= 0 {
					if dst == nil {
						dst = cb.attr(key)
					}
					dst.add(n, col.vals[e])
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
	}
	if err := emit(); err != nil {
		return false, err
	}
	if err := b.Apply(out, nil); err != nil {
		return false, err
	}
	for _, src := range srcs {
		_ = b.Delete(columnKey(m, src.seq), nil)
		var key []byte
		for k := range src.attrs {
			key = attrColumnKey(key[:0], m, src.seq, k)
			_ = b.Delete(key, nil)
		}
	}
	return true, nil
}

// minuteBlocks reads minute m's column blocks and attribute columns.
func (s *Store) minuteBlocks(ctx context.Context, m uint64) ([]sourceBlock, error) {
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: columnBound(pColumns, m), UpperBound: columnBound(pColumns, m+1)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var srcs []sourceBlock
	for ok := it.First(); ok; ok = it.Next() {
		if k := it.Key(); len(k) == 17 {
			srcs = append(srcs, sourceBlock{seq: binary.BigEndian.Uint64(k[9:]), block: bytes.Clone(it.Value()), attrs: map[string][]byte{}})
		}
	}
	if err := it.Error(); err != nil || len(srcs) < 2 {
		return srcs, err
	}
	ai, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: columnBound(pAttrCol, m), UpperBound: columnBound(pAttrCol, m+1)})
	if err != nil {
		return nil, err
	}
	defer ai.Close()
	for ok := ai.First(); ok; ok = ai.Next() {
		k := ai.Key()
		if len(k) < 17 {
			continue
		}
		seq := binary.BigEndian.Uint64(k[9:17])
		i, found := slices.BinarySearchFunc(srcs, seq, func(b sourceBlock, seq uint64) int {
			switch {
			case b.seq < seq:
				return -1
			case b.seq > seq:
				return 1
			}
			return 0
		})
		if found {
			srcs[i].attrs[string(k[17:])] = bytes.Clone(ai.Value())
		}
	}
	return srcs, ai.Error()
}

// mergeSource is a column block decoded whole for merging; its slices
// alias the block and the decoder's buffers.
type mergeSource struct {
	starts                []int32
	dict                  []string
	res                   [][]byte // each resource's encoded attribute list
	resIDs, names, msgs   []uint32
	status, kinds, parent []byte
	durs, offs            []uint64
	keys                  []string
}

func decodeForMerge(cd *colDecoder, blk *colBlock) (mergeSource, error) {
	var d mergeSource
	var errs [12]error
	d.starts, errs[0] = cd.chunkStarts(blk)
	d.dict, errs[1] = cd.strings(blk)
	d.res, errs[2] = rawResources(blk)
	d.resIDs, errs[3] = cd.idColumn(blk, colRes, blk.nRes)
	d.names, errs[4] = cd.idColumn(blk, colName, len(d.dict))
	d.msgs, errs[5] = cd.idColumn(blk, colMessage, len(d.dict))
	d.status, errs[6] = cd.byteColumn(blk, colStatus)
	d.kinds, errs[7] = cd.byteColumn(blk, colKind)
	d.parent, errs[8] = cd.byteColumn(blk, colParent)
	d.durs, errs[9] = cd.durations(blk)
	d.offs, errs[10] = cd.startOffsets(blk)
	d.keys, errs[11] = cd.attrKeys(blk)
	return d, errors.Join(errs[:]...)
}

// rawResources returns each resource of a block as it is encoded there.
func rawResources(blk *colBlock) ([][]byte, error) {
	out := make([][]byte, 0, blk.nRes)
	d := decoder{b: blk.res, alias: true}
	for range blk.nRes {
		start := d.b
		d.skipString() // a byte-length-prefixed attribute list
		if d.err != nil {
			return nil, errCorrupt
		}
		out = append(out, start[:len(start)-len(d.b)])
	}
	return out, nil
}

// copySpan appends span i of a decoded block to the current chunk;
// resIDs maps the resources' encodings to their ids in cb.
func (cb *columnBuilder) copySpan(d *mergeSource, i int, resIDs map[string]uint64) {
	raw := d.res[d.resIDs[i]]
	rid, ok := resIDs[string(raw)]
	if !ok {
		rid = uint64(cb.nRes)
		resIDs[string(raw)] = rid
		cb.res = append(cb.res, raw...)
		cb.nRes++
	}
	cb.spans++
	cb.counts[len(cb.counts)-1]++
	c := &cb.cols
	c[colRes] = binary.AppendUvarint(c[colRes], rid)
	c[colName] = binary.AppendUvarint(c[colName], cb.dict.id(d.dict[d.names[i]]))
	c[colStatus] = append(c[colStatus], d.status[i])
	c[colKind] = append(c[colKind], d.kinds[i])
	c[colMessage] = binary.AppendUvarint(c[colMessage], cb.dict.id(d.dict[d.msgs[i]]))
	c[colDuration] = binary.AppendUvarint(c[colDuration], d.durs[i])
	c[colStart] = binary.AppendUvarint(c[colStart], d.offs[i])
	c[colParent] = append(c[colParent], d.parent[i])
}
