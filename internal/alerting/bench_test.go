package alerting

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promrules "github.com/prometheus/prometheus/rules"
)

// BenchmarkCollect measures one alert's evidence collection on a real TSDB:
// the analysis engine over 6 exemplars (5 traces in memory).
func BenchmarkCollect(b *testing.B) {
	f := newFixture(b)
	m, err := New(Options{Engine: f.engine, Queryable: f.db, Appendable: f.db, Analyzer: f.analyzer()})
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
