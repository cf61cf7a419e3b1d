package alerting

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	promrules "github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/analysis"
)

// Annotation names the Manager adds to alerts that have evidence.
const (
	AnnotationSummary  = "evidence_summary"
	AnnotationTraceIDs = "evidence_trace_ids"
)

// defaultWindow is the evidence window for expressions without a range.
const defaultWindow = 5 * time.Minute

// collectTimeout bounds one alert's evidence collection (exemplar query and
// trace fetches), so a slow trace store delays evidence, not notifications.
const collectTimeout = 30 * time.Second

// Evidence is what the Manager found behind a firing alert.
type Evidence struct {
	// Summary is the one-line root-cause summary of the exemplars' traces.
	Summary string `json:"summary"`
	// Exemplars are the alert's series' exemplars, highest value first,
	// one per trace.
	Exemplars []Exemplar `json:"exemplars"`
	// Analysis is the structured form of Summary.
	Analysis *analysis.Summary `json:"analysis,omitempty"`
	// MissingTraces counts exemplar traces the trace store does not hold.
	MissingTraces int `json:"missingTraces"`
	// Start and End bound the window the exemplars were taken from.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Exemplar is one exemplar of an alert's series.
type Exemplar struct {
	TraceID string  `json:"traceID"`
	SpanID  string  `json:"spanID,omitempty"`
	Value   float64 `json:"value"`
	// Timestamp is in seconds since the epoch, as in Prometheus's API.
	Timestamp float64 `json:"timestamp"`
	// Labels are the labels of the series the exemplar belongs to.
	Labels map[string]string `json:"labels"`
}

// TraceIDs returns the exemplars' trace IDs, comma-separated, highest value first.
func (e Evidence) TraceIDs() string {
	ids := make([]string, len(e.Exemplars))
	for i, ex := range e.Exemplars {
		ids[i] = ex.TraceID
	}
	return strings.Join(ids, ",")
}

type evidenceStore struct {
	mu sync.RWMutex
	m  map[uint64]Evidence
}

func newEvidenceStore() *evidenceStore { return &evidenceStore{m: map[uint64]Evidence{}} }

func (s *evidenceStore) get(k uint64) (Evidence, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.m[k]
	return e, ok
}

func (s *evidenceStore) put(k uint64, e Evidence) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = e
}

// retain drops the evidence of every alert not in keep.
func (s *evidenceStore) retain(keep map[uint64]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.m {
		if !keep[k] {
			delete(s.m, k)
		}
	}
}

// pruneEvidence forgets evidence of alerts that are no longer active without
// a resolved notification (their rule was removed or changed).
func (m *Manager) pruneEvidence() {
	keep := map[uint64]bool{}
	for _, r := range m.rm.AlertingRules() {
		r.ForEachActiveAlert(func(a *promrules.Alert) { keep[a.Labels.Hash()] = true })
	}
	m.evidence.retain(keep)
}

func (s *evidenceStore) delete(k uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
}

// notification is one call of the rules manager's NotifyFunc.
type notification struct {
	expr   string
	alerts []promrules.Alert
}

// notify is the rules manager's NotifyFunc. It runs on the rule group's
// evaluation goroutine, so it only hands the alerts over, never blocking.
func (m *Manager) notify(_ context.Context, expr string, alerts ...*promrules.Alert) {
	if len(alerts) == 0 {
		return
	}
	n := notification{expr: expr, alerts: make([]promrules.Alert, len(alerts))}
	for i, a := range alerts {
		n.alerts[i] = *a
	}
	select {
	case m.jobs <- n:
	default:
		m.metrics.evidenceDropped.Inc()
		m.opts.Logger.Warn("alert notification queue full; dropping", "expr", expr, "alerts", len(alerts))
	}
}

func (m *Manager) evidenceWorker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-m.jobs:
			m.handle(ctx, n)
		}
	}
}

