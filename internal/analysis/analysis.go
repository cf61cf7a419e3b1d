package analysis

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Kind says what a Summary found.
type Kind string

// The kinds of findings, in the order Summarize looks for them.
const (
	// KindEmpty means there were no spans to analyse.
	KindEmpty Kind = "empty"
	// KindLatency means one span dominates the traces' critical paths and is slow.
	KindLatency Kind = "latency"
	// KindErrors means most traces contain a failed span.
	KindErrors Kind = "errors"
	// KindAttributes means durations are normal; notable span attributes are reported.
	KindAttributes Kind = "attributes"
)

// Options tune Summarize. The zero value is not useful; start from DefaultOptions.
type Options struct {
	// SlowThreshold is the mean critical-path time from which the dominant
	// span counts as a latency problem. Default 1s.
	SlowThreshold time.Duration
	// MaxAttributes bounds the attribute findings in the text. Default 2.
	MaxAttributes int
}

// DefaultOptions returns the options Summarize uses.
func DefaultOptions() Options {
	return Options{SlowThreshold: time.Second, MaxAttributes: 2}
}

// Summary is the root-cause summary of a set of traces.
type Summary struct {
	// Kind says which finding Text reports.
	Kind Kind `json:"kind"`
	// Traces is N: the number of distinct traces analysed.
	Traces int `json:"traces"`
	// Span and Service name the span that dominates the traces' critical paths.
	Span    string `json:"span,omitempty"`
	Service string `json:"service,omitempty"`
	// Count is K: in how many traces Span was the largest critical-path contributor.
	Count int `json:"count"`
	// MeanDuration is Span's mean duration in those K traces.
	MeanDuration time.Duration `json:"-"`
	// MeanSeconds is MeanDuration in seconds, for JSON clients.
	MeanSeconds float64 `json:"meanSeconds"`
	// CriticalShare is Span's mean share of its trace's critical path (0..1) in those K traces.
	CriticalShare float64 `json:"criticalShare"`
	// Errors is, for KindErrors, the failing span and in how many traces it failed.
	Errors *ErrorFinding `json:"errors,omitempty"`
	// Attributes are numeric span attributes shared by most traces, largest first.
	Attributes []AttributeFinding `json:"attributes,omitempty"`
	// Text is the one-line summary, e.g. "payment_provider_api 7.6 s in 5 of 5".
	Text string `json:"text"`
}

// String returns s.Text.
func (s Summary) String() string { return s.Text }

// ErrorFinding names a span whose status is Error in Count of the traces.
type ErrorFinding struct {
	Span    string `json:"span"`
	Service string `json:"service,omitempty"`
	Count   int    `json:"count"`
	Message string `json:"message,omitempty"`
}

// AttributeFinding is a numeric span attribute present in Count traces, with
// the smallest and largest value seen.
type AttributeFinding struct {
	Span  string  `json:"span"`
	Key   string  `json:"key"`
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
	Count int     `json:"count"`
}

// String renders the finding as "key=value" or "key=min–max".
func (a AttributeFinding) String() string {
	if a.Min == a.Max {
		return a.Key + "=" + formatNumber(a.Max)
	}
	return a.Key + "=" + formatNumber(a.Min) + "–" + formatNumber(a.Max)
}

// Summarize analyses traces with DefaultOptions. Each element may hold any
// number of traces; spans are grouped by trace ID, so N counts distinct traces.
func Summarize(traces []ptrace.Traces) Summary {
	return SummarizeWith(traces, DefaultOptions())
}

