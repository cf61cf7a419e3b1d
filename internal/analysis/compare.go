package analysis

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// FindingKind says what a Finding compares.
type FindingKind string

// The kinds of findings.
const (
	// KindSpan compares an operation's exclusive (self) time, or on a spike
	// that is not about latency its presence.
	KindSpan FindingKind = "span"
	// KindAttribute compares the share of traces carrying an attribute
	// value, or a numeric attribute's distribution.
	KindAttribute FindingKind = "attribute"
	// KindError compares the share of traces in which an error started at
	// an operation.
	KindError FindingKind = "error"
)

// Finding is one difference between the spike's traces and the baseline's.
// Score is in [0, 1]; docs/analysis.md says how each kind computes it.
type Finding struct {
	Kind      FindingKind `json:"kind"`
	Service   string      `json:"service,omitempty"`
	Span      string      `json:"span,omitempty"`
	Attribute string      `json:"attribute,omitempty"`
	// Value is the attribute value, or for an error the commonest message.
	Value string `json:"value,omitempty"`
	// Numeric marks an attribute compared by its medians.
	Numeric bool `json:"numeric,omitempty"`
	// SpikeValue and BaselineValue are mean self-time seconds (span),
	// shares 0–1 or medians (attribute) and error shares (error).
	SpikeValue    float64 `json:"spikeValue"`
	BaselineValue float64 `json:"baselineValue"`
	// Coverage is, for a span, the share of spike traces in which it has
	// the most time on the critical path.
	Coverage float64 `json:"coverage,omitempty"`
	// SpikeCriticalPath and BaselineCriticalPath are, for a span, its mean
	// time on the trace's critical path (s) in the traces containing it.
	SpikeCriticalPath    float64 `json:"spikeCriticalPath,omitempty"`
	BaselineCriticalPath float64 `json:"baselineCriticalPath,omitempty"`
	Score                float64 `json:"score"`
	// Against says what an attribute's share was compared with: "baseline"
	// (the baseline window's traces) or "rest" (the spike window's traces
	// that were not slow).
	Against string `json:"against,omitempty"`
	// TraceIDs are up to ExampleTraces spike traces showing the finding,
	// lower-case hex.
	TraceIDs []string `json:"traceIDs"`

	// count is, for a span, in how many spike traces it was the largest
	// critical-path contributor; latency says how its score was computed.
	count        int
	latency      bool
	presS, presB float64
}

// Groups are the traces to compare. Each element may hold any number of
// traces; spans are grouped by trace ID.
type Groups struct {
	// Spike are the traces the spike is made of.
	Spike []ptrace.Traces
	// Baseline are normal traces of the same operations.
	Baseline []ptrace.Traces
	// Values, optional, are the metric's values of traces with an
	// exemplar (the exemplar's value): numeric attributes that move in
	// lockstep with them restate the metric and are not findings.
	Values map[pcommon.TraceID]float64
	// Rest, optional, are traces of the same operations from the spike's
	// window that are not part of it (not slow): an attribute value that
	// sets the spike's traces apart from them scopes the spike. Only those
	// that started while spike traces did are compared.
	Rest []ptrace.Traces
}

// Options tune Compare. Zero fields take the DefaultOptions value.
type Options struct {
	// NoiseFloor is the score under which a finding is not reported in the
	// verdict. Default 0.2: spike and baseline drawn alike stay below it
	// (see TestCompareNoCause).
	NoiseFloor float64
	// MinScore drops findings scoring less. Default 0.05.
	MinScore float64
	// MaxFindings bounds the findings returned. Default 20.
	MaxFindings int
	// ExampleTraces bounds each finding's TraceIDs. Default 10.
	ExampleTraces int
}

