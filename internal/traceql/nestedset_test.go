package traceql

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// nsSpan is a span for the nested-set tables: one-letter span and parent
// IDs ("" for a root), a kind, and the expected numbers.
type nsSpan struct {
	id, par             string
	kind                int64
	left, right, parent int64
}

func nsTrace(spans []nsSpan) *Trace {
	id := func(s string) (b [8]byte) {
		if s != "" {
			b[0] = s[0]
		}
		return b
	}
	tr := &Trace{}
	for _, s := range spans {
		tr.Spans = append(tr.Spans, Span{SpanID: id(s.id), ParentSpanID: id(s.par), Kind: s.kind, Name: s.id})
	}
	return tr
}

func TestComputeNestedSets(t *testing.T) {
	cases := []struct {
		name  string
		spans []nsSpan
	}{
		{"single span", []nsSpan{{"a", "", 0, 1, 2, -1}}},
		{"children in stored order, parents after children", []nsSpan{
			{"a", "", 0, 1, 8, -1},
			{"c", "b", 0, 3, 4, 2},
			{"b", "a", 0, 2, 7, 1},
			{"d", "b", 0, 5, 6, 2},
		}},
		{"several roots number on", []nsSpan{
			{"a", "", 0, 1, 4, -1},
			{"b", "a", 0, 2, 3, 1},
			{"g", "", 0, 5, 8, -1},
			{"h", "g", 0, 6, 7, 5},
		}},
		{"missing parent: the subtree stays unnumbered", []nsSpan{
			{"a", "", 0, 1, 4, -1},
			{"b", "a", 0, 2, 3, 1},
			{"e", "x", 0, 0, 0, 0},
			{"f", "e", 0, 0, 0, 0},
		}},
		{"no root: nothing numbered", []nsSpan{
			{"c", "b", 0, 0, 0, 0},
			{"b", "a", 0, 0, 0, 0},
		}},
		{"parent cycle beside a root", []nsSpan{
			{"a", "", 0, 1, 2, -1},
			{"b", "c", 0, 0, 0, 0},
			{"c", "b", 0, 0, 0, 0},
			{"d", "d", 0, 0, 0, 0},
		}},
		{"shared client and server span IDs pair by kind", []nsSpan{
			{"b", "a", KindClient, 2, 9, 1},
			{"c", "b", 0, 4, 5, 3},
			{"b", "b", KindServer, 3, 8, 2},
			{"d", "b", 0, 6, 7, 3},
			{"a", "", 0, 1, 10, -1},
		}},
		{"a child of a shared ID without a pairing kind hangs nowhere", []nsSpan{
			{"a", "", 0, 1, 6, -1},
			{"b", "a", KindInternal, 2, 3, 1},
			{"b", "a", KindInternal, 4, 5, 1},
			{"c", "b", KindInternal, 0, 0, 0},
		}},
		{"three spans with one ID: invalid, only roots keep -1", []nsSpan{
			{"a", "", 0, 0, 0, -1},
			{"b", "b", 0, 0, 0, 0},
			{"b", "b", 0, 0, 0, 0},
			{"b", "b", 0, 0, 0, 0},
		}},
	}
	for _, c := range cases {
		tr := nsTrace(c.spans)
		for i := range tr.Spans { // stale values are replaced
			tr.Spans[i].NestedSetLeft, tr.Spans[i].NestedSetRight, tr.Spans[i].NestedSetParent = 99, 99, 99
		}
		tr.ComputeNestedSets()
		for i, s := range c.spans {
			got := tr.Spans[i]
			if got.NestedSetLeft != s.left || got.NestedSetRight != s.right || got.NestedSetParent != s.parent {
				t.Errorf("%s: span %d (%s): left, right, parent = %d, %d, %d; want %d, %d, %d", c.name, i, s.id,
					got.NestedSetLeft, got.NestedSetRight, got.NestedSetParent, s.left, s.right, s.parent)
			}
		}
	}
}

