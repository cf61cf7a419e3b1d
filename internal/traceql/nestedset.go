package traceql

import "math"

// Nested sets number a trace's spans as Tempo does (its vparquet4
// nested_set_model.go), so that nestedSetLeft, nestedSetRight and
// nestedSetParent mean what Grafana expects of them: a depth-first walk
// from each root in turn, roots and children in the order the spans are
// stored, counts up from 1, giving a span its nestedSetLeft on entering it
// and its nestedSetRight on leaving it. A span's nestedSetParent is its
// parent's nestedSetLeft, and -1 for a root (no parent span ID). So span a
// is an ancestor of span d exactly when a.left < d.left and d.right <
// a.right.
//
// Spans the walk does not reach keep 0 in all three: those whose parent is
// missing from the trace (and everything below them), and those in a parent
// cycle. A trace without a root has no numbering at all. As in Tempo, two
// spans may share an ID (Zipkin's shared client and server spans): a child
// of that ID then hangs under the one whose kind pairs with its own (a
// server span's parent is the client span, anyone else's the server span),
// and under neither when no kind pairs; three or more spans sharing an ID
// make the trace invalid and leave every span unnumbered. Unlike Tempo,
// which then gives roots 0 too, a root's nestedSetParent is always -1, so
// that whether a span is a root decides nestedSetParent < 0 on any part of
// a trace (see rootDecided).

// ComputeNestedSets fills the spans' NestedSetLeft, NestedSetRight and
// NestedSetParent from their span and parent IDs, replacing any values
// they had. Eval and EvalSpansets call it when a query refers to a
// nested-set field; it is for whole traces, since a span's numbers depend
// on every other span.
func (t *Trace) ComputeNestedSets() {
	spans := t.Spans
	if len(spans) == 0 {
		return
	}
	var roots []int
	for i := range spans {
		s := &spans[i]
		s.NestedSetLeft, s.NestedSetRight, s.NestedSetParent = 0, 0, 0
		if s.isRoot() {
			s.NestedSetParent = -1
			roots = append(roots, i)
		}
	}
	if len(roots) == 0 {
		return
	}
	byID, valid := newSpanIndex(spans)
	if !valid {
		return
	}
	// Children lists as one slice: the children of span i are
	// kids[first[i]:first[i+1]], in span order.
	parent := make([]int32, len(spans))
	count := make([]int32, len(spans)+1)
	for i := range spans {
		parent[i] = nestedSetParentOf(spans, byID, i)
		if p := parent[i]; p >= 0 {
			count[p+1]++
		}
	}
	for i := 1; i < len(count); i++ {
		count[i] += count[i-1]
	}
	first := count
	kids := make([]int32, first[len(spans)])
	next := make([]int32, len(spans))
	copy(next, first[:len(spans)])
	for i := range spans {
		if p := parent[i]; p >= 0 {
			kids[next[p]] = int32(i)
			next[p]++
		}
	}
	// The walk: visited[i] counts the children of i already entered. Only
	// spans reachable from a root are entered, and each once (its parent is
	// unique), so a cycle cannot trap it.
	bound := int64(1)
	visited := make([]int32, len(spans))
	var stack []int32
	for _, r := range roots {
		spans[r].NestedSetLeft = bound
		bound++
		stack = append(stack[:0], int32(r))
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			if k := first[n] + visited[n]; k < first[n+1] {
				visited[n]++
				c := kids[k]
				spans[c].NestedSetLeft = bound
				spans[c].NestedSetParent = spans[n].NestedSetLeft
				bound++
				stack = append(stack, c)
				continue
			}
			spans[n].NestedSetRight = bound
			bound++
			stack = stack[:len(stack)-1]
		}
	}
}

// spanIndex finds spans by ID, allowing two spans per ID.
type spanIndex struct {
	first map[[8]byte]int32 // the first span with an ID
	next  []int32           // the next span with span i's ID, or -1
}

// newSpanIndex indexes spans; valid is false when three share an ID.
func newSpanIndex(spans []Span) (x spanIndex, valid bool) {
	x = spanIndex{first: make(map[[8]byte]int32, len(spans)), next: make([]int32, len(spans))}
	for i := range spans {
		x.next[i] = -1
		f, ok := x.first[spans[i].SpanID]
		switch {
		case !ok:
			x.first[spans[i].SpanID] = int32(i)
		case x.next[f] >= 0:
			return x, false
		default:
			x.next[f] = int32(i)
		}
	}
	return x, true
}

// nestedSetParentOf returns the index of span i's parent for the nested-set
// walk, or -1: roots and spans whose parent is absent have none.
func nestedSetParentOf(spans []Span, byID spanIndex, i int) int32 {
	s := &spans[i]
	if s.isRoot() {
		return -1
	}
	a, ok := byID.first[s.ParentSpanID]
	switch {
	case !ok:
		return -1
	case byID.next[a] < 0:
		if int(a) == i {
			return -1 // its own parent: never reached from a root
		}
		return a
	}
	// Two spans have the parent's ID: Zipkin's shared client and server.
	want := int64(KindServer)
	if s.Kind == KindServer {
		want = KindClient
	}
	for _, c := range [2]int32{a, byID.next[a]} {
		if spans[c].Kind == want {
			return c
		}
	}
	return -1
}

func (s *Span) isRoot() bool { return s.ParentSpanID == [8]byte{} }

// isNestedSet reports whether i is one of the nested-set intrinsics.
func isNestedSet(i Intrinsic) bool {
	return i == IntrinsicNestedSetLeft || i == IntrinsicNestedSetRight || i == IntrinsicNestedSetParent
}

// rootDecided reports whether c, a comparison on nestedSetParent, has the
// same result for every value a non-root span can have: 0 when the walk
// does not reach it, else its parent's nestedSetLeft, at least 1. Whether
// the span is a root (nestedSetParent -1) then decides c, which needs no
// other span: `nestedSetParent < 0`, `= -1`, `!= -1`, `>= 0` and `<= -1`
// are decided so, while `> 0` is not (a span whose parent is missing has 0).
func rootDecided(c *Compare) bool {
	if c.Field.Intrinsic != IntrinsicNestedSetParent || c.Op == CmpRe || c.Op == CmpNre {
		return false
	}
	// The comparison with a constant changes its result over the integers
	// only next to the constant, so probing 0, 1, the largest value and
	// the integers around the constant covers every change.
	probe := func(x int64) bool { return c.match(IntValue(x), true) }
	want := probe(0)
	points := []int64{1, math.MaxInt64}
	var lit float64
	switch c.Value.Type {
	case TypeInt:
		lit = float64(c.Value.I)
	case TypeFloat:
		lit = c.Value.F
	}
	if !math.IsNaN(lit) && lit > -2 && lit < float64(math.MaxInt64/2) {
		for x := int64(math.Floor(lit)) - 1; x <= int64(math.Ceil(lit))+1; x++ {
			if x > 0 {
				points = append(points, x)
			}
		}
	}
	for _, x := range points {
		if probe(x) != want {
			return false
		}
	}
	return true
}