// DefaultOptions returns the defaults described on Options.
func DefaultOptions() Options {
	return Options{NoiseFloor: 0.2, MinScore: 0.05, MaxFindings: 20, ExampleTraces: 10}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.NoiseFloor <= 0 {
		o.NoiseFloor = d.NoiseFloor
	}
	if o.MinScore <= 0 {
		o.MinScore = d.MinScore
	}
	if o.MaxFindings <= 0 {
		o.MaxFindings = d.MaxFindings
	}
	if o.ExampleTraces <= 0 {
		o.ExampleTraces = d.ExampleTraces
	}
	return o
}

// Report is the result of Compare.
type Report struct {
	// Verdict is one line naming the top findings with their numbers.
	Verdict string `json:"verdict"`
	// SpikeTraces, BaselineTraces and RestTraces count distinct traces.
	SpikeTraces    int `json:"spikeTraces"`
	BaselineTraces int `json:"baselineTraces"`
	RestTraces     int `json:"restTraces"`
	// Latency says the spike's traces are slower than the baseline's, so
	// spans were compared by self time.
	Latency  bool      `json:"latency"`
	Findings []Finding `json:"findings"`
}

// minRest is the smallest Rest group attributes are compared with.
const minRest = 10

// Compare finds what sets the spike's traces apart from the baseline's:
// operations whose self time grew (or that only the spike has), attribute
// values over-represented in the spike, and operations where errors start
// more often. Findings are sorted by score, highest first.
func Compare(g Groups, opts Options) Report {
	opts = opts.withDefaults()
	spike := profiles(buildTrees(g.Spike))
	base := profiles(buildTrees(g.Baseline))
	rest := concurrent(profiles(buildTrees(g.Rest)), spike)
	r := Report{SpikeTraces: len(spike), BaselineTraces: len(base), RestTraces: len(rest), Findings: []Finding{}}
	if len(spike) == 0 {
		r.Verdict = "no spike traces to compare"
		return r
	}
	ds, db := durations(spike), durations(base)
	r.Latency = len(base) > 0 && mean(ds) > mean(db) && separation(ds, db) >= 0.5

	var fs []Finding
	fs = append(fs, spanFindings(spike, base, r.Latency, opts)...)
	fs = append(fs, errorFindings(spike, base, opts)...)
	fs = append(fs, valueFindings(spike, base, rest, opts)...)
	fs = append(fs, numberFindings(spike, base, r.Latency, g.Values, opts)...)
	fs = slices.DeleteFunc(fs, func(f Finding) bool { return f.Score < opts.MinScore })
	slices.SortStableFunc(fs, compareFindings)
	if len(fs) > opts.MaxFindings {
		fs = fs[:opts.MaxFindings]
	}
	r.Findings = fs
	r.Verdict = verdict(r, opts)
	return r
}

// concurrent keeps the rest traces that started while spike traces did
// (between the first and the last spike trace's start): requests of the
// same window that ran after the spike ended say nothing about which
// requests it affected.
func concurrent(rest, spike []*profile) []*profile {
	if len(spike) == 0 {
		return rest
	}
	lo, hi := spike[0].start, spike[0].start
	for _, p := range spike {
		if p.start.Before(lo) {
			lo = p.start
		}
		if p.start.After(hi) {
			hi = p.start
		}
	}
	return slices.DeleteFunc(rest, func(p *profile) bool { return p.start.Before(lo) || p.start.After(hi) })
}

func profiles(trees []*tree) []*profile {
	out := make([]*profile, len(trees))
	for i, t := range trees {
		out[i] = newProfile(t, idLike)
	}
	return out
}

func durations(ps []*profile) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = p.duration.Seconds()
	}
	return sortFloat(out)
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// kindRank orders findings of equal score: where an error starts, then
// which requests (a categorical attribute), then where time goes (a span),
// then numeric attributes, which often restate another finding.
func kindRank(f Finding) int {
	switch {
	case f.Kind == KindError:
		return 0
	case f.Kind == KindAttribute && !f.Numeric:
		return 1
	case f.Kind == KindSpan:
		return 2
	default:
		return 3
	}
}

