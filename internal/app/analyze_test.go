package app

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/lookout-dev/lookout/internal/analysis"
)

// checkouts builds n two-span checkout traces starting at from, step apart,
// whose provider call takes provider, and the matching exemplars (value:
// the checkout's duration in seconds, span: the root).
func checkouts(seed uint64, n int, from time.Time, step, provider time.Duration, method string) (ptrace.Traces, []pmetric.Exemplar) {
	td := ptrace.NewTraces()
	main := td.ResourceSpans().AppendEmpty()
	main.Resource().Attributes().PutStr("service.name", "main-service")
	pay := td.ResourceSpans().AppendEmpty()
	pay.Resource().Attributes().PutStr("service.name", "payments-service")
	ms, ps := main.ScopeSpans().AppendEmpty().Spans(), pay.ScopeSpans().AppendEmpty().Spans()
	var exs []pmetric.Exemplar
	for i := range n {
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[:8], seed)
		binary.BigEndian.PutUint64(tid[8:], uint64(i+1))
		start := from.Add(time.Duration(i) * step)
		dur := provider + 20*time.Millisecond
		root := ms.AppendEmpty()
		root.SetTraceID(tid)
		root.SetSpanID(pcommon.SpanID{1, byte(i)})
		root.SetName("POST /checkout")
		root.SetKind(ptrace.SpanKindServer)
		root.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		root.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(dur)))
		root.Attributes().PutStr("payment_method", method)
		call := ps.AppendEmpty()
		call.SetTraceID(tid)
		call.SetSpanID(pcommon.SpanID{2, byte(i)})
		call.SetParentSpanID(root.SpanID())
		call.SetName("payment_provider_api")
		call.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(10 * time.Millisecond)))
		call.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(10*time.Millisecond + provider)))
		ex := pmetric.NewExemplar()
		ex.SetTraceID(tid)
		ex.SetSpanID(root.SpanID())
		ex.SetDoubleValue(dur.Seconds())
		ex.SetTimestamp(pcommon.NewTimestampFromTime(start.Add(dur)))
		exs = append(exs, ex)
	}
	return td, exs
}

// paymentHistogram is one cumulative webstore.payment.duration point at ts
// carrying exs.
func paymentHistogram(ts time.Time, count uint64, exs []pmetric.Exemplar) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "main-service")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("webstore.payment.duration")
	m.SetUnit("s")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := h.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(pcommon.NewTimestampFromTime(ts.Add(-time.Hour)))
	dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	dp.ExplicitBounds().FromRaw([]float64{0.1, 1, 5, 10})
	dp.BucketCounts().FromRaw([]uint64{count, count, count, count, count})
	dp.SetCount(count)
	for _, ex := range exs {
		ex.CopyTo(dp.Exemplars().AppendEmpty())
	}
	return md
}

// TestAnalyzeRemote: a second Lookout whose UI reads the first one through
// --prometheus.url and --tempo.url answers /prometheus/api/lookout/analyze
// from those remote APIs exactly as the first answers from its own stores.
func TestAnalyzeRemote(t *testing.T) {
	a, err := New(testConfig(t), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runStarted(t, a)
	now := time.Now().Truncate(time.Second)
	normal, normalEx := checkouts(1, 40, now.Add(-20*time.Minute), 15*time.Second, 60*time.Millisecond, "card")
	slow, slowEx := checkouts(2, 20, now.Add(-3*time.Minute), 5*time.Second, 7*time.Second, "paypal")
	for _, td := range []ptrace.Traces{normal, slow} {
		b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		post(t, "http://"+a.OTLPHTTPAddr()+"/v1/traces", b)
	}
	for _, md := range []pmetric.Metrics{
		paymentHistogram(now.Add(-10*time.Minute), 40, normalEx),
		paymentHistogram(now, 60, slowEx),
	} {
		b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		post(t, "http://"+a.OTLPHTTPAddr()+"/v1/metrics", b)
	}

	cfg := testConfig(t)
	cfg.PrometheusURL = "http://" + a.PrometheusAddr()
	cfg.TempoURL = "http://" + a.TempoAddr()
	b, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runStarted(t, b)

	params := url.Values{
		"query": {`histogram_quantile(0.95, sum by (le) (rate(webstore_payment_duration_bucket[5m]))) > 5`},
		"start": {strconv.FormatInt(now.Add(-4*time.Minute).Unix(), 10)}, "end": {strconv.FormatInt(now.Add(time.Minute).Unix(), 10)},
		"baseline_start": {strconv.FormatInt(now.Add(-30*time.Minute).Unix(), 10)}, "baseline_end": {strconv.FormatInt(now.Add(-5*time.Minute).Unix(), 10)},
	}
	local := analyzeAt(t, "http://"+a.PrometheusAddr(), params)
	if local.Spike.Traces != 20 || local.Baseline.Traces != 40 || len(local.Findings) == 0 ||
		local.Findings[0].Kind != analysis.KindAttribute && local.Findings[0].Span != "payment_provider_api" {
		t.Fatalf("local analysis: %+v", local)
	}
	remote := analyzeAt(t, "http://"+b.UIAddr()+"/prometheus", params)
	lj, _ := json.Marshal(local.Findings)
	rj, _ := json.Marshal(remote.Findings)
	if remote.Verdict != local.Verdict || !bytes.Equal(lj, rj) {
		t.Errorf("through the remote APIs:\n%s %s\nlocally:\n%s %s", remote.Verdict, rj, local.Verdict, lj)
	}
	// B's own Prometheus listener analyses B's own (empty) stores.
	own := analyzeAt(t, "http://"+b.PrometheusAddr(), params)
	if len(own.Findings) != 0 || own.Spike.Exemplars != 0 {
		t.Errorf("B's own stores: %+v", own)
	}
}

func runStarted(t *testing.T, a *App) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	<-a.Ready()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}

func analyzeAt(t *testing.T, base string, params url.Values) analysis.Result {
	t.Helper()
	resp, err := http.Get(base + "/api/lookout/analyze?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string          `json:"status"`
		Data   analysis.Result `json:"data"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &r) != nil || r.Status != "success" {
		t.Fatalf("%s: %d %s", base, resp.StatusCode, body)
	}
	t.Logf("%s: %s", base, r.Data.Verdict)
	return r.Data
}