// SummarizeWith analyses traces with opts.
func SummarizeWith(traces []ptrace.Traces, opts Options) Summary {
	if opts.SlowThreshold <= 0 {
		opts.SlowThreshold = DefaultOptions().SlowThreshold
	}
	if opts.MaxAttributes <= 0 {
		opts.MaxAttributes = DefaultOptions().MaxAttributes
	}
	trees := buildTrees(traces)
	s := Summary{Kind: KindEmpty, Traces: len(trees)}
	if len(trees) == 0 {
		s.Text = "no spans received for these traces"
		return s
	}

	type key struct{ service, name string }
	type agg struct {
		count    int // traces where this span was the top contributor
		total    time.Duration
		duration time.Duration
		share    float64
	}
	aggs := map[key]*agg{}
	for _, t := range trees {
		top, crit, cp := t.topContributor()
		if top == nil {
			continue
		}
		k := key{top.service, top.name}
		a := aggs[k]
		if a == nil {
			a = &agg{}
			aggs[k] = a
		}
		a.count++
		a.total += crit
		a.duration += top.end.Sub(top.start)
		if cp > 0 {
			a.share += float64(crit) / float64(cp)
		}
	}
	var best key
	var bestAgg *agg
	for k, a := range aggs {
		if bestAgg == nil || a.count > bestAgg.count ||
			(a.count == bestAgg.count && (a.total > bestAgg.total ||
				(a.total == bestAgg.total && cmp.Compare(k.name, best.name) < 0))) {
			best, bestAgg = k, a
		}
	}
	if bestAgg == nil {
		s.Text = "no spans received for these traces"
		return s
	}
	s.Span, s.Service, s.Count = best.name, best.service, bestAgg.count
	s.MeanDuration = bestAgg.duration / time.Duration(bestAgg.count)
	s.MeanSeconds = s.MeanDuration.Seconds()
	s.CriticalShare = bestAgg.share / float64(bestAgg.count)
	meanCritical := bestAgg.total / time.Duration(bestAgg.count)
	s.Attributes = attributeFindings(trees)
	dominant := fmt.Sprintf("%s %s in %d of %d", s.Span, formatDuration(s.MeanDuration), s.Count, s.Traces)

	switch {
	case meanCritical >= opts.SlowThreshold:
		s.Kind = KindLatency
		s.Text = dominant
	case errorFinding(trees) != nil:
		s.Kind = KindErrors
		s.Errors = errorFinding(trees)
		s.Text = fmt.Sprintf("%s failed in %d of %d", s.Errors.Span, s.Errors.Count, s.Traces)
		if s.Errors.Message != "" {
			s.Text += fmt.Sprintf(" (%q)", s.Errors.Message)
		}
	default:
		s.Kind = KindAttributes
		var parts []string
		for i, a := range s.Attributes {
			if i == opts.MaxAttributes {
				break
			}
			parts = append(parts, fmt.Sprintf("%s in %d of %d", a, a.Count, s.Traces))
		}
		if len(parts) == 0 {
			s.Text = "durations normal; longest: " + dominant
		} else {
			s.Text = strings.Join(parts, ", ") + "; durations normal (longest: " + dominant + ")"
		}
	}
	return s
}

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
	children      []*span
	critical      time.Duration // self time on the critical path
	depth         int
}

type tree struct {
	roots []*span
	spans []*span
}

