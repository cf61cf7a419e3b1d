package tracestore

import (
	"bytes"
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Pages. Ingest writes each request's spans of a trace as one OTLP
// protobuf row (d), which Pebble stores in Snappy-compressed 4 KiB blocks:
// three or four rows a block, too few for the compressor to find the
// resources, attribute keys and names they repeat. Once a row is older
// than cutDelay, the background loop moves it into a page:
//
//	p | minStart(8) | traceID(16) | seq(8)   → page of d rows; the key is its last row's
//
// A page holds consecutive d rows (in key order) whose protobuf adds up
// to about pageTarget bytes, compressed together with Zstandard: less than
// half their size in d rows. Pages never overlap: every row key lies in at
// most one page's [first, last] range, so the page that may hold a key is
// the first page whose key is not below it. A row that arrives later
// inside a page's range is merged into that page when it is cut.
//
// The pass that cuts a row also deletes its search record (x): a search
// record is a re-encoding of the protobuf, and readRecord makes it from
// the page byte for byte as ingest wrote it. A chunk thus has a search
// record exactly while it is a row, and the x rows and the pages together
// are the time index (walk.go). Stores that paged rows before this kept
// their records; the first pass drops them (dropPagedRecords).
//
// GetTrace reads a chunk's row, else its page. Deleting a trace (retention,
// sampling) deletes its rows and summary; its entries in pages become
// unreachable and are dropped when their pages are rewritten: pages a
// deletion touched (the dirty minutes, remembered in memory) at the next
// pass, and every page older than the retention once, after the store's
// persistent expiry mark (pageExpiredKey) passes it.
//
// A page's value:
//
//	version(1)=1 | first key(32) | zstd(entries)
//	entry: key(32) | uvarint(len) | OTLP protobuf
const (
	pPage       = 'p'
	pageVersion = 1
	// pageTarget is the protobuf bytes that close a page: large enough to
	// compress well (37.8 B/span at 64 KiB against 91.3 in d rows; 35 at
	// 256 KiB), small enough that a GET decompresses little.
	pageTarget = 64 << 10
	// cutDelay is how long after its minute ends a row waits before it is
	// cut into a page, so that a minute's rows are usually complete.
	cutDelay = 2 * 60 * 1e9
	// cutQuiet is how long no row of a minute must have been written for
	// its rows to be cut: a backfill writing old minutes for a while has
	// each minute cut once it is done, not once per pass, merging its
	// new rows into the pages of the last pass each time.
	cutQuiet = 60 * 1e9
	// pageBatchBytes commits a pass's batch once it holds this much.
	pageBatchBytes = 4 << 20
	// maxPageRaw bounds a page's decompressed size when read: a page holds
	// pageTarget bytes plus at most one row, which ingest limits to a
	// request's size.
	maxPageRaw = 256 << 20
)

// pageExpiredKey holds the minStart below which every page was rewritten
// without the traces retention deleted.
var pageExpiredKey = []byte{pMeta, 'p', 'a', 'g', 'e', 'x', 'p'}

// rowKeyLen is a chunk key's length without its table byte.
const rowKeyLen = 32

type pageEntry struct {
	key   [rowKeyLen]byte // minStart | traceID | seq
	value []byte
}

func (e *pageEntry) minStart() uint64 { return binary.BigEndian.Uint64(e.key[:8]) }

func (e *pageEntry) traceID() pcommon.TraceID { return pcommon.TraceID(e.key[8:24]) }

func (e *pageEntry) seq() uint64 { return binary.BigEndian.Uint64(e.key[24:]) }

// pageCodec compresses and decompresses pages; it is safe for concurrent use.
type pageCodec struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
	buf sync.Pool // *[]byte, entries before compression
}

func newPageCodec() (*pageCodec, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxPageRaw))
	if err != nil {
		return nil, err
	}
	return &pageCodec{enc: enc, dec: dec}, nil
}

func (c *pageCodec) close() { c.dec.Close() }