// randomForest is n spans with random parents: roots, dangling parents,
// shared IDs (paired by kind) and cycles.
func randomForest(rng *rand.Rand, n int) *Trace {
	tr := &Trace{Spans: make([]Span, n)}
	for i := range tr.Spans {
		binary.BigEndian.PutUint64(tr.Spans[i].SpanID[:], uint64(i+1))
		tr.Spans[i].Kind = int64(rng.IntN(4))
	}
	for i := range tr.Spans {
		switch x := rng.IntN(12); {
		case x < 2: // root
		case x == 2: // dangling parent
			tr.Spans[i].ParentSpanID = [8]byte{0xff}
		case x == 3 && i > 0: // shares the ID of an earlier span
			tr.Spans[i].SpanID = tr.Spans[rng.IntN(i)].SpanID
			tr.Spans[i].ParentSpanID = tr.Spans[rng.IntN(n)].SpanID
		case x < 6: // any span, possibly making a cycle
			tr.Spans[i].ParentSpanID = tr.Spans[rng.IntN(n)].SpanID
		default: // an earlier span: mostly trees
			if i > 0 {
				tr.Spans[i].ParentSpanID = tr.Spans[rng.IntN(i)].SpanID
			}
		}
	}
	return tr
}

// TestNestedSetsDescribeTheTree: on random forests, the numbers of the
// spans a root reaches are 1..2k without gaps or repeats, a span's
// nestedSetParent is its walk parent's left, and interval containment is
// exactly the ancestor relation of the walk; spans no root reaches are 0.
func TestNestedSetsDescribeTheTree(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 14))
	for c := range 2000 {
		tr := randomForest(rng, 1+rng.IntN(40))
		tr.ComputeNestedSets()
		spans := tr.Spans
		count := map[[8]byte]int{}
		invalid := false
		for i := range spans {
			count[spans[i].SpanID]++
			invalid = invalid || count[spans[i].SpanID] > 2
		}
		byID, _ := newSpanIndex(spans)
		// Reachability from the roots by walking up the walk parents.
		parent := func(i int) int { return int(nestedSetParentOf(spans, byID, i)) }
		reached := func(i int) bool {
			for n := 0; n <= len(spans); n++ {
				if spans[i].isRoot() {
					return true
				}
				if i = parent(i); i < 0 {
					return false
				}
			}
			return false // a cycle
		}
		ancestor := func(a, d int) bool {
			for p, n := parent(d), 0; p >= 0 && n <= len(spans); p, n = parent(p), n+1 {
				if p == a {
					return true
				}
			}
			return false
		}
		var bounds []int64
		for i := range spans {
			s := spans[i]
			if s.isRoot() != (s.NestedSetParent == -1) {
				t.Fatalf("case %d span %d: root %v but nestedSetParent %d", c, i, s.isRoot(), s.NestedSetParent)
			}
			if invalid || !reached(i) {
				if s.NestedSetLeft != 0 || s.NestedSetRight != 0 || (!s.isRoot() && s.NestedSetParent != 0) {
					t.Fatalf("case %d span %d: unreached but numbered %+v", c, i, s)
				}
				continue
			}
			bounds = append(bounds, s.NestedSetLeft, s.NestedSetRight)
			if p := parent(i); p >= 0 && s.NestedSetParent != spans[p].NestedSetLeft {
				t.Fatalf("case %d span %d: nestedSetParent %d, parent's left %d", c, i, s.NestedSetParent, spans[p].NestedSetLeft)
			}
			for j := range spans {
				d := spans[j]
				if j == i || d.NestedSetLeft == 0 {
					continue
				}
				contains := s.NestedSetLeft < d.NestedSetLeft && d.NestedSetRight < s.NestedSetRight
				if contains != ancestor(i, j) {
					t.Fatalf("case %d: span %d contains %d: %v, ancestor: %v", c, i, j, contains, ancestor(i, j))
				}
			}
		}
		slices.Sort(bounds)
		for k, b := range bounds {
			if b != int64(k+1) {
				t.Fatalf("case %d: bounds %v are not 1..%d", c, bounds, len(bounds))
			}
		}
	}
}

func TestRootDecided(t *testing.T) {
	cases := map[string]bool{
		`nestedSetParent < 0`:    true,
		`nestedSetParent<0`:      true,
		`nestedSetParent = -1`:   true,
		`nestedSetParent != -1`:  true,
		`nestedSetParent >= 0`:   true,
		`nestedSetParent <= -1`:  true,
		`nestedSetParent > -1`:   true,
		`nestedSetParent < -0.5`: true,
		`nestedSetParent > -5`:   true,
		`nestedSetParent != nil`: true,
		`-1 = nestedSetParent`:   true,
		`nestedSetParent > 0`:    false, // a span whose parent is missing has 0
		`nestedSetParent = 0`:    false,
		`nestedSetParent < 1`:    false,
		`nestedSetParent = 1`:    false,
		`nestedSetParent >= 1`:   false,
		`nestedSetParent < 0.5`:  false,
		`nestedSetLeft < 0`:      false, // only nestedSetParent is decided by the root
		`nestedSetRight > 0`:     false,
	}
	for cond, want := range cases {
		e := MustParse("{ " + cond + " }")
		c := e.(*Filter).Cond.(*Compare)
		if c.byRoot != want || rootDecided(c) != want {
			t.Errorf("%s: decided by the root: %v, want %v", cond, c.byRoot, want)
		}
		if SpanLocal(e) != want {
			t.Errorf("SpanLocal(%s) = %v, want %v", cond, SpanLocal(e), want)
		}
	}
}