func buildTrees(traces []ptrace.Traces) []*tree {
	byID := map[pcommon.TraceID]*tree{}
	var order []pcommon.TraceID
	for _, td := range traces {
		for _, rs := range td.ResourceSpans().All() {
			service := ""
			if v, ok := rs.Resource().Attributes().Get("service.name"); ok {
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
						attrs: sp.Attributes(),
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

// topContributor computes critical-path self times for t and returns the
// span to report for the largest one (see reported), that largest self time
// and the critical path's total length.
func (t *tree) topContributor() (*span, time.Duration, time.Duration) {
	visited := map[*span]bool{}
	var total time.Duration
	// The trace's critical path starts at the longest root (a trace missing
	// its root has several partial roots; the longest stands for it).
	roots := slices.Clone(t.roots)
	slices.SortFunc(roots, func(a, b *span) int { return cmp.Compare(b.end.Sub(b.start), a.end.Sub(a.start)) })
	if len(roots) == 0 {
		return nil, 0, 0
	}
	walk(roots[0], roots[0].end, 0, visited)
	var top *span
	for _, s := range t.spans {
		total += s.critical
		if top == nil || s.critical > top.critical ||
			(s.critical == top.critical && s.depth > top.depth) {
			top = s
		}
	}
	return reported(top), top.critical, total
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

// errorFinding returns the failing operation of at least half of the
// traces: per trace the deepest span with status Error, named as reported
// names it; nil when fewer than half of the traces failed.
func errorFinding(trees []*tree) *ErrorFinding {
	type key struct{ service, name string }
	counts := map[key]int{}
	msg := map[key]string{}
	for _, t := range trees {
		var deepest *span
		deepestDepth := -1
		for _, s := range t.spans {
			if s.status != ptrace.StatusCodeError {
				continue
			}
			if d := depthOf(s, len(t.spans)); d > deepestDepth {
				deepest, deepestDepth = s, d
			}
		}
		if deepest == nil {
			continue
		}
		r := reported(deepest)
		k := key{r.service, r.name}
		counts[k]++
		if msg[k] == "" {
			msg[k] = deepest.message
		}
	}
	var best *ErrorFinding
	for k, c := range counts {
		if 2*c < len(trees) {
			continue
		}
		if best == nil || c > best.Count || (c == best.Count && k.name < best.Span) {
			best = &ErrorFinding{Span: k.name, Service: k.service, Count: c, Message: msg[k]}
		}
	}
	return best
}

// depthOf counts s's ancestors, stopping after limit steps so corrupt
// parent links cannot loop.
func depthOf(s *span, limit int) int {
	d := 0
	for p := s.parentSpan; p != nil && d < limit; p = p.parentSpan {
		d++
	}
	return d
}

// attributeFindings returns numeric span attributes present in at least
// half of the traces, the largest values first. Identifiers, ports and sizes
// are left out: their magnitude says nothing about the request.
func attributeFindings(trees []*tree) []AttributeFinding {
	type key struct{ span, attr string }
	found := map[key]*AttributeFinding{}
	for _, t := range trees {
		seen := map[key]bool{}
		for _, s := range t.spans {
			for k, v := range s.attrs.All() {
				var f float64
				switch v.Type() {
				case pcommon.ValueTypeInt:
					f = float64(v.Int())
				case pcommon.ValueTypeDouble:
					f = v.Double()
				default:
					continue
				}
				if math.IsNaN(f) || math.IsInf(f, 0) || ignoredAttribute(k) {
					continue
				}
				kk := key{s.name, k}
				a := found[kk]
				if a == nil {
					a = &AttributeFinding{Span: s.name, Key: k, Min: f, Max: f}
					found[kk] = a
				}
				a.Min, a.Max = min(a.Min, f), max(a.Max, f)
				if !seen[kk] {
					seen[kk] = true
					a.Count++
				}
			}
		}
	}
	var out []AttributeFinding
	for _, a := range found {
		if 2*a.Count >= len(trees) {
			out = append(out, *a)
		}
	}
	slices.SortFunc(out, func(a, b AttributeFinding) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		// A value every trace shares (quantity multiplier 500) says more
		// than one that merely varies (order totals).
		if ac, bc := a.Min == a.Max, b.Min == b.Max; ac != bc {
			if ac {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(math.Abs(b.Max), math.Abs(a.Max)); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Span, b.Span))
	})
	// The same attribute on several spans (e.g. quantity on the checkout and
	// on the inventory call), or several attributes carrying the same values
	// (cart total, checkout amount, payment amount), are reported once.
	type values struct {
		min, max float64
		count    int
	}
	seen := map[string]bool{}
	seenValues := map[values]bool{}
	dedup := out[:0]
	for _, a := range out {
		v := values{a.Min, a.Max, a.Count}
		if !seen[a.Key] && !seenValues[v] {
			seen[a.Key] = true
			seenValues[v] = true
			dedup = append(dedup, a)
		}
	}
	return dedup
}

func ignoredAttribute(k string) bool {
	k = strings.ToLower(k)
	for _, suffix := range []string{"port", "size", "id", "status_code", "code.lineno", "code.line.number", "code.column", "thread.id", "resend_count", "retries", "attempt"} {
		if strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return false
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