func (c *pageCodec) encode(entries []pageEntry) []byte {
	bp, _ := c.buf.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	raw := (*bp)[:0]
	for i := range entries {
		raw = append(raw, entries[i].key[:]...)
		raw = binary.AppendUvarint(raw, uint64(len(entries[i].value)))
		raw = append(raw, entries[i].value...)
	}
	out := make([]byte, 0, 1+rowKeyLen+len(raw)/3)
	out = append(out, pageVersion)
	out = append(out, entries[0].key[:]...)
	out = c.enc.EncodeAll(raw, out)
	*bp = raw
	c.buf.Put(bp)
	return out
}

// pageFirstKey returns a page's first row key without decompressing it.
func pageFirstKey(v []byte) ([]byte, error) {
	if len(v) < 1+rowKeyLen || v[0] != pageVersion {
		return nil, fmt.Errorf("%w: page header", errCorrupt)
	}
	return v[1 : 1+rowKeyLen], nil
}

// decode returns a page's entries; their values alias one new buffer.
func (c *pageCodec) decode(v []byte) ([]pageEntry, error) {
	if _, err := pageFirstKey(v); err != nil {
		return nil, err
	}
	raw, err := c.dec.DecodeAll(v[1+rowKeyLen:], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: page: %v", errCorrupt, err)
	}
	var entries []pageEntry
	for len(raw) > 0 {
		if len(raw) < rowKeyLen {
			return nil, fmt.Errorf("%w: page entry key", errCorrupt)
		}
		var e pageEntry
		copy(e.key[:], raw)
		raw = raw[rowKeyLen:]
		n, w := binary.Uvarint(raw)
		if w <= 0 || uint64(len(raw)-w) < n {
			return nil, fmt.Errorf("%w: page entry length", errCorrupt)
		}
		e.value = raw[w : w+int(n) : w+int(n)]
		raw = raw[w+int(n):]
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: empty page", errCorrupt)
	}
	return entries, nil
}

// pageWriter adds pages to a batch, splitting entries at pageTarget.
type pageWriter struct {
	s       *Store
	b       *pebble.Batch
	touched [][]byte // the page keys the batch sets or deletes
	x       []byte
	minutes map[uint64]struct{} // of the rows moved
}

func newPageWriter(s *Store) pageWriter { return pageWriter{s: s, b: s.db.NewBatch()} }

// commit commits the batch, if it holds anything, and starts a new one.
func (w *pageWriter) commit() error {
	if w.b.Empty() {
		return nil
	}
	err := w.b.Commit(pebble.NoSync)
	w.s.pageCache.invalidate(w.touched)
	w.touched = w.touched[:0]
	w.b.Close()
	w.b = w.s.db.NewBatch()
	return err
}

// deleteRow deletes the row with key, moved into a page, and its search
// record: a chunk has a search record exactly while it is a row.
func (w *pageWriter) deleteRow(key []byte) {
	_ = w.b.Delete(key, nil)
	w.x = append(append(w.x[:0], pIndex), key[1:]...)
	_ = w.b.Delete(w.x, nil)
	if w.minutes == nil {
		w.minutes = map[uint64]struct{}{}
	}
	w.minutes[binary.BigEndian.Uint64(key[1:9])/blockWidth] = struct{}{}
}

// delete deletes the page with key.
func (w *pageWriter) delete(key []byte) {
	_ = w.b.Delete(key, nil)
	w.touched = append(w.touched, slices.Clone(key))
}

func (w *pageWriter) write(entries []pageEntry) {
	for len(entries) > 0 {
		n, size := 0, 0
		for n < len(entries) && (n == 0 || size < pageTarget) {
			size += len(entries[n].value)
			n++
		}
		page := entries[:n]
		key := append([]byte{pPage}, page[n-1].key[:]...)
		_ = w.b.Set(key, w.s.pages.encode(page), nil)
		w.touched = append(w.touched, key)
		entries = entries[n:]
	}
}

