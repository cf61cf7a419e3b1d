package tracestore

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/traceql"
)

// TestSearchDrilldown runs the searches Grafana Traces Drilldown sends, and
// the rest of the syntax they brought (nested sets, union and negated
// structural operators, IDs), over the search fixture: trace 2's spans
// arrive in two requests, and trace 6 has no root.
func TestSearchDrilldown(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	searchFixture(t, s)
	cases := []struct {
		q    string
		want []byte // trace numbers, newest first
	}{
		{`{nestedSetParent<0 && true}`, []byte{5, 4, 3, 2, 1}},
		{`{nestedSetParent<0 && true && status = error}`, nil},
		{`{nestedSetParent<0 && true&& duration > 268ms}`, []byte{5, 2}},
		{`{nestedSetParent<0 && true} | select(span.http.route)`, []byte{5, 4, 3, 2, 1}},
		{`({nestedSetParent<0 && true } &>> { kind = server }) || ({nestedSetParent<0 && true }) | select(status, resource.service.name, name, nestedSetParent, nestedSetLeft, nestedSetRight)`, []byte{5, 4, 3, 2, 1}},
		{`{ nestedSetParent > 0 }`, []byte{2}}, // the orphan of trace 6 has 0
		{`{ nestedSetParent = 0 }`, []byte{6}},
		{`{ nestedSetLeft = 3 && nestedSetRight = 4 }`, []byte{2}},
		{`{ kind = server } &>> { status = error }`, []byte{2}},
		{`{ } !< { resource.service.name = "payments" }`, []byte{2}},
		{`{ kind = server } !>> { kind = server }`, []byte{4, 2, 1}},
		{`{ span:id = "cd00000000000003" }`, []byte{2}},
		{`{ span:parentID = "cd00000000000001" }`, []byte{6, 2}},
		{`{ trace:id = "AB000000000000000000000000000004" }`, []byte{4}},
	}
	for _, c := range cases {
		t.Run(c.q, func(t *testing.T) { searchFinds(t, s, c.q, c.want) })
	}
	// The structure query reports each returned span's nested-set numbers,
	// computed over the whole trace although it arrived in two requests.
	q := traceql.MustParse(`({nestedSetParent<0 && true } &>> { kind = server }) || ({nestedSetParent<0 && true })`)
	res, err := s.Search(context.Background(), SearchRequest{Query: q, Start: base.Add(2 * time.Second), End: base.Add(2 * time.Second)})
	if err != nil || len(res.Traces) != 1 {
		t.Fatal(res, err)
	}
	var got []string
	for _, sp := range res.Traces[0].SpanSets[0].Spans {
		got = append(got, fmt.Sprintf("%s %d %d %d", sp.Name, sp.NestedSetParent, sp.NestedSetLeft, sp.NestedSetRight))
	}
	if want := []string{"POST /checkout -1 1 6", "charge 2 3 4"}; !slices.Equal(got, want) {
		t.Errorf("spans = %q, want %q", got, want)
	}
	// A span-local query on a trace stored in one request reports the
	// numbers too (the fields of its conditions are reported).
	res, err = s.Search(context.Background(), SearchRequest{Query: traceql.MustParse(`{nestedSetParent<0 && true}`), Start: base.Add(4 * time.Second), End: base.Add(4 * time.Second)})
	if err != nil || len(res.Traces) != 1 {
		t.Fatal(res, err)
	}
	if sp := res.Traces[0].SpanSets[0].Spans[0]; sp.NestedSetParent != -1 || sp.NestedSetLeft != 1 || sp.NestedSetRight != 2 {
		t.Errorf("root of trace 4: nested set %d %d %d, want -1 1 2", sp.NestedSetParent, sp.NestedSetLeft, sp.NestedSetRight)
	}
}