// handle collects evidence for firing alerts, forgets it for resolved ones
// and queues the webhook messages.
func (m *Manager) handle(ctx context.Context, n notification) {
	evs := make([]*Evidence, len(n.alerts))
	for i := range n.alerts {
		a := &n.alerts[i]
		key := a.Labels.Hash()
		if !a.ResolvedAt.IsZero() {
			if e, ok := m.evidence.get(key); ok {
				evs[i] = &e
			}
			m.evidence.delete(key)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, collectTimeout)
		e, err := m.collect(cctx, n.expr, a, time.Now())
		cancel()
		switch {
		case err != nil:
			m.metrics.evidence.WithLabelValues("error").Inc()
			m.opts.Logger.Warn("collect alert evidence", "alert", a.Labels.Get(labels.AlertName), "err", err)
			continue
		case len(e.Exemplars) == 0:
			m.metrics.evidence.WithLabelValues("no_exemplars").Inc()
		default:
			m.metrics.evidence.WithLabelValues("ok").Inc()
		}
		m.evidence.put(key, e)
		evs[i] = &e
	}
	m.pruneEvidence()
	if len(m.senders) == 0 {
		return
	}
	for _, msg := range m.webhookMessages(n, evs) {
		for _, s := range m.senders {
			s.enqueue(msg)
		}
	}
}

// collect finds the exemplars of the series the alert's expression selects,
// restricted to the alert's labels, in the window from the expression's
// longest range before the alert became active until now, and summarises
// their traces.
func (m *Manager) collect(ctx context.Context, expr string, a *promrules.Alert, now time.Time) (Evidence, error) {
	parsed, err := m.parser.ParseExpr(expr)
	if err != nil {
		return Evidence{}, fmt.Errorf("parse %q: %w", expr, err)
	}
	sels, window := selectorsOf(parsed)
	start := a.ActiveAt.Add(-window)
	if a.ActiveAt.IsZero() {
		start = now.Add(-window)
	}
	e := Evidence{Start: start, End: now, Exemplars: []Exemplar{}}
	if m.opts.Exemplars == nil || len(sels) == 0 {
		e.Summary = "no exemplar storage"
		return e, nil
	}
	restrict := m.restrictingMatchers(a)
	q, err := m.opts.Exemplars.ExemplarQuerier(ctx)
	if err != nil {
		return Evidence{}, fmt.Errorf("exemplar querier: %w", err)
	}
	exs, err := selectExemplars(q, start, now, sels, restrict)
	if err != nil {
		return Evidence{}, err
	}
	if len(exs) == 0 && len(restrict) > 0 {
		// The alert's labels may come from the expression itself (e.g.
		// label_replace); then the selectors alone are the best we have.
		if exs, err = selectExemplars(q, start, now, sels, nil); err != nil {
			return Evidence{}, err
		}
	}
	e.Exemplars = topExemplars(exs, m.opts.MaxEvidence)
	if len(e.Exemplars) == 0 {
		e.Summary = fmt.Sprintf("no exemplars with trace IDs for this alert's series between %s and %s",
			start.UTC().Format(time.TimeOnly), now.UTC().Format(time.TimeOnly))
		return e, nil
	}
	if m.opts.Traces == nil {
		e.Summary = fmt.Sprintf("%d exemplars; no trace store to summarise them", len(e.Exemplars))
		return e, nil
	}
	var traces []ptrace.Traces
	for _, ex := range e.Exemplars {
		id, ok := parseTraceID(ex.TraceID)
		if !ok {
			e.MissingTraces++
			continue
		}
		td, found, err := m.opts.Traces.GetTrace(ctx, id)
		if err != nil {
			return Evidence{}, fmt.Errorf("get trace %s: %w", ex.TraceID, err)
		}
		if !found {
			e.MissingTraces++
			continue
		}
		traces = append(traces, td)
	}
	if len(traces) == 0 {
		e.Summary = fmt.Sprintf("none of the %d exemplar traces was received", len(e.Exemplars))
		return e, nil
	}
	s := analysis.Summarize(traces)
	e.Analysis = &s
	e.Summary = s.Text
	if e.MissingTraces > 0 {
		e.Summary += fmt.Sprintf(" (%d of %d traces not received)", e.MissingTraces, len(e.Exemplars))
	}
	return e, nil
}

// selectorsOf returns the matcher sets of expr's series selectors and the
// evidence window: the longest range in expr, or defaultWindow. Selectors
// with an offset look at a baseline, not at what the alert is about; they
// are used only when every selector has one. A _sum or _count selector also
// selects its histogram's _bucket series, which is where exemplars live.
func selectorsOf(expr parser.Expr) ([][]*labels.Matcher, time.Duration) {
	var current, offset [][]*labels.Matcher
	window := time.Duration(0)
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.MatrixSelector:
			window = max(window, n.Range)
		case *parser.VectorSelector:
			sets := withBucket(n.LabelMatchers)
			if n.OriginalOffset != 0 || n.Timestamp != nil || n.StartOrEnd != 0 {
				offset = append(offset, sets...)
			} else {
				current = append(current, sets...)
			}
		}
		return nil
	})
	if window == 0 {
		window = defaultWindow
	}
	if len(current) == 0 {
		current = offset
	}
	return mostSpecific(current), window
}