// pageReader finds chunks in pages for one reader; it keeps the last page
// it decoded, as a trace's chunks usually share one, and takes pages other
// readers decoded lately from the store's page cache.
type pageReader struct {
	s       *Store
	it      *pebble.Iterator
	gen     uint64
	lastKey []byte
	entries []pageEntry
}

func (r *pageReader) close() {
	if r.it != nil {
		_ = r.it.Close()
	}
}

// get returns the protobuf of the chunk whose row key (without its table
// byte) is key, from its page; ok is false when no page holds it. The
// value is shared with other readers: it must not be modified.
func (r *pageReader) get(ctx context.Context, key []byte) (v []byte, ok bool, err error) {
	if r.it == nil {
		// The generation is read before the iterator opens: a page read
		// through an iterator older than a later rewrite is not cached.
		r.gen = r.s.pageCache.generation()
		r.it, err = r.s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{pPage}, UpperBound: []byte{pPage + 1}})
		if err != nil {
			return nil, false, err
		}
	}
	seek := append([]byte{pPage}, key...)
	if !r.it.SeekGE(seek) {
		return nil, false, r.it.Error()
	}
	if !bytes.Equal(r.it.Key(), r.lastKey) {
		pv := r.it.Value()
		first, err := pageFirstKey(pv)
		if err != nil {
			return nil, false, err
		}
		if bytes.Compare(first, key) > 0 {
			return nil, false, nil
		}
		entries, ok := r.s.pageCache.get(r.it.Key())
		if !ok {
			if entries, err = r.s.pages.decode(pv); err != nil {
				return nil, false, err
			}
			r.s.pageCache.put(r.it.Key(), entries, r.gen)
		}
		r.entries = entries
		r.lastKey = append(r.lastKey[:0], r.it.Key()...)
	}
	i, found := slices.BinarySearchFunc(r.entries, key, func(e pageEntry, k []byte) int { return bytes.Compare(e.key[:], k) })
	if !found {
		return nil, false, nil
	}
	return r.entries[i].value, true, nil
}

// pageCache keeps the entries of the pages decoded last, up to a budget of
// decoded bytes: a search's candidates and their traces' other chunks lie
// in a few pages, and repeated queries read the same ones, and a page takes
// about 90 µs to decompress. It is to pages what Pebble's block cache is to
// the blocks of rows. A commit that rewrites pages drops them from the
// cache and starts a new generation: a page decoded from a read begun in
// an earlier generation may predate the commit, and is not cached.
type pageCache struct {
	mu     sync.Mutex
	budget int
	gen    uint64
	size   int
	pages  map[string]*list.Element // of *cachedPage
	lru    list.List                // most recently used first
}

type cachedPage struct {
	key     string
	entries []pageEntry
	size    int
}

func newPageCache(budget int) *pageCache {
	return &pageCache{budget: budget, pages: map[string]*list.Element{}}
}

