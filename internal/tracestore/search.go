package tracestore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/lookout-dev/lookout/internal/traceql"
)

// SearchRequest selects traces. Zero fields do not filter.
type SearchRequest struct {
	// Query is the TraceQL expression; nil means `{}`.
	Query traceql.Expr
	// Start and End bound the start time of the trace's spans.
	Start, End time.Time
	// MinDuration and MaxDuration bound the trace's duration.
	MinDuration, MaxDuration time.Duration
	// Limit caps the number of traces returned. Default 20.
	Limit int
	// SpansPerSpanSet caps the spans reported per trace. Default 3.
	SpansPerSpanSet int
}

// TraceMatch is one trace found by Search.
type TraceMatch struct {
	TraceID         pcommon.TraceID
	RootServiceName string
	RootTraceName   string
	StartUnixNano   uint64
	Duration        time.Duration
	// SpanSets are the trace's matched spansets: one for a query without
	// a pipeline, one per surviving group after by().
	SpanSets []SpanSet
}

// SpanSet is one matched spanset of a trace.
type SpanSet struct {
	// Spans are the first SpansPerSpanSet spans of the spanset.
	Spans []traceql.Span
	// Matched is the number of spans in the spanset.
	Matched int
	// Group names the spanset's by() group; nil without by().
	Group []traceql.GroupValue
}

// SearchResult is what Search found, newest first, and how much it read.
type SearchResult struct {
	Traces          []TraceMatch
	InspectedTraces uint64
	InspectedSpans  uint64
	InspectedBytes  uint64
}

