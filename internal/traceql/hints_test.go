package traceql

import (
	"testing"
	"time"
)

func TestParseWithHints(t *testing.T) {
	cases := []struct {
		in, expr string
		hints    Hints
	}{
		{`{} with(most_recent=true)`, `{ }`, Hints{"most_recent": BoolValue(true)}},
		{`{} with (most_recent = true)`, `{ }`, Hints{"most_recent": BoolValue(true)}},
		{`{ status = error } | select(span.a) with(most_recent=true)`, `{ status = error } | select(span.a)`, Hints{"most_recent": BoolValue(true)}},
		{`{ .a = 1 } >> { } with(sample=0.1, exemplars=10, job_size=1s, mode="x", k=error)`, `({ .a = 1 } >> { })`, Hints{
			"sample": FloatValue(0.1), "exemplars": IntValue(10), "job_size": {Type: TypeDuration, I: int64(time.Second)},
			"mode": StringValue("x"), "k": {Type: TypeStatus, I: StatusError}}},
		{`{} with(a=1, a=2)`, `{ }`, Hints{"a": IntValue(1)}},      // the first value of a name
		{`{} with(a=1) with(b=2)`, `{ }`, Hints{"b": IntValue(2)}}, // the last clause
		{`{ name = "with" }`, `{ name = "with" }`, nil},            // no clause
		{`{} | count() > 1 with(x=-1)`, `{ } | count() > 1`, Hints{"x": IntValue(-1)}},
	}
	for _, c := range cases {
		e, h, err := ParseWithHints(c.in)
		if err != nil {
			t.Errorf("ParseWithHints(%q): %v", c.in, err)
			continue
		}
		if e.String() != c.expr || len(h) != len(c.hints) {
			t.Errorf("ParseWithHints(%q) = %s %v, want %s %v", c.in, e, h, c.expr, c.hints)
			continue
		}
		for k, v := range c.hints {
			if h[k] != v {
				t.Errorf("ParseWithHints(%q): hint %s = %v, want %v", c.in, k, h[k], v)
			}
		}
		// The rendering of the query and its hints parses back to both.
		again, h2, err := ParseWithHints(e.String() + " " + h.String())
		if err != nil || again.String() != e.String() || h2.String() != h.String() {
			t.Errorf("%s %s does not re-parse: %v %v %v", e, h, again, h2, err)
		}
		// Parse accepts and drops the hints.
		if e2, err := Parse(c.in); err != nil || e2.String() != c.expr {
			t.Errorf("Parse(%q) = %v, %v", c.in, e2, err)
		}
	}
	if v, ok := (Hints{"most_recent": BoolValue(true)}).Bool("most_recent"); !v || !ok {
		t.Error("Bool(most_recent) is not true")
	}
	if _, ok := (Hints{"most_recent": IntValue(1)}).Bool("most_recent"); ok {
		t.Error("Bool of an int hint is ok")
	}
	checkParseErrors(t, []badParse{
		{`{} with`, `after with, expected (`, false},
		{`{} with()`, "expected a hint name", false},
		{`{} with(most_recent)`, "after the hint most_recent, expected =", false},
		{`{} with(most_recent=)`, "where a field or value was expected", false},
		{`{} with(a=span.x)`, "the hint a takes a literal value", false},
		{`{} with(a=nil)`, "the hint a takes a literal value", false},
		{`{} with(span.a=1)`, "expected a hint name", false},
		{`{} with(a=1 b=2)`, "expected ) or ,", false},
		{`{} with(a=1) {}`, "after with(…), which must end the query", false},
		{`{} with(a=1) | count() > 1`, `unexpected "|" after with(…)`, false},
	})
}
