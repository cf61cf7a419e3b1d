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

// MetricsLookback is how long before a metrics query's range ObserveSpans
// starts reading. Spans are stored in chunks indexed by the earliest start
// among a request's spans of one trace, so a span that starts within the
// range may sit in a chunk indexed a little before it; a span whose
// request's earliest span started more than this before the range is not
// counted.
const MetricsLookback = 5 * time.Minute

// SpanQuery selects the spans a TraceQL metrics query aggregates, and the
// fields it needs of each.
type SpanQuery struct {
	// Spans is the spanset expression; nil means `{}`.
	Spans traceql.Expr
	// Start and End bound the spans' start times: [Start, End).
	Start, End time.Time
	// Value is the field whose value each observation carries (seconds
	// for durations); nil for none.
	Value *traceql.Field
	// By are the fields that name an observation's series.
	By []traceql.Field
	// OnSpan, when set, receives each selected span whole, with every
	// attribute and its trace's intrinsics (info may be zero where the
	// query needs none), instead of the Observer.
	OnSpan func(traceID [16]byte, s *traceql.Span, info *traceql.TraceInfo)
}

// Observer receives one observation per span that a SpanQuery selects.
// The observation and its slices are reused after Observe returns.
type Observer interface {
	Observe(o *traceql.Observation)
}

// SpanScan reports what ObserveSpans read and resolves the span IDs of
// observations made without one (see SpanID).
type SpanScan struct {
	InspectedTraces, InspectedSpans, InspectedBytes uint64

	s      *Store
	chunks [][]chunkLoc // per worker
}

// chunkLoc names a stored chunk that column-path observations refer to.
type chunkLoc struct {
	minStart, seq uint64
	tid           pcommon.TraceID
}

// An observation's Ref is its worker, its chunk's index in that worker's
// SpanScan.chunks and the span's position in the chunk.
const (
	refSpanBits  = 20
	refChunkBits = 40
)

// ObserveSpans hands the observers one observation for every span whose
// start time lies in [q.Start, q.End) and that q.Spans selects: for a query
// decided by single spans (filters joined by ||), each span that satisfies
// a filter; otherwise every span of the spansets the whole trace produces.
//
// Single-span queries whose fields the column blocks hold are evaluated
// there, a column at a time; observations then carry a Ref instead of a
// span ID, which the returned SpanScan resolves. Everything else (trace
// level fields, structural operators, pipelines, blocks written before the
// start column) is evaluated exactly from the search records or the whole
// trace, as Search judges traces.
//
// Single-span queries are read by one goroutine per observer, each over a
// part of the range: every observer sees a disjoint share of the spans,
// and the caller merges what they gathered. Other queries use the first
// observer only.
func (s *Store) ObserveSpans(ctx context.Context, q SpanQuery, obs ...Observer) (*SpanScan, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if len(obs) == 0 {
		return nil, errors.New("tracestore: ObserveSpans needs an observer")
	}
	if q.Spans == nil {
		q.Spans = &traceql.Filter{}
	}
	scan := &SpanScan{s: s}
	if !q.End.After(q.Start) {
		return scan, nil
	}
	start, end := uint64(max(q.Start.UnixNano(), 0)), uint64(max(q.End.UnixNano(), 0))
	lo := uint64(0)
	if back := uint64(MetricsLookback); start > back {
		lo = start - back
	}
	plan := planMetrics(s, q)
	if q.OnSpan != nil {
		obs = obs[:1]
	}
	// Single-span queries split the range, whole minutes per worker, the
	// first workers taking one more. Queries over whole traces split the
	// traces instead (a trace's chunks may lie in several minutes): each
	// worker reads the whole range and evaluates its share of the trace IDs.
	first, last := lo/blockWidth, (end-1)/blockWidth
	n := uint64(len(obs))
	if plan.local {
		n = min(n, last-first+1)
	}
	workers := make([]*metricsScan, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	from := first
	for w := range workers {
		minutes := (last - first + 1) / n
		if uint64(w) < (last-first+1)%n {
			minutes++
		}
		wlo, whi := max(lo, from*blockWidth), min(end-1, minuteLast(from+minutes-1))
		from += minutes
		ms := plan.worker(ctx, uint64(w), obs[w], start, end)
		if !plan.local {
			wlo, whi, ms.shares = lo, end-1, n
		}
		workers[w] = ms
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = ms.runAll(wlo, whi)
		}()
	}
	wg.Wait()
	for _, ms := range workers {
		scan.InspectedTraces += ms.stats.InspectedTraces
		scan.InspectedSpans += ms.stats.InspectedSpans
		scan.InspectedBytes += ms.stats.InspectedBytes
		scan.chunks = append(scan.chunks, ms.chunks)
	}
	return scan, errors.Join(errs...)
}