// Search scans the time index from End back to Start and returns matching
// traces, newest first. It stops at Limit matches or when ctx ends (the
// caller's query timeout), returning ctx's error.
//
// For queries that only look at single spans, a stored batch's search record
// decides the match; otherwise the summary filters on trace-level fields and
// the whole trace is then loaded and evaluated.
func (s *Store) Search(ctx context.Context, req SearchRequest) (SearchResult, error) {
	if s.closed.Load() {
		return SearchResult{}, ErrClosed
	}
	q := req.Query
	if q == nil {
		q = &traceql.Filter{}
	}
	limit := req.Limit
	if limit <= 0 {
		limit = 20
	}
	spss := req.SpansPerSpanSet
	if spss <= 0 {
		spss = 3
	}
	lo, hi := uint64(0), uint64(math.MaxUint64)
	if !req.Start.IsZero() && req.Start.UnixNano() > 0 {
		lo = uint64(req.Start.UnixNano())
	}
	if !req.End.IsZero() && req.End.UnixNano() >= 0 {
		hi = uint64(req.End.UnixNano())
	}
	lo, hi, ok, err := s.chunkExtent(ctx, lo, hi)
	if err != nil || !ok {
		return SearchResult{}, err
	}

	// The pre-filters (block summaries, column blocks, search records)
	// look at the spanset expression a pipeline starts with: the pipeline
	// only narrows its result, so a trace it rules out cannot match. The
	// exact judgement evaluates the whole query on the candidates.
	pre := traceql.SpansetExpr(q)
	// A span-local query is decided by each stored batch's search record,
	// unless it reads events, which the records lack.
	local := traceql.SpanLocal(q) && !traceql.NeedsEvents(q) && req.MinDuration == 0 && req.MaxDuration == 0
	needInfo := traceql.NeedsTraceInfo(pre) || req.MinDuration > 0 || req.MaxDuration > 0
	sc := scanner{s: s, q: pre, lits: requiredLiterals(pre), blocks: newBlockFilter(pre)}
	for _, r := range sc.blocks {
		if len(r.lits) > 0 || r.minDur > 0 || r.status != 0 || r.kinds != 0 {
			sc.useBlocks = true
		}
	}
	for _, f := range traceql.Fields(pre) {
		if f.Intrinsic == traceql.IntrinsicNone {
			sc.spanAttrs = sc.spanAttrs || f.Scope == traceql.ScopeAny || f.Scope == traceql.ScopeSpan
			sc.resAttrs = sc.resAttrs || f.Scope == traceql.ScopeAny || f.Scope == traceql.ScopeResource
		}
	}
	var res SearchResult
	decided := map[pcommon.TraceID]struct{}{}
	sd := searchDecoder{spanAttrs: sc.spanAttrs, resAttrs: sc.resAttrs}
	// Minutes before the retention cutoff hold only pinned traces (and late
	// arrivals about to be deleted); retention deleted their block
	// summaries and column blocks, and a late arrival writes new ones that
	// cover only itself, so these minutes are read from the search records
	// without consulting summaries.
	if c := s.opts.Now().Add(-s.opts.Retention).UnixNano(); c > 0 {
		sc.firstColumnMinute = uint64(c) / blockWidth
	}
	if s.searchRows {
		sc.firstColumnMinute = math.MaxUint64
	}
	// The time range is cut into windows of whole minutes, scanned newest
	// first. Each window is read forward (cheaper than reverse iteration in
	// Pebble) by one of two parallel scanners that keep only the chunks
	// that may match; candidates are then judged newest first. Windows
	// start at one minute so searches that fill their limit among recent
	// traces stop early, and double with each pair up to 1/16 of the range.
	firstMinute, lastMinute := lo/blockWidth, hi/blockWidth
	maxWidth := max((lastMinute-firstMinute+1)/16, 1)
	width, cur, done := uint64(1), lastMinute, false
	next := func() window {
		if done {
			return window{}
		}
		wlo := firstMinute
		if cur-firstMinute >= width {
			wlo = cur - width + 1
		}
		w := window{lo: max(lo, wlo*blockWidth), hi: min(hi, minuteLast(cur)), valid: true}
		if wlo == firstMinute {
			done = true
		} else {
			cur = wlo - 1
		}
		return w
	}
	var scans [2]*colScan
	for i := range scans {
		scans[i] = newColScan(pre)
		defer scans[i].close()
	}
	var rec []byte
	for {
		var wins [2]window
		for i := range wins {
			wins[i] = next()
		}
		width = min(width*2, maxWidth)
		if !wins[0].valid {
			break
		}
		var wg sync.WaitGroup
		for i := range wins {
			if wins[i].valid {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sc.scan(ctx, &wins[i], scans[i])
				}()
			}
		}
		wg.Wait()
		for i := range wins {
			w := &wins[i]
			if !w.valid {
				continue
			}
			if w.err != nil {
				return res, w.err
			}
			res.InspectedBytes += w.bytes
			res.InspectedSpans += w.spans
			// Newest first; a search that fills its limit takes only a few,
			// so the candidates are a heap rather than sorted.
			heapifyCandidates(w.cands)
			for cands := w.cands; len(cands) > 0; {
				var c candidate
				c, cands = popNewest(cands)
				if _, done := decided[c.tid]; done {
					continue
				}
				decided[c.tid] = struct{}{}
				res.InspectedTraces++
				m, ok, err := s.judge(ctx, &sd, c, &rec, q, req, local, needInfo, spss)
				if err != nil {
					return res, err
				}
				if ok {
					res.Traces = append(res.Traces, m)
					if len(res.Traces) >= limit {
						return res, nil
					}
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	return res, ctx.Err()
}

type window struct {
	lo, hi       uint64 // inclusive bounds on the index time
	valid        bool
	cands        []candidate
	bytes, spans uint64
	err          error
}

// candidate is a stored chunk of a trace that may match. rec is its search
// record when the scan read it; nil means judge reads it if needed.
type candidate struct {
	minStart, seq uint64
	tid           pcommon.TraceID
	rec           []byte
}

// heapifyCandidates arranges c as a max-heap in the order of
// compareCandidates, for popNewest.
func heapifyCandidates(c []candidate) {
	for i := len(c)/2 - 1; i >= 0; i-- {
		siftDown(c, i)
	}
}

// popNewest removes the greatest (newest) candidate from the heap c.
func popNewest(c []candidate) (candidate, []candidate) {
	top, n := c[0], len(c)-1
	c[0] = c[n]
	c = c[:n]
	siftDown(c, 0)
	return top, c
}

func siftDown(c []candidate, i int) {
	for {
		l := 2*i + 1
		if l >= len(c) {
			return
		}
		if r := l + 1; r < len(c) && compareCandidates(c[r], c[l]) > 0 {
			l = r
		}
		if compareCandidates(c[l], c[i]) <= 0 {
			return
		}
		c[i], c[l] = c[l], c[i]
		i = l
	}
}

// compareCandidates orders candidates as their search-record keys.
func compareCandidates(a, b candidate) int {
	if c := cmp.Compare(a.minStart, b.minStart); c != 0 {
		return c
	}
	if c := bytes.Compare(a.tid[:], b.tid[:]); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

type scanner struct {
	s                   *Store
	q                   traceql.Expr
	lits                literalSet
	blocks              blockFilter
	useBlocks           bool
	spanAttrs, resAttrs bool
	// firstColumnMinute is the first minute whose column blocks search
	// uses; earlier minutes are read from the search records.
	firstColumnMinute uint64
}

// scan reads one window forward, minute by minute, skipping minutes whose
// block summary rules the query out, and keeps the chunks that may match:
// from the minute's column blocks when it has them (minutes
// within retention, see Search), else from its search records.
func (sc *scanner) scan(ctx context.Context, w *window, cs *colScan) {
	var cols *pebble.Iterator
	ar := attrReader{db: sc.s.db, ctx: ctx}
	defer func() {
		for _, it := range []*pebble.Iterator{cols, ar.it} {
			if it != nil {
				_ = it.Close()
			}
		}
	}()
	cs.fetch = ar.get
	sd := searchDecoder{spanAttrs: sc.spanAttrs, resAttrs: sc.resAttrs}
	for m := w.lo / blockWidth; m <= w.hi/blockWidth; m++ {
		if m >= sc.firstColumnMinute {
			b, ok, err := sc.s.loadBlock(m)
			if err != nil {
				w.err = err
				return
			}
			if ok {
				if sc.useBlocks && !sc.blocks.mayMatch(&b) {
					continue
				}
				if cols == nil {
					if cols, err = sc.s.db.NewIterWithContext(ctx, &pebble.IterOptions{}); err != nil {
						w.err = err
						return
					}
				}
				if w.err = sc.scanColumns(ctx, w, m, cols, cs, &ar); w.err != nil {
					return
				}
				continue
			}
		}
		last := m
		if m < sc.firstColumnMinute {
			// The minutes before the retention are read as one range.
			last = min(w.hi/blockWidth, sc.firstColumnMinute-1)
		}
		mlo, mhi := max(w.lo, m*blockWidth), min(w.hi, minuteLast(last))
		m = last
		w.err = sc.s.walkRecords(ctx, mlo, mhi+1, nil, func(k, v []byte) error {
			w.bytes += uint64(len(v))
			if !sc.lits.possible(v) {
				return nil
			}
			spans, err := sd.decode(v)
			if err != nil {
				return fmt.Errorf("decode search record of %x: %w", k[8:24], err)
			}
			w.spans += uint64(len(spans))
			if traceql.PossibleInSpans(sc.q, spans) {
				w.cands = append(w.cands, candidate{
					minStart: binary.BigEndian.Uint64(k[:8]), tid: pcommon.TraceID(k[8:24]),
					seq: binary.BigEndian.Uint64(k[24:32]), rec: append([]byte(nil), v...),
				})
			}
			return nil
		})
		if w.err != nil {
			return
		}
	}
}

// scanColumns evaluates the query on minute m's column blocks and keeps the
// chunks within the window that may match.
func (sc *scanner) scanColumns(ctx context.Context, w *window, m uint64, it *pebble.Iterator, cs *colScan, ar *attrReader) error {
	it.SetBounds(columnBound(pColumns, m), columnBound(pColumns, m+1))
	whole := w.lo <= m*blockWidth && minuteLast(m) <= w.hi
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := it.Key()
		if len(k) != 17 {
			continue
		}
		ar.minute, ar.seq, ar.bytes = m, binary.BigEndian.Uint64(k[9:17]), 0
		v := it.Value()
		blk, cand, err := cs.match(v)
		if err != nil {
			return fmt.Errorf("decode column block %x: %w", k[1:], err)
		}
		w.bytes += uint64(len(v)) + ar.bytes
		if whole {
			w.spans += uint64(blk.spans)
		}
		var starts []int32
		if !whole {
			if starts, err = cs.starts(); err != nil {
				return fmt.Errorf("decode column block %x: %w", k[1:], err)
			}
		}
		for j, ok := range cand {
			if !ok && whole {
				continue
			}
			tid, seq, minStart := blk.chunkID(j)
			if !whole {
				if minStart < w.lo || minStart > w.hi {
					continue
				}
				w.spans += uint64(starts[j+1] - starts[j])
			}
			if ok {
				w.cands = append(w.cands, candidate{minStart: minStart, tid: tid, seq: seq})
			}
		}
	}
	return it.Error()
}

// attrReader fetches attribute columns of one column block (minute, seq)
// for colScan, with one iterator bounded to the current minute.
type attrReader struct {
	db          *pebble.DB
	ctx         context.Context
	it          *pebble.Iterator
	itMinute    uint64 // the minute it is bounded to
	minute, seq uint64
	key         []byte
	bytes       uint64 // bytes read for the current block
}

func (ar *attrReader) get(name string) ([]byte, error) {
	if ar.it == nil || ar.itMinute != ar.minute {
		opts := &pebble.IterOptions{LowerBound: columnBound(pAttrCol, ar.minute), UpperBound: columnBound(pAttrCol, ar.minute+1)}
		if ar.it == nil {
			it, err := ar.db.NewIterWithContext(ar.ctx, opts)
			if err != nil {
				return nil, err
			}
			ar.it = it
		} else {
			ar.it.SetBounds(opts.LowerBound, opts.UpperBound)
		}
		ar.itMinute = ar.minute
	}
	ar.key = attrColumnKey(ar.key[:0], ar.minute, ar.seq, name)
	if !ar.it.SeekGE(ar.key) || !bytes.Equal(ar.it.Key(), ar.key) {
		return nil, ar.it.Error()
	}
	// Copied: the column must outlive the iterator's next move, and may
	// be one of several columns of the block in use at once.
	v := ar.it.Value()
	ar.bytes += uint64(len(v))
	return append([]byte(nil), v...), nil
}

// judge decides one candidate trace exactly. rec is a buffer it may reuse.
func (s *Store) judge(ctx context.Context, sd *searchDecoder, c candidate, rec *[]byte, q traceql.Expr, req SearchRequest, local, needInfo bool, spss int) (TraceMatch, bool, error) {
	sum, found, err := s.getSummary(c.tid)
	if err != nil || !found {
		return TraceMatch{}, false, err // not found: deleted by retention meanwhile
	}
	info := sum.info()
	info.TraceID = c.tid
	if needInfo {
		d := time.Duration(info.Duration())
		if (req.MinDuration > 0 && d < req.MinDuration) || (req.MaxDuration > 0 && d > req.MaxDuration) {
			return TraceMatch{}, false, nil
		}
		if !traceql.PossibleForTrace(q, &info) {
			return TraceMatch{}, false, nil
		}
	}
	// A span-local query is decided by this chunk's search record alone.
	var spans []traceql.Span
	if local {
		if c.rec == nil {
			r, ok, err := s.readRecord(ctx, (*rec)[:0], c.minStart, c.tid, c.seq)
			if err != nil || !ok {
				return TraceMatch{}, false, err // not found: deleted by retention meanwhile
			}
			*rec = r
			c.rec = r
		}
		if spans, err = sd.decode(c.rec); err != nil {
			return TraceMatch{}, false, err
		}
	}
	var tr traceql.Trace
	// When the trace has several records the reported spanset needs all of them.
	if local && len(sum.Chunks) <= 1 {
		tr = traceql.Trace{Info: info, Spans: spans}
	} else {
		full, ok, err := s.loadTrace(ctx, c.tid, &sum, traceql.NeedsEvents(q))
		if err != nil || !ok {
			return TraceMatch{}, false, err
		}
		full.Info = info
		tr = full
	}
	sets, err := traceql.EvalSpansets(ctx, q, &tr)
	if err != nil {
		return TraceMatch{}, false, err
	}
	if len(sets) == 0 && local {
		// Only possible when the trace changed under us; judge by this record.
		tr = traceql.Trace{Info: info, Spans: spans}
		if sets, err = traceql.EvalSpansets(ctx, q, &tr); err != nil {
			return TraceMatch{}, false, err
		}
	}
	if len(sets) == 0 {
		return TraceMatch{}, false, nil
	}
	m := TraceMatch{
		TraceID:         c.tid,
		RootServiceName: info.RootServiceName,
		RootTraceName:   info.RootName,
		StartUnixNano:   info.StartUnixNano,
		Duration:        time.Duration(info.Duration()),
		SpanSets:        make([]SpanSet, len(sets)),
	}
	for i, set := range sets {
		ss := SpanSet{Matched: len(set.Spans), Group: set.Group}
		for _, j := range set.Spans[:min(len(set.Spans), spss)] {
			ss.Spans = append(ss.Spans, cloneSpan(tr.Spans[j]))
		}
		m.SpanSets[i] = ss
	}
	return m, true, nil
}

// literalSet is a byte-level pre-filter: for each spanset filter, strings
// that must all occur in a search record for any of its spans to match.
// A record passes if some filter's strings all occur (filters are joined
// as with PossibleInSpans); a filter without required strings always passes.
type literalSet [][][]byte

func requiredLiterals(e traceql.Expr) literalSet {
	var out literalSet
	var walk func(traceql.Expr)
	walk = func(e traceql.Expr) {
		switch e := e.(type) {
		case *traceql.Filter:
			out = append(out, condLiterals(e.Cond))
		case *traceql.SpansetOp:
			walk(e.L)
			walk(e.R)
		case *traceql.Pipeline:
			walk(e.Input) // the pipeline only narrows its input's spans
		}
	}
	walk(e)
	return out
}

// condLiterals returns strings that must occur in a record for c to hold
// for one of its spans.
func condLiterals(c traceql.Cond) [][]byte {
	switch c := c.(type) {
	case *traceql.Logical:
		if c.And {
			return append(condLiterals(c.L), condLiterals(c.R)...)
		}
		return nil // either side may hold
	case *traceql.Compare:
		var out [][]byte
		f := c.Field
		if f.Scope == traceql.ScopeEvent {
			return nil // events are not in the records
		}
		if f.Intrinsic == traceql.IntrinsicNone && len(f.Name) <= maxSearchValueLen &&
			!(c.Value.Type == traceql.TypeNil && c.Op == traceql.CmpEq) {
			out = append(out, []byte(f.Name))
		}
		if c.Op == traceql.CmpEq && c.Value.Type == traceql.TypeString && len(c.Value.S) <= maxSearchValueLen &&
			(f.Intrinsic == traceql.IntrinsicNone || f.Intrinsic == traceql.IntrinsicName || f.Intrinsic == traceql.IntrinsicStatusMessage) {
			out = append(out, []byte(c.Value.S))
		}
		return out
	}
	return nil
}

func (l literalSet) possible(rec []byte) bool {
	if len(l) == 0 {
		return true
	}
next:
	for _, filter := range l {
		for _, lit := range filter {
			if !bytes.Contains(rec, lit) {
				continue next
			}
		}
		return true
	}
	return false
}

// loadTrace reads the whole trace for evaluation: from the search records
// its summary lists, which hold what a span-local query judges one record
// by, or, when the query needs the spans' events (not in the records),
// from its OTLP protobuf. A span repeated by a client's retry counts once.
func (s *Store) loadTrace(ctx context.Context, tid pcommon.TraceID, sum *summary, events bool) (traceql.Trace, bool, error) {
	if events {
		td, ok, err := s.GetTrace(ctx, tid)
		if err != nil || !ok {
			return traceql.Trace{}, ok, err
		}
		return traceql.Trace{Spans: spansFromTraces(td, nil)}, true, nil
	}
	// In request order, as GetTrace reads them.
	chunks := slices.SortedFunc(slices.Values(sum.Chunks), func(a, b chunkRef) int { return cmp.Compare(a.Seq, b.Seq) })
	recs := make([][]byte, 0, len(chunks))
	for _, c := range chunks {
		rec, ok, err := s.readRecord(ctx, nil, c.MinStart, tid, c.Seq)
		if err != nil {
			return traceql.Trace{}, false, err
		}
		if ok { // else being deleted by retention
			recs = append(recs, rec)
		}
		if err := ctx.Err(); err != nil {
			return traceql.Trace{}, false, err
		}
	}
	tr := s.traceOfRecords(tid, recs)
	return tr, len(tr.Spans) > 0, nil
}

// traceOfRecords decodes the search records of a trace's chunks, given in
// request order, into one trace; a span repeated by a client's retry counts
// once. The spans alias recs.
func (s *Store) traceOfRecords(tid pcommon.TraceID, recs [][]byte) traceql.Trace {
	var spans []traceql.Span
	seen := map[[8]byte]struct{}{}
	for i, rec := range recs {
		// Each record's spans get their own decoder arena.
		sd := searchDecoder{spanAttrs: true, resAttrs: true}
		dec, err := sd.decode(rec)
		if err != nil {
			s.m.undecodable.Inc()
			s.logger.Warn("skipping a search record that does not decode", "trace_id", tid.String(), "record", i, "err", err)
			continue
		}
		for _, sp := range dec {
			if _, dup := seen[sp.SpanID]; !dup {
				seen[sp.SpanID] = struct{}{}
				spans = append(spans, sp)
			}
		}
	}
	return traceql.Trace{Spans: spans}
}

// readRecord appends the search record of a chunk to dst; ok is false when
// it is gone (deleted by retention meanwhile). A chunk not yet cut into a
// page has its record in a row; a cut chunk's record is made from its
// OTLP protobuf (appendRecordOf), from its page.
func (s *Store) readRecord(ctx context.Context, dst []byte, minStart uint64, tid pcommon.TraceID, seq uint64) ([]byte, bool, error) {
	pages := pageReader{s: s}
	defer pages.close()
	key := indexKey(minStart, tid, seq)
	// A chunk older than the last cut is most likely in a page: it is
	// looked for there first, then in rows; a newer one the other way.
	paged := minStart < s.cutBefore.Load()
	var v []byte
	var found bool
	var err error
	if paged {
		v, found, err = pages.get(ctx, key[1:])
	}
	if !found && err == nil {
		r, closer, gerr := s.db.Get(key)
		if gerr == nil {
			dst = append(dst, r...)
			return dst, true, closer.Close()
		}
		if !errors.Is(gerr, pebble.ErrNotFound) {
			return dst, false, gerr
		}
		key[0] = pData
		r, closer, gerr = s.db.Get(key)
		switch {
		case gerr == nil:
			defer closer.Close()
			v, found = r, true
		case !errors.Is(gerr, pebble.ErrNotFound):
			return dst, false, gerr
		case !paged:
			v, found, err = pages.get(ctx, key[1:])
		}
	}
	if !found && err == nil {
		return dst, false, nil
	}
	if err != nil && !errors.Is(err, errCorrupt) {
		return dst, false, err
	}
	n := len(dst)
	if err == nil {
		dst, err = appendRecordOf(dst, v)
	}
	if errors.Is(err, errCorrupt) {
		// A damaged page, or spans written before a limit that no longer
		// decode: the chunk is skipped, as GetTrace skips it.
		s.m.undecodable.Inc()
		s.logger.Warn("skipping stored spans that do not decode", "trace_id", tid.String(), "chunk", seq, "err", err)
		return dst[:n], false, nil
	}
	return dst, err == nil, err
}

// minuteLast is the last nanosecond of minute m, saturating at the end of time.
func minuteLast(m uint64) uint64 {
	if m >= math.MaxUint64/blockWidth {
		return math.MaxUint64
	}
	return (m+1)*blockWidth - 1
}