// TestSearchEvents: event conditions and selections load the whole trace
// with its events (search records have none), also when the event is in
// another request than the span the query starts from.
func TestSearchEvents(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	ms := time.Millisecond
	root := makeTraces(spanSpec{trace: 7, span: 1, service: "shop", name: "GET /cart", kind: ptrace.SpanKindServer,
		status: ptrace.StatusCodeError, dur: 300 * ms})
	addEvent(root, "exception", 10*ms, map[string]any{"exception.type": "IOError", "exception.message": "connection refused"})
	child := makeTraces(spanSpec{trace: 7, span: 2, parent: 1, service: "db", name: "query", kind: ptrace.SpanKindClient,
		status: ptrace.StatusCodeError, start: 5 * ms, dur: 100 * ms})
	addEvent(child, "exception", 20*ms, map[string]any{"exception.type": "Timeout", "exception.message": "deadline exceeded"})
	other := makeTraces(spanSpec{trace: 8, span: 1, service: "shop", name: "GET /", kind: ptrace.SpanKindServer,
		status: ptrace.StatusCodeError, start: time.Second, dur: 10 * ms})
	// Trace 9 is stored in one request, which the search record decides
	// for span-local queries, unless they read events.
	single := makeTraces(spanSpec{trace: 9, span: 1, service: "shop", name: "POST /pay", kind: ptrace.SpanKindServer,
		status: ptrace.StatusCodeError, start: 2 * time.Second, dur: 10 * ms})
	addEvent(single, "exception", 2*time.Second+ms, map[string]any{"exception.type": "KeyError", "exception.message": "no such key"})
	for _, td := range []ptrace.Traces{root, child, other, single} {
		consume(t, s, td)
	}
	cases := []struct {
		q    string
		want []byte
	}{
		{`{nestedSetParent<0 && true && status = error} | select(resource.service.name, event.exception.message,event.exception.stacktrace,event.exception.type) with(most_recent=true)`, []byte{9, 8, 7}},
		{`{nestedSetParent<0 && true && status = error && event.exception.message = "connection refused"} | select(resource.service.name)`, []byte{7}},
		{`{nestedSetParent<0 && true && status = error && event.exception.message = "connection refused" && event.exception.type = "IOError"}`, []byte{7}},
		{`{nestedSetParent<0 && true && event.exception.type = "Timeout"}`, nil},
		{`{ event.exception.type = "Timeout" }`, []byte{7}}, // in the second request
		{`{ event:name = "exception" && resource.service.name = "db" }`, []byte{7}},
		{`{ event.exception.message = nil }`, []byte{8}},
		{`{nestedSetParent<0 && true && status = error && event.exception.type = "KeyError"}`, []byte{9}},
		{`{ event.exception.message != "no such key" }`, []byte{7}},
		{`{ event:timeSinceStart >= 15ms }`, []byte{7}},
	}
	for _, c := range cases {
		t.Run(c.q, func(t *testing.T) { searchFinds(t, s, c.q, c.want) })
	}
	// The exceptions list selects event fields: the reported spans carry
	// their events, so the fields can be read from them.
	q := traceql.MustParse(`{nestedSetParent<0 && true && status = error} | select(event.exception.message)`)
	res, err := s.Search(context.Background(), SearchRequest{Query: q, End: base.Add(500 * ms)})
	if err != nil || len(res.Traces) != 1 {
		t.Fatal(res, err)
	}
	sp := res.Traces[0].SpanSets[0].Spans[0]
	v, ok := traceql.FieldValue(traceql.SelectedFields(q)[0], &sp, nil)
	if !ok || v.S != "connection refused" {
		t.Errorf("event.exception.message of the reported root = %v, %v", v, ok)
	}
}

// addEvent adds an event to the first span of td, at the given offset from base.
func addEvent(td ptrace.Traces, name string, at time.Duration, attrs map[string]any) {
	e := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Events().AppendEmpty()
	e.SetName(name)
	e.SetTimestamp(pcommon.NewTimestampFromTime(base.Add(at)))
	if err := e.Attributes().FromRaw(attrs); err != nil {
		panic(err)
	}
}

// searchFinds checks that q finds the traces whose IDs end in want, in
// that order.
func searchFinds(t *testing.T, s *Store, query string, want []byte) {
	t.Helper()
	q, _, err := traceql.ParseWithHints(query)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Search(context.Background(), SearchRequest{Query: q})
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, m := range res.Traces {
		got = append(got, m.TraceID[15])
	}
	if !slices.Equal(got, want) {
		t.Errorf("got traces %v, want %v", got, want)
	}
}