func compareFindings(a, b Finding) int {
	return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(kindRank(a), kindRank(b)),
		cmp.Compare(a.Service, b.Service), cmp.Compare(a.Span, b.Span),
		cmp.Compare(a.Attribute, b.Attribute), cmp.Compare(a.Value, b.Value))
}

// spanFindings scores every operation of the spike's traces. On a latency
// spike the score is separation × explained: how cleanly the operation's
// per-trace self time (0 where absent) separates spike from baseline, times
// the share of the spike's extra duration its extra self time accounts for.
// Otherwise it is the rise in the share of traces containing it (a new
// operation). Without a baseline it is the coverage.
func spanFindings(spike, base []*profile, latency bool, opts Options) []Finding {
	keys := map[opKey]bool{}
	for _, p := range spike {
		for k := range p.self {
			keys[k] = true
		}
	}
	extra := mean(durations(spike)) - mean(durations(base))
	var out []Finding
	for _, k := range slices.SortedFunc(maps.Keys(keys), compareKeys) {
		xs, nxs := selfSeconds(spike, k)
		ys, nys := selfSeconds(base, k)
		f := Finding{Kind: KindSpan, Service: k.service, Span: k.name,
			SpikeValue: meanPresent(xs, nxs), BaselineValue: meanPresent(ys, nys), latency: latency,
			SpikeCriticalPath: meanCritical(spike, k), BaselineCriticalPath: meanCritical(base, k)}
		for _, p := range spike {
			if p.top == k {
				f.count++
			}
		}
		f.Coverage = round2(float64(f.count) / float64(len(spike)))
		f.presS = float64(nxs) / float64(len(spike))
		if len(base) > 0 {
			f.presB = float64(nys) / float64(len(base))
		}
		switch {
		case len(base) == 0:
			f.Score = f.Coverage
		case latency:
			explained := 0.0
			if extra > 0 {
				explained = math.Min(1, math.Max(0, (mean(xs)-mean(ys))/extra))
			}
			f.Score = math.Max(0, separation(xs, ys)-sepNoise(len(xs), len(ys))) * explained
		default:
			f.Score = math.Max(0, f.presS-f.presB-shareNoise(f.presS, len(spike), f.presB, len(base)))
		}
		f.Score = round2(f.Score)
		f.TraceIDs = examples(spike, opts.ExampleTraces, func(p *profile) (float64, bool) {
			d, ok := p.self[k]
			return d.Seconds(), ok
		})
		out = append(out, f)
	}
	return out
}

// selfSeconds returns k's self time per trace in seconds (0 where absent),
// sorted, and how many traces contain k.
func selfSeconds(ps []*profile, k opKey) ([]float64, int) {
	xs := make([]float64, len(ps))
	n := 0
	for i, p := range ps {
		if d, ok := p.self[k]; ok {
			xs[i] = d.Seconds()
			n++
		}
	}
	return sortFloat(xs), n
}