// metricsPlan is how ObserveSpans evaluates a query, shared by its workers.
type metricsPlan struct {
	s                        *Store
	q                        SpanQuery
	local, needInfo, columns bool
	events, nested, ids      bool // fields read from events, nested sets, span IDs
	spanAttrs, resAttrs      bool
	firstColumnMinute        uint64
}

func planMetrics(s *Store, q SpanQuery) metricsPlan {
	p := metricsPlan{s: s, q: q}
	// The fields an observation reports: what the search records and
	// column blocks cannot give makes every trace evaluated whole.
	reported := q.By
	if q.Value != nil {
		reported = append(slices.Clip(q.By), *q.Value)
	}
	p.local = traceql.SpanLocal(q.Spans)
	p.events = traceql.NeedsEvents(q.Spans)
	for _, f := range reported {
		switch {
		case f.OnEvents():
			p.events = true // only whole traces carry their events
		case f.NestedSet():
			p.nested = true
		case f.Intrinsic == traceql.IntrinsicSpanID || f.Intrinsic == traceql.IntrinsicParentID:
			p.ids = true // in search records, not column blocks
		}
	}
	for _, f := range append(traceql.Fields(q.Spans), reported...) {
		if f.Intrinsic.TraceLevel() {
			p.needInfo = true
		}
		if f.Intrinsic == traceql.IntrinsicNone {
			p.spanAttrs = p.spanAttrs || f.Scope != traceql.ScopeResource
			p.resAttrs = p.resAttrs || f.Scope != traceql.ScopeSpan
		}
	}
	if q.OnSpan != nil {
		p.spanAttrs, p.resAttrs = true, true
	}
	p.local = p.local && !p.events && !p.nested
	p.columns = p.local && !p.needInfo && !p.ids && q.OnSpan == nil && !s.searchRows
	p.firstColumnMinute = math.MaxUint64
	if c := s.opts.Now().Add(-s.opts.Retention).UnixNano(); c > 0 && !s.searchRows {
		p.firstColumnMinute = uint64(c) / blockWidth
	}
	return p
}

// worker returns the state of one goroutine of the scan.
func (p *metricsPlan) worker(ctx context.Context, w uint64, obs Observer, start, end uint64) *metricsScan {
	ms := &metricsScan{
		metricsPlan: p, ctx: ctx, obs: obs, start: start, end: end, worker: w,
		o:  traceql.Observation{Group: make([]traceql.Value, len(p.q.By)), Present: make([]bool, len(p.q.By))},
		sd: searchDecoder{spanAttrs: p.spanAttrs, resAttrs: p.resAttrs},
		cs: newColScan(p.q.Spans), blocks: newBlockFilter(p.q.Spans),
	}
	if !p.local {
		ms.decided = map[pcommon.TraceID]struct{}{}
	}
	for _, r := range ms.blocks {
		if len(r.lits) > 0 || r.minDur > 0 || r.status != 0 || r.kinds != 0 {
			ms.useBlocks = true
		}
	}
	return ms
}

// runAll reads the chunks indexed in [lo, hi] and evaluates the traces
// that wait to be evaluated whole.
func (ms *metricsScan) runAll(lo, hi uint64) error {
	err := ms.run(lo, hi)
	ms.cs.close()
	if err == nil {
		err = ms.flushTraces()
	}
	if ms.sums != nil {
		_ = ms.sums.Close()
	}
	return err
}

