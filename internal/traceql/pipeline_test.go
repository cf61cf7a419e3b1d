package traceql

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestParsePipelineGood(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{ } | count() > 2`, `{ } | count() > 2`},
		{`{ span.http.status_code >= 200 } | count()>2`, `{ span.http.status_code >= 200 } | count() > 2`},
		{`{} | avg(duration) > 1s`, `{ } | avg(duration) > 1s`},
		{`{} | min(span.n) <= -1.5 | max(resource.n) != 3 | sum(.n) = 10`, `{ } | min(span.n) <= -1.5 | max(resource.n) != 3 | sum(.n) = 10`},
		{`{} | sum(traceDuration) < 1m`, `{ } | sum(traceDuration) < 1m0s`},
		{`{} | avg(duration) >= 10ms`, `{ } | avg(duration) >= 10ms`},
		{`{ .a = 1 } | by(resource.service.name)`, `{ .a = 1 } | by(resource.service.name)`},
		{`{} | by(resource.service.name, name) | count() > 1`, `{ } | by(resource.service.name, name) | count() > 1`},
		{`{} | select(span.http.url, status, resource.x)`, `{ } | select(span.http.url, status, resource.x)`},
		{`{} | by(name) | coalesce()`, `{ } | by(name) | coalesce()`},
		{`{ .a = 1 } >> { .b = 2 } | { status = error } | count() = 1`, `({ .a = 1 } >> { .b = 2 }) | { status = error } | count() = 1`},
		{`({ .a = 1 } || { }) | count() >= 0.5`, `({ .a = 1 } || { }) | count() >= 0.5`},
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
		if _, ok := e.(*Pipeline); !ok {
			t.Errorf("Parse(%q) is a %T, want a *Pipeline", c.in, e)
		}
	}
}

func TestParsePipelineBad(t *testing.T) {
	cases := []badParse{
		{`{} |`, "expected a pipeline stage after |", false},
		{`{} | | count() > 1`, "where a pipeline stage was expected", false},
		{`{} | count()`, "count() must be compared with a value", false},
		{`{} | count() > "x"`, "cannot compare count() with \"x\"; expected a number", false},
		{`{} | count() > 1s`, "expected a number", false},
		{`{} | avg(duration) > 1`, "cannot compare avg(duration) with 1; expected a duration", false},
		{`{} | avg(span.n) > 1ms`, "expected a number", false},
		{`{} | avg() > 1`, "avg() needs a numeric field", false},
		{`{} | avg(name) > 1`, "avg() takes a numeric field", false},
		{`{} | min(status) > 1`, "min() takes a numeric field", false},
		{`{} | max("x") > 1`, "takes attributes or intrinsics", false},
		{`{} | count(duration) > 1`, "in count()", false},
		{`{} | count() =~ "x"`, "expected one of = != > >= < <=", false},
		{`{} | count() > span.n`, "comparing an aggregate with a field", true},
		{`{} | count() + 1 > 2`, "arithmetic operator +", true},
		{`{} | count() > 1 && avg(duration) > 1s`, "the operator && after a pipeline stage", true},
		{`{} | count() > 1 || { }`, "the operator || after a pipeline stage", true},
		{`{} | count() > 1 > { }`, "the operator > after a pipeline stage", true},
		{`{} | by()`, "by() needs at least one attribute", false},
		{`{} | by(span.a`, "in by(), expected ) or ,", false},
		{`{} | by span.a`, "after by, expected (", false},
		{`{} | select(1)`, "select() takes attributes or intrinsics", false},
		{`{} | coalesce(name)`, "coalesce(), which takes no arguments", false},
		{`{} | { .a = 1 } >> { .b = 1 }`, "the spanset operator >> inside a pipeline stage", true},
		{`{} | ({ .a = 1 })`, "a parenthesised pipeline stage", true},
		{`{} | rate()`, "the metrics function rate() makes a metrics query", true},
		{`{} | quantile_over_time(duration, .9)`, "the metrics function quantile_over_time()", true},
		{`{} | count_over_time() by (name)`, "the metrics function count_over_time()", true},
		{`{} | topk(5)`, "the function or keyword topk", true},
		{`{} | frobnicate()`, "unknown pipeline stage \"frobnicate\"", false},
		{`{} | by(link.name)`, "link scope", true},
		{`{} | by(name) { }`, "after a pipeline stage", false},
		{`{} | count() > 1 | by(nosuch)`, "unknown identifier", false},
		{"{}" + strings.Repeat(" | coalesce()", MaxPipelineStages+1), "more than 128 pipeline stages", false},
	}
	checkParseErrors(t, cases)
}

// TestEvalSpansets checks the pipeline stages on testTrace: spans 0, 1
// and 3 are from service main, span 2 from payments.
func TestEvalSpansets(t *testing.T) {
	tr := testTrace()
	str := func(v string) Value { return StringValue(v) }
	cases := []struct {
		q    string
		want []Spanset
	}{
		{`{}`, []Spanset{{Spans: []int{0, 1, 2, 3}}}},
		{`{ name = "nope" } | count() >= 0`, nil},
		{`{} | count() > 3`, []Spanset{{Spans: []int{0, 1, 2, 3}}}},
		{`{} | count() > 4`, nil},
		{`{} | avg(duration) > 600ms`, []Spanset{{Spans: []int{0, 1, 2, 3}}}}, // (900+790+980+1)/4 = 667.75ms
		{`{} | avg(duration) > 700ms`, nil},
		{`{} | max(duration) = 980ms | min(duration) = 1ms | sum(duration) = 2671ms`, []Spanset{{Spans: []int{0, 1, 2, 3}}}},
		{`{} | sum(span.http.status_code) = 500 | avg(.amount) = 12.5`, []Spanset{{Spans: []int{0, 1, 2, 3}}}},
		{`{} | avg(span.nosuch) >= 0`, nil},
		{`{} | by(resource.service.name)`, []Spanset{
			{Spans: []int{0, 1, 3}, Group: []GroupValue{{Field: Field{Scope: ScopeResource, Name: "service.name"}, Value: str("main"), Present: true}}},
			{Spans: []int{2}, Group: []GroupValue{{Field: Field{Scope: ScopeResource, Name: "service.name"}, Value: str("payments"), Present: true}}},
		}},
		{`{} | by(resource.service.name) | count() > 1`, []Spanset{
			{Spans: []int{0, 1, 3}, Group: []GroupValue{{Field: Field{Scope: ScopeResource, Name: "service.name"}, Value: str("main"), Present: true}}},
		}},
		{`{} | by(span.region) | { kind != internal }`, []Spanset{
			{Spans: []int{0, 1}, Group: []GroupValue{{Field: Field{Scope: ScopeSpan, Name: "region"}}}},
			{Spans: []int{2}, Group: []GroupValue{{Field: Field{Scope: ScopeSpan, Name: "region"}, Value: str("us"), Present: true}}},
		}},
		{`{} | by(resource.service.name) | coalesce() | count() = 4`, []Spanset{{Spans: []int{0, 1, 2, 3}}}},
		{`{ kind = server } | select(span.retry)`, []Spanset{{Spans: []int{0, 2}}}},
	}
	for _, c := range cases {
		got, err := EvalSpansets(context.Background(), MustParse(c.q), tr)
		if err != nil {
			t.Fatalf("%q: %v", c.q, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%q:\n got %v\nwant %v", c.q, got, c.want)
		}
		// Eval reports the union of the spansets' spans.
		spans, _ := Eval(context.Background(), MustParse(c.q), tr)
		var union []int
		for _, s := range c.want {
			union = append(union, s.Spans...)
		}
		slices.Sort(union)
		if !slices.Equal(spans, slices.Compact(union)) {
			t.Errorf("%q: Eval = %v, want %v", c.q, spans, union)
		}
	}
	if got := SelectedFields(MustParse(`{} | select(span.a, name) | select(span.a, resource.b)`)); fmt.Sprint(got) != fmt.Sprint([]Field{
		{Scope: ScopeSpan, Name: "a"}, {Intrinsic: IntrinsicName}, {Scope: ScopeResource, Name: "b"}}) {
		t.Errorf("SelectedFields = %v", got)
	}
}

// refSpan is the differential test's own model of a span.
type refSpan struct {
	name  string
	durMs int64
	n     float64 // span attribute n: an int, or a float with a fraction
	nSet  bool
	nInt  bool
	svc   string // resource service.name; "" is absent
}

// refStage is one pipeline stage of the reference, applied to spansets of
// span indexes.
type refStage func(tr []refSpan, sets [][]int) [][]int

func refCmp(op string, a, b float64) bool {
	switch op {
	case "=":
		return a == b
	case "!=":
		return a != b
	case ">":
		return a > b
	case ">=":
		return a >= b
	case "<":
		return a < b
	}
	return a <= b
}

// TestPipelineMatchesBruteForce: over random traces and random pipelines,
// the traces EvalSpansets matches, and their spansets, equal those of a
// reference written directly over the test's own span model.
func TestPipelineMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 2026))
	ops := []string{"=", "!=", ">", ">=", "<", "<="}
	names := []string{"a", "b", "c"}
	svcs := []string{"", "front", "back"}
	for c := range 3000 {
		// Random traces.
		traces := make([][]refSpan, 8)
		for i := range traces {
			for range 1 + rng.IntN(8) {
				s := refSpan{name: names[rng.IntN(3)], durMs: rng.Int64N(6), svc: svcs[rng.IntN(3)]}
				switch rng.IntN(3) {
				case 0:
					s.n, s.nSet, s.nInt = float64(rng.IntN(7)-3), true, true
				case 1:
					s.n, s.nSet = float64(rng.IntN(7)-3)+0.5, true
				}
				traces[i] = append(traces[i], s)
			}
		}
		// A random query and its reference.
		var q strings.Builder
		var input func(s refSpan) bool
		switch rng.IntN(4) {
		case 0:
			q.WriteString("{ }")
			input = func(refSpan) bool { return true }
		case 1:
			q.WriteString(`{ name != "c" }`)
			input = func(s refSpan) bool { return s.name != "c" }
		case 2:
			x := rng.IntN(5) - 2
			fmt.Fprintf(&q, "{ span.n > %d }", x)
			input = func(s refSpan) bool { return s.nSet && s.n > float64(x) }
		default:
			q.WriteString(`{ name = "a" } || { resource.service.name = "back" }`)
			input = func(s refSpan) bool { return s.name == "a" || s.svc == "back" }
		}
		var stages []refStage
		for range 1 + rng.IntN(4) {
			op := ops[rng.IntN(len(ops))]
			switch k := rng.IntN(8); k {
			case 0, 1: // count
				x := rng.IntN(5)
				fmt.Fprintf(&q, " | count() %s %d", op, x)
				stages = append(stages, func(_ []refSpan, sets [][]int) [][]int {
					var out [][]int
					for _, set := range sets {
						if refCmp(op, float64(len(set)), float64(x)) {
							out = append(out, set)
						}
					}
					return out
				})
			case 2, 3: // avg, min, max, sum over duration or span.n
				fn := []string{"avg", "min", "max", "sum"}[rng.IntN(4)]
				useDur := rng.IntN(2) == 0
				var lit float64
				if useDur {
					lit = float64(rng.IntN(12))
					fmt.Fprintf(&q, " | %s(duration) %s %dms", fn, op, int(lit))
				} else {
					lit = float64(rng.IntN(9)-4) / 2
					fmt.Fprintf(&q, " | %s(span.n) %s %s", fn, op, fmt.Sprint(lit))
				}
				stages = append(stages, func(tr []refSpan, sets [][]int) [][]int {
					var out [][]int
					for _, set := range sets {
						var vals []float64
						for _, i := range set {
							if useDur {
								vals = append(vals, float64(tr[i].durMs))
							} else if tr[i].nSet {
								vals = append(vals, tr[i].n)
							}
						}
						if len(vals) == 0 {
							continue
						}
						sorted := slices.Clone(vals)
						sort.Float64s(sorted)
						var agg float64
						switch fn {
						case "min":
							agg = sorted[0]
						case "max":
							agg = sorted[len(sorted)-1]
						default:
							for _, v := range vals {
								agg += v
							}
							if fn == "avg" {
								agg /= float64(len(vals))
							}
						}
						if useDur { // compare in nanoseconds, as the evaluator does
							agg *= 1e6
							if refCmp(op, agg, lit*1e6) {
								out = append(out, set)
							}
							continue
						}
						if refCmp(op, agg, lit) {
							out = append(out, set)
						}
					}
					return out
				})
			case 4, 5: // by
				which := rng.IntN(3)
				q.WriteString([]string{" | by(resource.service.name)", " | by(name)", " | by(span.n)"}[which])
				stages = append(stages, func(tr []refSpan, sets [][]int) [][]int {
					var out [][]int
					for _, set := range sets {
						groups := map[string]int{}
						first := len(out)
						for _, i := range set {
							var key string
							switch which {
							case 0:
								key = "svc=" + tr[i].svc
								if tr[i].svc == "" {
									key = "absent"
								}
							case 1:
								key = tr[i].name
							default:
								key = fmt.Sprint(tr[i].nSet, tr[i].n)
							}
							g, ok := groups[key]
							if !ok {
								g = len(out) - first
								groups[key] = g
								out = append(out, nil)
							}
							out[first+g] = append(out[first+g], i)
						}
					}
					return out
				})
			case 6:
				q.WriteString(" | coalesce()")
				stages = append(stages, func(_ []refSpan, sets [][]int) [][]int {
					seen := map[int]bool{}
					var all []int
					for _, set := range sets {
						for _, i := range set {
							if !seen[i] {
								seen[i] = true
								all = append(all, i)
							}
						}
					}
					sort.Ints(all)
					return [][]int{all}
				})
			default:
				q.WriteString(` | { duration >= 2ms }`)
				stages = append(stages, func(tr []refSpan, sets [][]int) [][]int {
					var out [][]int
					for _, set := range sets {
						var kept []int
						for _, i := range set {
							if tr[i].durMs >= 2 {
								kept = append(kept, i)
							}
						}
						if len(kept) > 0 {
							out = append(out, kept)
						}
					}
					return out
				})
			}
		}
		e, err := Parse(q.String())
		if err != nil {
			t.Fatalf("case %d: Parse(%q): %v", c, q.String(), err)
		}
		var gotIDs, wantIDs []int
		for ti, rt := range traces {
			// The reference.
			var in []int
			for i, s := range rt {
				if input(s) {
					in = append(in, i)
				}
			}
			var want [][]int
			if len(in) > 0 {
				want = [][]int{in}
				for _, st := range stages {
					if want = st(rt, want); len(want) == 0 {
						break
					}
				}
			}
			if len(want) > 0 {
				wantIDs = append(wantIDs, ti)
			}
			// The evaluator, on a Trace built from the same model.
			tr := &Trace{}
			for i, s := range rt {
				sp := Span{Name: s.name, StartUnixNano: uint64(i), EndUnixNano: uint64(i) + uint64(s.durMs)*uint64(time.Millisecond)}
				sp.SpanID[0] = byte(i + 1)
				if s.nSet {
					v := FloatValue(s.n)
					if s.nInt {
						v = IntValue(int64(s.n))
					}
					sp.Attrs = []Attr{{"n", v}}
				}
				if s.svc != "" {
					sp.Resource = []Attr{{"service.name", StringValue(s.svc)}}
				}
				tr.Spans = append(tr.Spans, sp)
			}
			tr.ComputeInfo()
			got, err := EvalSpansets(context.Background(), e, tr)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > 0 {
				gotIDs = append(gotIDs, ti)
			}
			var gotSets [][]int
			for _, s := range got {
				gotSets = append(gotSets, s.Spans)
			}
			if fmt.Sprint(gotSets) != fmt.Sprint(want) {
				t.Fatalf("case %d, %q, trace %d %+v: spansets %v, want %v", c, q.String(), ti, rt, gotSets, want)
			}
		}
		if !slices.Equal(gotIDs, wantIDs) {
			t.Fatalf("case %d, %q: matched traces %v, want %v", c, q.String(), gotIDs, wantIDs)
		}
	}
}