// meanCritical is k's mean critical-path time (s) over the traces with k.
func meanCritical(ps []*profile, k opKey) float64 {
	var sum time.Duration
	n := 0
	for _, p := range ps {
		if _, ok := p.self[k]; ok {
			sum += p.critical[k]
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return math.Round(sum.Seconds()/float64(n)*1e6) / 1e6
}

func meanPresent(xs []float64, n int) float64 {
	if n == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return math.Round(s/float64(n)*1e6) / 1e6 // µs
}

// Scores are effects less their noise: two standard errors of the
// statistic for samples of these sizes drawn alike, so that a difference a
// small sample shows by chance scores about 0, and a score is a lower bound
// a reader can check.

// sepNoise is two standard errors of separation for samples of n1 and n2
// drawn alike: 2·√((n1+n2+1)/(12·n1·n2)) for Mann–Whitney's AUC, doubled
// for the rescaling.
func sepNoise(n1, n2 int) float64 {
	if n1 == 0 || n2 == 0 {
		return 0
	}
	a, b := float64(n1), float64(n2)
	return 2 * math.Sqrt((a+b+1)/(3*a*b))
}

// shareNoise is two standard errors of the difference of shares p1 of n1
// and p2 of n2 under the pooled share.
func shareNoise(p1 float64, n1 int, p2 float64, n2 int) float64 {
	if n1 == 0 || n2 == 0 {
		return 0
	}
	a, b := float64(n1), float64(n2)
	p := (p1*a + p2*b) / (a + b)
	return 2 * math.Sqrt(p*(1-p)*(1/a+1/b))
}

func round4(f float64) float64 { return math.Round(f*1e4) / 1e4 }

// errorFindings scores operations by the rise in the share of traces in
// which an error started there (a failed span with no failed descendant).
func errorFindings(spike, base []*profile, opts Options) []Finding {
	type agg struct {
		n    int
		msgs map[string]int
	}
	count := func(ps []*profile) map[opKey]*agg {
		m := map[opKey]*agg{}
		for _, p := range ps {
			for k, msg := range p.errors {
				a := m[k]
				if a == nil {
					a = &agg{msgs: map[string]int{}}
					m[k] = a
				}
				a.n++
				a.msgs[msg]++
			}
		}
		return m
	}
	sa, ba := count(spike), count(base)
	var out []Finding
	for _, k := range slices.SortedFunc(maps.Keys(sa), compareKeys) {
		s := float64(sa[k].n) / float64(len(spike))
		b := 0.0
		if a := ba[k]; a != nil && len(base) > 0 {
			b = float64(a.n) / float64(len(base))
		}
		msg, best := "", 0
		for m, c := range sa[k].msgs {
			if c > best || (c == best && m < msg) {
				msg, best = m, c
			}
		}
		f := Finding{Kind: KindError, Service: k.service, Span: k.name, Value: msg,
			SpikeValue: round4(s), BaselineValue: round4(b), Score: round2(math.Max(0, s-b-shareNoise(s, len(spike), b, len(base))))}
		f.TraceIDs = examples(spike, opts.ExampleTraces, func(p *profile) (float64, bool) {
			_, ok := p.errors[k]
			return p.duration.Seconds(), ok
		})
		out = append(out, f)
	}
	return out
}

// valueFindings scores categorical attribute values by the rise of their
// share among spike traces over the baseline's, or over the rest's (the
// spike window's other traces) when that is larger: a value on every slow
// request and on none of the fast ones scopes the spike. Numeric attributes
// that the baseline lacks are compared by presence, with the commonest
// value. Keys with about one value per trace are identifiers and skipped.
// Only the best value of each key is reported.
func valueFindings(spike, base, rest []*profile, opts Options) []Finding {
	if len(base) == 0 && len(rest) < minRest {
		return nil
	}
	// Distinct values per key over spike and baseline.
	distinct := map[string]map[string]bool{}
	for _, ps := range [][]*profile{spike, base} {
		for _, p := range ps {
			for kv := range p.values {
				k, v := splitValue(kv)
				if distinct[k] == nil {
					distinct[k] = map[string]bool{}
				}
				distinct[k][v] = true
			}
		}
	}
	limit := max(20, (len(spike)+len(base))/2)
	candidates := map[string]bool{}
	for _, p := range spike {
		for kv := range p.values {
			if k, _ := splitValue(kv); len(distinct[k]) <= limit {
				candidates[kv] = true
			}
		}
	}
	// Numeric attributes absent from (nearly all of) the baseline.
	presence := presenceValues(spike, base)
	for kv := range presence {
		candidates[kv] = true
	}
	has := func(p *profile, kv string) bool {
		if _, ok := p.values[kv]; ok {
			return true
		}
		if k, ok := presence[kv]; ok {
			_, ok := p.numbers[k]
			return ok
		}
		return false
	}
	spikeOps, baseOps, restOps := byOperation(spike), byOperation(base), byOperation(rest)
	best := map[string]Finding{}
	for _, kv := range slices.Sorted(maps.Keys(candidates)) {
		carries := func(p *profile) bool { return has(p, kv) }
		k, v := splitValue(kv)
		f := Finding{Kind: KindAttribute, Attribute: k, Value: v, SpikeValue: round4(shareOf(spike, carries))}
		f.Score = math.Inf(-1)
		for _, g := range []struct {
			name string
			ops  map[opKey][]*profile
			min  int
		}{{"baseline", baseOps, 1}, {"rest", restOps, minRest}} {
			s, o, ns, no, ok := stratified(spikeOps, g.ops, carries)
			if !ok || no < g.min {
				continue
			}
			if score := s - o - shareNoise(s, ns, o, no); score > f.Score {
				f.Score, f.SpikeValue, f.BaselineValue, f.Against = score, round4(s), round4(o), g.name
			}
		}
		if f.Against == "" {
			continue
		}
		f.Score = round2(math.Max(0, f.Score))
		if old, ok := best[k]; ok && compareFindings(old, f) <= 0 {
			continue
		}
		f.TraceIDs = examples(spike, opts.ExampleTraces, func(p *profile) (float64, bool) {
			return p.duration.Seconds(), has(p, kv)
		})
		best[k] = f
	}
	return slices.Collect(maps.Values(best))
}

// stratifiedSeparation is the separation of numeric attribute k between
// spike and baseline computed operation by operation (over the operations
// where both groups have at least 3 values) and weighted by the spike's
// values per operation, with the numbers of values it rests on: response
// sizes that differ between routes do not make a spike of one route look
// different from a baseline of others.
func stratifiedSeparation(spike, base map[opKey][]*profile, k string) (sep float64, n1, n2 int) {
	values := func(ps []*profile) []float64 {
		var xs []float64
		for _, p := range ps {
			if v, ok := p.numbers[k]; ok {
				xs = append(xs, v)
			}
		}
		return sortFloat(xs)
	}
	for op, sp := range spike {
		xs, ys := values(sp), values(base[op])
		if len(xs) < 3 || len(ys) < 3 {
			continue
		}
		sep += float64(len(xs)) * separation(xs, ys)
		n1, n2 = n1+len(xs), n2+len(ys)
	}
	if n1 == 0 {
		return 0, 0, 0
	}
	return sep / float64(n1), n1, n2
}

// byOperation groups profiles by root operation.
func byOperation(ps []*profile) map[opKey][]*profile {
	m := map[opKey][]*profile{}
	for _, p := range ps {
		m[p.root] = append(m[p.root], p)
	}
	return m
}

// stratified compares the share of traces for which has is true in the
// spike and in another group operation by operation, over the root
// operations both have, weighting each by its number of spike traces: a
// group with another mix of operations (more list requests, fewer
// checkouts) does not make an attribute of one operation look over- or
// under-represented. It returns both weighted shares, the numbers of
// traces they rest on, and false when the groups share no operation.
func stratified(spike, other map[opKey][]*profile, has func(*profile) bool) (s, o float64, ns, no int, ok bool) {
	for op, sp := range spike {
		op2 := other[op]
		if len(op2) == 0 {
			continue
		}
		w := float64(len(sp))
		s += w * shareOf(sp, has)
		o += w * shareOf(op2, has)
		ns, no = ns+len(sp), no+len(op2)
	}
	if ns == 0 {
		return 0, 0, 0, 0, false
	}
	return s / float64(ns), o / float64(ns), ns, no, true
}

// presenceValues returns, for numeric attributes on at least half of the
// spike traces and on at most 5% of the baseline's, a categorical key
// "key\x00commonest value" mapped to the attribute key.
func presenceValues(spike, base []*profile) map[string]string {
	out := map[string]string{}
	if len(base) == 0 {
		return out
	}
	counts := map[string]map[float64]int{}
	for _, p := range spike {
		for k, v := range p.numbers {
			if counts[k] == nil {
				counts[k] = map[float64]int{}
			}
			counts[k][v]++
		}
	}
	for k, vs := range counts {
		n := 0
		var mode float64
		best := 0
		for v, c := range vs {
			n += c
			if c > best || (c == best && v < mode) {
				mode, best = v, c
			}
		}
		if 2*n < len(spike) || numberShare(base, k) > 0.05 {
			continue
		}
		out[k+"\x00"+formatNumber(mode)] = k
	}
	return out
}

func numberShare(ps []*profile, key string) float64 {
	return shareOf(ps, func(p *profile) bool { _, ok := p.numbers[key]; return ok })
}

// shareOf is the share of ps for which has is true (0 for none).
func shareOf(ps []*profile, has func(*profile) bool) float64 {
	if len(ps) == 0 {
		return 0
	}
	n := 0
	for _, p := range ps {
		if has(p) {
			n++
		}
	}
	return float64(n) / float64(len(ps))
}

// restates reports whether numeric attribute k moves in lockstep with the
// metric's own values (rank correlation ≥ 0.95 over at least 10 traces with
// both): an amount in cents on a checkout-amount spike says what the spike
// is, not why.
func restates(k string, metric map[pcommon.TraceID]float64, groups ...[]*profile) bool {
	if len(metric) == 0 {
		return false
	}
	var xs, ys []float64
	for _, ps := range groups {
		for _, p := range ps {
			v, ok := p.numbers[k]
			m, ok2 := metric[p.id]
			if ok && ok2 {
				xs, ys = append(xs, v), append(ys, m)
			}
		}
	}
	return len(xs) >= 10 && math.Abs(spearman(xs, ys)) >= 0.95
}

// spearman is the rank correlation of xs and ys (ties get their mean rank).
func spearman(xs, ys []float64) float64 {
	rx, ry := ranks(xs), ranks(ys)
	mx, my := mean(rx), mean(ry)
	var sxy, sxx, syy float64
	for i := range rx {
		dx, dy := rx[i]-mx, ry[i]-my
		sxy, sxx, syy = sxy+dx*dy, sxx+dx*dx, syy+dy*dy
	}
	if sxx == 0 || syy == 0 {
		return 0
	}
	return sxy / math.Sqrt(sxx*syy)
}

func ranks(xs []float64) []float64 {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(xs[a], xs[b]) })
	r := make([]float64, len(xs))
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && xs[idx[j]] == xs[idx[i]] {
			j++
		}
		for k := i; k < j; k++ {
			r[idx[k]] = float64(i+j-1) / 2
		}
		i = j
	}
	return r
}

