package traceql

import (
	"context"
	"slices"
	"testing"
	"time"
)

// eventTrace is testTrace with events: charge (2) records two exceptions,
// process_payment (1) a plain event.
func eventTrace() *Trace {
	tr := testTrace()
	ms := uint64(time.Millisecond)
	tr.Spans[2].Events = []Event{
		{Name: "exception", TimeUnixNano: 30 * ms, Attrs: []Attr{
			{"exception.type", StringValue("IOError")}, {"exception.message", StringValue("connection refused")}}},
		{Name: "exception", TimeUnixNano: 40 * ms, Attrs: []Attr{
			{"exception.type", StringValue("Timeout")}, {"exception.message", StringValue("deadline exceeded")}, {"attempt", IntValue(2)}}},
	}
	tr.Spans[1].Events = []Event{{Name: "retry", TimeUnixNano: 5 * ms, Attrs: []Attr{{"attempt", IntValue(1)}}}}
	return tr
}

func TestParseEvents(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{ event.exception.message = "x" }`, `{ event.exception.message = "x" }`},
		{`{ event."my key" != nil }`, `{ event."my key" != nil }`},
		{`{ event:name = "exception" && event:timeSinceStart > 1ms }`, `{ (event:name = "exception" && event:timeSinceStart > 1ms) }`},
		{`{ event:timeSinceStart > -5s }`, `{ event:timeSinceStart > -5s }`},
		{`{} | select(event.exception.type, event:name)`, `{ } | select(event.exception.type, event:name)`},
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
		if !NeedsEvents(e) {
			t.Errorf("NeedsEvents(%s) = false", e)
		}
	}
	checkParseErrors(t, []badParse{
		{`{ event:name = 1 }`, "expected a string", false},
		{`{ event:timeSinceStart > "1s" }`, "expected a duration", false},
		{`{ event:foo = 1 }`, "the intrinsic event:foo", true},
		{`{ event. = 1 }`, "attribute name missing", false},
	})
	for _, q := range []string{`{ name = "x" }`, `{ } | select(span.x)`, `{ .exception.message = "x" }`} {
		if NeedsEvents(MustParse(q)) {
			t.Errorf("NeedsEvents(%s) = true", q)
		}
	}
}

func TestEvalEvents(t *testing.T) {
	tr := eventTrace()
	cases := []struct {
		q    string
		want []int
	}{
		{`{ event.exception.message = "connection refused" }`, []int{2}},
		{`{ event.exception.message = "deadline exceeded" }`, []int{2}}, // not only the first event
		{`{ event.exception.type = "IOError" && event.exception.message = "connection refused" }`, []int{2}},
		{`{ event.exception.message =~ "conn.*" }`, []int{2}},
		{`{ event.exception.message != "connection refused" }`, []int{2}}, // the second event differs
		{`{ event.exception.message != nil }`, []int{2}},
		{`{ event.exception.message = nil }`, []int{0, 1, 3}},
		{`{ event.attempt >= 1 }`, []int{1, 2}},
		{`{ event.attempt > 1 }`, []int{2}},
		{`{ event:name = "exception" }`, []int{2}},
		{`{ event:name != "exception" }`, []int{1}},
		{`{ event:name != nil }`, []int{1, 2}},
		{`{ event:timeSinceStart >= 15ms }`, []int{2}}, // charge starts at 20ms: 10ms and 20ms
		{`{ event:timeSinceStart < 0s }`, []int{1}},    // process_payment starts at 10ms, its event is at 5ms
		{`{ event.exception.message = "x" }`, nil},
		{`{ span.exception.message = "connection refused" }`, nil}, // events are not span attributes
		{`{ nestedSetParent<0 && true && status = error && event.exception.message = "connection refused" }`, nil},
		{`{ status = error && event.exception.message = "connection refused" && event.exception.type = "IOError" }`, []int{2}},
	}
	for _, c := range cases {
		e := MustParse(c.q)
		got, err := Eval(context.Background(), e, tr)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("Eval(%q) = %v, want %v", c.q, got, c.want)
		}
		// A batch pre-filter, whose spans may lack their events, never
		// rules a match out.
		noEvents := slices.Clone(tr.Spans)
		for i := range noEvents {
			noEvents[i].Events = nil
		}
		if len(got) > 0 && !PossibleInSpans(e, noEvents[got[0]:got[0]+1]) {
			t.Errorf("PossibleInSpans(%q) = false on the matching span without its events", c.q)
		}
	}
	// As a value, an event field is the first event's that has it.
	s := &tr.Spans[2]
	for _, c := range []struct {
		field string
		want  Value
	}{
		{"event.exception.message", StringValue("connection refused")},
		{"event.attempt", IntValue(2)},
		{"event:name", StringValue("exception")},
		{"event:timeSinceStart", Value{Type: TypeDuration, I: int64(10 * time.Millisecond)}},
	} {
		f := SelectedFields(MustParse(`{} | select(` + c.field + `)`))[0]
		if v, ok := FieldValue(f, s, &tr.Info); !ok || v != c.want {
			t.Errorf("FieldValue(%s) = %v, %v; want %v", c.field, v, ok, c.want)
		}
	}
	if _, ok := FieldValue(Field{Scope: ScopeEvent, Name: "exception.type"}, &tr.Spans[0], &tr.Info); ok {
		t.Error("a span without events has an event field")
	}
}
