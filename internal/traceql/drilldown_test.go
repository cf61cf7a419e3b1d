package traceql

import (
	"context"
	"slices"
	"testing"
)

// drilldownSearches are the search (non-metrics) queries Grafana Traces
// Drilldown sends, with its default variables substituted and its spacing
// kept (notes: /work/notes/tempo-metrics.md, "Drilldown queries").
var drilldownSearches = []string{
	`{nestedSetParent<0 && true}`,
	`{nestedSetParent<0 && true && status = error}`,
	`{nestedSetParent<0 && true&& duration > 268ms}`,
	`{nestedSetParent<0 && true&& duration >= 268ms}`,
	`{nestedSetParent<0 && true} | select(span.http.route)`,
	`({nestedSetParent<0 && true } &>> { kind = server }) || ({nestedSetParent<0 && true }) | select(status, resource.service.name, name, nestedSetParent, nestedSetLeft, nestedSetRight)`,
	`({nestedSetParent<0 && true && status = error} &>> { status = error }) || ({nestedSetParent<0 && true && status = error}) | select(status, resource.service.name, name, nestedSetParent, nestedSetLeft, nestedSetRight)`,
	`({nestedSetParent<0 && true && duration > 268ms} &>> { duration > 81ms }) || ({nestedSetParent<0 && true && duration > 268ms}) | select(status, resource.service.name, name, nestedSetParent, nestedSetLeft, nestedSetRight)`,
	`{nestedSetParent<0 && true && status = error} | select(resource.service.name, event.exception.message,event.exception.stacktrace,event.exception.type) with(most_recent=true)`,
	`{nestedSetParent<0 && true && status = error && event.exception.message = "connection refused"} | select(resource.service.name)`,
	`{nestedSetParent<0 && true && status = error && event.exception.message = "connection refused" && event.exception.type = "IOError"}`,
}

// TestDrilldownSearches: every Drilldown search parses, re-parses from its
// rendering, and evaluates as Tempo would on a small trace whose root is
// the error (so the error and exception variants match too).
func TestDrilldownSearches(t *testing.T) {
	// Root server span (error, exception event) -> client -> server.
	tr := eventTrace()
	tr.Spans[0].StatusCode = StatusError
	tr.Spans[0].Events = tr.Spans[2].Events[:1]
	want := [][]int{
		{0},       // root spans
		{0},       // erroring roots
		{0},       // roots slower than 268ms (900ms)
		{0},       // …at least 268ms
		{0},       // roots, selecting a field
		{0, 2},    // roots and the server spans below them
		{0, 2},    // erroring roots and the errors below them
		{0, 1, 2}, // slow roots and the spans over 81ms below them
		{0},       // erroring roots, selecting their exceptions
		{0},       // roots with that exception message
		{0},       // …and type
	}
	for i, q := range drilldownSearches {
		e, h, err := ParseWithHints(q)
		if err != nil {
			t.Errorf("ParseWithHints(%q): %v", q, err)
			continue
		}
		if again, err := Parse(e.String()); err != nil || again.String() != e.String() {
			t.Errorf("%q renders as %s, which does not re-parse to itself: %v", q, e, err)
		}
		if h != nil {
			if v, ok := h.Bool("most_recent"); !ok || !v {
				t.Errorf("%q: hints %v", q, h)
			}
		}
		got, err := Eval(context.Background(), e, tr)
		if err != nil || !slices.Equal(got, want[i]) {
			t.Errorf("Eval(%q) = %v, want %v", q, got, want[i])
		}
	}
	// The structure query reports the walk's numbers for the spans it returns.
	sets, err := EvalSpansets(context.Background(), MustParse(drilldownSearches[5]), tr)
	if err != nil || len(sets) != 1 {
		t.Fatal(sets, err)
	}
	fields := SelectedFields(MustParse(drilldownSearches[5]))
	var got [][3]int64
	for _, i := range sets[0].Spans {
		var ns [3]int64
		for j, f := range fields[3:] {
			v, _ := FieldValue(f, &tr.Spans[i], &tr.Info)
			ns[j] = v.I
		}
		got = append(got, ns)
	}
	if want := [][3]int64{{-1, 1, 8}, {2, 3, 4}}; !slices.Equal(got, want) {
		t.Errorf("nestedSetParent, nestedSetLeft, nestedSetRight = %v, want %v", got, want)
	}
}