// numberFindings compares numeric attributes present on at least half of
// the spike's traces and 5% of the baseline's by |separation| of their
// values less two standard errors of it (so that samples drawn alike score
// about 0), reporting medians. On a latency spike, attributes that measure
// time restate the symptom and are skipped. Attributes with the same
// medians (the same amount under several names) are reported once.
func numberFindings(spike, base []*profile, latency bool, metric map[pcommon.TraceID]float64, opts Options) []Finding {
	if len(base) == 0 {
		return nil
	}
	keys := map[string]bool{}
	for _, p := range spike {
		for k := range p.numbers {
			keys[k] = true
		}
	}
	values := func(ps []*profile, k string) []float64 {
		var xs []float64
		for _, p := range ps {
			if v, ok := p.numbers[k]; ok {
				xs = append(xs, v)
			}
		}
		return sortFloat(xs)
	}
	spikeOps, baseOps := byOperation(spike), byOperation(base)
	var out []Finding
	seen := map[[2]float64]bool{}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if latency && timing(k) || restates(k, metric, spike, base) {
			continue
		}
		xs, ys := values(spike, k), values(base, k)
		if 2*len(xs) < len(spike) || len(ys) < max(3, len(base)/20) {
			continue
		}
		ms, mb := median(xs), median(ys)
		if ms == mb || seen[[2]float64{ms, mb}] {
			continue
		}
		seen[[2]float64{ms, mb}] = true
		sep, n1, n2 := stratifiedSeparation(spikeOps, baseOps, k)
		if n1 == 0 {
			continue
		}
		f := Finding{Kind: KindAttribute, Attribute: k, Numeric: true, SpikeValue: ms, BaselineValue: mb,
			Score: round2(math.Max(0, math.Abs(sep)-sepNoise(n1, n2))), Against: "baseline"}
		f.TraceIDs = examples(spike, opts.ExampleTraces, func(p *profile) (float64, bool) {
			v, ok := p.numbers[k]
			if mb > ms {
				v = -v
			}
			return v, ok
		})
		out = append(out, f)
	}
	return out
}

