package tracestore

import (
	"slices"
	"sync"

	"github.com/lookout-dev/lookout/internal/traceql"
)

// Three-valued results of a condition on one span, as in traceql: unknown
// when the condition depends on trace-level fields.
const (
	triFalse int8 = iota
	triTrue
	triUnknown
	triUnset // memo entry not computed yet
)

func triOf(b bool) int8 {
	if b {
		return triTrue
	}
	return triFalse
}

// colScan decides which chunks of a column block may match a query, with
// exactly the result traceql.PossibleInSpans gives on each chunk's search
// record (except that conditions on fields the columns lack, span IDs and
// nested-set numbers, count as unknown): a chunk is kept when some spanset
// filter of the query is not false for one of its spans. Conditions are evaluated a column at a time:
// string comparisons once per dictionary entry, then per span by id, and
// only the columns a condition needs are decoded.
//
// A colScan is not safe for concurrent use; results are valid until the
// next call to match.
type colScan struct {
	filters []traceql.Cond // one per spanset filter; nil is `{}`
	// fetch returns the attribute column key of the current block, or nil
	// when the block has none. The bytes must stay valid until the next
	// call to match.
	fetch func(key string) ([]byte, error)

	blk   colBlock
	cd    colDecoder
	have  uint32 // which decoded parts of the current block are valid
	attrs map[string]*attrColumn
	owned []*attrColumn // reusable attrColumns
	used  int
	vecs  [][]int8
	memo  []int8
	cand  []bool
}

// Parts of a block decoded on demand (bits of colScan.have).
const (
	haveStarts = 1 << iota
	haveDict
	haveRes
	haveKeys
	haveResIDs
	haveNames
	haveMessages
	haveDurations
)

// attrColumns keeps decoded attribute columns' buffers between scans: a
// merged block's columns have tens of thousands of entries.
var attrColumns = sync.Pool{New: func() any { return new(attrColumn) }}

// close returns the scan's buffers for other scans to reuse.
func (cs *colScan) close() {
	for _, col := range cs.owned {
		col.dict, col.rest, col.decoded = col.dict[:0], nil, false
		clear(col.vals) // drop the strings
		attrColumns.Put(col)
	}
	cs.owned, cs.used = nil, 0
	clear(cs.attrs)
}

func newColScan(q traceql.Expr) *colScan {
	cs := &colScan{attrs: map[string]*attrColumn{}}
	var walk func(traceql.Expr)
	walk = func(e traceql.Expr) {
		switch e := e.(type) {
		case *traceql.Filter:
			cs.filters = append(cs.filters, e.Cond)
		case *traceql.SpansetOp:
			walk(e.L)
			walk(e.R)
		case *traceql.Pipeline:
			walk(e.Input) // the pipeline only narrows its input's spans
		}
	}
	walk(q)
	return cs
}

// match parses block and reports in the returned slice, per chunk, whether
// the chunk may match.
func (cs *colScan) match(block []byte) (*colBlock, []bool, error) {
	blk, err := parseColumnBlock(block)
	if err != nil {
		return nil, nil, err
	}
	cs.blk, cs.have, cs.used = blk, 0, 0
	clear(cs.attrs)
	cs.cand = slices.Grow(cs.cand[:0], blk.chunks)[:blk.chunks]
	clear(cs.cand)
	left := blk.chunks
	for _, f := range cs.filters {
		if left == 0 {
			break
		}
		if f == nil {
			for j := range cs.cand {
				cs.cand[j] = true
			}
			break
		}
		v, err := cs.cond(f)
		if err != nil {
			return nil, nil, err
		}
		starts, err := cs.starts()
		if err != nil {
			return nil, nil, err
		}
		for j := range cs.cand {
			if cs.cand[j] {
				continue
			}
			for _, t := range v[starts[j]:starts[j+1]] {
				if t != triFalse {
					cs.cand[j] = true
					left--
					break
				}
			}
		}
		cs.release(v)
	}
	return &cs.blk, cs.cand, nil
}

func (cs *colScan) starts() ([]int32, error) {
	return decodeOnce(cs, haveStarts, cs.cd.starts, cs.cd.chunkStarts)
}

// decodeOnce returns the current block's part that bit stands for: done,
// if it was decoded already, else decoded now.
func decodeOnce[T any](cs *colScan, bit uint32, done T, decode func(*colBlock) (T, error)) (T, error) {
	if cs.have&bit != 0 {
		return done, nil
	}
	v, err := decode(&cs.blk)
	if err == nil {
		cs.have |= bit
	}
	return v, err
}

func (cs *colScan) vec() []int8 {
	n := cs.blk.spans
	if k := len(cs.vecs); k > 0 {
		v := cs.vecs[k-1]
		cs.vecs = cs.vecs[:k-1]
		return slices.Grow(v[:0], n)[:n]
	}
	return make([]int8, n, max(n, 512))
}

