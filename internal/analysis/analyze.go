package analysis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// ErrBadRequest marks errors in a Request (the API answers 400).
var ErrBadRequest = errors.New("bad request")

// Limits on a Request.
const (
	// MaxWindow bounds the spike and the baseline windows.
	MaxWindow = 24 * time.Hour
	// MaxLimit bounds Request.Limit.
	MaxLimit = 2000
	// DefaultLimit is Request.Limit's default.
	DefaultLimit = 200
	// maxRootOps bounds the root operations whose traces are searched.
	maxRootOps = 5
	// minBaseline is the fewest baseline-window traces compared alone;
	// with fewer, the spike window's normal requests join them.
	minBaseline = 20
	// fetchers is how many traces are fetched at once.
	fetchers = 8
)

// Request asks for the cause of a spike.
type Request struct {
	// Query is a PromQL expression over a histogram: a _bucket, _sum or
	// _count selector, or an expression such as histogram_quantile(…) or
	// an alert's.
	Query string
	// Start and End bound the spike.
	Start, End time.Time
	// BaselineStart and BaselineEnd bound the baseline; zero: the hour
	// before Start, leaving out the 5 minutes just before it.
	BaselineStart, BaselineEnd time.Time
	// Threshold, in the metric's unit, separates spike exemplars (above)
	// from baseline ones; nil: taken from a comparison in Query (e.g.
	// `> 5`), else the baseline exemplars' p90.
	Threshold *float64
	// Limit bounds the spike and baseline traces each. Default 200.
	Limit int
	// Restrict, optional, are matchers added to every selector (an alert's
	// labels); when nothing matches with them, the selectors alone are used.
	Restrict []*labels.Matcher
}

// Result is the answer of Analyze, in the API's JSON shape.
type Result struct {
	Verdict   string   `json:"verdict"`
	Threshold *float64 `json:"threshold,omitempty"`
	Spike     struct {
		Traces    int `json:"traces"`
		Exemplars int `json:"exemplars"`
	} `json:"spike"`
	Baseline struct {
		Traces int `json:"traces"`
		// Source is "window" when the baseline traces come from the
		// baseline window; "rest" when that held none and the spike
		// window's requests at or below the threshold stand in for it;
		// "window+rest" when it held fewer than 20 and those joined them.
		Source string `json:"source,omitempty"`
	} `json:"baseline"`
	Findings []Finding `json:"findings"`
	// Start, End, BaselineStart and BaselineEnd are the windows used.
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	BaselineStart time.Time `json:"baselineStart"`
	BaselineEnd   time.Time `json:"baselineEnd"`
	// MissingTraces counts spike exemplars whose trace was never received.
	MissingTraces int `json:"missingTraces"`
	// ExemplarTraceIDs are the spike exemplars' trace IDs, highest value
	// first (lower-case hex).
	ExemplarTraceIDs []string `json:"-"`
}

// Analyzer runs Requests against its sources. Exemplars and Traces are
// required; Finder, when nil, limits the spike and baseline to exemplar
// traces.
type Analyzer struct {
	Exemplars ExemplarSource
	Traces    TraceGetter
	Finder    TraceFinder
	Options   Options
	Logger    *slog.Logger
}

