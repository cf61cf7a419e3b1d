package alerting

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	promrules "github.com/prometheus/prometheus/rules"
	v1 "github.com/prometheus/prometheus/web/api/v1"
)

// BenchmarkCollect measures one alert's evidence collection on a real TSDB:
// the analysis engine over 6 exemplars (5 traces in memory).
func BenchmarkCollect(b *testing.B) {
	f := newFixture(b)
	opts := f.options()
	opts.Analyzer = f.analyzer()
	m, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	a := &promrules.Alert{
		State:    promrules.StateFiring,
		Labels:   labels.FromStrings("alertname", "HighPaymentLatency", "severity", "critical", "job", "payments-service"),
		ActiveAt: f.now.Add(-time.Minute),
	}
	expr := `histogram_quantile(0.95, sum by (le, job) (rate(webstore_payment_duration_bucket[5m]))) > 5`
	b.ReportAllocs()
	for b.Loop() {
		e, err := m.collect(context.Background(), expr, a, f.now)
		if err != nil || e.SpikeExemplars != 6 {
			b.Fatal(err, e.SpikeExemplars)
		}
	}
}

// firingRules is a rules retriever with one group holding one alerting
// rule (HighPaymentLatency without its `for`) evaluated once over the
// fixture, so its one alert is firing.
type firingRules struct {
	group *promrules.Group
	rule  *promrules.AlertingRule
}

func (r firingRules) RuleGroups() []*promrules.Group { return []*promrules.Group{r.group} }
func (r firingRules) AlertingRules() []*promrules.AlertingRule {
	return []*promrules.AlertingRule{r.rule}
}

func newFiringRules(b *testing.B, f *fixture, expr string) firingRules {
	b.Helper()
	parsed, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		b.Fatal(err)
	}
	rule := promrules.NewAlertingRule("HighPaymentLatency", parsed, 0, 0,
		labels.FromStrings("severity", "critical"),
		labels.FromStrings("summary", "Payment latency P95 above 5s", "description", "P95 of webstore.payment.duration is {{ $value | humanize }}s for {{ $labels.job }}."),
		labels.EmptyLabels(), "", true, promslog.NewNopLogger())
	if _, err := rule.Eval(context.Background(), 0, f.now, promrules.EngineQueryFunc(f.engine, f.db), nil, 0); err != nil {
		b.Fatal(err)
	}
	if n := len(rule.ActiveAlerts()); n != 1 || rule.ActiveAlerts()[0].State != promrules.StateFiring {
		b.Fatalf("%d active alerts, want one firing", n)
	}
	group := promrules.NewGroup(promrules.GroupOptions{Name: "webstore", File: "webstore.yml", Interval: 15 * time.Second, Rules: []promrules.Rule{rule}})
	return firingRules{group: group, rule: rule}
}

// BenchmarkAlertsAnswer measures the Prometheus API's /api/v1/alerts and
// /api/v1/rules answers with one firing alert that has evidence, as the
// UI's alerts page polls them (uncompressed).
func BenchmarkAlertsAnswer(b *testing.B) {
	f := newFixture(b)
	opts := f.options()
	opts.Analyzer = f.analyzer()
	m, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	expr := `histogram_quantile(0.95, sum by (le, job) (rate(webstore_payment_duration_bucket[5m]))) > 5`
	rr := newFiringRules(b, f, expr)
	a := rr.rule.ActiveAlerts()[0]
	e, err := m.collect(context.Background(), expr, a, f.now)
	if err != nil || e.SpikeExemplars != 6 {
		b.Fatal(err, e.SpikeExemplars)
	}
	m.evidence.put(a.Labels.Hash(), e)
	h := newPrometheusAPI(b, func(context.Context) v1.RulesRetriever { return rr }, f, m)
	for _, path := range []string{"/prometheus/api/v1/alerts", "/prometheus/api/v1/rules"} {
		b.Run(strings.TrimPrefix(path, "/prometheus/api/v1/"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"evidence":`) {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
