package tracestore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/traceql"
)

// observed is one observation in a comparable form.
type observed struct {
	span  string // trace ID and span ID
	start uint64
	group string
	value float64
	has   bool
	ref   uint64
}

type collector struct {
	got []observed
}

func (c *collector) Observe(o *traceql.Observation) {
	g := ""
	for i, v := range o.Group {
		if o.Present[i] {
			g += v.String()
		}
		g += "|"
	}
	span := fmt.Sprintf("%x/", o.TraceID)
	if o.SpanID != ([8]byte{}) {
		span += fmt.Sprintf("%x", o.SpanID)
	}
	c.got = append(c.got, observed{span: span, start: o.StartUnixNano, group: g, value: o.Value, has: o.HasValue, ref: o.Ref})
}

func compareObserved(a, b observed) int {
	if a.span != b.span {
		if a.span < b.span {
			return -1
		}
		return 1
	}
	return 0
}

// searchView is the span as search sees it: strings and keys truncated,
// at most maxSearchAttrs attributes.
func searchView(attrs []traceql.Attr) []traceql.Attr {
	attrs = attrs[:min(len(attrs), maxSearchAttrs)]
	out := make([]traceql.Attr, len(attrs))
	for i, a := range attrs {
		a.Key = truncate(a.Key)
		if a.Value.Type == traceql.TypeString {
			a.Value.S = truncate(a.Value.S)
		}
		out[i] = a
	}
	return out
}

// bruteForce evaluates q over every whole trace and returns the
// observations ObserveSpans must make.
func bruteForce(t *testing.T, reqs []ptrace.Traces, q SpanQuery) []observed {
	t.Helper()
	traces := map[pcommon.TraceID][]traceql.Span{}
	for _, td := range reqs {
		for _, rs := range td.ResourceSpans().All() {
			res := searchView(attrsOf(rs.Resource().Attributes()))
			for _, sp := range rs.ScopeSpans().At(0).Spans().All() {
				one := spansFromTraces(singleSpan(rs, sp), nil)[0]
				one.Attrs, one.Resource = searchView(one.Attrs), res
				traces[sp.TraceID()] = append(traces[sp.TraceID()], one)
			}
		}
	}
	c := &collector{}
	o := traceql.Observation{Group: make([]traceql.Value, len(q.By)), Present: make([]bool, len(q.By))}
	for id, spans := range traces {
		tr := traceql.Trace{Spans: spans}
		tr.ComputeInfo()
		tr.Info.TraceID = id
		tr.ComputeNestedSets()
		sets, err := traceql.EvalSpansets(context.Background(), q.Spans, &tr)
		if err != nil {
			t.Fatal(err)
		}
		var idx []int
		for _, set := range sets {
			idx = append(idx, set.Spans...)
		}
		slices.Sort(idx)
		for _, i := range slices.Compact(idx) {
			sp := &tr.Spans[i]
			if sp.StartUnixNano < uint64(q.Start.UnixNano()) || sp.StartUnixNano >= uint64(q.End.UnixNano()) {
				continue
			}
			o.StartUnixNano, o.TraceID, o.SpanID = sp.StartUnixNano, id, sp.SpanID
			for k, f := range q.By {
				o.Group[k], o.Present[k] = traceql.FieldValue(f, sp, &tr.Info)
			}
			o.Value, o.HasValue = 0, false
			if q.Value != nil {
				if v, ok := traceql.FieldValue(*q.Value, sp, &tr.Info); ok {
					o.Value, o.HasValue = traceql.ObservedValue(v)
				}
			}
			c.Observe(&o)
		}
	}
	slices.SortFunc(c.got, compareObserved)
	return c.got
}

func singleSpan(rs ptrace.ResourceSpans, sp ptrace.Span) ptrace.Traces {
	td := ptrace.NewTraces()
	out := td.ResourceSpans().AppendEmpty()
	rs.Resource().CopyTo(out.Resource())
	sp.CopyTo(out.ScopeSpans().AppendEmpty().Spans().AppendEmpty())
	return td
}