// Analyze compares the spike's traces with the baseline's. Request errors
// wrap ErrBadRequest; missing exemplars or traces are not errors: the
// verdict says why there are no findings.
func (a *Analyzer) Analyze(ctx context.Context, req Request) (Result, error) {
	defaultBaseline := req.BaselineStart.IsZero() && req.BaselineEnd.IsZero()
	expr, err := req.validate()
	if err != nil {
		return Result{}, err
	}
	res := Result{Start: req.Start, End: req.End, BaselineStart: req.BaselineStart, BaselineEnd: req.BaselineEnd, Findings: []Finding{}}
	sels := Selectors(expr)
	if len(sels) == 0 {
		return Result{}, fmt.Errorf("%w: query %q selects no series", ErrBadRequest, req.Query)
	}
	metric := metricName(sels)
	scale, isDuration := durationScale(metric)

	spikeEx, err := a.exemplars(ctx, sels, req.Restrict, req.Start, req.End)
	if err != nil {
		return Result{}, err
	}
	baseEx, err := a.exemplars(ctx, sels, req.Restrict, req.BaselineStart, req.BaselineEnd)
	if err != nil {
		return Result{}, err
	}
	if len(baseEx) == 0 && defaultBaseline {
		// Nothing in the default baseline (data younger than an hour and
		// five minutes): take what there is right up to the spike.
		req.BaselineEnd = req.Start
		res.BaselineEnd = req.Start
		if baseEx, err = a.exemplars(ctx, sels, req.Restrict, req.BaselineStart, req.BaselineEnd); err != nil {
			return Result{}, err
		}
	}
	threshold := req.Threshold
	if threshold == nil {
		threshold = thresholdOf(expr)
	}
	if threshold == nil && len(baseEx) > 0 {
		vs := make([]float64, len(baseEx))
		for i, e := range baseEx {
			vs[i] = e.Value
		}
		p := quantile(sortFloat(vs), 0.9)
		threshold = &p
	}
	if threshold == nil {
		// No baseline to learn from (a fresh start): when the window's
		// own exemplar values fall in two clear groups, normal and slow,
		// split them at the gap.
		threshold = naturalBreak(spikeEx)
	}
	res.Threshold = threshold
	above := func(v float64) bool { return threshold == nil || v > *threshold }
	var spikeIDs []pcommon.TraceID
	seen := map[pcommon.TraceID]bool{}
	anchorSpan := map[pcommon.TraceID]pcommon.SpanID{}
	slices.SortFunc(spikeEx, func(x, y Exemplar) int { return cmp.Compare(y.Value, x.Value) })
	for _, e := range spikeEx {
		if !above(e.Value) || seen[e.TraceID] {
			continue
		}
		seen[e.TraceID] = true
		res.Spike.Exemplars++
		anchorSpan[e.TraceID] = e.SpanID
		if len(res.ExemplarTraceIDs) < 10 {
			res.ExemplarTraceIDs = append(res.ExemplarTraceIDs, e.TraceID.String())
		}
		if len(spikeIDs) < req.Limit {
			spikeIDs = append(spikeIDs, e.TraceID)
		}
	}
	if res.Spike.Exemplars == 0 {
		res.Verdict = noExemplars(req, metric, len(spikeEx), threshold)
		return res, nil
	}
	spikeTraces, missing, err := a.fetch(ctx, spikeIDs)
	if err != nil {
		return Result{}, err
	}
	res.MissingTraces = missing
	if len(spikeTraces) == 0 {
		res.Verdict = fmt.Sprintf("none of the %d spike exemplars' traces was received: check that traces reach the trace store (sampling, exporter endpoint)", len(spikeIDs))
		return res, nil
	}

	// The operations the spike is about: root (service, name) and the
	// exemplar span's (service, name) of each exemplar trace.
	type rootOp struct{ service, name, anchorService, anchorName string }
	var ops []rootOp
	opSeen := map[rootOp]bool{}
	for _, t := range buildTrees(spikeTraces) {
		r := t.longestRoot()
		if r == nil {
			continue
		}
		o := rootOp{service: r.service, name: r.name}
		for _, s := range t.spans {
			if s.id == anchorSpan[t.id] {
				o.anchorService, o.anchorName = s.service, s.name
			}
		}
		if !opSeen[o] && len(ops) < maxRootOps {
			opSeen[o] = true
			ops = append(ops, o)
		}
	}

	// Widen the spike with stored traces of the same operations slower
	// than the threshold, and collect the baseline and the rest.
	var baseTraces, restTraces []ptrace.Traces
	if a.Finder != nil && len(ops) > 0 {
		per := max(1, req.Limit/len(ops))
		for _, o := range ops {
			q := fmt.Sprintf("{ rootServiceName = %s && rootName = %s }", strconv.Quote(o.service), strconv.Quote(o.name))
			slow := func(t *tree) bool {
				return threshold == nil || !isDuration || t.anchor(o.anchorService, o.anchorName).Seconds()*scale > *threshold
			}
			if isDuration && threshold != nil {
				more, err := a.find(ctx, TraceQuery{TraceQL: q, Start: req.Start, End: req.End, Limit: 2 * per,
					MinDuration: time.Duration(*threshold / scale * float64(time.Second))}, seen)
				if err != nil {
					return Result{}, err
				}
				for _, td := range more {
					if len(spikeTraces) >= req.Limit {
						break
					}
					if ts := buildTrees([]ptrace.Traces{td}); len(ts) == 1 && slow(ts[0]) {
						spikeTraces = append(spikeTraces, td)
					}
				}
				// The spike window's other requests (not slow).
				others, err := a.find(ctx, TraceQuery{TraceQL: q, Start: req.Start, End: req.End, Limit: 2 * per}, seen)
				if err != nil {
					return Result{}, err
				}
				for _, td := range others {
					if ts := buildTrees([]ptrace.Traces{td}); len(ts) == 1 && !slow(ts[0]) && len(restTraces) < req.Limit {
						restTraces = append(restTraces, td)
					}
				}
			}
			bl, err := a.find(ctx, TraceQuery{TraceQL: q, Start: req.BaselineStart, End: req.BaselineEnd, Limit: 2 * per}, seen)
			if err != nil {
				return Result{}, err
			}
			n := 0
			for _, td := range bl {
				if n >= per {
					break
				}
				if ts := buildTrees([]ptrace.Traces{td}); len(ts) == 1 && (threshold == nil || !isDuration || !slow(ts[0])) {
					baseTraces = append(baseTraces, td)
					n++
				}
			}
		}
	}
	// The spike window's exemplars at or below the threshold are part of
	// the rest (for metrics that are not durations, the only part).
	// (threshold == nil: above admits every exemplar, and the rest is empty.)
	atOrBelow := func(e Exemplar) bool { return threshold != nil && e.Value <= *threshold }
	if restTraces, err = a.addExemplarTraces(ctx, restTraces, spikeEx, atOrBelow, req.Limit, seen); err != nil {
		return Result{}, err
	}
	// Baseline exemplars at or below the threshold whose traces the search
	// did not return (no finder, or other root operations).
	inBaseline := func(e Exemplar) bool { return threshold == nil || e.Value <= *threshold }
	if baseTraces, err = a.addExemplarTraces(ctx, baseTraces, baseEx, inBaseline, req.Limit, seen); err != nil {
		return Result{}, err
	}

	res.Baseline.Source = "window"
	if len(baseTraces) < minBaseline && len(restTraces) > 0 {
		// Little or nothing before the spike (a fresh start, a short
		// retention): the spike window's normal requests join the baseline.
		res.Baseline.Source = "window+rest"
		if len(baseTraces) == 0 {
			res.Baseline.Source = "rest"
		}
		baseTraces, restTraces = append(baseTraces, restTraces...), nil
	}
	values := map[pcommon.TraceID]float64{}
	for _, exs := range [][]Exemplar{spikeEx, baseEx} {
		for _, e := range exs {
			if v, ok := values[e.TraceID]; !ok || e.Value > v {
				values[e.TraceID] = e.Value
			}
		}
	}
	rep := Compare(Groups{Spike: spikeTraces, Baseline: baseTraces, Rest: restTraces, Values: values}, a.Options)
	res.Verdict = rep.Verdict
	res.Findings = rep.Findings
	res.Spike.Traces = rep.SpikeTraces
	res.Baseline.Traces = rep.BaselineTraces
	if missing > 0 {
		res.Verdict += fmt.Sprintf(" (%d of %d spike exemplar traces not received)", missing, len(spikeIDs))
	}
	return res, nil
}