// TestRootDecidedOnPartialTraces: on random traces, a root-decided
// comparison evaluated span by span (each span alone, nested sets never
// computed) agrees with the whole trace's evaluation, and every other
// nested-set comparison is unknown to PossibleInSpans on a lone span
// rather than wrong.
func TestRootDecidedOnPartialTraces(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	ops := []string{"=", "!=", "<", "<=", ">", ">="}
	fields := []string{"nestedSetParent", "nestedSetLeft", "nestedSetRight"}
	for c := range 3000 {
		q := fmt.Sprintf("{ %s %s %d }", fields[rng.IntN(3)], ops[rng.IntN(len(ops))], rng.IntN(7)-3)
		e := MustParse(q)
		tr := randomForest(rng, 1+rng.IntN(30))
		partial := slices.Clone(tr.Spans) // no nested sets
		got, err := Eval(context.Background(), e, tr)
		if err != nil {
			t.Fatal(err)
		}
		for i := range partial {
			alone := PossibleInSpans(e, partial[i:i+1])
			if SpanLocal(e) && alone != slices.Contains(got, i) {
				t.Fatalf("case %d, %s: span %d alone %v, in the whole trace %v", c, q, i, alone, slices.Contains(got, i))
			}
			if slices.Contains(got, i) && !alone {
				t.Fatalf("case %d, %s: span %d matches but the batch pre-filter rejects it", c, q, i)
			}
		}
		if !SpanLocal(e) && !PossibleInSpans(e, partial) {
			t.Fatalf("case %d, %s: a comparison that needs the whole trace is not unknown on a part of it", c, q)
		}
	}
}

func TestEvalNestedSets(t *testing.T) {
	// testTrace: root(0) -> a(1) -> b(2); root -> c(3). Walk: root 1..8,
	// a 2..5, b 3..4, c 6..7.
	tr := testTrace()
	cases := []struct {
		q    string
		want []int
	}{
		{`{ nestedSetParent < 0 }`, []int{0}},
		{`{ nestedSetParent<0 && true }`, []int{0}},
		{`{ nestedSetParent = 1 }`, []int{1, 3}},
		{`{ nestedSetLeft = 3 && nestedSetRight = 4 }`, []int{2}},
		{`{ nestedSetLeft > 1 && nestedSetRight < 6 }`, []int{1, 2}},
		{`{ nestedSetParent != nil }`, []int{0, 1, 2, 3}},
		{`{ nestedSetParent = nil }`, nil},
	}
	for _, c := range cases {
		got, err := Eval(context.Background(), MustParse(c.q), tr)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("Eval(%q) = %v, want %v", c.q, got, c.want)
		}
	}
	// select() of nested sets reads the computed values.
	tr = testTrace()
	sets, err := EvalSpansets(context.Background(), MustParse(`{ name = "charge" } | select(nestedSetLeft, nestedSetRight, nestedSetParent)`), tr)
	if err != nil || len(sets) != 1 {
		t.Fatal(sets, err)
	}
	s := &tr.Spans[sets[0].Spans[0]]
	var vals []int64
	for _, f := range SelectedFields(MustParse(`{} | select(nestedSetLeft, nestedSetRight, nestedSetParent)`)) {
		v, ok := FieldValue(f, s, &tr.Info)
		if !ok || v.Type != TypeInt {
			t.Fatalf("%s: %v %v", f, v, ok)
		}
		vals = append(vals, v.I)
	}
	if !slices.Equal(vals, []int64{3, 4, 2}) {
		t.Errorf("charge's nested set = %v, want [3 4 2]", vals)
	}
}

// BenchmarkComputeNestedSets numbers a 1,000-span trace shaped like a
// service call tree (each span the child of an earlier one).
func BenchmarkComputeNestedSets(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	tr := &Trace{Spans: make([]Span, 1000)}
	for i := range tr.Spans {
		binary.BigEndian.PutUint64(tr.Spans[i].SpanID[:], uint64(i+1))
		if i > 0 {
			tr.Spans[i].ParentSpanID = tr.Spans[rng.IntN(i)].SpanID
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.ComputeNestedSets()
	}
}