func (c *pageCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// invalidate drops the pages with keys and starts a new generation;
// pageWriter.commit calls it.
func (c *pageCache) invalidate(keys [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, k := range keys {
		if e, ok := c.pages[string(k)]; ok {
			c.remove(e)
		}
	}
}

func (c *pageCache) remove(e *list.Element) {
	p := e.Value.(*cachedPage)
	c.lru.Remove(e)
	delete(c.pages, p.key)
	c.size -= p.size
}

// get returns the cached entries of the page with key. A cached page is
// current: every commit since it was cached left it alone.
func (c *pageCache) get(key []byte) ([]pageEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.pages[string(key)]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(e)
	return e.Value.(*cachedPage).entries, true
}

// put caches a page's entries decoded from a read in generation gen.
func (c *pageCache) put(key []byte, entries []pageEntry, gen uint64) {
	size := len(key) + 64
	for i := range entries {
		size += len(entries[i].value) + len(entries[i].key) + 24
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || size > c.budget {
		return
	}
	if _, ok := c.pages[string(key)]; ok {
		return
	}
	p := &cachedPage{key: string(key), entries: entries, size: size}
	c.pages[p.key] = c.lru.PushFront(p)
	c.size += size
	for c.size > c.budget {
		c.remove(c.lru.Back())
	}
}

// loadCutBefore starts cutBefore, after a restart, at the index time of
// the last page's last chunk: the passes cut rows in time order.
func (s *Store) loadCutBefore() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pPage}, UpperBound: []byte{pPage + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	if it.Last() && len(it.Key()) == 1+rowKeyLen {
		s.cutBefore.Store(binary.BigEndian.Uint64(it.Key()[1:9]))
	}
	return it.Error()
}

// recentWrites remembers, per minute of start times, when rows were last
// written to it (by the store's clock).
type recentWrites struct {
	mu sync.Mutex
	at map[uint64]int64 // minute → unix ns
}

// touch records a write to each minute at now.
func (r *recentWrites) touch(now int64, minutes iter.Seq[uint64]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at == nil {
		r.at = map[uint64]int64{}
	}
	for m := range minutes {
		r.at[m] = now
	}
}

// busy returns, sorted, the minutes written to after since, and forgets
// the others.
func (r *recentWrites) busy(since int64) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint64
	for m, at := range r.at {
		if at > since {
			out = append(out, m)
		} else {
			delete(r.at, m)
		}
	}
	slices.Sort(out)
	return out
}

// cutPages moves every OTLP protobuf row that started before the time
// before into pages, but for the rows of the busy minutes (sorted),
// merging rows that fall in an existing page's range into it, and returns
// the rows moved and their minutes, sorted. Each batch it commits leaves every row readable, as a
// row or in a page.
func (s *Store) cutPages(ctx context.Context, before uint64, busy []uint64) (int, []uint64, error) {
	rows, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{pData}, UpperBound: binary.BigEndian.AppendUint64([]byte{pData}, before)})
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	pages, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{pPage}, UpperBound: []byte{pPage + 1}})
	if err != nil {
		return 0, nil, err
	}
	defer pages.Close()
	w := newPageWriter(s)
	defer func() { w.b.Close() }()
	var bld []pageEntry // free rows: in no page's range
	bldBytes, moved := 0, 0
	flush := func() {
		if len(bld) > 0 {
			w.write(bld)
			bld, bldBytes = bld[:0], 0
		}
	}
	commit := func() error {
		flush()
		return w.commit()
	}
	// The page that may hold the current row: the first whose last key is
	// not below it. Rows come in key order, so the iterator seeks again
	// only past that page's last key, and never once no page is left.
	var cur struct {
		valid, exhausted bool
		first, last      []byte
	}
	seek := make([]byte, 1+rowKeyLen)
	seek[0] = pPage
	locate := func(rk []byte) error {
		if cur.exhausted || (cur.valid && bytes.Compare(rk, cur.last) <= 0) {
			return nil
		}
		copy(seek[1:], rk)
		if !pages.SeekGE(seek) {
			cur.valid, cur.exhausted = false, true
			return pages.Error()
		}
		cur.valid = true
		cur.last = append(cur.last[:0], pages.Key()[1:]...)
		first, err := pageFirstKey(pages.Value())
		if err != nil {
			first = cur.last // damaged: taken as holding its last key only
		}
		cur.first = append(cur.first[:0], first...)
		return nil
	}
	// bldNext is the first key of the first page after the pending rows:
	// they must not grow past it, or pages would overlap.
	var bldNext []byte
	ok := rows.First()
	for ok {
		k := rows.Key()
		if len(k) != 1+rowKeyLen {
			ok = rows.Next()
			continue
		}
		rk := k[1:]
		if m := binary.BigEndian.Uint64(rk[:8]) / blockWidth; len(busy) > 0 && busy[0] <= m {
			for len(busy) > 0 && busy[0] < m {
				busy = busy[1:]
			}
			if len(busy) > 0 && busy[0] == m {
				// Still being written: its rows wait, and no page spans it.
				flush()
				ok = rows.SeekGE(binary.BigEndian.AppendUint64([]byte{pData}, (m+1)*blockWidth))
				continue
			}
		}
		if err := locate(rk); err != nil {
			return moved, nil, err
		}
		// A page whose range holds the row: merge the page with every row
		// in its range.
		if cur.valid && bytes.Compare(cur.first, rk) <= 0 {
			entries, err := s.pages.decode(pages.Value())
			last := cur.last
			flush()
			if err != nil {
				// A damaged page cannot take rows: the rows in its range
				// stay rows, readable as before.
				s.m.undecodable.Inc()
				s.logger.Warn("leaving rows beside a page that does not decode", "page", fmt.Sprintf("%x", pages.Key()), "err", err)
				for ok && (len(rows.Key()) != 1+rowKeyLen || bytes.Compare(rows.Key()[1:], last) <= 0) {
					ok = rows.Next()
				}
				continue
			}
			var add []pageEntry
			for ; ok && len(rows.Key()) == 1+rowKeyLen && bytes.Compare(rows.Key()[1:], last) <= 0; ok = rows.Next() {
				var e pageEntry
				copy(e.key[:], rows.Key()[1:])
				e.value = slices.Clone(rows.Value())
				add = append(add, e)
				w.deleteRow(rows.Key())
				moved++
			}
			w.delete(pages.Key())
			w.write(mergeEntries(entries, add))
			if w.b.Len() >= pageBatchBytes {
				if err := commit(); err != nil {
					return moved, nil, err
				}
			}
			continue
		}
		if len(bld) > 0 && bldNext != nil && bytes.Compare(bldNext, rk) < 0 {
			flush() // a page lies between the pending rows and this one
		}
		if len(bld) == 0 {
			bldNext = nil
			if cur.valid {
				bldNext = append(bldNext, cur.first...)
			}
		}
		var e pageEntry
		copy(e.key[:], rk)
		e.value = slices.Clone(rows.Value())
		bld = append(bld, e)
		bldBytes += len(e.value)
		w.deleteRow(k)
		moved++
		if bldBytes >= pageTarget {
			flush()
		}
		if w.b.Len() >= pageBatchBytes {
			if err := commit(); err != nil {
				return moved, nil, err
			}
		}
		if err := ctx.Err(); err != nil {
			return moved, nil, err
		}
		ok = rows.Next()
	}
	if err := rows.Error(); err != nil {
		return moved, nil, err
	}
	if err := pages.Error(); err != nil {
		return moved, nil, err
	}
	if err := commit(); err != nil {
		return moved, nil, err
	}
	return moved, slices.Sorted(maps.Keys(w.minutes)), nil
}