func (cs *colScan) release(v []int8) { cs.vecs = append(cs.vecs, v) }

func fillTri(v []int8, t int8) []int8 {
	for i := range v {
		v[i] = t
	}
	return v
}

func allTri(v []int8, t int8) bool {
	for _, x := range v {
		if x != t {
			return false
		}
	}
	return true
}

// cond evaluates c on every span of the block.
func (cs *colScan) cond(c traceql.Cond) ([]int8, error) {
	switch c := c.(type) {
	case traceql.BoolLiteral:
		return fillTri(cs.vec(), triOf(bool(c))), nil
	case *traceql.Logical:
		l, err := cs.cond(c.L)
		if err != nil {
			return nil, err
		}
		// As in traceql: && is false when either side is, || true when
		// either side is; the right side is not needed if the left decides.
		if (c.And && allTri(l, triFalse)) || (!c.And && allTri(l, triTrue)) {
			return l, nil
		}
		r, err := cs.cond(c.R)
		if err != nil {
			return nil, err
		}
		for i, x := range r {
			y := l[i]
			switch {
			case c.And && (x == triFalse || y == triFalse):
				l[i] = triFalse
			case !c.And && (x == triTrue || y == triTrue):
				l[i] = triTrue
			case x == y:
			default:
				l[i] = triUnknown
			}
		}
		cs.release(r)
		return l, nil
	case *traceql.Compare:
		return cs.compare(c)
	}
	return fillTri(cs.vec(), triFalse), nil
}

func (cs *colScan) compare(c *traceql.Compare) ([]int8, error) {
	f := c.Field
	if f.Intrinsic.TraceLevel() {
		return fillTri(cs.vec(), triUnknown), nil
	}
	switch f.Intrinsic {
	case traceql.IntrinsicName, traceql.IntrinsicStatusMessage:
		col, bit := colName, uint32(haveNames)
		if f.Intrinsic == traceql.IntrinsicStatusMessage {
			col, bit = colMessage, haveMessages
		}
		dict, err := cs.dict()
		if err != nil {
			return nil, err
		}
		memo := cs.resetMemo(len(dict))
		v := cs.vec()
		if len(dict) <= cs.blk.spans/4 && noneHolds(c, dict, memo) {
			// The block's dictionary (names and messages) lacks every
			// string the condition accepts: no need for the span column.
			return fillTri(v, triFalse), nil
		}
		ids := cs.cd.ids[col]
		if cs.have&bit == 0 {
			if ids, err = cs.cd.idColumn(&cs.blk, col, len(dict)); err != nil {
				return nil, err
			}
			cs.have |= bit
		}
		for i, id := range ids {
			t := memo[id]
			if t == triUnset {
				t = triOf(c.Match(traceql.StringValue(dict[id]), true))
				memo[id] = t
			}
			v[i] = t
		}
		return v, nil
	case traceql.IntrinsicStatus, traceql.IntrinsicKind:
		col, typ := colStatus, traceql.TypeStatus
		if f.Intrinsic == traceql.IntrinsicKind {
			col, typ = colKind, traceql.TypeKind
		}
		codes, err := cs.cd.byteColumn(&cs.blk, col)
		if err != nil {
			return nil, err
		}
		var memo [256]int8
		fillTri(memo[:], triUnset)
		v := cs.vec()
		for i, code := range codes {
			t := memo[code]
			if t == triUnset {
				t = triOf(c.Match(traceql.Value{Type: typ, I: int64(code)}, true))
				memo[code] = t
			}
			v[i] = t
		}
		return v, nil
	case traceql.IntrinsicNestedSetParent:
		// Decided by root-ness when c.RootDecided, which version 1 blocks
		// do not record; other comparisons need the whole trace.
		v := cs.vec()
		if cs.blk.version < colVersion || !c.RootDecided() {
			return fillTri(v, triUnknown), nil
		}
		parents, err := cs.cd.byteColumn(&cs.blk, colParent)
		if err != nil {
			return nil, err
		}
		root, child := triOf(c.Match(traceql.IntValue(-1), true)), triOf(c.Match(traceql.IntValue(1), true))
		for i, p := range parents {
			v[i] = root
			if p != 0 {
				v[i] = child
			}
		}
		return v, nil
	case traceql.IntrinsicDuration:
		durs := cs.cd.durs
		if cs.have&haveDurations == 0 {
			var err error
			if durs, err = cs.cd.durations(&cs.blk); err != nil {
				return nil, err
			}
			cs.have |= haveDurations
		}
		v := cs.vec()
		if lit := c.Value; lit.Type == traceql.TypeDuration && c.Op <= traceql.CmpLte {
			// The common case without an interface to the evaluator per span.
			for i, d := range durs {
				v[i] = triOf(cmpHolds(c.Op, int64(d), lit.I))
			}
			return v, nil
		}
		for i, d := range durs {
			v[i] = triOf(c.Match(traceql.Value{Type: traceql.TypeDuration, I: int64(d)}, true))
		}
		return v, nil
	case traceql.IntrinsicNone:
		if f.Scope != traceql.ScopeEvent {
			return cs.compareAttr(c)
		}
	}
	// Span IDs, nested sets and events are not in the columns.
	return fillTri(cs.vec(), triUnknown), nil
}

