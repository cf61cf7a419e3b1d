package traceql

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseMetricsGood(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{} | rate()`, `{ } | rate()`},
		{`{ status = error } | rate() by (resource.service.name)`, `{ status = error } | rate() by (resource.service.name)`},
		{`{} | count_over_time() by(name, span.http.method)`, `{ } | count_over_time() by (name, span.http.method)`},
		{`{} | sum_over_time(span.http.response.size)`, `{ } | sum_over_time(span.http.response.size)`},
		{`{} | min_over_time(duration) by (kind)`, `{ } | min_over_time(duration) by (kind)`},
		{`{} | max_over_time(.n)`, `{ } | max_over_time(.n)`},
		{`{} | avg_over_time(traceDuration) by (rootServiceName)`, `{ } | avg_over_time(traceDuration) by (rootServiceName)`},
		{`{} | quantile_over_time(duration, .99, .9, .5)`, `{ } | quantile_over_time(duration, 0.99, 0.9, 0.5)`},
		{`{} | quantile_over_time(span:duration, 0, 1, 0.25) by (span.x)`, `{ } | quantile_over_time(duration, 0, 1, 0.25) by (span.x)`},
		{`{} | histogram_over_time(duration) by (resource.service.name)`, `{ } | histogram_over_time(duration) by (resource.service.name)`},
		{`{ } | compare({ status = error })`, `{ } | compare({ status = error }, 10)`},
		{`{ } | compare({ status = error }, 25)`, `{ } | compare({ status = error }, 25)`},
		{`{ } | compare({ .a = 1 }, 5, 1713000000000000000, 1713000600000000000)`, `{ } | compare({ .a = 1 }, 5, 1713000000000000000, 1713000600000000000)`},
		{`{ } | compare({ .a = 1 }, 5, 0, 0)`, `{ } | compare({ .a = 1 }, 5)`},
		{`{} | rate() by (name) | topk(5)`, `{ } | rate() by (name) | topk(5)`},
		{`{} | count_over_time() | bottomk(1)`, `{ } | count_over_time() | bottomk(1)`},
		{`{} | rate() with(sample=true)`, `{ } | rate() with (sample=true)`},
		{`{} | rate() by (name) | topk(3) with (exemplars=5, span_sample=0.1, x="y")`, `{ } | rate() by (name) | topk(3) with (exemplars=5, span_sample=0.1, x="y")`},
		{`{} | rate() with(a=1) with(b=2s)`, `{ } | rate() with (a=1, b=2s)`},
		{`{ .a = 1 } >> { .b = 2 } | rate()`, `({ .a = 1 } >> { .b = 2 }) | rate()`},
		{`{ .a = 1 } | by(name) | count() > 2 | { status = error } | rate() by (name)`, `{ .a = 1 } | by(name) | count() > 2 | { status = error } | rate() by (name)`},
		{`{} | select(span.x) | avg_over_time(span.x)`, `{ } | select(span.x) | avg_over_time(span.x)`},
		{`{ duration > 1m30s } | rate()`, `{ duration > 1m30s } | rate()`},
	}
	for _, c := range cases {
		q, err := ParseMetrics(c.in)
		if err != nil {
			t.Errorf("ParseMetrics(%q): %v", c.in, err)
			continue
		}
		if got := q.String(); got != c.want {
			t.Errorf("ParseMetrics(%q) = %s, want %s", c.in, got, c.want)
		}
		q2, err := ParseMetrics(q.String())
		if err != nil || q2.String() != q.String() {
			t.Errorf("ParseMetrics(%q) (the rendering of %q) = %v, %v", q.String(), c.in, q2, err)
		}
	}
}

// TestParseMetricsFields checks the parsed structure, not only its rendering.
func TestParseMetricsFields(t *testing.T) {
	q, err := ParseMetrics(`{ .a = 1 } | by(name) | quantile_over_time(duration, .5, .95) by (resource.service.name, span.x) | topk(4)`)
	if err != nil {
		t.Fatal(err)
	}
	if q.Func != MetricsQuantileOverTime || q.Attr != (Field{Intrinsic: IntrinsicDuration}) ||
		!slices.Equal(q.Quantiles, []float64{.5, .95}) || q.TopK != 4 || q.BottomK != 0 || q.Compare != nil {
		t.Errorf("parsed %+v", q)
	}
	if want := []Field{{Scope: ScopeResource, Name: "service.name"}, {Scope: ScopeSpan, Name: "x"}}; !slices.Equal(q.By, want) {
		t.Errorf("By = %v, want %v", q.By, want)
	}
	if p, ok := q.Spans.(*Pipeline); !ok || len(p.Stages) != 1 || p.Input.String() != `{ .a = 1 }` {
		t.Errorf("Spans = %#v", q.Spans)
	}

	q, err = ParseMetrics(`{} | rate()`)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := q.Spans.(*Filter); !ok || q.Attr != (Field{}) || q.By != nil {
		t.Errorf("rate: %+v", q)
	}

	q, err = ParseMetrics(`{} | compare({ status = error }, 7, 1000000000, 2000000000)`)
	if err != nil {
		t.Fatal(err)
	}
	c := q.Compare
	if c == nil || c.TopN != 7 || !c.Start.Equal(time.Unix(1, 0)) || !c.End.Equal(time.Unix(2, 0)) || c.Selection.String() != `{ status = error }` {
		t.Errorf("compare: %+v", c)
	}

	for _, tc := range []struct {
		q    string
		n    int
		isOK bool
	}{
		{`{} | rate()`, 0, false},
		{`{} | rate() with(exemplars=7)`, 7, true},
		{`{} | rate() with(exemplars=-3)`, 0, true},
		{`{} | rate() with(exemplars=false)`, 0, true},
		{`{} | rate() with(exemplars=true)`, 0, false},
		{`{} | rate() with(exemplars=2, exemplars=9)`, 9, true},
	} {
		q, err := ParseMetrics(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := q.ExemplarsHint(); n != tc.n || ok != tc.isOK {
			t.Errorf("%s: ExemplarsHint = %d, %v; want %d, %v", tc.q, n, ok, tc.n, tc.isOK)
		}
	}
}

func TestParseMetricsBad(t *testing.T) {
	cases := []badParse{
		{``, "not a metrics query", false},
		{`{}`, "not a metrics query", false},
		{`{} | count() > 2`, "not a metrics query", false},
		{`{} with (sample=true)`, "not a metrics query", false},
		{`rate()`, "rate() must follow a spanset and |", false},
		{`{} | frobnicate_over_time()`, "unknown pipeline stage \"frobnicate_over_time\"", false},
		{`{} | rate(duration)`, "in rate(), which takes no arguments", false},
		{`{} | count_over_time(.a)`, "in count_over_time(), which takes no arguments", false},
		{`{} | sum_over_time()`, "sum_over_time() needs a numeric field", false},
		{`{} | min_over_time(name)`, "min_over_time() takes a numeric field", false},
		{`{} | max_over_time(1)`, "takes attributes or intrinsics", false},
		{`{} | avg_over_time(duration, .5)`, "avg_over_time() takes one field", false},
		{`{} | histogram_over_time(status)`, "histogram_over_time() takes a numeric field", false},
		{`{} | quantile_over_time()`, "quantile_over_time() needs a numeric field and quantiles", false},
		{`{} | quantile_over_time(duration)`, "needs at least one quantile", false},
		{`{} | quantile_over_time(duration, )`, "expected a quantile between 0 and 1", false},
		{`{} | quantile_over_time(duration, 1.5)`, "quantile 1.5 is outside [0, 1]", false},
		{`{} | quantile_over_time(duration, -0.1)`, "quantile -0.1 is outside [0, 1]", false},
		{`{} | quantile_over_time(duration, "x")`, "expected a quantile", false},
		{`{} | rate() | count()`, "only topk() or bottomk() may follow a metrics function, not count()", false},
		{`{} | rate() | rate()`, "only topk() or bottomk() may follow a metrics function, not rate()", false},
		{`{} | rate() |`, "expected topk() or bottomk() after |", false},
		{`{} | rate() | { }`, "expected topk() or bottomk()", false},
		{`{} | rate() by ()`, "by() needs at least one attribute", false},
		{`{} | rate() by`, "after by, expected (", false},
		{`{} | rate() by (1)`, "by() takes attributes or intrinsics", false},
		{`{} | rate() by (a,b,c)`, "unknown identifier", false},
		{`{} | rate() by (.a, .b, .c, .d, .e, .f)`, "by() with more than 5 fields", true},
		{`{} | histogram_over_time(duration) by (.a, .b, .c, .d, .e)`, "by() with more than 4 fields", true},
		{`{} | compare({ .a = 1 }) by (name)`, "compare() takes no by()", false},
		{`{} | compare()`, "compare() takes a spanset filter first", false},
		{`{} | compare(name)`, "compare() takes a spanset filter first", false},
		{`{} | compare({ .a = 1 } && { .b = 1 })`, "the spanset operator && in compare()'s selection", true},
		{`{} | compare({ .a = 1 }, 0)`, "between 1 and 1000", false},
		{`{} | compare({ .a = 1 }, 1001)`, "between 1 and 1000", false},
		{`{} | compare({ .a = 1 }, 1.5)`, "compare() takes integers", false},
		{`{} | compare({ .a = 1 }, 10, 5)`, "got 2 numbers", false},
		{`{} | compare({ .a = 1 }, 10, 1, 2, 3)`, "got 4 numbers", false},
		{`{} | compare({ .a = 1 }, 10, -1, 5)`, "positive integer unix nanoseconds", false},
		{`{} | compare({ .a = 1 }, 10, 5, 5)`, "end timestamp must be greater", false},
		{`{} | compare({ .a = 1 }, "x")`, "expected an integer", false},
		{`{} | rate() | topk(0)`, "topk() takes a positive integer", false},
		{`{} | rate() | bottomk(-2)`, "bottomk() takes a positive integer", false},
		{`{} | rate() | topk(1.5)`, "topk() takes a positive integer", false},
		{`{} | rate() | topk()`, "in topk(), expected a positive integer", false},
		{`{} | rate() | topk(2) | bottomk(1)`, "a second stage after topk()", true},
		{`{} | topk(2)`, "topk() must follow a metrics function", false},
		{`{} | rate() > 10`, "comparing a metrics result with a value", true},
		{`{} | rate() * 2`, "arithmetic on metrics results", true},
		{`({} | rate()) / ({} | rate())`, "a pipeline | inside parentheses", true},
		{`{} | rate() && {}`, "the operator && after a metrics function", true},
		{`{} | rate() {}`, "after a metrics function", false},
		{`{} | rate() with`, "after with, expected (", false},
		{`{} | rate() with ()`, "expected a hint name", false},
		{`{} | rate() with (sample)`, "after the hint sample, expected =", false},
		{`{} | rate() with (sample=span.x)`, "takes a value, not the field", false},
		{`{} | rate() with (a=1 b=2)`, "in with(), expected ) or ,", false},
		{`{} | rate() with (a=1) | topk(1)`, "hints come last", false},
		{"{}" + strings.Repeat(" | coalesce()", MaxPipelineStages) + " | rate()", "more than 128 pipeline stages", false},
		{strings.Repeat("(", 500) + "{}" + strings.Repeat(")", 500) + " | rate()", "deeper than", false},
		{`{ name = "x" } | rate() with (a="` + "\xff" + `")`, "UTF-8", false},
	}
	for _, c := range cases {
		_, err := ParseMetrics(c.in)
		if err == nil {
			t.Errorf("ParseMetrics(%q): no error", c.in)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("ParseMetrics(%q) = %T %v, want a *ParseError", c.in, err, err)
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ParseMetrics(%q) = %v, want it to mention %q", c.in, err, c.msg)
		}
		if got := errors.Is(err, ErrUnsupported); got != c.unsupported {
			t.Errorf("ParseMetrics(%q): errors.Is(ErrUnsupported) = %v, want %v", c.in, got, c.unsupported)
		}
	}
	// The search parser keeps refusing metrics queries.
	for _, q := range []string{`{} | rate()`, `{} | compare({ .a = 1 })`, `{} | quantile_over_time(duration, .5)`} {
		if _, err := Parse(q); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "in a search") && !strings.Contains(err.Error(), "compare") {
			t.Errorf("Parse(%q) = %v, want the metrics stage refused", q, err)
		}
	}
}

func FuzzParseMetrics(f *testing.F) {
	for _, s := range []string{`{} | rate()`, `{ status = error } | count_over_time() by (resource.service.name, name)`,
		`{} | quantile_over_time(duration, .5, 0.99, 1) by (span.x) | topk(3)`, `{} | histogram_over_time(duration)`,
		`{ .a > 1 } | by(name) | avg(duration) > 1ms | sum_over_time(span.n) | bottomk(2) with (sample=true, x="y")`,
		`{} | compare({ status = error }, 20, 1713000000000000000, 1713000600000000000)`,
		`{ duration > 1m30s } >> { kind = client } | min_over_time(traceDuration) with (exemplars=false)`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		m, err := ParseMetrics(q)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseMetrics(%q) = %T %v, want a *ParseError", q, err, err)
			}
			return
		}
		s := m.String()
		m2, err := ParseMetrics(s)
		if err != nil {
			t.Fatalf("ParseMetrics(%q) ok, but its rendering %q fails: %v", q, s, err)
		}
		if s2 := m2.String(); s2 != s {
			t.Fatalf("ParseMetrics(%q) renders %q, which renders %q", q, s, s2)
		}
		if _, err := Parse(q); err == nil {
			t.Fatalf("Parse accepts the metrics query %q", q)
		}
	})
}