// mergeEntries merges two key-ordered entry lists; on equal keys (a row
// cut again after a crash) the row in b wins.
func mergeEntries(a, b []pageEntry) []pageEntry {
	out := make([]pageEntry, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		switch c := bytes.Compare(a[0].key[:], b[0].key[:]); {
		case c < 0:
			out, a = append(out, a[0]), a[1:]
		case c > 0:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, b[0]), a[1:], b[1:]
		}
	}
	out = append(out, a...)
	return append(out, b...)
}

// gcPages rewrites the pages holding rows that started in [lo, hi)
// without the entries of deleted traces: an entry stays while its trace's
// summary lists its chunk. It returns the entries dropped.
func (s *Store) gcPages(ctx context.Context, lo, hi uint64) (int, error) {
	if lo >= hi {
		return 0, nil
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: binary.BigEndian.AppendUint64([]byte{pPage}, lo),
		UpperBound: []byte{pPage + 1},
	})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	w := newPageWriter(s)
	defer func() { w.b.Close() }()
	live := liveChunks{s: s}
	dropped := 0
	end := binary.BigEndian.AppendUint64(nil, hi)
	for ok := it.First(); ok; ok = it.Next() {
		// Pages are ordered by last key and do not overlap: the first
		// that starts at or after hi ends the range.
		if first, err := pageFirstKey(it.Value()); err == nil && bytes.Compare(first, end) >= 0 {
			break
		}
		entries, err := s.pages.decode(it.Value())
		if err != nil {
			// An unreadable page cannot be filtered; it goes when it is
			// older than the retention like any other.
			s.m.undecodable.Inc()
			s.logger.Warn("skipping a page that does not decode", "page", fmt.Sprintf("%x", it.Key()), "err", err)
			continue
		}
		keep := entries[:0:0]
		for _, e := range entries {
			ok, err := live.has(e.traceID(), chunkRef{MinStart: e.minStart(), Seq: e.seq()})
			if err != nil {
				return dropped, err
			}
			if ok {
				keep = append(keep, e)
			}
		}
		if len(keep) == len(entries) {
			continue
		}
		dropped += len(entries) - len(keep)
		w.delete(it.Key())
		w.write(keep)
		if w.b.Len() >= pageBatchBytes {
			if err := w.commit(); err != nil {
				return dropped, err
			}
		}
		if err := ctx.Err(); err != nil {
			return dropped, err
		}
	}
	if err := it.Error(); err != nil {
		return dropped, err
	}
	return dropped, w.commit()
}

