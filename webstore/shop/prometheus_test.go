package shop

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/lookout-dev/lookout/internal/testpeers"
	"github.com/lookout-dev/lookout/webstore/telemetry"
)

// TestExemplarsInRealPrometheus is the "done when": the shop exports
// metrics over OTLP/HTTP (configured only by OTEL_* variables) to a real
// Prometheus with its OTLP receiver and exemplar storage on, and traces to an
// OTLP/gRPC receiver; /api/v1/query_exemplars then returns, for
// webstore_payment_duration_bucket, trace and span IDs of exported
// process_payment spans.
func TestExemplarsInRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	promAddr := testpeers.StartPrometheus(t)
	sink := startOTLPSink(t)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://"+sink.addr)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://"+promAddr+"/api/v1/otlp/v1/metrics")
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000")

	cfg := testConfig(t)
	cfg.Telemetry = telemetry.Config{}
	s := startShop(t, cfg)
	c := newAPIClient(t, s.MainURL())
	start := time.Now().Add(-time.Minute)
	for i, country := range []string{"US", "DE", "JP"} {
		status, body := c.do("POST", "/checkout", map[string]any{
			"items": []map[string]int64{{"product_id": int64(1 + i), "quantity": 1}}, "country": country, "payment_method": "card",
		})
		if status != http.StatusCreated {
			t.Fatalf("checkout: %d %v", status, body)
		}
	}
	if err := s.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}

	// process_payment spans by trace ID.
	traces, _ := sink.snapshot()
	paySpans := map[string]string{}
	for _, sp := range flattenSpans(traces) {
		if sp.name == "process_payment" {
			paySpans[sp.traceID.String()] = sp.spanID.String()
		}
	}
	if len(paySpans) != 3 {
		t.Fatalf("%d process_payment spans exported, want 3", len(paySpans))
	}

	q := url.Values{
		"query": {"webstore_payment_duration_bucket"},
		"start": {strconv.FormatInt(start.Unix(), 10)},
		"end":   {strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)},
	}
	resp, err := http.Get("http://" + promAddr + "/api/v1/query_exemplars?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Data   []struct {
			SeriesLabels map[string]string `json:"seriesLabels"`
			Exemplars    []struct {
				Labels map[string]string `json:"labels"`
				Value  string            `json:"value"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	matched := map[string]bool{}
	for _, series := range out.Data {
		if series.SeriesLabels["job"] != MainService || series.SeriesLabels["country"] == "" || series.SeriesLabels["payment_method"] != "card" {
			t.Errorf("series labels %v: want job=main-service with country and payment_method", series.SeriesLabels)
		}
		for _, ex := range series.Exemplars {
			tid, sid := ex.Labels["trace_id"], ex.Labels["span_id"]
			want, ok := paySpans[tid]
			if !ok {
				t.Errorf("exemplar trace_id %q is not one of the exported checkout traces", tid)
				continue
			}
			if sid != want {
				t.Errorf("exemplar of trace %s has span_id %s, want process_payment's %s", tid, sid, want)
			}
			matched[tid] = true
		}
	}
	t.Logf("query_exemplars: %d series; exemplars matched %d checkout traces", len(out.Data), len(matched))
	if len(matched) != 3 {
		t.Errorf("exemplars matched %d of 3 checkout traces; answer: %+v", len(matched), out)
	}
}
