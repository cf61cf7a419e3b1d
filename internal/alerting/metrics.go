package alerting

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sent, failed, dropped, retries *prometheus.CounterVec
	evidence                       *prometheus.CounterVec
	evidenceDropped                prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_alerting_notifications_sent_total",
			Help: "Webhook notifications a receiver accepted (2xx).",
		}, []string{"receiver"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_alerting_notifications_failed_total",
			Help: "Webhook notifications given up on after all attempts or a permanent error.",
		}, []string{"receiver"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_alerting_notifications_dropped_total",
			Help: "Webhook notifications dropped because the receiver's queue was full.",
		}, []string{"receiver"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_alerting_notification_retries_total",
			Help: "Webhook delivery attempts after the first.",
		}, []string{"receiver"}),
		evidence: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_alerting_evidence_collections_total",
			Help: "Evidence collections for firing alerts, by result (ok, no_exemplars, error).",
		}, []string{"result"}),
		evidenceDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_alerting_notify_queue_dropped_total",
			Help: "Alert notifications dropped because the evidence queue was full.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.sent, m.failed, m.dropped, m.retries, m.evidence, m.evidenceDropped)
	}
	return m
}