func noExemplars(req Request, metric string, below int, threshold *float64) string {
	window := fmt.Sprintf("between %s and %s", req.Start.UTC().Format(time.RFC3339), req.End.UTC().Format(time.RFC3339))
	if below > 0 && threshold != nil {
		return fmt.Sprintf("no exemplar of %s above the threshold %s %s (%d at or below it): lower the threshold or widen the window",
			metric, strconv.FormatFloat(*threshold, 'g', 4, 64), window, below)
	}
	return fmt.Sprintf("no exemplars with trace IDs for %s %s: check that the histogram is recorded inside sampled spans and that the query selects the histogram's series", metric, window)
}

// validate fills in defaults and parses the query.
func (req *Request) validate() (parser.Expr, error) {
	if strings.TrimSpace(req.Query) == "" {
		return nil, fmt.Errorf("%w: query is required", ErrBadRequest)
	}
	expr, err := parserFor(req.Query)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid query: %v", ErrBadRequest, err)
	}
	if req.Start.IsZero() || req.End.IsZero() {
		return nil, fmt.Errorf("%w: start and end are required", ErrBadRequest)
	}
	if !req.End.After(req.Start) {
		return nil, fmt.Errorf("%w: end must be after start", ErrBadRequest)
	}
	if req.End.Sub(req.Start) > MaxWindow {
		return nil, fmt.Errorf("%w: the spike window is longer than %s", ErrBadRequest, MaxWindow)
	}
	switch {
	case req.BaselineStart.IsZero() && req.BaselineEnd.IsZero():
		req.BaselineEnd = req.Start.Add(-5 * time.Minute)
		req.BaselineStart = req.BaselineEnd.Add(-time.Hour)
	case req.BaselineStart.IsZero() || req.BaselineEnd.IsZero():
		return nil, fmt.Errorf("%w: give both baseline_start and baseline_end, or neither", ErrBadRequest)
	case !req.BaselineEnd.After(req.BaselineStart):
		return nil, fmt.Errorf("%w: baseline_end must be after baseline_start", ErrBadRequest)
	case req.BaselineEnd.Sub(req.BaselineStart) > MaxWindow:
		return nil, fmt.Errorf("%w: the baseline window is longer than %s", ErrBadRequest, MaxWindow)
	}
	if req.Threshold != nil && (math.IsNaN(*req.Threshold) || math.IsInf(*req.Threshold, 0)) {
		return nil, fmt.Errorf("%w: threshold must be a finite number", ErrBadRequest)
	}
	switch {
	case req.Limit == 0:
		req.Limit = DefaultLimit
	case req.Limit < 0 || req.Limit > MaxLimit:
		return nil, fmt.Errorf("%w: limit must be between 1 and %d", ErrBadRequest, MaxLimit)
	}
	return expr, nil
}

