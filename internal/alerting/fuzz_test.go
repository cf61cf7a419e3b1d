package alerting

import (
	"encoding/json"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// FuzzDecorate feeds arbitrary API bodies through the middleware's rewrite:
// it must never panic, and what it returns must still be JSON.
func FuzzDecorate(f *testing.F) {
	m := &Manager{evidence: newEvidenceStore()}
	m.evidence.put(labels.FromStrings("alertname", "A").Hash(), Evidence{Summary: "s", Traces: []string{"ab"}})
	f.Add([]byte(`{"status":"success","data":{"alerts":[{"labels":{"alertname":"A"},"annotations":{}}]}}`), false)
	f.Add([]byte(`{"status":"success","data":{"groups":[{"rules":[{"type":"alerting","alerts":[{"labels":{"alertname":"A"}}]},{"type":"recording"}]}]}}`), true)
	f.Add([]byte(`{"data":null}`), true)
	f.Fuzz(func(t *testing.T, body []byte, rules bool) {
		kind := "alerts"
		if rules {
			kind = "rules"
		}
		out, ok := m.decorate(body, kind)
		if ok && !json.Valid(out) {
			t.Fatalf("invalid JSON out of %q: %q", body, out)
		}
	})
}
