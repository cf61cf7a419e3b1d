package app

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// spanMetricsTraces is 20 checkout traces of one server span each: 10, 20,
// ... 190 ms and one of 3 s, the 3 slowest below it failed.
func spanMetricsTraces(now time.Time) (ptrace.Traces, map[string]bool) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	rs.Resource().Attributes().PutStr("service.instance.id", "checkout-1")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	ids := map[string]bool{}
	for i := range 20 {
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[:8], 0x5ba7)
		binary.BigEndian.PutUint64(tid[8:], uint64(i+1))
		ids[hex.EncodeToString(tid[:])] = true
		sp := spans.AppendEmpty()
		sp.SetTraceID(tid)
		sp.SetSpanID(pcommon.SpanID{7, byte(i + 1)})
		sp.SetName("POST /checkout")
		sp.SetKind(ptrace.SpanKindServer)
		d := time.Duration(i*10+10) * time.Millisecond
		if i == 19 {
			d = 3 * time.Second
		}
		if i >= 16 && i < 19 {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
		start := now.Add(-d)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	}
	return td, ids
}

// TestSpanMetricsEndToEnd sends spans over OTLP/HTTP to the whole Lookout
// (app.New) and reads the derived metrics back through the Prometheus API
// under the names the span metrics connector's output gets in Prometheus,
// with both translation strategies docs/spanmetrics.md names; the
// exemplars of the duration buckets lead to the stored traces through the
// Tempo API.
func TestSpanMetricsEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		strategy, calls, buckets string
	}{
		{"UnderscoreEscapingWithoutSuffixes", "traces_span_metrics_calls", "traces_span_metrics_duration_bucket"},
		{"UnderscoreEscapingWithSuffixes", "traces_span_metrics_calls_total", "traces_span_metrics_duration_milliseconds_bucket"},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.TranslationStrategy = tc.strategy
			cfg.SpanMetricsFlushInterval = 200 * time.Millisecond
			a, err := New(cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			runStarted(t, a)
			api := queryAPI(t, a.PrometheusAddr())

			start := time.Now()
			td, sent := spanMetricsTraces(start)
			body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
			if err != nil {
				t.Fatal(err)
			}
			post(t, "http://"+a.OTLPHTTPAddr()+"/v1/traces", body)

			// Calls: reported as 0 at the first flush, 20 from the second.
			total := fmt.Sprintf(`sum(%s{job="checkout"})`, tc.calls)
			if v, ok := awaitQuery(t, api, total, scalarIs(20)); !ok {
				t.Fatalf("%s = %v, want 20", total, v)
			}
			v, _, _, err := api.Query(context.Background(), tc.calls+`{status_code="STATUS_CODE_ERROR"}`, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			vec, _ := v.(model.Vector)
			if len(vec) != 1 || vec[0].Value != 3 {
				t.Fatalf("errors: %v, want one series of 3", v)
			}
			wantLabels := model.LabelSet{
				"job": "checkout", "instance": "checkout-1", "service_name": "checkout",
				"span_name": "POST /checkout", "span_kind": "SPAN_KIND_SERVER", "status_code": "STATUS_CODE_ERROR",
			}
			for k, want := range wantLabels {
				if got := vec[0].Metric[k]; got != want {
					t.Errorf("label %s = %q, want %q (series %v)", k, got, want, vec[0].Metric)
				}
			}
			if vec[0].Metric["collector_instance_id"] == "" {
				t.Errorf("series %v lacks collector_instance_id", vec[0].Metric)
			}

			// The 90th percentile of 10, 20, ... 190 ms and 3 s is the 18th
			// of 20 values: 180 ms, in the (100, 200] ms bucket.
			q := fmt.Sprintf(`histogram_quantile(0.9, sum by (le) (%s{job="checkout"}))`, tc.buckets)
			if v, ok := awaitQuery(t, api, q, func(v model.Value) bool {
				vec, ok := v.(model.Vector)
				return ok && len(vec) == 1 && vec[0].Value > 100 && vec[0].Value <= 200
			}); !ok {
				t.Errorf("%s = %v, want a value in (100, 200]", q, v)
			}

			// Exemplars: one per bucket, the slowest span's among them, each
			// resolving to a stored trace.
			ex, err := api.QueryExemplars(context.Background(), tc.buckets+`{job="checkout"}`, start.Add(-time.Minute), time.Now().Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, r := range ex {
				for _, e := range r.Exemplars {
					got[string(e.Labels["trace_id"])] = true
				}
			}
			slowest := fmt.Sprintf("%016x%016x", 0x5ba7, 20)
			if !got[slowest] {
				t.Errorf("exemplar trace IDs %v lack the slowest span's trace %s", keys(got), slowest)
			}
			for id := range got {
				if !sent[id] {
					t.Errorf("exemplar trace ID %s was never sent", id)
					continue
				}
				resp, err := http.Get("http://" + a.TempoAddr() + "/api/traces/" + id)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"name":"POST /checkout"`) {
					t.Errorf("GET /api/traces/%s: %d %.200s", id, resp.StatusCode, b)
				}
			}
			if n := ownMetric(t, a, "lookout_spanmetrics_spans_total"); n != 20 {
				t.Errorf("lookout_spanmetrics_spans_total = %v, want 20", n)
			}
		})
	}
}

// TestSpanMetricsDisabled: with --spanmetrics.enabled=false spans are
// stored and no deriver exists.
func TestSpanMetricsDisabled(t *testing.T) {
	cfg := testConfig(t)
	cfg.SpanMetrics = false
	a, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runStarted(t, a)
	td, sent := spanMetricsTraces(time.Now())
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	post(t, "http://"+a.OTLPHTTPAddr()+"/v1/traces", body)
	for id := range sent {
		resp, err := http.Get("http://" + a.TempoAddr() + "/api/traces/" + id)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /api/traces/%s: %d", id, resp.StatusCode)
		}
		break
	}
	if n := ownMetric(t, a, "lookout_spanmetrics_spans_total"); n != -1 {
		t.Errorf("lookout_spanmetrics_spans_total = %v with span metrics off, want no such metric", n)
	}
}

// ownMetric returns the value of one of Lookout's own unlabelled counters,
// or -1 when it is not registered.
func ownMetric(t *testing.T, a *App, name string) float64 {
	t.Helper()
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}

func scalarIs(want float64) func(model.Value) bool {
	return func(v model.Value) bool {
		vec, ok := v.(model.Vector)
		return ok && len(vec) == 1 && float64(vec[0].Value) == want
	}
}
