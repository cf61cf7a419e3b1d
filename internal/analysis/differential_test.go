package analysis

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The differential tests draw random applications, then a baseline and a
// spike from each, with one known cause injected into the spike, and check
// that Compare ranks the cause first. The brute-force reference is the
// generator itself: it knows the cause.

// app is a random application: a tree of operations over a few services,
// each with a typical self time, and attributes with their distributions.
type app struct {
	ops     []op
	cats    []catAttr
	nums    []numAttr
	nextID  uint64
	rng     *rand.Rand
	rootOps int
}

type op struct {
	service, name string
	parent        int // index into ops; -1 for the root
	self          time.Duration
}

type catAttr struct {
	key     string
	values  []string
	weights []float64
	op      int // the operation whose span carries it
}

type numAttr struct {
	key       string
	mu, sigma float64
	op        int
}

func newApp(rng *rand.Rand) *app {
	a := &app{rng: rng}
	services := 2 + rng.IntN(3)
	n := 8 + rng.IntN(8)
	for i := range n {
		parent := -1
		if i > 0 {
			parent = rng.IntN(i)
		}
		a.ops = append(a.ops, op{
			service: fmt.Sprintf("svc-%d", rng.IntN(services)),
			name:    fmt.Sprintf("op_%d", i),
			parent:  parent,
			self:    time.Duration(1+rng.IntN(40)) * time.Millisecond,
		})
	}
	for i := range 2 + rng.IntN(4) {
		c := catAttr{key: fmt.Sprintf("cat.%d", i), op: rng.IntN(n)}
		for j := range 2 + rng.IntN(5) {
			c.values = append(c.values, fmt.Sprintf("v%d", j))
			c.weights = append(c.weights, 0.2+rng.Float64())
		}
		a.cats = append(a.cats, c)
	}
	for i := range 1 + rng.IntN(3) {
		a.nums = append(a.nums, numAttr{key: fmt.Sprintf("num.%d", i), mu: 10 + 100*rng.Float64(), sigma: 1 + 20*rng.Float64(), op: rng.IntN(n)})
	}
	return a
}

// cause is what a spike trace differs by.
type cause struct {
	kind     string // "self", "new", "value", "error", or "" for none
	op       int
	extra    time.Duration
	attr     int
	value    int
	share    float64 // of spike traces carrying the value or the error
	newName  string
	newDur   time.Duration
	errorMsg string
}

