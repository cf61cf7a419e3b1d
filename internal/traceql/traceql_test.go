package traceql

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseGood(t *testing.T) {
	cases := []struct{ in, want string }{
		{``, `{ }`},
		{`{}`, `{ }`},
		{`{ }`, `{ }`},
		{`{ name = "GET /" }`, `{ name = "GET /" }`},
		{`{ .service.name = "shop" }`, `{ .service.name = "shop" }`},
		{`{ resource.service.name = "shop" && span.http.status_code >= 500 }`, `{ (resource.service.name = "shop" && span.http.status_code >= 500) }`},
		{`{ status = error || (kind = server && duration > 1.5s) }`, `{ (status = error || (kind = server && duration > 1.5s)) }`},
		{`{ 500 <= span.code }`, `{ span.code >= 500 }`},
		{`{ traceDuration > 100ms && rootName =~ "POST.*" && rootServiceName != "x" }`, `{ ((traceDuration > 100ms && rootName =~ "POST.*") && rootServiceName != "x") }`},
		{`{ span."my key" = true }`, `{ span."my key" = true }`},
		{`{ .a = 1.5 } && { .b != nil }`, `({ .a = 1.5 } && { .b != nil })`},
		{`{ .a = 1 } || { .b = 2 } && { .c = 3 }`, `({ .a = 1 } || ({ .b = 2 } && { .c = 3 }))`},
		{`{ .a = 1 } >> { .b = 2 } > { .c = 3 }`, `(({ .a = 1 } >> { .b = 2 }) > { .c = 3 })`},
		{`({ .a = 1 } || { .b = 2 }) >> {}`, `(({ .a = 1 } || { .b = 2 }) >> { })`},
		{`{ .a = 1 } << { } ~ { } < { }`, `((({ .a = 1 } << { }) ~ { }) < { })`},
		{"{ name = `a\\b` }", `{ name = "a\\b" }`},
		{`{ span:name = "x" && trace:duration > 1m && span:kind = client }`, `{ ((name = "x" && traceDuration > 1m0s) && kind = client) }`},
		{`{ .x = -3 && duration <= 10us }`, `{ (.x = -3 && duration <= 10µs) }`},
		{`{ true }`, `{ true }`},
		{`{ statusMessage = "boom" }`, `{ statusMessage = "boom" }`},
		{`{ duration > 1m30s && duration < 1h0m0.5s }`, `{ (duration > 1m30s && duration < 1h0m0.5s) }`}, // as Value.String renders durations
		{`{ duration > 1d }`, `{ duration > 24h0m0s }`},
		{`{ duration > 24h0m0s && duration < 1h30m }`, `{ (duration > 24h0m0s && duration < 1h30m0s) }`},
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
	}
}

func TestParseBad(t *testing.T) {
	cases := []badParse{
		{`{`, "unexpected end of query", false},
		{`{ name = }`, "where a field or value was expected", false},
		{`{ name = "x" `, "expected }", false},
		{`{ name = "x" } |`, "expected a pipeline stage after |", false},
		{`({ name = "x" } | count() > 2) && { }`, "a pipeline | inside parentheses", true},
		{`{ .a = 1 } ! >> { .b = 2 }`, "the negation operator !", true},
		{`{ .a = 1 } & > { }`, `unexpected "&"`, false},
		{`{ .a + 1 = 2 }`, "arithmetic operator +", true},
		{`{ link.name = "x" }`, "link scope", true},
		{`{ span.a = span.b }`, "comparing two fields", true},
		{`{ 1 = 1 }`, "comparing two literals", true},
		{`{ status = 1 }`, "status takes", false},
		{`{ kind > server }`, "kind takes", false},
		{`{ duration > "1s" }`, "expected a duration", false},
		{`{ name = 3 }`, "expected a string", false},
		{`{ .a =~ "(" }`, "invalid regular expression", false},
		{`{ .a =~ 3 }`, "must be a string", false},
		{`{ foo = 1 }`, "unknown identifier", false},
		{`{ name = "unterminated }`, "unterminated string", false},
		{`{ duration > 3parsecs }`, "invalid duration", false},
		{`count() > 1`, "count() is a pipeline stage and must follow a spanset", false},
		{`rate()`, "the metrics function rate() makes a metrics query", true},
		{`{ .a = 1 } { .b = 2 }`, "after a complete spanset expression", false},
		{`{ span.foo }`, "bare field", true},
		{strings.Repeat("(", 500) + "{}" + strings.Repeat(")", 500), "deeper than", false},
		{`{ parent = nil }`, "intrinsic parent", true},
		{`{ nestedSetParent = "x" }`, "expected a number", false},
		{`{ nestedSetParent < 1ms }`, "expected a number", false},
		{"{ name = \"\xff\" }", "UTF-8", false},
	}
	checkParseErrors(t, cases)
}

