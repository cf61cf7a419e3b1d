package analysis

import (
	"math"
	"regexp"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// span is one node of a trace tree.
type span struct {
	name, service string
	id, parent    pcommon.SpanID
	start, end    time.Time
	kind          ptrace.SpanKind
	status        ptrace.StatusCode
	message       string
	parentSpan    *span
	attrs         pcommon.Map
	resource      pcommon.Map
	// exception is the message of the span's first "exception" event, or
	// "exception" when it has one without a message.
	exception string
	children  []*span
	critical  time.Duration // self time on the critical path
	depth     int
}

type tree struct {
	id    pcommon.TraceID
	roots []*span
	spans []*span
}

func buildTrees(traces []ptrace.Traces) []*tree {
	byID := map[pcommon.TraceID]*tree{}
	var order []pcommon.TraceID
	for _, td := range traces {
		for _, rs := range td.ResourceSpans().All() {
			service := ""
			res := rs.Resource().Attributes()
			if v, ok := res.Get("service.name"); ok {
				service = v.AsString()
			}
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					t := byID[sp.TraceID()]
					if t == nil {
						t = &tree{}
						byID[sp.TraceID()] = t
						order = append(order, sp.TraceID())
					}
					s := &span{
						name: sp.Name(), service: service,
						id: sp.SpanID(), parent: sp.ParentSpanID(),
						start: sp.StartTimestamp().AsTime(), end: sp.EndTimestamp().AsTime(),
						kind:   sp.Kind(),
						status: sp.Status().Code(), message: sp.Status().Message(),
						attrs: sp.Attributes(), resource: res,
					}
					for _, ev := range sp.Events().All() {
						if ev.Name() != "exception" {
							continue
						}
						s.exception = "exception"
						if m, ok := ev.Attributes().Get("exception.message"); ok && m.AsString() != "" {
							s.exception = m.AsString()
						}
						break
					}
					if s.end.Before(s.start) {
						s.end = s.start
					}
					t.spans = append(t.spans, s)
				}
			}
		}
	}
	out := make([]*tree, 0, len(order))
	for _, id := range order {
		t := byID[id]
		t.id = id
		ids := make(map[pcommon.SpanID]*span, len(t.spans))
		for _, s := range t.spans {
			ids[s.id] = s
		}
		for _, s := range t.spans {
			if p, ok := ids[s.parent]; ok && !s.parent.IsEmpty() && p != s {
				p.children = append(p.children, s)
				s.parentSpan = p
			} else {
				t.roots = append(t.roots, s)
			}
		}
		// A span that is its own ancestor (corrupt parent links) is never
		// reached from a root; cycles are broken by the visited set in walk.
		out = append(out, t)
	}
	return out
}

var genericName = regexp.MustCompile(`^(?i)(HTTP )?(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)$`)

// reported names the operation a user recognises for s: the time a remote
// service spends serving a call is the caller's wait (the seed's
// payment_provider_api, not the simulated provider's own handler span), and
// an auto-instrumented HTTP client span named only by its method stands for
// the span that made the call.
func reported(s *span) *span {
	if s.kind == ptrace.SpanKindServer && s.parentSpan != nil && s.parentSpan.service != s.service {
		s = s.parentSpan
	}
	if s.kind == ptrace.SpanKindClient && genericName.MatchString(s.name) &&
		s.parentSpan != nil && s.parentSpan.service == s.service {
		s = s.parentSpan
	}
	return s
}

// walk attributes s's time on the critical path ending at bound: going back
// from the end, the child that finished last is what s waited for; s's own
// time is the gaps between such children.
func walk(s *span, bound time.Time, depth int, visited map[*span]bool) {
	if visited[s] {
		return
	}
	visited[s] = true
	s.depth = depth
	cursor := s.end
	if bound.Before(cursor) {
		cursor = bound
	}
	used := map[*span]bool{}
	for cursor.After(s.start) {
		var next *span
		var nextEnd time.Time
		for _, c := range s.children {
			if used[c] || visited[c] || !c.start.Before(cursor) {
				continue
			}
			end := c.end
			if end.After(cursor) {
				end = cursor
			}
			if next == nil || end.After(nextEnd) {
				next, nextEnd = c, end
			}
		}
		if next == nil {
			break
		}
		used[next] = true
		s.critical += cursor.Sub(nextEnd)
		walk(next, nextEnd, depth+1, visited)
		cursor = next.start
		if cursor.Before(s.start) {
			cursor = s.start
		}
	}
	if cursor.After(s.start) {
		s.critical += cursor.Sub(s.start)
	}
}

// formatDuration renders d as the guide does: "7.6 s", "120 ms", "850 µs".
func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	case d >= time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 0, 64) + " ms"
	default:
		return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 0, 64) + " µs"
	}
}

func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', 4, 64)
}