func pick(rng *rand.Rand, weights []float64) int {
	var sum float64
	for _, w := range weights {
		sum += w
	}
	x := rng.Float64() * sum
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// trace draws one trace; c (may be zero) is injected.
func (a *app) trace(c cause, baselineErrRate float64) ptrace.Traces {
	rng := a.rng
	a.nextID++
	var tid pcommon.TraceID
	binary.BigEndian.PutUint64(tid[:8], rng.Uint64())
	binary.BigEndian.PutUint64(tid[8:], a.nextID)
	td := ptrace.NewTraces()
	spans := map[string]ptrace.SpanSlice{}
	slice := func(service string) ptrace.SpanSlice {
		if s, ok := spans[service]; ok {
			return s
		}
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", service)
		s := rs.ScopeSpans().AppendEmpty().Spans()
		spans[service] = s
		return s
	}
	children := make([][]int, len(a.ops))
	for i, o := range a.ops {
		if o.parent >= 0 {
			children[o.parent] = append(children[o.parent], i)
		}
	}
	// Per-trace attribute draws.
	catVals := make([]int, len(a.cats))
	for i, ca := range a.cats {
		catVals[i] = pick(rng, ca.weights)
	}
	if c.kind == "value" && rng.Float64() < c.share {
		catVals[c.attr] = c.value
	}
	errOp := -1
	if c.kind == "error" && rng.Float64() < c.share {
		errOp = c.op
	} else if rng.Float64() < baselineErrRate {
		errOp = rng.IntN(len(a.ops))
	}
	start := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC).Add(time.Duration(rng.IntN(3600)) * time.Second)
	var emit func(i int, at time.Time, parent pcommon.SpanID) time.Time
	emit = func(i int, at time.Time, parent pcommon.SpanID) time.Time {
		o := a.ops[i]
		sp := slice(o.service).AppendEmpty()
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], rng.Uint64()|1)
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		sp.SetParentSpanID(parent)
		sp.SetName(o.name)
		// Self time jitters ±30%; half before the children, half after.
		self := time.Duration(float64(o.self) * (0.7 + 0.6*rng.Float64()))
		if c.kind == "self" && c.op == i {
			self += time.Duration(float64(c.extra) * (0.8 + 0.4*rng.Float64()))
		}
		cur := at.Add(self / 2)
		for _, ch := range children[i] {
			cur = emit(ch, cur, sid)
		}
		if c.kind == "new" && c.op == i {
			n := slice(o.service).AppendEmpty()
			var nid pcommon.SpanID
			binary.BigEndian.PutUint64(nid[:], rng.Uint64()|1)
			n.SetTraceID(tid)
			n.SetSpanID(nid)
			n.SetParentSpanID(sid)
			n.SetName(c.newName)
			n.SetStartTimestamp(pcommon.NewTimestampFromTime(cur))
			cur = cur.Add(time.Duration(float64(c.newDur) * (0.8 + 0.4*rng.Float64())))
			n.SetEndTimestamp(pcommon.NewTimestampFromTime(cur))
		}
		end := cur.Add(self - self/2)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		for j, ca := range a.cats {
			if ca.op == i {
				sp.Attributes().PutStr(ca.key, ca.values[catVals[j]])
			}
		}
		for _, na := range a.nums {
			if na.op == i {
				sp.Attributes().PutDouble(na.key, math.Round(na.mu+na.sigma*rng.NormFloat64()))
			}
		}
		sp.Attributes().PutStr("request.id", fmt.Sprintf("req-%d-%d", a.nextID, i))
		if errOp == i {
			sp.Status().SetCode(ptrace.StatusCodeError)
			msg := "upstream failed"
			if c.kind == "error" {
				msg = c.errorMsg
			}
			sp.Status().SetMessage(msg)
		}
		return end
	}
	emit(0, start, pcommon.SpanID{})
	return td
}

// meanDuration is the app's typical trace duration.
func (a *app) meanDuration() time.Duration {
	var d time.Duration
	for _, o := range a.ops {
		d += o.self
	}
	return d
}

func (a *app) draw(n int, c cause, errRate float64) []ptrace.Traces {
	out := make([]ptrace.Traces, n)
	for i := range out {
		out[i] = a.trace(c, errRate)
	}
	return out
}

// randomCause picks one of the four kinds of cause.
func randomCause(rng *rand.Rand, a *app, kind string) cause {
	c := cause{kind: kind}
	switch kind {
	case "self":
		c.op = 1 + rng.IntN(len(a.ops)-1)
		// From half the typical trace duration up to several times it.
		c.extra = time.Duration(float64(a.meanDuration()) * (0.2 + 3*rng.Float64()))
	case "new":
		c.op = rng.IntN(len(a.ops))
		c.newName = "retry_" + a.ops[c.op].name
		c.newDur = time.Duration(float64(a.meanDuration()) * (0.2 + 3*rng.Float64()))
	case "value":
		c.attr = rng.IntN(len(a.cats))
		// The rarest value, now carried by most spike traces.
		ca := a.cats[c.attr]
		for j, w := range ca.weights {
			if w < ca.weights[c.value] {
				c.value = j
			}
		}
		c.share = 0.6 + 0.4*rng.Float64()
	case "error":
		c.op = rng.IntN(len(a.ops))
		c.share = 0.3 + 0.7*rng.Float64()
		c.errorMsg = "injected failure"
	}
	return c
}

