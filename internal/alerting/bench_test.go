package alerting

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promrules "github.com/prometheus/prometheus/rules"
)

// BenchmarkCollect measures one alert's evidence collection on a real TSDB:
// parse the expression, query exemplars, fetch 6 traces from memory and
// summarise them.
func BenchmarkCollect(b *testing.B) {
	f := newFixture(b)
	m, err := New(Options{Engine: f.engine, Queryable: f.db, Appendable: f.db, Exemplars: f.db, Traces: f.traces})
	if err != nil {
		b.Fatal(err)
	}
	a := &promrules.Alert{
		State:    promrules.StateFiring,
		Labels:   labels.FromStrings("alertname", "HighPaymentLatency", "severity", "critical", "job", "payments-service", "country", "US", "payment_method", "card"),
		ActiveAt: f.now.Add(-time.Minute),
	}
	expr := `histogram_quantile(0.95, rate(webstore_payment_duration_bucket[5m])) > 5`
	b.ReportAllocs()
	for b.Loop() {
		e, err := m.collect(context.Background(), expr, a, f.now)
		if err != nil || len(e.Exemplars) != 6 {
			b.Fatal(err, len(e.Exemplars))
		}
	}
}