// cmpHolds applies one of the ordering operators (CmpEq to CmpLte) to a and b.
func cmpHolds(op traceql.CmpOp, a, b int64) bool {
	switch op {
	case traceql.CmpEq:
		return a == b
	case traceql.CmpNeq:
		return a != b
	case traceql.CmpGt:
		return a > b
	case traceql.CmpGte:
		return a >= b
	case traceql.CmpLt:
		return a < b
	}
	return a <= b
}

// compareAttr evaluates a comparison on an attribute: the span's value,
// else (unscoped or resource scope) its resource's, as traceql.FieldValue
// looks them up.
func (cs *colScan) compareAttr(c *traceql.Compare) ([]int8, error) {
	f := c.Field
	v := cs.vec()
	if f.Scope == traceql.ScopeSpan {
		fillTri(v, triOf(c.Match(traceql.Value{}, false)))
	} else {
		res, err := cs.resources()
		if err != nil {
			return nil, err
		}
		rids := cs.cd.ids[colRes]
		if cs.have&haveResIDs == 0 {
			if rids, err = cs.cd.idColumn(&cs.blk, colRes, len(res)); err != nil {
				return nil, err
			}
			cs.have |= haveResIDs
		}
		memo := cs.resetMemo(len(res))
		rf := traceql.Field{Scope: traceql.ScopeResource, Name: f.Name}
		for i, r := range rids {
			t := memo[r]
			if t == triUnset {
				val, ok := traceql.FieldValue(rf, &traceql.Span{Resource: res[r]}, nil)
				t = triOf(c.Match(val, ok))
				memo[r] = t
			}
			v[i] = t
		}
	}
	if f.Scope == traceql.ScopeResource {
		return v, nil
	}
	col, err := cs.attr(f.Name)
	if err != nil || col == nil {
		return v, err
	}
	memo := cs.resetMemo(len(col.dict))
	if col.other == 0 && allTri(v, triFalse) && noneHolds(c, col.dict, memo) {
		// Every span is false whether it has the attribute (a string no
		// dictionary entry satisfies) or not.
		return v, nil
	}
	if err := col.decodeEntries(cs.blk.spans); err != nil {
		return nil, err
	}
	for j, i := range col.idx {
		if sid := col.sid[j]; sid >= 0 {
			t := memo[sid]
			if t == triUnset {
				t = triOf(c.Match(col.vals[j], true))
				memo[sid] = t
			}
			v[i] = t
			continue
		}
		v[i] = triOf(c.Match(col.vals[j], true))
	}
	return v, nil
}

// noneHolds reports whether c is false for every string in dict, filling
// memo (indexed like dict) as far as it evaluates.
func noneHolds(c *traceql.Compare, dict []string, memo []int8) bool {
	for id, s := range dict {
		t := triOf(c.Match(traceql.StringValue(s), true))
		memo[id] = t
		if t != triFalse {
			return false
		}
	}
	return true
}

func (cs *colScan) resetMemo(n int) []int8 {
	cs.memo = fillTri(slices.Grow(cs.memo[:0], n)[:n], triUnset)
	return cs.memo
}

func (cs *colScan) dict() ([]string, error) {
	return decodeOnce(cs, haveDict, cs.cd.dict, cs.cd.strings)
}

func (cs *colScan) resources() ([][]traceql.Attr, error) {
	return decodeOnce(cs, haveRes, cs.cd.res, cs.cd.resources)
}

// attr returns the block's column of span attribute key, nil if no span
// of the block has it.
func (cs *colScan) attr(key string) (*attrColumn, error) {
	if col, ok := cs.attrs[key]; ok {
		return col, nil
	}
	if cs.have&haveKeys == 0 {
		if _, err := cs.cd.attrKeys(&cs.blk); err != nil {
			return nil, err
		}
		cs.have |= haveKeys
	}
	if !slices.Contains(cs.cd.keys, key) {
		cs.attrs[key] = nil
		return nil, nil
	}
	b, err := cs.fetch(key)
	if err != nil || b == nil {
		// A key listed without its column: the block is being deleted.
		cs.attrs[key] = nil
		return nil, err
	}
	if cs.used == len(cs.owned) {
		cs.owned = append(cs.owned, attrColumns.Get().(*attrColumn))
	}
	col := cs.owned[cs.used]
	cs.used++
	if err := parseAttrColumn(col, b, cs.blk.spans); err != nil {
		return nil, err
	}
	cs.attrs[key] = col
	return col, nil
}
