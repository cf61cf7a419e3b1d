package traceql

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestParseStructural(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{ .a = 1 } &>> { .b = 2 }`, `({ .a = 1 } &>> { .b = 2 })`},
		{`{}&>{}`, `({ } &> { })`},
		{`{ } &<< { } &< { } &~ { }`, `((({ } &<< { }) &< { }) &~ { })`},
		{`{ } !>> { } !> { }`, `(({ } !>> { }) !> { })`},
		{`{ } !<< { } !< { } !~ { }`, `((({ } !<< { }) !< { }) !~ { })`},
		{`{ name !~ "x" } !~ { }`, `({ name !~ "x" } !~ { })`}, // a regex inside a filter, not-sibling between filters
		{`{ .a = 1 } && { } &>> { }`, `({ .a = 1 } && ({ } &>> { }))`},
		{`({nestedSetParent<0 && true } &>> { kind = server }) || ({nestedSetParent<0 && true })`,
			`(({ (nestedSetParent < 0 && true) } &>> { kind = server }) || { (nestedSetParent < 0 && true) })`},
	}
	for _, c := range cases {
		e, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got := e.String(); got != c.want {
			t.Errorf("Parse(%q) = %s, want %s", c.in, got, c.want)
		}
		if again, err := Parse(e.String()); err != nil || again.String() != e.String() {
			t.Errorf("%s does not re-parse to itself: %v, %v", e, again, err)
		}
	}
	checkParseErrors(t, []badParse{
		{`{ } &>> `, "unexpected end of query", false},
		{`{ } | count() > 1 &>> { }`, `unexpected "&>>" after a pipeline stage`, false},
		{`{ .a !> 1 }`, "bare field", true},
		{`{ .a = 1 &> { } }`, `unexpected "&>" in a spanset filter`, false},
	})
}

func TestEvalStructural(t *testing.T) {
	// testTrace: root(0, server) -> a(1, client) -> b(2, server, error); root -> c(3, internal)
	tr := testTrace()
	cases := []struct {
		q    string
		want []int
	}{
		{`{ kind = server } &>> { kind = server }`, []int{0, 2}},
		{`{ name = "POST /checkout" } &>> { status = error }`, []int{0, 2}},
		{`{ kind = client } &>> { }`, []int{1, 2}},
		{`{ name = "charge" } &>> { }`, nil},
		{`{ name = "POST /checkout" } &> { }`, []int{0, 1, 3}},
		{`{ name = "POST /checkout" } &> { name = "charge" }`, nil},
		{`{ name = "charge" } &<< { }`, []int{0, 1, 2}},
		{`{ name = "charge" } &< { }`, []int{1, 2}},
		{`{ name = "process_payment" } &~ { }`, []int{1, 3}},
		{`{ name = "charge" } &~ { }`, nil},
		{`{ kind = server } !>> { kind = server }`, []int{0}},
		{`{ kind = server } !>> { }`, []int{0}},
		{`{ name = "nope" } !>> { kind = server }`, []int{0, 2}}, // an empty left side keeps the right side
		{`{ kind = server } !> { }`, []int{0, 2}},
		{`{ } !< { }`, []int{2, 3}}, // leaves
		{`{ status = error } !< { status = error }`, []int{2}},
		{`{ name = "charge" } !<< { }`, []int{2, 3}},
		{`{ name = "process_payment" } !~ { }`, []int{0, 1, 2}},
		{`{ } !~ { name = "nope" }`, nil},
		{`({ kind = server && nestedSetParent < 0 } &>> { kind = server }) || ({ nestedSetParent < 0 })`, []int{0, 2}},
	}
	for _, c := range cases {
		e := MustParse(c.q)
		got, err := Eval(context.Background(), e, tr)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("Eval(%q) = %v, want %v", c.q, got, c.want)
		}
		if len(got) > 0 && !PossibleForTrace(e, &tr.Info) {
			t.Errorf("PossibleForTrace(%q) = false for a matching trace", c.q)
		}
		if len(got) > 0 && !PossibleInSpans(e, tr.Spans) {
			t.Errorf("PossibleInSpans(%q) = false for a matching trace", c.q)
		}
	}
	// A negated operator whose left side cannot match on trace-level fields
	// still matches: the pre-filter must not rule the trace out.
	e := MustParse(`{ rootServiceName = "nope" } !>> { kind = server }`)
	if !PossibleForTrace(e, &tr.Info) {
		t.Errorf("PossibleForTrace(%s) = false, but it matches every server span", e)
	}
}

// TestStructuralMatchesBruteForce compares every structural operator with
// its definition applied pair by pair, on random forests (with parent
// cycles and dangling parents) and random spansets: a plain operator keeps
// the right-side spans related to some left-side span, a union operator
// also the left-side spans related to some right-side span, and a negated
// operator the right-side spans related to none.
func TestStructuralMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	for c := range 1500 {
		n := 1 + rng.IntN(40)
		tr := cyclicForest(rng, n)
		par := make([]int, n)
		for i := range tr.Spans {
			par[i] = -1
			for j := range tr.Spans {
				if j != i && tr.Spans[j].SpanID == tr.Spans[i].ParentSpanID {
					par[i] = j
					break
				}
			}
		}
		parent := func(i int) int { return par[i] }
		// anc[d][a]: a is met walking up from d.
		anc := make([][]bool, n)
		for d := range anc {
			anc[d] = make([]bool, n)
			for p := parent(d); p >= 0 && !anc[d][p]; p = parent(p) {
				anc[d][p] = true
			}
		}
		ancestorOf := func(a, d int) bool { return anc[d][a] }
		// related(op, a, b): b, a right-side span, stands in op's relation
		// to a, a left-side span.
		related := func(op SpansetOperator, a, b int) bool {
			switch op {
			case OpDescendant:
				return ancestorOf(a, b)
			case OpAncestor:
				return ancestorOf(b, a)
			case OpChild:
				return parent(b) == a
			case OpParent:
				return parent(a) == b
			}
			return a != b && parent(a) >= 0 && parent(a) == parent(b)
		}
		var l, r []int
		for i := range n {
			if rng.IntN(3) == 0 {
				l = append(l, i)
			}
			if rng.IntN(2) == 0 {
				r = append(r, i)
			}
		}
		for op := OpDescendant; op <= OpNotSibling; op++ {
			base := op.baseRelation()
			var want []int
			for _, b := range r {
				hit := slices.ContainsFunc(l, func(a int) bool { return related(base, a, b) })
				if hit != op.Negated() {
					want = append(want, b)
				}
			}
			if op.Union() && len(want) > 0 {
				for _, a := range l {
					if slices.ContainsFunc(r, func(b int) bool { return related(base, a, b) }) && !slices.Contains(want, a) {
						want = append(want, a)
					}
				}
				slices.Sort(want)
			}
			if len(r) == 0 {
				want = nil
			}
			if got := relate(op, tr, l, r); !slices.Equal(got, want) {
				t.Fatalf("case %d: %s = %v, want %v (l %v, r %v)", c, op, got, want, l, r)
			}
		}
	}
}