// testTrace: root(server, main) -> a(client) -> b(server, payments, error) ; root -> c(internal)
func testTrace() *Trace {
	mainRes := []Attr{{"service.name", StringValue("main")}}
	payRes := []Attr{{"service.name", StringValue("payments")}, {"region", StringValue("eu")}}
	ms := uint64(time.Millisecond)
	tr := &Trace{Spans: []Span{
		{SpanID: [8]byte{1}, Name: "POST /checkout", Kind: KindServer, StartUnixNano: 0, EndUnixNano: 900 * ms, Resource: mainRes,
			Attrs: []Attr{{"http.status_code", IntValue(500)}}},
		{SpanID: [8]byte{2}, ParentSpanID: [8]byte{1}, Name: "process_payment", Kind: KindClient, StartUnixNano: 10 * ms, EndUnixNano: 800 * ms, Resource: mainRes,
			Attrs: []Attr{{"amount", FloatValue(12.5)}}},
		{SpanID: [8]byte{3}, ParentSpanID: [8]byte{2}, Name: "charge", Kind: KindServer, StatusCode: StatusError, StartUnixNano: 20 * ms, EndUnixNano: 1000 * ms, Resource: payRes,
			Attrs: []Attr{{"retry", BoolValue(true)}, {"region", StringValue("us")}}},
		{SpanID: [8]byte{4}, ParentSpanID: [8]byte{1}, Name: "validate_cart", Kind: KindInternal, StartUnixNano: 1 * ms, EndUnixNano: 2 * ms, Resource: mainRes},
	}}
	tr.ComputeInfo()
	return tr
}

func TestEval(t *testing.T) {
	tr := testTrace()
	if tr.Info.RootName != "POST /checkout" || tr.Info.RootServiceName != "main" || tr.Info.Duration() != int64(time.Second) {
		t.Fatalf("info = %+v", tr.Info)
	}
	cases := []struct {
		q    string
		want []int
	}{
		{`{}`, []int{0, 1, 2, 3}},
		{`{ name = "charge" }`, []int{2}},
		{`{ name != "charge" }`, []int{0, 1, 3}},
		{`{ name =~ "POST.*" }`, []int{0}},
		{`{ name =~ "POST" }`, nil}, // fully anchored
		{`{ name !~ ".*_.*" }`, []int{0, 2}},
		{`{ status = error }`, []int{2}},
		{`{ status != error }`, []int{0, 1, 3}},
		{`{ kind = server }`, []int{0, 2}},
		{`{ duration > 500ms }`, []int{0, 1, 2}},
		{`{ duration <= 1ms }`, []int{3}},
		{`{ traceDuration >= 1s }`, []int{0, 1, 2, 3}},
		{`{ traceDuration > 1s }`, nil},
		{`{ rootName = "POST /checkout" && name = "charge" }`, []int{2}},
		{`{ rootServiceName = "payments" }`, nil},
		{`{ resource.service.name = "payments" }`, []int{2}},
		{`{ span.service.name = "payments" }`, nil},
		{`{ .region = "us" }`, []int{2}},         // span attribute wins over resource
		{`{ resource.region = "eu" }`, []int{2}}, // resource scope sees the resource
		{`{ .http.status_code >= 500 }`, []int{0}},
		{`{ .http.status_code = 500.0 }`, []int{0}},
		{`{ .http.status_code = "500" }`, nil},
		{`{ .amount > 12 && .amount < 13 }`, []int{1}},
		{`{ .retry = true }`, []int{2}},
		{`{ .retry != nil }`, []int{2}},
		{`{ .retry = nil }`, []int{0, 1, 3}},
		{`{ .missing != "x" }`, nil},
		{`{ name = "charge" } && { name = "validate_cart" }`, []int{2, 3}},
		{`{ name = "charge" } && { name = "nope" }`, nil},
		{`{ name = "charge" } || { name = "nope" }`, []int{2}},
		{`{ kind = server } >> { kind = server }`, []int{2}},
		{`{ name = "POST /checkout" } > { }`, []int{1, 3}},
		{`{ name = "POST /checkout" } > { name = "charge" }`, nil},
		{`{ name = "charge" } << { }`, []int{0, 1}},
		{`{ name = "charge" } < { }`, []int{1}},
		{`{ name = "process_payment" } ~ { }`, []int{3}},
		{`{ false }`, nil},
		{`{ nestedSetParent < 0 }`, []int{0}},
		{`{ nestedSetParent = -1 && true }`, []int{0}},
		{`{ 0 < nestedSetParent }`, []int{1, 2, 3}},
		{`{ nestedSetParent >= 1 }`, []int{1, 2, 3}},
		{`{ nestedSetParent != 1.5 }`, []int{0, 1, 2, 3}},
		{`{ nestedSetParent = nil }`, nil},
	}
	for _, c := range cases {
		e, err := Parse(c.q)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.q, err)
		}
		got, err := Eval(context.Background(), e, tr)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("Eval(%q) = %v, want %v", c.q, got, c.want)
		}
		// The pre-filters must never reject a trace that matches.
		if len(got) > 0 {
			if !PossibleInSpans(e, tr.Spans) {
				t.Errorf("PossibleInSpans(%q) = false for a matching trace", c.q)
			}
			if !PossibleForTrace(e, &tr.Info) {
				t.Errorf("PossibleForTrace(%q) = false for a matching trace", c.q)
			}
			// Any single span of the spanset must pass the per-batch filter on its own.
			if !PossibleInSpans(e, tr.Spans[got[0]:got[0]+1]) {
				t.Errorf("PossibleInSpans(%q) on matched span %d = false", c.q, got[0])
			}
		}
	}
}