// TestObserveSpansDifferential checks ObserveSpans, on the column blocks
// and on the search records alike, against the same query evaluated by
// brute force on every whole trace.
func TestObserveSpansDifferential(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Now: func() time.Time { return base.Add(30 * time.Minute) }, Retention: 24 * time.Hour})
	defer s.Close()
	rng := rand.New(rand.NewPCG(7, 9))
	var reqs []ptrace.Traces
	for i := range 16 {
		first := byte(i)
		if i%4 == 3 {
			first = byte(i - 1) // traces continued: several chunks
		}
		td := randomRequest(rng, 25, first, base.Add(time.Duration(i)*40*time.Second))
		if first != byte(i) {
			// Spans of their own, their parents among them.
			for _, rs := range td.ResourceSpans().All() {
				for _, sp := range rs.ScopeSpans().At(0).Spans().All() {
					sid, pid := sp.SpanID(), sp.ParentSpanID()
					sid[6] = 0x80
					sp.SetSpanID(sid)
					if !pid.IsEmpty() {
						pid[6] = 0x80
						sp.SetParentSpanID(pid)
					}
				}
			}
		}
		reqs = append(reqs, td)
		consume(t, s, td)
	}
	field := func(q string) *traceql.Field {
		f := traceql.SelectedFields(traceql.MustParse("{} | select(" + q + ")"))[0]
		return &f
	}
	shapes := []observeShape{
		{},
		{value: field("duration"), by: []traceql.Field{*field("resource.service.name")}},
		{value: field(".n"), by: []traceql.Field{*field("name"), *field(".k1")}},
		{value: field("span.f"), by: []traceql.Field{*field("status"), *field("kind"), *field("span.k2")}},
		{by: []traceql.Field{*field("rootServiceName"), *field("statusMessage"), *field(".mixed")}},
		{value: field("nestedSetLeft"), by: []traceql.Field{*field("nestedSetParent"), *field("span:id"), *field("trace:id")}},
	}
	ranges := [][2]time.Time{
		{base.Add(-time.Hour), base.Add(time.Hour)},
		{base.Add(70*time.Second + 123), base.Add(200 * time.Second)},
		{base.Add(5 * time.Minute), base.Add(5*time.Minute + 30*time.Second)},
	}
	ctx := context.Background()
	// Then again with every chunk cut into pages, its records made from them.
	for _, cut := range []bool{false, true} {
		if cut {
			if err := s.Compact(ctx); err != nil {
				t.Fatal(err)
			}
		}
		observeEach(t, s, reqs, shapes, ranges, cut)
	}
}

type observeShape = struct {
	value *traceql.Field
	by    []traceql.Field
}

// observeEach runs every equivalence query with each range through
// ObserveSpans and compares the observations with the brute force's.
func observeEach(t *testing.T, s *Store, reqs []ptrace.Traces, shapes []observeShape, ranges [][2]time.Time, cut bool) {
	ctx := context.Background()
	for qi, qs := range equivalenceQueries {
		shape := shapes[qi%len(shapes)]
		for _, r := range ranges {
			q := SpanQuery{Spans: traceql.MustParse(qs), Start: r[0], End: r[1], Value: shape.value, By: shape.by}
			want := bruteForce(t, reqs, q)
			for _, run := range []struct {
				rows    bool
				workers int
			}{{false, 1}, {false, 3}, {true, 2}} {
				rows := run.rows
				s.searchRows = rows
				cs := make([]*collector, run.workers)
				obs := make([]Observer, run.workers)
				for i := range cs {
					cs[i] = &collector{}
					obs[i] = cs[i]
				}
				scan, err := s.ObserveSpans(ctx, q, obs...)
				if err != nil {
					t.Fatal(err)
				}
				c := &collector{}
				for _, x := range cs {
					c.got = append(c.got, x.got...)
				}
				for i, o := range c.got {
					if !strings.HasSuffix(o.span, "/") {
						continue
					}
					id, ok, err := scan.SpanID(o.ref)
					if err != nil || !ok {
						t.Fatalf("%s: span of ref %x: %v %v", qs, o.ref, ok, err)
					}
					c.got[i].span += fmt.Sprintf("%x", id)
				}
				for i := range c.got {
					c.got[i].ref = 0
				}
				slices.SortFunc(c.got, compareObserved)
				if !slices.Equal(c.got, want) {
					t.Errorf("%s by %v value %v over %v, rows %v, %d workers, cut into pages %v: %d observations, want %d\n got %v\nwant %v",
						qs, shape.by, shape.value, r, rows, run.workers, cut, len(c.got), len(want), head(c.got), head(want))
				}
			}
			s.searchRows = false
		}
	}
}

func head(o []observed) []observed { return o[:min(len(o), 3)] }