// named reports whether f names c.
func (a *app) named(f Finding, c cause) bool {
	switch c.kind {
	case "self":
		return f.Kind == KindSpan && f.Span == a.ops[c.op].name && f.Service == a.ops[c.op].service
	case "new":
		return f.Kind == KindSpan && f.Span == c.newName
	case "value":
		return f.Kind == KindAttribute && f.Attribute == a.cats[c.attr].key && f.Value == a.cats[c.attr].values[c.value]
	case "error":
		return f.Kind == KindError && f.Span == a.ops[c.op].name
	}
	return false
}

// TestCompareDifferential: 200 random cases, 50 of each kind of cause;
// the cause must rank first in at least 95% of them.
func TestCompareDifferential(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 2026))
	kinds := []string{"self", "new", "value", "error"}
	const cases = 200
	right := map[string]int{}
	var misses []string
	for i := range cases {
		a := newApp(rng)
		kind := kinds[i%len(kinds)]
		c := randomCause(rng, a, kind)
		base := a.draw(100+rng.IntN(101), cause{}, 0.02)
		spike := a.draw(50+rng.IntN(51), c, 0.02)
		r := Compare(Groups{Spike: spike, Baseline: base}, Options{})
		if len(r.Findings) > 0 && a.named(r.Findings[0], c) {
			right[kind]++
			continue
		}
		top := "none"
		if len(r.Findings) > 0 {
			top = fmt.Sprintf("%+v", r.Findings[0])
		}
		misses = append(misses, fmt.Sprintf("case %d (%s %+v): top %s; verdict %q", i, kind, c, top, r.Verdict))
	}
	total := 0
	for _, k := range kinds {
		total += right[k]
		t.Logf("%s: %d of %d ranked first", k, right[k], cases/len(kinds))
	}
	for _, m := range misses {
		t.Log(m)
	}
	if float64(total) < 0.95*cases {
		t.Errorf("cause ranked first in %d of %d cases, want at least 95%%", total, cases)
	}
}

// TestCompareNoCause: spike drawn exactly like the baseline; no finding may
// reach the noise floor, and the verdict says so.
func TestCompareNoCause(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 2026))
	floor := DefaultOptions().NoiseFloor
	worst := 0.0
	for i := range 100 {
		a := newApp(rng)
		base := a.draw(100+rng.IntN(101), cause{}, 0.02)
		spike := a.draw(50+rng.IntN(51), cause{}, 0.02)
		r := Compare(Groups{Spike: spike, Baseline: base}, Options{})
		if len(r.Findings) == 0 {
			continue
		}
		worst = max(worst, r.Findings[0].Score)
		if r.Findings[0].Score >= floor {
			t.Errorf("case %d: finding %+v scores at or above the noise floor %.2f", i, r.Findings[0], floor)
		}
	}
	t.Logf("highest score without a cause: %.2f (noise floor %.2f)", worst, floor)
}

// BenchmarkCompare: spike and baseline of 2,000 traces of about 15 spans.
func BenchmarkCompare(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	a := newApp(rng)
	for len(a.ops) < 15 {
		a = newApp(rng)
	}
	a.ops = a.ops[:15]
	for i := range a.cats {
		a.cats[i].op %= 15
	}
	for i := range a.nums {
		a.nums[i].op %= 15
	}
	c := randomCause(rng, a, "self")
	base := a.draw(2000, cause{}, 0.02)
	spike := a.draw(2000, c, 0.02)
	b.ReportAllocs()
	b.ResetTimer()
	var took []float64
	for b.Loop() {
		start := time.Now()
		r := Compare(Groups{Spike: spike, Baseline: base}, Options{})
		took = append(took, float64(time.Since(start).Microseconds())/1000)
		if !a.named(r.Findings[0], c) {
			b.Fatalf("top finding %+v", r.Findings[0])
		}
	}
	// The target is a p95, so report it beside the mean.
	b.ReportMetric(quantile(sortFloat(took), 0.95), "p95-ms")
}