// examples returns up to n IDs of the traces for which show reports true,
// largest weight first (then lowest ID).
func examples(ps []*profile, n int, show func(*profile) (float64, bool)) []string {
	type ex struct {
		w float64
		p *profile
	}
	var xs []ex
	for _, p := range ps {
		if w, ok := show(p); ok {
			xs = append(xs, ex{w, p})
		}
	}
	slices.SortFunc(xs, func(a, b ex) int {
		return cmp.Or(cmp.Compare(b.w, a.w), bytes.Compare(a.p.id[:], b.p.id[:]))
	})
	out := make([]string, 0, min(n, len(xs)))
	for _, x := range xs[:min(n, len(xs))] {
		out = append(out, x.p.id.String())
	}
	return out
}

// verdict names the top finding and the best finding of another kind, with
// their numbers, or says why there is nothing to name.
func verdict(r Report, opts Options) string {
	if len(r.Findings) == 0 || r.Findings[0].Score < opts.NoiseFloor {
		what := "spike traces look like the baseline traces"
		if r.BaselineTraces == 0 {
			what = "no operation dominates the spike traces"
		}
		return fmt.Sprintf("%s: no span, attribute or error differs by more than the noise floor (score %.2g) in %d spike and %d baseline traces",
			what, opts.NoiseFloor, r.SpikeTraces, r.BaselineTraces)
	}
	top := r.Findings[0]
	parts := []string{describe(top, r)}
	for _, f := range r.Findings[1:] {
		if f.Score < opts.NoiseFloor {
			break
		}
		if f.Kind != top.Kind || f.Numeric != top.Numeric {
			parts = append(parts, describe(f, r))
			break
		}
	}
	v := strings.Join(parts, "; ")
	if r.BaselineTraces == 0 {
		v += " (no baseline traces to compare with)"
	}
	return v
}

