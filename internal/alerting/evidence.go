package alerting

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promrules "github.com/prometheus/prometheus/rules"

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

// Evidence is what the Manager found behind a firing alert: the analysis
// engine's answer for the alert's spike.
type Evidence struct {
	// Summary is the analysis verdict.
	Summary string `json:"summary"`
	// Traces are example spike traces (the top finding's, else the
	// spike exemplars'), lower-case hex.
	Traces []string `json:"traceIDs"`
	// Findings are the analysis findings, highest score first.
	Findings []analysis.Finding `json:"findings"`
	// Threshold is the rule's threshold in the metric's unit, when it has one.
	Threshold *float64 `json:"threshold,omitempty"`
	// SpikeTraces, SpikeExemplars and BaselineTraces count what was compared.
	SpikeTraces    int `json:"spikeTraces"`
	SpikeExemplars int `json:"spikeExemplars"`
	BaselineTraces int `json:"baselineTraces"`
	// MissingTraces counts spike exemplars whose trace was never received.
	MissingTraces int `json:"missingTraces"`
	// Start and End bound the spike window.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// TraceIDs returns the example trace IDs, comma-separated.
func (e Evidence) TraceIDs() string { return strings.Join(e.Traces, ",") }

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
		case e.SpikeExemplars == 0:
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

// collect runs the analysis engine over the alert's spike: from the
// expression's longest range before the alert became active until now,
// restricted to the alert's labels, with the rule's threshold.
func (m *Manager) collect(ctx context.Context, expr string, a *promrules.Alert, now time.Time) (Evidence, error) {
	parsed, err := m.parser.ParseExpr(expr)
	if err != nil {
		return Evidence{}, fmt.Errorf("parse %q: %w", expr, err)
	}
	window := analysis.LongestRange(parsed)
	if window == 0 {
		window = defaultWindow
	}
	start := a.ActiveAt.Add(-window)
	if a.ActiveAt.IsZero() {
		start = now.Add(-window)
	}
	if now.Sub(start) > analysis.MaxWindow {
		start = now.Add(-analysis.MaxWindow)
	}
	e := Evidence{Start: start, End: now, Traces: []string{}, Findings: []analysis.Finding{}}
	if m.opts.Analyzer == nil {
		e.Summary = "no exemplar storage"
		return e, nil
	}
	res, err := m.opts.Analyzer.Analyze(ctx, analysis.Request{
		Query: expr, Start: start, End: now, Restrict: m.restrictingMatchers(a),
	})
	if err != nil {
		return Evidence{}, err
	}
	e.Summary = res.Verdict
	e.Findings = res.Findings
	e.Threshold = res.Threshold
	e.SpikeTraces, e.SpikeExemplars, e.BaselineTraces = res.Spike.Traces, res.Spike.Exemplars, res.Baseline.Traces
	e.MissingTraces = res.MissingTraces
	e.Traces = res.ExemplarTraceIDs
	if len(res.Findings) > 0 {
		e.Traces = res.Findings[0].TraceIDs
	}
	e.Traces = e.Traces[:min(len(e.Traces), m.opts.MaxEvidence)]
	return e, nil
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
