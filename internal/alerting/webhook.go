package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	promrules "github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/util/strutil"
)

// WebhookMessage is Alertmanager's webhook payload, version 4, as sent to
// webhook receivers. Alerts carry the evidence annotations and, as an
// extension, the evidence itself.
type WebhookMessage struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []WebhookAlert    `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
}

// WebhookAlert is one alert of a WebhookMessage.
type WebhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
	Evidence     *Evidence         `json:"evidence,omitempty"`
}

// receiverName is the receiver every message names, as an Alertmanager
// route's receiver would be.
const receiverName = "lookout"

// webhookMessages groups a notification's alerts by alert name, as an
// Alertmanager route grouping by alertname would.
func (m *Manager) webhookMessages(n notification, evs []*Evidence) []WebhookMessage {
	byName := map[string]*WebhookMessage{}
	var order []string
	for i := range n.alerts {
		a := &n.alerts[i]
		name := a.Labels.Get(labels.AlertName)
		msg := byName[name]
		if msg == nil {
			msg = &WebhookMessage{
				Receiver:    receiverName,
				Status:      "resolved",
				GroupLabels: map[string]string{labels.AlertName: name},
				ExternalURL: m.opts.ExternalURL,
				Version:     "4",
				GroupKey:    fmt.Sprintf("{}:{alertname=%q}", name),
			}
			byName[name] = msg
			order = append(order, name)
		}
		msg.Alerts = append(msg.Alerts, m.webhookAlert(n.expr, a, evs[i]))
	}
	out := make([]WebhookMessage, 0, len(order))
	for _, name := range order {
		msg := byName[name]
		for i, a := range msg.Alerts {
			if a.Status == "firing" {
				msg.Status = "firing"
			}
			if i == 0 {
				msg.CommonLabels = maps.Clone(a.Labels)
				msg.CommonAnnotations = maps.Clone(a.Annotations)
				continue
			}
			intersect(msg.CommonLabels, a.Labels)
			intersect(msg.CommonAnnotations, a.Annotations)
		}
		out = append(out, *msg)
	}
	return out
}

func intersect(common, m map[string]string) {
	for k, v := range common {
		if m[k] != v {
			delete(common, k)
		}
	}
}

func (m *Manager) webhookAlert(expr string, a *promrules.Alert, ev *Evidence) WebhookAlert {
	wa := WebhookAlert{
		Status:       "firing",
		Labels:       a.Labels.Map(),
		Annotations:  a.Annotations.Map(),
		StartsAt:     a.FiredAt,
		GeneratorURL: strings.TrimRight(m.opts.ExternalURL, "/") + strutil.TableLinkForExpression(expr),
		Evidence:     ev,
	}
	if wa.StartsAt.IsZero() {
		wa.StartsAt = a.ActiveAt
	}
	if !a.ResolvedAt.IsZero() {
		wa.Status = "resolved"
		wa.EndsAt = a.ResolvedAt
	}
	ls := make(model.LabelSet, len(wa.Labels))
	for k, v := range wa.Labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	wa.Fingerprint = ls.Fingerprint().String()
	if ev != nil {
		wa.Annotations[AnnotationSummary] = ev.Summary
		wa.Annotations[AnnotationTraceIDs] = ev.TraceIDs()
	}
	return wa
}

// sender delivers messages to one receiver from its own goroutine, so a slow
// or dead receiver delays only itself.
type sender struct {
	url, name string
	queue     chan []byte
	opts      WebhookOptions
	client    *http.Client
	metrics   *metrics
	logger    *slog.Logger
}

func newSender(u string, opts WebhookOptions, m *metrics, logger *slog.Logger) *sender {
	name := u
	if pu, err := url.Parse(u); err == nil {
		name = pu.Redacted()
	}
	return &sender{
		url: u, name: name,
		queue:   make(chan []byte, opts.QueueSize),
		opts:    opts,
		client:  &http.Client{Timeout: opts.Timeout},
		metrics: m,
		logger:  logger.With("receiver", name),
	}
}

// enqueue never blocks: a full queue drops the message and counts it.
func (s *sender) enqueue(msg WebhookMessage) {
	b, err := json.Marshal(msg)
	if err != nil {
		s.logger.Error("encode webhook message", "err", err)
		return
	}
	select {
	case s.queue <- b:
	default:
		s.metrics.dropped.WithLabelValues(s.name).Inc()
		s.logger.Warn("webhook queue full; dropping notification", "group", msg.GroupKey)
	}
}

func (s *sender) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-s.queue:
			s.deliver(ctx, b)
		}
	}
}

// deliver posts b, retrying with exponential backoff on network errors,
// 5xx and 429; other 4xx answers are permanent.
func (s *sender) deliver(ctx context.Context, b []byte) {
	backoff := s.opts.InitialBackoff
	for attempt := 1; ; attempt++ {
		retry, err := s.post(ctx, b)
		if err == nil {
			s.metrics.sent.WithLabelValues(s.name).Inc()
			return
		}
		if !retry || attempt >= s.opts.MaxAttempts || ctx.Err() != nil {
			s.metrics.failed.WithLabelValues(s.name).Inc()
			s.logger.Warn("webhook notification failed", "attempts", attempt, "err", err)
			return
		}
		s.metrics.retries.WithLabelValues(s.name).Inc()
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			s.metrics.failed.WithLabelValues(s.name).Inc()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, s.opts.MaxBackoff)
	}
}

func (s *sender) post(ctx context.Context, b []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(b))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lookout-alerting")
	resp, err := s.client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	switch {
	case resp.StatusCode/100 == 2:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 == 5:
		return true, fmt.Errorf("receiver answered %s", resp.Status)
	default:
		return false, fmt.Errorf("receiver answered %s", resp.Status)
	}
}