func describe(f Finding, r Report) string {
	switch {
	case f.Kind == KindSpan && r.BaselineTraces == 0:
		return fmt.Sprintf("%s self time %s, largest in %d of %d spike traces", f.Span, formatSeconds(f.SpikeValue), f.count, r.SpikeTraces)
	case f.Kind == KindSpan && f.latency:
		return fmt.Sprintf("%s self time %s → %s in %d of %d slow traces", f.Span,
			formatSeconds(f.BaselineValue), formatSeconds(f.SpikeValue), f.count, r.SpikeTraces)
	case f.Kind == KindSpan:
		return fmt.Sprintf("%s in %s of spike traces vs %s of baseline", f.Span, formatShare(f.presS), formatShare(f.presB))
	case f.Kind == KindError:
		s := fmt.Sprintf("errors start at %s in %s vs %s", f.Span, formatShare(f.SpikeValue), formatShare(f.BaselineValue))
		if f.Value != "" {
			s += fmt.Sprintf(" (%q)", truncate(f.Value, 80))
		}
		return s
	case f.Numeric:
		return fmt.Sprintf("%s median %s vs %s", f.Attribute, formatNumber(f.SpikeValue), formatNumber(f.BaselineValue))
	default:
		s := fmt.Sprintf("%s=%s %s vs %s", f.Attribute, truncate(f.Value, 40), formatShare(f.SpikeValue), formatShare(f.BaselineValue))
		if f.Against == "rest" {
			s += " of the other requests"
		}
		return s
	}
}

func truncate(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