// mostSpecific drops a selector when another one selects a subset of its
// series (same matchers and more): in an error ratio, the numerator's
// status=~"5.." selector is what the alert is about, not the denominator's
// all-requests selector. Duplicates are dropped too.
func mostSpecific(sets [][]*labels.Matcher) [][]*labels.Matcher {
	keys := make([]map[string]bool, len(sets))
	for i, s := range sets {
		keys[i] = map[string]bool{}
		for _, m := range s {
			keys[i][m.String()] = true
		}
	}
	contains := func(a, b map[string]bool) bool { // a ⊇ b
		for k := range b {
			if !a[k] {
				return false
			}
		}
		return true
	}
	var out [][]*labels.Matcher
	for i := range sets {
		drop := false
		for j := range sets {
			if i == j || !contains(keys[j], keys[i]) {
				continue
			}
			// j selects a subset of i's series (or the same, then keep the first).
			if len(keys[j]) > len(keys[i]) || j < i {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, sets[i])
		}
	}
	return out
}

func withBucket(ms []*labels.Matcher) [][]*labels.Matcher {
	out := [][]*labels.Matcher{ms}
	for i, m := range ms {
		if m.Name != labels.MetricName || m.Type != labels.MatchEqual {
			continue
		}
		for _, suffix := range []string{"_count", "_sum"} {
			if base, ok := strings.CutSuffix(m.Value, suffix); ok {
				b := slices.Clone(ms)
				b[i] = labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, base+"_bucket")
				out = append(out, b)
			}
		}
	}
	return out
}

// restrictingMatchers are equality matchers for the alert's labels that come
// from its series: all but alertname and the rule's own static labels.
func (m *Manager) restrictingMatchers(a *promrules.Alert) []*labels.Matcher {
	static := m.staticLabels[a.Labels.Get(labels.AlertName)]
	var out []*labels.Matcher
	a.Labels.Range(func(l labels.Label) {
		if l.Name == labels.AlertName || l.Name == labels.MetricName || static.Has(l.Name) {
			return
		}
		out = append(out, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value))
	})
	return out
}

func selectExemplars(q storage.ExemplarQuerier, start, end time.Time, sels [][]*labels.Matcher, restrict []*labels.Matcher) ([]Exemplar, error) {
	sets := make([][]*labels.Matcher, len(sels))
	for i, s := range sels {
		sets[i] = append(slices.Clone(s), restrict...)
	}
	res, err := q.Select(start.UnixMilli(), end.UnixMilli(), sets...)
	if err != nil {
		return nil, fmt.Errorf("select exemplars: %w", err)
	}
	var out []Exemplar
	for _, r := range res {
		series := r.SeriesLabels.Map()
		for _, ex := range r.Exemplars {
			tid := ex.Labels.Get("trace_id")
			if tid == "" {
				tid = ex.Labels.Get("traceID")
			}
			if tid == "" {
				continue
			}
			sid := ex.Labels.Get("span_id")
			if sid == "" {
				sid = ex.Labels.Get("spanID")
			}
			out = append(out, Exemplar{
				TraceID: strings.ToLower(tid), SpanID: strings.ToLower(sid), Value: ex.Value,
				Timestamp: float64(ex.Ts) / 1000, Labels: series,
			})
		}
	}
	return out, nil
}

// topExemplars keeps the highest-valued exemplar per trace and returns the
// n highest, highest first (later first among equal values).
func topExemplars(exs []Exemplar, n int) []Exemplar {
	slices.SortStableFunc(exs, func(a, b Exemplar) int {
		return cmp.Or(cmp.Compare(b.Value, a.Value), cmp.Compare(b.Timestamp, a.Timestamp), cmp.Compare(a.TraceID, b.TraceID))
	})
	seen := map[string]bool{}
	out := []Exemplar{}
	for _, e := range exs {
		if seen[e.TraceID] {
			continue
		}
		seen[e.TraceID] = true
		out = append(out, e)
		if len(out) == n {
			break
		}
	}
	return out
}

func parseTraceID(s string) (pcommon.TraceID, bool) {
	var id pcommon.TraceID
	if len(s) != 2*len(id) {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, false
	}
	return id, !id.IsEmpty()
}