func TestPrefilterRejects(t *testing.T) {
	tr := testTrace()
	for _, q := range []string{`{ name = "nope" }`, `{ traceDuration > 2s }`, `{ rootServiceName = "x" } && { }`} {
		e := MustParse(q)
		if PossibleInSpans(e, tr.Spans) && PossibleForTrace(e, &tr.Info) {
			t.Errorf("%q: neither pre-filter rejected a trace that cannot match", q)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{}`, `{ name = "x" && .a >= 1.5 }`, `{ status = error } >> { kind = client }`,
		`({ .a =~ "b.*" } || { resource.c != nil }) && { duration > 1ms }`, `{ span."x y" = true } | count() > 1`,
		`{ .a > 1 } | by(resource.service.name, name) | avg(duration) >= 2ms | select(span.b) | coalesce()`,
		`{} | { status = error } | min(span.n) < -1.5 | max(.n) != 3 | sum(traceDuration) = 1s`,
		`{ nestedSetParent < 0 && true } | select(nestedSetLeft, nestedSetRight)`, `{ nestedSetLeft > 2 } &>> { nestedSetParent != -1 }`,
		`{ } &> { } &<< { } &< { } &~ { }`, `{ } !>> { } !> { } !<< { } !< { } !~ { name !~ "x" }`,
		`{ event.exception.message = "x" && event:name != nil } | select(event.exception.type, event:timeSinceStart)`,
		`{ span:id = "1" && span:parentID != "0" && trace:id = "AB" }`,
		`{ status = error } | select(resource.service.name) with(most_recent=true, sample=0.5, n=-1)`} {
		f.Add(s)
	}
	for _, s := range drilldownSearches {
		f.Add(s)
	}
	tr := eventTrace()
	f.Fuzz(func(t *testing.T, q string) {
		e, h, err := ParseWithHints(q)
		if err != nil {
			return
		}
		// A parsed query re-parses from its own rendering, and evaluates without panicking.
		if _, err := Parse(e.String()); err != nil {
			t.Fatalf("Parse(%q) ok, but its rendering %q fails: %v", q, e.String(), err)
		}
		if _, h2, err := ParseWithHints(e.String() + " " + h.String()); err != nil || h2.String() != h.String() {
			t.Fatalf("ParseWithHints(%q) ok, but its rendering %q %q gives %v, %v", q, e.String(), h.String(), h2, err)
		}
		if _, err := Eval(context.Background(), e, tr); err != nil {
			t.Fatalf("Eval(%q): %v", q, err)
		}
		if _, err := EvalSpansets(context.Background(), e, tr); err != nil {
			t.Fatalf("EvalSpansets(%q): %v", q, err)
		}
		PossibleInSpans(e, tr.Spans)
		PossibleForTrace(e, &tr.Info)
	})
}

// TestQueryLimits: long chains are refused at parse time, naming the limit.
func TestQueryLimits(t *testing.T) {
	chain := "{}" + strings.Repeat(" >> {}", MaxSpansetOps)
	if _, err := Parse(chain); err != nil {
		t.Errorf("%d operators: %v", MaxSpansetOps, err)
	}
	if _, err := Parse(chain + " >> {}"); err == nil || !strings.Contains(err.Error(), "spanset operators") {
		t.Errorf("%d operators: %v", MaxSpansetOps+1, err)
	}
	conds := "{ " + strings.Repeat(".a = 1 || ", MaxConditionOps+1) + ".a = 1 }"
	if _, err := Parse(conds); err == nil || !strings.Contains(err.Error(), "&& and || operators") {
		t.Errorf("%d condition operators: %v", MaxConditionOps+1, err)
	}
}

// deepTrace is a chain of n spans, each the parent of the next.
func deepTrace(n int) *Trace {
	tr := &Trace{Spans: make([]Span, n)}
	for i := range tr.Spans {
		binary.BigEndian.PutUint64(tr.Spans[i].SpanID[:], uint64(i+1))
		if i > 0 {
			tr.Spans[i].ParentSpanID = tr.Spans[i-1].SpanID
		}
	}
	return tr
}

// TestEvalStops: evaluation ends with the context's error, and the longest
// allowed chain over a 5,000-deep trace finishes (descendants are found in
// one pass per operator, not one walk per span).
func TestEvalStops(t *testing.T) {
	tr := deepTrace(5000)
	e := MustParse("{}" + strings.Repeat(" >> {}", MaxSpansetOps))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Eval(ctx, e, tr); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	got, err := Eval(context.Background(), e, tr)
	if err != nil || len(got) != 5000-MaxSpansetOps {
		t.Errorf("chain of %d over 5000 spans: %d spans, %v; want %d", MaxSpansetOps, len(got), err, 5000-MaxSpansetOps)
	}
}

// TestDescendantMatchesBruteForce compares >> with a walk up from every
// right-hand span, on random forests (with parent cycles and dangling
// parents) and random spansets.
func TestDescendantMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 26))
	for c := range 500 {
		n := 1 + rng.IntN(60)
		tr := cyclicForest(rng, n)
		var l, r []int
		for i := range n {
			if rng.IntN(3) == 0 {
				l = append(l, i)
			}
			if rng.IntN(2) == 0 {
				r = append(r, i)
			}
		}
		parent := func(i int) int {
			for j := range tr.Spans {
				if j != i && tr.Spans[j].SpanID == tr.Spans[i].ParentSpanID {
					return j
				}
			}
			return -1
		}
		var want []int
		for _, i := range r {
			seen := map[int]bool{}
			for p := parent(i); p >= 0 && !seen[p]; p = parent(p) {
				seen[p] = true
				if slices.Contains(l, p) {
					want = append(want, i)
					break
				}
			}
		}
		if len(r) == 0 {
			want = nil
		}
		if got := structural(OpDescendant, tr, l, r); !slices.Equal(got, want) {
			t.Fatalf("case %d: >> = %v, want %v (l %v, r %v)", c, got, want, l, r)
		}
	}
}

// badParse is a query Parse must refuse: msg is a substring of the error,
// unsupported whether it is ErrUnsupported (valid TraceQL Lookout lacks).
type badParse struct {
	in          string
	msg         string
	unsupported bool
}

func checkParseErrors(t *testing.T, cases []badParse) {
	t.Helper()
	for _, c := range cases {
		_, err := Parse(c.in)
		if err == nil {
			t.Errorf("Parse(%q): no error", c.in)
			continue
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Parse(%q) = %v, want it to mention %q", c.in, err, c.msg)
		}
		if !strings.HasPrefix(err.Error(), "parse error at line 1, col ") {
			t.Errorf("Parse(%q) = %v: not in Tempo's parse error style", c.in, err)
		}
		if got := errors.Is(err, ErrUnsupported); got != c.unsupported {
			t.Errorf("Parse(%q): errors.Is(ErrUnsupported) = %v, want %v", c.in, got, c.unsupported)
		}
	}
}

// cyclicForest returns a trace of n spans whose parents are random: roots,
// dangling parents, and any span, which may make cycles.
func cyclicForest(rng *rand.Rand, n int) *Trace {
	tr := &Trace{Spans: make([]Span, n)}
	for i := range tr.Spans {
		binary.BigEndian.PutUint64(tr.Spans[i].SpanID[:], uint64(i+1))
	}
	for i := range tr.Spans {
		switch x := rng.IntN(10); {
		case x == 0: // root
		case x == 1: // dangling parent
			tr.Spans[i].ParentSpanID = [8]byte{0xff}
		default: // any span, possibly making a cycle
			tr.Spans[i].ParentSpanID = tr.Spans[rng.IntN(n)].SpanID
		}
	}
	return tr
}