// exemplars queries each selector (with Restrict, falling back to the
// selector alone when that finds nothing).
func (a *Analyzer) exemplars(ctx context.Context, sels [][]*labels.Matcher, restrict []*labels.Matcher, start, end time.Time) ([]Exemplar, error) {
	query := func(extra []*labels.Matcher) ([]Exemplar, error) {
		var out []Exemplar
		for _, s := range sels {
			ex, err := a.Exemplars.QueryExemplars(ctx, renderSelector(append(slices.Clone(s), extra...)), start, end)
			if err != nil {
				return nil, fmt.Errorf("query exemplars: %w", err)
			}
			out = append(out, ex...)
		}
		return out, nil
	}
	out, err := query(restrict)
	if err != nil || len(out) > 0 || len(restrict) == 0 {
		return out, err
	}
	return query(nil)
}

// addExemplarTraces appends to tds, up to limit in all, the traces of the
// exemplars that keep admits and that were not seen yet, marking them seen.
func (a *Analyzer) addExemplarTraces(ctx context.Context, tds []ptrace.Traces, exs []Exemplar, keep func(Exemplar) bool, limit int, seen map[pcommon.TraceID]bool) ([]ptrace.Traces, error) {
	var ids []pcommon.TraceID
	for _, e := range exs {
		if len(tds)+len(ids) >= limit {
			break
		}
		if keep(e) && !seen[e.TraceID] {
			seen[e.TraceID] = true
			ids = append(ids, e.TraceID)
		}
	}
	more, _, err := a.fetch(ctx, ids)
	return append(tds, more...), err
}

// find searches traces and fetches those not yet seen, marking them seen.
func (a *Analyzer) find(ctx context.Context, q TraceQuery, seen map[pcommon.TraceID]bool) ([]ptrace.Traces, error) {
	ids, err := a.Finder.FindTraces(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("search traces: %w", err)
	}
	var todo []pcommon.TraceID
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			todo = append(todo, id)
		}
	}
	tds, _, err := a.fetch(ctx, todo)
	return tds, err
}

// fetch gets the traces, several at once, in the order of ids; missing
// counts the IDs the store does not hold.
func (a *Analyzer) fetch(ctx context.Context, ids []pcommon.TraceID) (_ []ptrace.Traces, missing int, _ error) {
	out := make([]ptrace.Traces, len(ids))
	found := make([]bool, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(fetchers, len(ids)) {
		wg.Go(func() {
			for i := range next {
				out[i], found[i], errs[i] = a.Traces.GetTrace(ctx, ids[i])
			}
		})
	}
	for i := range ids {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	var got []ptrace.Traces
	for i := range ids {
		if errs[i] != nil {
			return nil, 0, fmt.Errorf("get trace %s: %w", ids[i], errs[i])
		}
		if !found[i] {
			missing++
			continue
		}
		got = append(got, out[i])
	}
	return got, missing, nil
}

// naturalBreak returns the split between the two groups of the exemplar
// values when they fall in two clearly apart (the widest gap between
// consecutive positive values is a factor of 4 or more, with at least 3
// values on each side), at the gap's geometric middle; nil otherwise.
func naturalBreak(exs []Exemplar) *float64 {
	var vs []float64
	for _, e := range exs {
		if e.Value > 0 && !math.IsInf(e.Value, 0) {
			vs = append(vs, e.Value)
		}
	}
	sortFloat(vs)
	best, at := 0.0, -1
	// vs[:i+1] is the low group and vs[i+1:] the high one, 3 or more each.
	for i := 2; i <= len(vs)-4; i++ {
		if r := vs[i+1] / vs[i]; r > best {
			best, at = r, i
		}
	}
	if at < 0 || best < 4 {
		return nil
	}
	t := math.Sqrt(vs[at] * vs[at+1])
	return &t
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(math.Ceil(q*float64(len(sorted))))-1)]
}