// dirtyPages remembers the minutes whose pages may hold deleted traces.
type dirtyPages struct {
	mu      sync.Mutex
	minutes map[uint64]struct{}
}

// note records the minutes of a deleted trace's chunks.
func (d *dirtyPages) note(chunks []chunkRef) {
	d.add(func(yield func(uint64) bool) {
		for _, c := range chunks {
			if !yield(c.MinStart / blockWidth) {
				return
			}
		}
	})
}

// add records minutes.
func (d *dirtyPages) add(minutes iter.Seq[uint64]) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.minutes == nil {
		d.minutes = map[uint64]struct{}{}
	}
	for m := range minutes {
		d.minutes[m] = struct{}{}
	}
}

// has reports whether minute m is noted.
func (d *dirtyPages) has(m uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.minutes[m]
	return ok
}

// take returns the noted minutes, sorted, and forgets them.
func (d *dirtyPages) take() []uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]uint64, 0, len(d.minutes))
	for m := range d.minutes {
		out = append(out, m)
	}
	clear(d.minutes)
	slices.Sort(out)
	return out
}

// gcDirtyPages rewrites the pages of the minutes deletions touched.
func (s *Store) gcDirtyPages(ctx context.Context) (int, error) {
	minutes := s.dirty.take()
	dropped := 0
	for i := 0; i < len(minutes); {
		j := i + 1
		for j < len(minutes) && minutes[j] == minutes[j-1]+1 {
			j++
		}
		n, err := s.gcPages(ctx, minutes[i]*blockWidth, (minutes[j-1]+1)*blockWidth)
		dropped += n
		if err != nil {
			s.dirty.add(slices.Values(minutes[i:])) // a later pass retries
			return dropped, err
		}
		i = j
	}
	return dropped, nil
}

// gcExpiredPages rewrites, once, the pages older than cutoff that are
// newer than the persistent expiry mark, then moves the mark to cutoff.
func (s *Store) gcExpiredPages(ctx context.Context, cutoff uint64) (int, error) {
	from := uint64(0)
	v, closer, err := s.db.Get(pageExpiredKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return 0, err
	default:
		if len(v) == 8 {
			from = binary.BigEndian.Uint64(v)
		}
		_ = closer.Close()
	}
	if cutoff <= from {
		return 0, nil
	}
	dropped, err := s.gcPages(ctx, from, cutoff)
	if err != nil {
		return dropped, err
	}
	return dropped, s.db.Set(pageExpiredKey, binary.BigEndian.AppendUint64(nil, cutoff), pebble.NoSync)
}