// SpanID returns the span ID an observation with ref stands for, reading
// its chunk's search record; ok is false when the chunk is gone (deleted
// by retention since).
func (sc *SpanScan) SpanID(ref uint64) (id [8]byte, ok bool, err error) {
	w, c, pos := ref>>(refSpanBits+refChunkBits), ref>>refSpanBits&(1<<refChunkBits-1), int(ref&(1<<refSpanBits-1))
	if w >= uint64(len(sc.chunks)) || c >= uint64(len(sc.chunks[w])) {
		return id, false, nil
	}
	loc := sc.chunks[w][c]
	v, ok, err := sc.s.readRecord(context.Background(), nil, loc.minStart, loc.tid, loc.seq)
	if err != nil || !ok {
		return id, false, err
	}
	var sd searchDecoder
	spans, err := sd.decode(v)
	if err != nil {
		return id, false, err
	}
	if pos >= len(spans) {
		return id, false, nil
	}
	return spans[pos].SpanID, true, nil
}

type metricsScan struct {
	*metricsPlan
	ctx        context.Context
	obs        Observer
	start, end uint64
	worker     uint64
	shares     uint64   // with more than 1, the worker evaluates the traces whose ID is worker modulo shares
	stats      SpanScan // the counts only
	chunks     []chunkLoc
	o          traceql.Observation

	decided   map[pcommon.TraceID]struct{} // whole-trace mode: traces evaluated
	cs        *colScan
	blocks    blockFilter
	useBlocks bool
	sd        searchDecoder
	cf        []colField
	pending   []pendingTrace
	sums      *pebble.Iterator // summaries, for pending traces
	seen      []bool
}

