package spanmetrics

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenInstanceID stands for the collector's service.instance.id.
const goldenInstanceID = "5f0c3c1e-1d4b-4c1a-9a51-6f3a7c9b2e10"

// goldenTraces is the fixed input of the golden and collector tests: two
// resources with service.name (one split over two scopes), one without,
// every duration edge (a bound exactly, past the last bound, end before
// start), an error, a span kind and status the connector has no name for,
// and a sampled span standing for 2.
func goldenTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	start := base.Add(-time.Minute)
	add := func(ss ptrace.SpanSlice, name string, kind ptrace.SpanKind, status ptrace.StatusCode, d time.Duration, trace, span byte, tracestate string) {
		sp := ss.AppendEmpty()
		sp.SetName(name)
		sp.SetKind(kind)
		sp.Status().SetCode(status)
		sp.SetTraceID(pcommon.TraceID{0: 0xab, 15: trace})
		sp.SetSpanID(pcommon.SpanID{0: 0xcd, 7: span})
		sp.TraceState().FromRaw(tracestate)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(d)))
		sp.Attributes().PutStr("http.request.method", "POST")
	}
	ms := time.Millisecond

	checkout := td.ResourceSpans().AppendEmpty()
	attrs := checkout.Resource().Attributes()
	attrs.PutStr("service.name", "checkout")
	attrs.PutStr("service.instance.id", "checkout-1")
	attrs.PutStr("deployment.environment.name", "prod")
	attrs.PutInt("host.cpu.count", 4)
	web := checkout.ScopeSpans().AppendEmpty()
	web.Scope().SetName("webstore")
	add(web.Spans(), "POST /checkout", ptrace.SpanKindServer, ptrace.StatusCodeUnset, 120*ms, 1, 1, "")
	add(web.Spans(), "POST /checkout", ptrace.SpanKindServer, ptrace.StatusCodeError, 2*ms, 2, 2, "")
	add(web.Spans(), "POST /checkout", ptrace.SpanKindServer, ptrace.StatusCodeUnset, 380*ms, 3, 3, "")
	add(web.Spans(), "payment_provider_api", ptrace.SpanKindClient, ptrace.StatusCodeOk, 1500*ms, 1, 4, "")
	add(web.Spans(), "db.query", ptrace.SpanKindInternal, ptrace.StatusCodeUnset, -ms, 1, 5, "")
	other := checkout.ScopeSpans().AppendEmpty()
	other.Scope().SetName("net/http")
	add(other.Spans(), "POST /checkout", ptrace.SpanKindServer, ptrace.StatusCodeUnset, 16*time.Second, 4, 6, "")

	inventory := td.ResourceSpans().AppendEmpty()
	inventory.Resource().Attributes().PutStr("service.name", "inventory")
	inv := inventory.ScopeSpans().AppendEmpty().Spans()
	add(inv, "GET /stock", ptrace.SpanKindServer, ptrace.StatusCodeUnset, 8*ms, 5, 7, "ot=th:8")
	add(inv, "GET /stock", ptrace.SpanKind(42), ptrace.StatusCode(7), 8*ms, 5, 8, "")

	orphan := td.ResourceSpans().AppendEmpty()
	orphan.Resource().Attributes().PutStr("host.name", "no-service")
	add(orphan.ScopeSpans().AppendEmpty().Spans(), "orphan", ptrace.SpanKindServer, ptrace.StatusCodeUnset, ms, 6, 9, "")
	return td
}

// TestGolden pins the flushes for goldenTraces: the first (calls at 0,
// histograms and exemplars filled) 15 s after the spans came, and the
// second 15 s later after the same spans came once more.
//
// Checked against opentelemetry-collector-contrib
// connector/spanmetricsconnector v0.165.0 (identical for these defaults in
// v0.161.0): connector.go buildMetrics (lines 318-384: one ResourceMetrics
// per resource with all its attributes, scope "spanmetricsconnector",
// calls then duration, unit "ms"), aggregateMetrics (434-523: no
// service.name → skipped, duration in ms, 0 when end < start, adjusted
// count), buildAttributes (573-636: service.name, span.name, span.kind,
// status.code, collector.instance.id in that order);
// internal/metrics/metrics.go Sum.BuildMetrics (425-453: first cumulative
// point 0), explicitHistogram Observe (294-310: sort.SearchFloat64s, so
// upper-inclusive bounds) and GetOrCreate (99-133: overflow series);
// config.go defaultHistogramBucketsMs (25-27); factory.go
// createDefaultConfig (38-56). TestAgainstCollector compares with a
// collector built from that version. Lookout's exemplars (one per point,
// the slowest span of the interval) are its own.
func TestGolden(t *testing.T) {
	opts := DefaultOptions()
	opts.InstanceID = goldenInstanceID
	d, sink, clk := newTestDeriver(t, opts, &traceSink{})
	ctx := context.Background()
	if _, err := d.ConsumeTraces(ctx, goldenTraces()); err != nil {
		t.Fatal(err)
	}
	clk.advance(15 * time.Second)
	d.flush(ctx)
	clk.advance(5 * time.Second)
	if _, err := d.ConsumeTraces(ctx, goldenTraces()); err != nil {
		t.Fatal(err)
	}
	clk.advance(10 * time.Second)
	d.flush(ctx)
	flushes := sink.all()
	if len(flushes) != 2 {
		t.Fatalf("%d flushes, want 2", len(flushes))
	}
	for i, name := range []string{"flush1.golden.json", "flush2.golden.json"} {
		compareGolden(t, filepath.Join("testdata", name), marshalJSON(t, flushes[i]))
	}
}

// marshalJSON is OTLP/JSON, indented for readable diffs.
func marshalJSON(t *testing.T, md pmetric.Metrics) []byte {
	t.Helper()
	raw, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(md)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s", path, got)
	}
}
