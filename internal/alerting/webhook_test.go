package alerting

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promrules "github.com/prometheus/prometheus/rules"
)

func TestWebhookMessages(t *testing.T) {
	m := &Manager{opts: Options{ExternalURL: "http://lookout:9090/"}}
	t0 := time.Date(2026, 11, 24, 14, 23, 0, 0, time.UTC)
	alert := func(country string, resolved bool) promrules.Alert {
		a := promrules.Alert{
			State:       promrules.StateFiring,
			Labels:      labels.FromStrings("alertname", "HighPaymentLatency", "severity", "critical", "country", country),
			Annotations: labels.FromStrings("summary", "Payment latency P95 above 5s", "description", "for "+country),
			ActiveAt:    t0, FiredAt: t0.Add(time.Minute),
		}
		if resolved {
			a.State = promrules.StateInactive
			a.ResolvedAt = t0.Add(10 * time.Minute)
		}
		return a
	}
	ev := &Evidence{Summary: "payment_provider_api self time 7.6 s, largest in 5 of 5 spike traces", Traces: []string{"aa", "bb"}}
	n := notification{expr: "up > 1", alerts: []promrules.Alert{alert("US", false), alert("DE", true),
		{Labels: labels.FromStrings("alertname", "HighErrorRate", "job", "x"), ResolvedAt: t0, ActiveAt: t0}}}
	msgs := m.webhookMessages(n, []*Evidence{ev, nil, nil})
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want one per alert name", len(msgs))
	}
	hp, he := msgs[0], msgs[1]
	if hp.Status != "firing" || he.Status != "resolved" || hp.Version != "4" || hp.Receiver != "lookout" {
		t.Errorf("status %q/%q version %q receiver %q", hp.Status, he.Status, hp.Version, hp.Receiver)
	}
	if hp.GroupKey != `{}:{alertname="HighPaymentLatency"}` || hp.GroupLabels["alertname"] != "HighPaymentLatency" {
		t.Errorf("group %q %v", hp.GroupKey, hp.GroupLabels)
	}
	// Common labels/annotations are the intersection.
	if _, ok := hp.CommonLabels["country"]; ok || hp.CommonLabels["severity"] != "critical" {
		t.Errorf("common labels %v", hp.CommonLabels)
	}
	if _, ok := hp.CommonAnnotations["description"]; ok || hp.CommonAnnotations["summary"] == "" {
		t.Errorf("common annotations %v", hp.CommonAnnotations)
	}
	us, de := hp.Alerts[0], hp.Alerts[1]
	if us.Status != "firing" || !us.StartsAt.Equal(t0.Add(time.Minute)) || !us.EndsAt.IsZero() {
		t.Errorf("firing alert %+v", us)
	}
	if us.Annotations[AnnotationTraceIDs] != "aa,bb" || us.Annotations[AnnotationSummary] != ev.Summary || us.Evidence != ev {
		t.Errorf("evidence annotations %v", us.Annotations)
	}
	if de.Status != "resolved" || !de.EndsAt.Equal(t0.Add(10*time.Minute)) || de.Evidence != nil {
		t.Errorf("resolved alert %+v", de)
	}
	if us.GeneratorURL != "http://lookout:9090/graph?g0.expr=up+%3E+1&g0.tab=1" {
		t.Errorf("generatorURL %q", us.GeneratorURL)
	}
	if us.Fingerprint == de.Fingerprint || len(us.Fingerprint) != 16 {
		t.Errorf("fingerprints %q %q", us.Fingerprint, de.Fingerprint)
	}
	if he.Alerts[0].StartsAt != t0 {
		t.Errorf("never-fired alert starts at %v, want its ActiveAt", he.Alerts[0].StartsAt)
	}
}
