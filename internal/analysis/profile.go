package analysis

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// opKey names an operation as a reader recognises it: the span's service
// and name after reported's mapping (a remote server span counts as its
// caller's client span, a generic "POST" client span as the span that made
// the call).
type opKey struct{ service, name string }

// profile is what the comparison needs of one trace, computed once.
type profile struct {
	id pcommon.TraceID
	// root is the longest root span's service and name: the operation.
	root opKey
	// start and duration are the longest root span's.
	start    time.Time
	duration time.Duration
	// self is each operation's exclusive time: its spans' durations minus
	// the time covered by their children.
	self map[opKey]time.Duration
	// critical is each operation's time on the critical path.
	critical map[opKey]time.Duration
	// top is the operation with the most time on the critical path.
	top opKey
	// errors are the operations where an error started (a failed span no
	// descendant of which failed), with the first message.
	errors map[opKey]string
	// values are categorical attribute values, keyed "key\x00value".
	values map[string]struct{}
	// numbers are numeric attributes (the largest value when several spans
	// carry one).
	numbers map[string]float64
}

// anchor returns the duration of the trace's span (service, name), or the
// root's duration when the trace has no such span: the value the spike's
// threshold is compared with.
func (t *tree) anchor(service, name string) time.Duration {
	var d time.Duration
	found := false
	for _, s := range t.spans {
		if s.service == service && s.name == name {
			d, found = max(d, s.end.Sub(s.start)), true
		}
	}
	if !found {
		return t.rootDuration()
	}
	return d
}

func (t *tree) longestRoot() *span {
	var r *span
	for _, s := range t.roots {
		if r == nil || s.end.Sub(s.start) > r.end.Sub(r.start) {
			r = s
		}
	}
	return r
}

func (t *tree) rootDuration() time.Duration {
	if r := t.longestRoot(); r != nil {
		return r.end.Sub(r.start)
	}
	return 0
}

// newProfile computes t's profile. Attribute keys for which ignore returns
// true are left out.
func newProfile(t *tree, ignore func(key string) bool) *profile {
	p := &profile{
		id:       t.id,
		self:     map[opKey]time.Duration{},
		critical: map[opKey]time.Duration{},
		errors:   map[opKey]string{},
		values:   map[string]struct{}{},
		numbers:  map[string]float64{},
	}
	root := t.longestRoot()
	if root == nil {
		return p
	}
	p.root = opKey{root.service, root.name}
	p.start, p.duration = root.start, root.end.Sub(root.start)
	walk(root, root.end, 0, map[*span]bool{})
	critical := map[opKey]time.Duration{}
	p.critical = critical
	for _, s := range t.spans {
		r := reported(s)
		k := opKey{r.service, r.name}
		p.self[k] += selfTime(s)
		critical[k] += s.critical
		if failed(s) && !failedBelow(s, len(t.spans)) {
			if _, ok := p.errors[k]; !ok {
				p.errors[k] = errorMessage(s)
			}
		}
		p.addAttributes(s.attrs, ignore)
	}
	seenRes := map[string]bool{}
	for _, s := range t.spans {
		// Resource attributes are shared by a service's spans; one span per
		// service is enough to read them.
		if !seenRes[s.service] {
			seenRes[s.service] = true
			p.addAttributes(s.resource, ignore)
		}
	}
	var best time.Duration
	for k, c := range critical {
		if c > best || (c == best && (k.name < p.top.name || p.top.name == "")) {
			p.top, best = k, c
		}
	}
	return p
}

func (p *profile) addAttributes(m pcommon.Map, ignore func(string) bool) {
	for k, v := range m.All() {
		if ignore(k) {
			continue
		}
		switch v.Type() {
		case pcommon.ValueTypeInt, pcommon.ValueTypeDouble:
			f := v.Double()
			if v.Type() == pcommon.ValueTypeInt {
				f = float64(v.Int())
			}
			if math.IsNaN(f) || math.IsInf(f, 0) {
				continue
			}
			if old, ok := p.numbers[k]; !ok || f > old {
				p.numbers[k] = f
			}
		case pcommon.ValueTypeStr, pcommon.ValueTypeBool:
			s := v.AsString()
			if len(s) > maxValueLen {
				continue
			}
			p.values[k+"\x00"+s] = struct{}{}
		}
	}
}

// maxValueLen bounds the categorical values compared: longer strings are
// messages, queries or payloads, not categories.
const maxValueLen = 128

