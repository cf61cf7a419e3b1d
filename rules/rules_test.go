package rules_test

import (
	"io/fs"
	"os/exec"
	"strings"
	"testing"

	"github.com/lookout-dev/lookout/internal/testpeers"
	"github.com/lookout-dev/lookout/rules"
)

// TestPromtool checks the shipped rule file with the real promtool and runs
// its unit tests (testdata/webstore_test.yml), which evaluate every alert on
// series named as Prometheus's OTLP translation names the WebStore's metrics.
func TestPromtool(t *testing.T) {
	promtool := testpeers.Promtool(t)
	for _, args := range [][]string{
		{"check", "rules", rules.DefaultFile},
		{"test", "rules", "testdata/webstore_test.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestSeedAlertVerbatim pins the seed guide's HighPaymentLatency runbook in
// the embedded file, its expression summed by (le, job) (one alert per
// service, not per country and payment method), and the seed's per-series
// expression in the runbook.
func TestSeedAlertVerbatim(t *testing.T) {
	b, err := fs.ReadFile(rules.Default, rules.DefaultFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"- alert: HighPaymentLatency\n        expr: |\n          histogram_quantile(0.95,\n            sum by (le, job) (rate(webstore_payment_duration_bucket[5m]))\n          ) > 5\n",
		"histogram_quantile(0.95, rate(webstore_payment_duration_bucket[5m])) > 5\n",
		"runbook: |\n            1. Open Service Health dashboard\n            2. Click exemplar on payment duration spike\n            3. Investigate trace in Tempo\n            4. Check payment provider status\n",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("rule file lacks the seed's text:\n%s", want)
		}
	}
}
