package dashboards

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

// TestShippedExpressionsParse checks that every query of the shipped
// dashboards parses as PromQL once its variables are replaced as the UI
// replaces them with "All" selected, and that every timeseries panel over a
// histogram's buckets asks for exemplars.
func TestShippedExpressionsParse(t *testing.T) {
	ds, err := Load(FS)
	if err != nil {
		t.Fatal(err)
	}
	vars := regexp.MustCompile(`\$\{?(__rate_interval|__interval|__range)\}?`)
	user := regexp.MustCompile(`\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?`)
	p := parser.NewParser(parser.Options{})
	for _, d := range ds {
		var m model
		if err := json.Unmarshal(d.Model, &m); err != nil {
			t.Fatal(err)
		}
		for _, pnl := range m.Panels {
			histogram := false
			exemplars := false
			for _, tg := range pnl.Targets {
				if tg.Expr == "" {
					continue
				}
				e := vars.ReplaceAllString(tg.Expr, "1m")
				e = user.ReplaceAllString(e, ".*")
				if _, err := p.ParseExpr(e); err != nil {
					t.Errorf("%s panel %q target %s: %v\n%s", d.UID, pnl.Title, tg.RefID, err, e)
				}
				if regexp.MustCompile(`_bucket\b`).MatchString(tg.Expr) {
					histogram = true
				}
				exemplars = exemplars || tg.Exemplar
			}
			if pnl.Type == "timeseries" && histogram && !exemplars {
				t.Errorf("%s panel %q draws a histogram without exemplars", d.UID, pnl.Title)
			}
		}
	}
}