// selfTime is s's duration minus the union of its children's intervals
// (clipped to s).
func selfTime(s *span) time.Duration {
	d := s.end.Sub(s.start)
	if len(s.children) == 0 {
		return d
	}
	type iv struct{ a, b time.Time }
	ivs := make([]iv, 0, len(s.children))
	for _, c := range s.children {
		a, b := c.start, c.end
		if a.Before(s.start) {
			a = s.start
		}
		if b.After(s.end) {
			b = s.end
		}
		if b.After(a) {
			ivs = append(ivs, iv{a, b})
		}
	}
	slices.SortFunc(ivs, func(x, y iv) int { return x.a.Compare(y.a) })
	var covered time.Duration
	var curA, curB time.Time
	for i, v := range ivs {
		switch {
		case i == 0:
			curA, curB = v.a, v.b
		case v.a.After(curB):
			covered += curB.Sub(curA)
			curA, curB = v.a, v.b
		case v.b.After(curB):
			curB = v.b
		}
	}
	if len(ivs) > 0 {
		covered += curB.Sub(curA)
	}
	return max(0, d-covered)
}

func failed(s *span) bool { return s.status == ptrace.StatusCodeError || s.exception != "" }

// failedBelow reports whether a descendant of s failed: then the error did
// not start at s. limit bounds the walk on corrupt trees.
func failedBelow(s *span, limit int) bool {
	stack := slices.Clone(s.children)
	for n := 0; len(stack) > 0 && n < limit; n++ {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if failed(c) {
			return true
		}
		stack = append(stack, c.children...)
	}
	return false
}

// errorMessage is s's status message or exception message; when s has
// neither (an HTTP client span failed by its status code alone), the
// nearest failed ancestor's, which usually says what the code meant.
func errorMessage(s *span) string {
	for n, p := 0, s; p != nil && n < 64; n, p = n+1, p.parentSpan {
		if !failed(p) {
			continue
		}
		if m := cmp.Or(p.message, p.exception); m != "" && m != "exception" || p.parentSpan == nil {
			return m
		}
	}
	return ""
}

// idLike reports attribute keys whose values identify one request, one
// connection or one line of code: they never characterise a group of
// requests.
func idLike(key string) bool {
	k := strings.ToLower(key)
	for _, suffix := range []string{".id", "_id", "port", "code.lineno", "code.line.number", "code.column",
		"code.function", "code.function.name", "code.filepath", "code.file.path", "thread.name",
		"exception.stacktrace", "db.statement", "db.query.text", "url.full", "http.url", "http.target", "url.query"} {
		if k == suffix || strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return k == "id"
}

// timing reports attribute keys that measure time: on a latency spike they
// restate the symptom (a simulated latency, a timeout budget) rather than
// say which requests are affected.
func timing(key string) bool {
	k := strings.ToLower(key)
	for _, w := range []string{"duration", "latency", "elapsed", "_ms", ".ms", "_ns", "_us", "seconds", "millis", "time", "timeout"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// splitValue splits a profile.values key into attribute and value.
func splitValue(kv string) (string, string) {
	k, v, _ := strings.Cut(kv, "\x00")
	return k, v
}

func formatSeconds(s float64) string {
	return formatDuration(time.Duration(s * float64(time.Second)))
}

func formatShare(f float64) string {
	return strconv.FormatFloat(100*f, 'f', 0, 64) + "%"
}

// sortFloat sorts xs in place and returns it.
func sortFloat(xs []float64) []float64 {
	slices.Sort(xs)
	return xs
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// separation is 2·P(X > Y) + P(X = Y) − 1 for X drawn from xs and Y from
// ys (both sorted): 1 when every x exceeds every y, −1 when every y exceeds
// every x, about 0 when they are drawn alike. It is Mann–Whitney's U
// rescaled, computed by merging the sorted samples.
func separation(xs, ys []float64) float64 {
	if len(xs) == 0 || len(ys) == 0 {
		return 0
	}
	var greater, equal float64
	j := 0 // ys[:j] < x
	for i := 0; i < len(xs); {
		x := xs[i]
		run := 0
		for i < len(xs) && xs[i] == x {
			i++
			run++
		}
		for j < len(ys) && ys[j] < x {
			j++
		}
		k := j
		for k < len(ys) && ys[k] == x {
			k++
		}
		greater += float64(run * j)
		equal += float64(run * (k - j))
	}
	n := float64(len(xs)) * float64(len(ys))
	return (2*greater+equal)/n - 1
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

func compareKeys(a, b opKey) int {
	return cmp.Or(cmp.Compare(a.service, b.service), cmp.Compare(a.name, b.name))
}