// run reads the chunks indexed in [lo, hi], minute by minute.
func (ms *metricsScan) run(lo, hi uint64) error {
	var cols *pebble.Iterator
	ar := attrReader{db: ms.s.db, ctx: ms.ctx}
	defer func() {
		for _, it := range []*pebble.Iterator{cols, ar.it} {
			if it != nil {
				_ = it.Close()
			}
		}
	}()
	ms.cs.fetch = ar.get
	for m := lo / blockWidth; m <= hi/blockWidth; m++ {
		if err := ms.ctx.Err(); err != nil {
			return err
		}
		mlo, mhi := max(lo, m*blockWidth), min(hi, minuteLast(m))
		if m >= ms.firstColumnMinute {
			b, ok, err := ms.s.loadBlock(m)
			if err != nil {
				return err
			}
			if ok && ms.useBlocks && !ms.blocks.mayMatch(&b) {
				continue
			}
			// Queries over whole traces read the search records, which
			// hold a trace's parent links: most traces are one record.
			if ok && ms.local {
				if cols == nil {
					if cols, err = ms.s.db.NewIterWithContext(ms.ctx, &pebble.IterOptions{}); err != nil {
						return err
					}
				}
				if err := ms.minuteColumns(m, mlo, mhi, cols, &ar); err != nil {
					return err
				}
				continue
			}
		}
		if m < ms.firstColumnMinute {
			// The minutes before the retention are read as one range.
			last := min(hi/blockWidth, ms.firstColumnMinute-1)
			mhi, m = min(hi, minuteLast(last)), last
		}
		var want func([]byte) bool
		if ms.shares > 1 {
			want = func(k []byte) bool { return binary.BigEndian.Uint64(k[16:24])%ms.shares == ms.worker }
		}
		err := ms.s.walkRecords(ms.ctx, mlo, mhi+1, want, func(k, v []byte) error {
			ms.stats.InspectedBytes += uint64(len(v))
			if err := ms.record(pcommon.TraceID(k[8:24]), v); err != nil {
				return fmt.Errorf("decode search record of %x: %w", k[8:24], err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// minuteColumns reads minute m's column blocks, keeping chunks indexed in
// [lo, hi].
func (ms *metricsScan) minuteColumns(m, lo, hi uint64, it *pebble.Iterator, ar *attrReader) error {
	it.SetBounds(columnBound(pColumns, m), columnBound(pColumns, m+1))
	for ok := it.First(); ok; ok = it.Next() {
		if err := ms.ctx.Err(); err != nil {
			return err
		}
		k := it.Key()
		if len(k) != 17 {
			continue
		}
		ar.minute, ar.seq, ar.bytes = m, binary.BigEndian.Uint64(k[9:17]), 0
		v := it.Value()
		blk, cand, err := ms.cs.match(v)
		if err != nil {
			return fmt.Errorf("decode column block %x: %w", k[1:], err)
		}
		starts, err := ms.cs.starts()
		if err == nil && ms.columns && blk.version >= colVersion {
			err = ms.block(lo, hi, cand, starts)
		} else if err == nil {
			err = ms.blockRows(lo, hi, cand, starts)
		}
		ms.stats.InspectedBytes += uint64(len(v)) + ar.bytes
		if err != nil {
			return fmt.Errorf("decode column block %x: %w", k[1:], err)
		}
	}
	return it.Error()
}

// blockRows judges the candidate chunks of the current column block from
// their search records (or whole traces).
func (ms *metricsScan) blockRows(lo, hi uint64, cand []bool, starts []int32) error {
	blk := &ms.cs.blk
	for j, ok := range cand {
		tid, seq, minStart := blk.chunkID(j)
		if minStart < lo || minStart > hi {
			continue
		}
		ms.stats.InspectedSpans += uint64(starts[j+1] - starts[j])
		if !ok {
			continue
		}
		rec, ok, err := ms.s.readRecord(ms.ctx, nil, minStart, tid, seq)
		if err != nil {
			return err
		}
		if !ok {
			continue // deleted by retention meanwhile
		}
		ms.stats.InspectedSpans -= uint64(starts[j+1] - starts[j]) // counted again by record
		if err := ms.record(tid, rec); err != nil {
			return err
		}
	}
	return nil
}

// record evaluates one chunk's search record.
func (ms *metricsScan) record(tid pcommon.TraceID, rec []byte) error {
	spans, err := ms.sd.decode(rec)
	if err != nil {
		return err
	}
	ms.stats.InspectedSpans += uint64(len(spans))
	if !ms.local {
		if traceql.PossibleInSpans(ms.q.Spans, spans) {
			return ms.wholeTrace(tid, rec)
		}
		return nil
	}
	ms.stats.InspectedTraces++
	tr := traceql.Trace{Spans: spans}
	if ms.needInfo {
		sum, found, err := ms.s.getSummary(tid)
		if err != nil || !found {
			return err
		}
		tr.Info = sum.info()
	}
	tr.Info.TraceID = tid
	idx, err := traceql.Eval(ms.ctx, ms.q.Spans, &tr)
	if err != nil {
		return err
	}
	for _, i := range idx {
		ms.observeSpan(tid, &tr, i)
	}
	return nil
}

// wholeTrace queues the trace for evaluation on its whole, once per
// trace. rec is one of its search records: the whole trace when it has no
// other.
func (ms *metricsScan) wholeTrace(tid pcommon.TraceID, rec []byte) error {
	if _, done := ms.decided[tid]; done {
		return nil
	}
	ms.decided[tid] = struct{}{}
	ms.pending = append(ms.pending, pendingTrace{tid: tid, rec: bytes.Clone(rec)})
	if len(ms.pending) >= pendingTraces {
		return ms.flushTraces()
	}
	return nil
}

// pendingTraces is how many traces wholeTrace gathers before reading their
// summaries in trace ID order with one iterator: a point read per trace
// costs several times more.
const pendingTraces = 4096

type pendingTrace struct {
	tid   pcommon.TraceID
	rec   []byte
	sum   summary
	found bool
	recs  []seqRecord // of a trace of several chunks
}

type seqRecord struct {
	seq uint64
	rec []byte
}

// flushTraces evaluates the queued traces.
func (ms *metricsScan) flushTraces() error {
	if len(ms.pending) == 0 {
		return nil
	}
	if ms.sums == nil {
		it, err := ms.s.db.NewIterWithContext(ms.ctx, &pebble.IterOptions{LowerBound: []byte{pSummary}, UpperBound: []byte{pSummary + 1}})
		if err != nil {
			return err
		}
		ms.sums = it
	}
	slices.SortFunc(ms.pending, func(a, b pendingTrace) int { return bytes.Compare(a.tid[:], b.tid[:]) })
	for i := range ms.pending {
		p := &ms.pending[i]
		if err := ms.ctx.Err(); err != nil {
			return err
		}
		key := summaryKey(p.tid)
		if !ms.sums.SeekGE(key) || !bytes.Equal(ms.sums.Key(), key) {
			if err := ms.sums.Error(); err != nil {
				return err
			}
			continue // deleted by retention meanwhile
		}
		sum, err := decodeSummary(ms.sums.Value())
		if err != nil {
			return fmt.Errorf("summary of trace %s: %w", p.tid, err)
		}
		p.sum, p.found = sum, true
	}
	if err := ms.readChunks(); err != nil {
		return err
	}
	for i := range ms.pending {
		if p := &ms.pending[i]; p.found {
			if err := ms.evalTrace(p); err != nil {
				return err
			}
		}
	}
	clear(ms.pending)
	ms.pending = ms.pending[:0]
	return nil
}

// readChunks reads the search records of the pending traces of several
// chunks, in key order: those of cut chunks are made from their pages,
// which the store's page cache then decompresses once for all the records
// they hold, not once per trace.
func (ms *metricsScan) readChunks() error {
	if ms.events {
		return nil // evalTrace reads the protobuf
	}
	type ref struct {
		minStart, seq uint64
		i             int
	}
	var refs []ref
	for i := range ms.pending {
		if p := &ms.pending[i]; p.found && len(p.sum.Chunks) > 1 {
			for _, c := range p.sum.Chunks {
				refs = append(refs, ref{c.MinStart, c.Seq, i})
			}
		}
	}
	slices.SortFunc(refs, func(a, b ref) int {
		if c := cmp.Compare(a.minStart, b.minStart); c != 0 {
			return c
		}
		ta, tb := ms.pending[a.i].tid, ms.pending[b.i].tid
		if c := bytes.Compare(ta[:], tb[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	for _, r := range refs {
		p := &ms.pending[r.i]
		rec, ok, err := ms.s.readRecord(ms.ctx, nil, r.minStart, p.tid, r.seq)
		if err != nil {
			return err
		}
		if ok { // else being deleted by retention
			p.recs = append(p.recs, seqRecord{r.seq, rec})
		}
	}
	return ms.ctx.Err()
}

// evalTrace evaluates the query on a whole trace and observes the spans of
// its spansets.
func (ms *metricsScan) evalTrace(p *pendingTrace) error {
	ms.stats.InspectedTraces++
	tid, sum := p.tid, &p.sum
	info := sum.info()
	if !traceql.PossibleForTrace(ms.q.Spans, &info) {
		return nil
	}
	var tr traceql.Trace
	switch {
	case ms.events:
		full, ok, err := ms.s.loadTrace(ms.ctx, tid, sum, true)
		if err != nil || !ok {
			return err
		}
		tr = full
	case len(sum.Chunks) > 1:
		// In request order, as loadTrace reads them.
		slices.SortFunc(p.recs, func(a, b seqRecord) int { return cmp.Compare(a.seq, b.seq) })
		recs := make([][]byte, len(p.recs))
		for i, r := range p.recs {
			recs[i] = r.rec
		}
		if tr = ms.s.traceOfRecords(tid, recs); len(tr.Spans) == 0 {
			return nil
		}
	default:
		spans, err := ms.sd.decode(p.rec)
		if err != nil {
			return err
		}
		tr.Spans = spans
	}
	tr.Info = info
	tr.Info.TraceID = tid
	if ms.nested {
		tr.ComputeNestedSets()
	}
	sets, err := traceql.EvalSpansets(ms.ctx, ms.q.Spans, &tr)
	if err != nil {
		return err
	}
	ms.seen = slices.Grow(ms.seen[:0], len(tr.Spans))[:len(tr.Spans)]
	clear(ms.seen)
	for _, set := range sets {
		for _, i := range set.Spans {
			if !ms.seen[i] {
				ms.seen[i] = true
				ms.observeSpan(tid, &tr, i)
			}
		}
	}
	return nil
}

// observeSpan observes span i of tr when it starts within the range.
func (ms *metricsScan) observeSpan(tid pcommon.TraceID, tr *traceql.Trace, i int) {
	sp := &tr.Spans[i]
	if sp.StartUnixNano < ms.start || sp.StartUnixNano >= ms.end {
		return
	}
	if ms.q.OnSpan != nil {
		ms.q.OnSpan(tid, sp, &tr.Info)
		return
	}
	o := &ms.o
	o.StartUnixNano, o.TraceID, o.SpanID, o.Ref = sp.StartUnixNano, tid, sp.SpanID, 0
	for k, f := range ms.q.By {
		o.Group[k], o.Present[k] = traceql.FieldValue(f, sp, &tr.Info)
	}
	o.Value, o.HasValue = 0, false
	if ms.q.Value != nil {
		if v, ok := traceql.FieldValue(*ms.q.Value, sp, &tr.Info); ok {
			o.Value, o.HasValue = traceql.ObservedValue(v)
		}
	}
	ms.obs.Observe(o)
}

// block evaluates a single-span query on the current column block (one
// with a start column), a column at a time.
func (ms *metricsScan) block(lo, hi uint64, cand []bool, starts []int32) error {
	cs := ms.cs
	blk := &cs.blk
	var truth []int8
	for _, f := range cs.filters {
		var v []int8
		if f == nil {
			v = fillTri(cs.vec(), triTrue)
		} else {
			var err error
			if v, err = cs.cond(f); err != nil {
				return err
			}
		}
		if truth == nil {
			truth = v
			continue
		}
		for i, t := range v {
			if t == triTrue {
				truth[i] = triTrue
			}
		}
		cs.release(v)
	}
	defer cs.release(truth)
	offs, err := cs.cd.startOffsets(blk)
	if err != nil {
		return err
	}
	if err := ms.loadFields(); err != nil {
		return err
	}
	o := &ms.o
	for j, ok := range cand {
		tid, seq, minStart := blk.chunkID(j)
		if minStart < lo || minStart > hi {
			continue
		}
		first, last := int(starts[j]), int(starts[j+1])
		ms.stats.InspectedSpans += uint64(last - first)
		ms.stats.InspectedTraces++
		if !ok {
			continue
		}
		chunk := -1
		for i := first; i < last; i++ {
			if truth[i] != triTrue {
				continue
			}
			st := minStart + offs[i]
			if st < ms.start || st >= ms.end {
				continue
			}
			if chunk < 0 {
				chunk = len(ms.chunks)
				ms.chunks = append(ms.chunks, chunkLoc{minStart: minStart, seq: seq, tid: tid})
			}
			o.StartUnixNano, o.TraceID, o.SpanID = st, tid, [8]byte{}
			o.Ref = ms.worker<<(refSpanBits+refChunkBits) | uint64(chunk)<<refSpanBits | uint64(min(i-first, 1<<refSpanBits-1))
			for k := range ms.q.By {
				o.Group[k], o.Present[k] = ms.cf[k].value(i)
			}
			o.Value, o.HasValue = 0, false
			if ms.q.Value != nil {
				if v, ok := ms.cf[len(ms.q.By)].value(i); ok {
					o.Value, o.HasValue = traceql.ObservedValue(v)
				}
			}
			ms.obs.Observe(o)
		}
	}
	return nil
}

// loadFields prepares the current block's readers of the By and Value fields.
func (ms *metricsScan) loadFields() error {
	n := len(ms.q.By)
	if ms.q.Value != nil {
		n++
	}
	if len(ms.cf) != n {
		ms.cf = make([]colField, n)
		for k, f := range ms.q.By {
			ms.cf[k].f = f
		}
		if ms.q.Value != nil {
			ms.cf[n-1].f = *ms.q.Value
		}
	}
	for k := range ms.cf {
		if err := ms.cf[k].load(ms.cs); err != nil {
			return err
		}
	}
	return nil
}

// colField reads one field of the spans of the current column block.
type colField struct {
	f     traceql.Field
	dict  []string
	ids   []uint32 // name or message ids, resource ids
	bytes []byte   // status or kind codes
	durs  []uint64
	res   [][]traceql.Attr
	resV  []traceql.Value // per resource: its value of f
	resOK []bool
	attr  *attrColumn
	pos   []int32 // per span: its entry in attr, -1 for none
}

func (cf *colField) load(cs *colScan) error {
	var err error
	blk := &cs.blk
	switch cf.f.Intrinsic {
	case traceql.IntrinsicName, traceql.IntrinsicStatusMessage:
		col := colName
		if cf.f.Intrinsic == traceql.IntrinsicStatusMessage {
			col = colMessage
		}
		if cf.dict, err = cs.dict(); err != nil {
			return err
		}
		cf.ids, err = uint32Column(cf.ids[:0], blk.cols[col], blk.spans, len(cf.dict))
		return err
	case traceql.IntrinsicStatus:
		cf.bytes, err = cs.cd.byteColumn(blk, colStatus)
		return err
	case traceql.IntrinsicKind:
		cf.bytes, err = cs.cd.byteColumn(blk, colKind)
		return err
	case traceql.IntrinsicDuration:
		cf.durs, err = uvarintColumn(cf.durs[:0], blk.cols[colDuration], blk.spans)
		return err
	}
	cf.res, cf.attr = nil, nil
	if cf.f.Scope != traceql.ScopeSpan {
		if cf.res, err = cs.resources(); err != nil {
			return err
		}
		if cf.ids, err = uint32Column(cf.ids[:0], blk.cols[colRes], blk.spans, len(cf.res)); err != nil {
			return err
		}
		cf.resV, cf.resOK = cf.resV[:0], cf.resOK[:0]
		rf := traceql.Field{Scope: traceql.ScopeResource, Name: cf.f.Name}
		for _, r := range cf.res {
			v, ok := traceql.FieldValue(rf, &traceql.Span{Resource: r}, nil)
			cf.resV, cf.resOK = append(cf.resV, v), append(cf.resOK, ok)
		}
	}
	if cf.f.Scope != traceql.ScopeResource {
		if cf.attr, err = cs.attr(cf.f.Name); err != nil {
			return err
		}
		if cf.attr != nil {
			if err := cf.attr.decodeEntries(blk.spans); err != nil {
				return err
			}
			cf.pos = fillInt32(cf.pos, blk.spans, -1)
			for j, i := range cf.attr.idx {
				cf.pos[i] = int32(j)
			}
		}
	}
	return nil
}

// value returns the field's value for span i of the block.
func (cf *colField) value(i int) (traceql.Value, bool) {
	switch cf.f.Intrinsic {
	case traceql.IntrinsicName, traceql.IntrinsicStatusMessage:
		return traceql.StringValue(cf.dict[cf.ids[i]]), true
	case traceql.IntrinsicStatus:
		return traceql.Value{Type: traceql.TypeStatus, I: int64(cf.bytes[i])}, true
	case traceql.IntrinsicKind:
		return traceql.Value{Type: traceql.TypeKind, I: int64(cf.bytes[i])}, true
	case traceql.IntrinsicDuration:
		return traceql.Value{Type: traceql.TypeDuration, I: int64(cf.durs[i])}, true
	}
	if cf.attr != nil {
		if j := cf.pos[i]; j >= 0 {
			return cf.attr.vals[j], true
		}
	}
	if cf.res != nil {
		r := cf.ids[i]
		return cf.resV[r], cf.resOK[r]
	}
	return traceql.Value{}, false
}

// uint32Column decodes a column of n uvarint ids, each below limit.
func uint32Column(out []uint32, b []byte, n, limit int) ([]uint32, error) {
	d := decoder{b: b}
	for range n {
		v := d.uvarint()
		if v >= uint64(limit) {
			return nil, errCorrupt
		}
		out = append(out, uint32(v))
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, errCorrupt
	}
	return out, nil
}

func fillInt32(s []int32, n int, v int32) []int32 {
	if cap(s) < n {
		s = make([]int32, n)
	}
	s = s[:n]
	for i := range s {
		s[i] = v
	}
	return s
}
