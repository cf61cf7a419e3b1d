package promapi

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
	v1 "github.com/prometheus/prometheus/web/api/v1"
)

// evidenceStub extends the alerts named A: two annotations (one replacing
// Prometheus's) and two members, given in the wrong order.
type evidenceStub struct{}

func (evidenceStub) ExtendAlert(a *v1.Alert) (map[string]string, map[string]any) {
	if a.Labels.Get(labels.AlertName) != "A" {
		return nil, nil
	}
	return map[string]string{"summary": "replaced <b>", "evidence_trace_ids": "ab,cd"},
		map[string]any{"zeta": 1.5, "evidence": struct {
			Summary string   `json:"summary"`
			Traces  []string `json:"traceIDs"`
		}{"s & t", []string{"ab", "cd"}}}
}

type noExtension struct{}

func (noExtension) ExtendAlert(*v1.Alert) (map[string]string, map[string]any) { return nil, nil }

// TestAlertExtension: the codec's /api/v1/alerts and /api/v1/rules answers
// are Prometheus's JSON codec's byte for byte, but for the alerts the
// extension extends: their annotations merged in Prometheus's (sorted)
// order and the members appended in name order.
func TestAlertExtension(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	alert := func(name, summary string) *v1.Alert {
		return &v1.Alert{
			Labels:      labels.FromStrings(labels.AlertName, name, "job", "payments-service"),
			Annotations: labels.FromStrings("runbook", "a > b", "summary", summary),
			State:       "firing", ActiveAt: &at, Value: "9.75e+00",
		}
	}
	alerts := func(a, b *v1.Alert) *v1.Response {
		return &v1.Response{Status: "success", Data: &v1.AlertDiscovery{Alerts: []*v1.Alert{a, b}}}
	}
	ruleGroups := func(a, b *v1.Alert) *v1.Response {
		return &v1.Response{Status: "success", Data: &v1.RuleDiscovery{RuleGroups: []*v1.RuleGroup{{
			Name: "webstore", File: "webstore.yml", Interval: 15, LastEvaluation: at,
			Rules: []v1.Rule{
				v1.AlertingRule{State: "firing", Name: "A", Query: "x > 5", Alerts: []*v1.Alert{a, b}, Health: rules.HealthGood, LastEvaluation: at, Type: "alerting"},
				v1.RecordingRule{Name: "job:x:rate5m", Query: "rate(x[5m])", Health: rules.HealthGood, LastEvaluation: at, Type: "recording"},
			},
		}}}}
	}
	// What Prometheus encodes for the alert A once extended, up to its
	// closing brace, and the members that follow.
	extendedA := &v1.Alert{
		Labels:      labels.FromStrings(labels.AlertName, "A", "job", "payments-service"),
		Annotations: labels.FromStrings("evidence_trace_ids", "ab,cd", "runbook", "a > b", "summary", "replaced <b>"),
		State:       "firing", ActiveAt: &at, Value: "9.75e+00",
	}
	const members = `,"evidence":{"summary":"s \u0026 t","traceIDs":["ab","cd"]},"zeta":1.5}`

	for _, tc := range []struct {
		name          string
		resp, extResp func(a, b *v1.Alert) *v1.Response
	}{
		{"alerts", alerts, alerts},
		{"rules", ruleGroups, ruleGroups},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prom, err := v1.JSONCodec{}.Encode(tc.resp(alert("A", "slow"), alert("B", "other")))
			if err != nil {
				t.Fatal(err)
			}
			plain, err := codec{alerts: alertsJSON(noExtension{})}.Encode(tc.resp(alert("A", "slow"), alert("B", "other")))
			if err != nil || string(plain) != string(prom) {
				t.Errorf("nothing added: %s (%v)\nwant Prometheus's %s", plain, err, prom)
			}

			got, err := codec{alerts: alertsJSON(evidenceStub{})}.Encode(tc.resp(alert("A", "slow"), alert("B", "other")))
			if err != nil {
				t.Fatal(err)
			}
			promExtended, err := v1.JSONCodec{}.Encode(tc.resp(extendedA, alert("B", "other")))
			if err != nil {
				t.Fatal(err)
			}
			endOfA := `"value":"9.75e+00"}`
			if strings.Count(string(promExtended), endOfA) != 2 {
				t.Fatalf("want two alerts ending %s in %s", endOfA, promExtended)
			}
			want := strings.Replace(string(promExtended), endOfA, strings.TrimSuffix(endOfA, "}")+members, 1)
			if string(got) != want {
				t.Errorf("extended:\n got %s\nwant %s", got, want)
			}
		})
	}

	// Other answers are Prometheus's, extension or not.
	other := &v1.Response{Status: "error", ErrorType: "bad_data", Error: "x"}
	got, err := codec{alerts: alertsJSON(evidenceStub{})}.Encode(other)
	want, _ := v1.JSONCodec{}.Encode(other)
	if err != nil || string(got) != string(want) {
		t.Errorf("error answer %s (%v), want %s", got, err, want)
	}
}
