package tempoapi

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lookout-dev/lookout/internal/exemplars"
	"github.com/lookout-dev/lookout/internal/ingest"
	"github.com/lookout-dev/lookout/internal/testpeers"
	"github.com/lookout-dev/lookout/internal/tracestore"
)

// otlpServer is a minimal OTLP/gRPC trace receiver for this test only (the
// real receivers live in internal/otlpin): it feeds the store and maps its
// errors to gRPC codes.
type otlpServer struct {
	ptraceotlp.UnimplementedGRPCServer
	sink ingest.TracesSink
}

func (s *otlpServer) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	res, err := s.sink.ConsumeTraces(ctx, req.Traces())
	switch {
	case errors.Is(err, ingest.ErrBadData):
		return ptraceotlp.NewExportResponse(), status.Error(grpccodes.InvalidArgument, err.Error())
	case err != nil:
		return ptraceotlp.NewExportResponse(), status.Error(grpccodes.Unavailable, err.Error())
	}
	resp := ptraceotlp.NewExportResponse()
	if res.Rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(res.Rejected)
		resp.PartialSuccess().SetErrorMessage(res.Message)
	}
	return resp, nil
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs telemetrygen")
	}
	tgen := testpeers.Telemetrygen(t)
	ctx := context.Background()
	store, err := tracestore.Open(t.TempDir(), tracestore.DefaultOptions(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	idx, err := exemplars.Open(t.TempDir(), exemplars.Options{Traces: store}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(gs, &otlpServer{sink: store})
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	endpoint := lis.Addr().String()

	api := httptest.NewServer(NewHandler(Options{Traces: store, Exemplars: idx}))
	defer api.Close()

	// 1. The OTel Go SDK: one trace over two services.
	newTP := func(service string) *sdktrace.TracerProvider {
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure())
		if err != nil {
			t.Fatal(err)
		}
		return sdktrace.NewTracerProvider(
			sdktrace.WithBatcher(exp),
			sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service))),
		)
	}
	mainTP, payTP := newTP("e2e-main"), newTP("e2e-payments")
	rootCtx, root := mainTP.Tracer("e2e").Start(ctx, "POST /checkout", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.Int("http.response.status_code", 502), attribute.String("country", "DE")))
	payCtx, pay := mainTP.Tracer("e2e").Start(rootCtx, "process_payment", trace.WithSpanKind(trace.SpanKindClient))
	_, provider := payTP.Tracer("e2e").Start(payCtx, "payment_provider_api", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("payment_method", "card")))
	time.Sleep(20 * time.Millisecond)
	provider.SetStatus(codes.Error, "provider timeout")
	provider.End()
	pay.End()
	root.End()
	for _, tp := range []*sdktrace.TracerProvider{payTP, mainTP} {
		if err := tp.Shutdown(ctx); err != nil { // flushes; returns once the server acknowledged
			t.Fatal(err)
		}
	}
	sdkTrace := root.SpanContext().TraceID().String()

	// 2. telemetrygen: 20 traces of 3 spans each, throttled so its batcher keeps them all.
	cmd := exec.Command(tgen, "traces", "--otlp-endpoint", endpoint, "--otlp-insecure", "--traces", "20",
		"--child-spans", "2", "--rate", "200", "--service", "e2e-telemetrygen", "--status-code", "Ok",
		"--telemetry-attributes", `tgen.run="e2e"`)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("telemetrygen: %v\n%s", err, out)
	}

	getJSON := func(path string, v any) {
		t.Helper()
		code, _, body := get(t, api.URL+path)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	// The SDK trace, whole, by ID (v1 and v2).
	var v1 struct {
		Batches []struct {
			Resource   struct{ Attributes []struct{ Key string } }
			ScopeSpans []struct {
				Spans []struct{ Name, TraceID string }
			}
		}
	}
	getJSON("/api/traces/"+sdkTrace, &v1)
	var names []string
	for _, b := range v1.Batches {
		for _, ss := range b.ScopeSpans {
			for _, sp := range ss.Spans {
				names = append(names, sp.Name)
			}
		}
	}
	slices.Sort(names)
	if want := []string{"POST /checkout", "payment_provider_api", "process_payment"}; !slices.Equal(names, want) {
		t.Errorf("SDK trace spans = %v, want %v", names, want)
	}
	var v2 struct {
		Trace  struct{ ResourceSpans []json.RawMessage }
		Status string
	}
	getJSON("/api/v2/traces/"+sdkTrace, &v2)
	if len(v2.Trace.ResourceSpans) != 2 || v2.Status != "COMPLETE" {
		t.Errorf("v2: %d resourceSpans, status %q", len(v2.Trace.ResourceSpans), v2.Status)
	}

	type searchRes struct {
		Traces []struct {
			TraceID, RootServiceName, RootTraceName string
			DurationMs                              int
		}
	}
	search := func(params string) []string {
		t.Helper()
		var r searchRes
		getJSON("/api/search?"+params, &r)
		var ids []string
		for _, tr := range r.Traces {
			// Tempo writes search results' trace IDs without leading
			// zeros; compare them at full length.
			if strings.HasPrefix(tr.TraceID, "0") {
				t.Errorf("search result trace ID %s has a leading zero", tr.TraceID)
			}
			ids = append(ids, strings.Repeat("0", max(32-len(tr.TraceID), 0))+tr.TraceID)
		}
		return ids
	}
	q := func(s string) string { return "limit=100&q=" + url.QueryEscape(s) }
	for _, c := range []struct {
		params string
		want   int // traces expected; the SDK trace must be among them when want == 1
	}{
		{q(`{ resource.service.name = "e2e-payments" }`), 1},
		{q(`{ name = "payment_provider_api" && status = error }`), 1},
		{q(`{ kind = client && resource.service.name = "e2e-main" }`), 1},
		{q(`{ duration >= 15ms && resource.service.name = "e2e-main" }`), 1},
		{q(`{ traceDuration >= 15ms }`), 1},
		{q(`{ span.http.response.status_code = 502 }`), 1},
		{q(`{ rootServiceName = "e2e-main" } >> { .payment_method = "card" }`), 1},
		{"limit=100&tags=" + url.QueryEscape(`country=DE`), 1},
		{"limit=100&minDuration=15ms", 1},
		{q(`{ resource.service.name = "e2e-telemetrygen" }`), 20},
		{q(`{ span.tgen.run = "e2e" && status = ok }`), 20},
	} {
		ids := search(c.params)
		if len(ids) != c.want || (c.want == 1 && ids[0] != sdkTrace) {
			t.Errorf("search %s: %d traces %v, want %d", c.params, len(ids), ids, c.want)
		}
	}
	// Every telemetrygen trace is fetched whole.
	for _, id := range search(q(`{ resource.service.name = "e2e-telemetrygen" }`)) {
		var tr struct {
			Batches []struct {
				ScopeSpans []struct{ Spans []json.RawMessage }
			}
		}
		getJSON("/api/traces/"+id, &tr)
		n := 0
		for _, b := range tr.Batches {
			for _, ss := range b.ScopeSpans {
				n += len(ss.Spans)
			}
		}
		if n != 3 {
			t.Errorf("telemetrygen trace %s: %d spans, want 3", id, n)
		}
	}
	// Tag endpoints list what arrived.
	var tags struct{ TagNames []string }
	getJSON("/api/search/tags", &tags)
	for _, want := range []string{"service.name", "payment_method", "tgen.run", "http.response.status_code"} {
		if !slices.Contains(tags.TagNames, want) {
			t.Errorf("tags %v lack %s", tags.TagNames, want)
		}
	}
	var vals struct{ TagValues []string }
	getJSON("/api/search/tag/service.name/values", &vals)
	for _, want := range []string{"e2e-main", "e2e-payments", "e2e-telemetrygen"} {
		if !slices.Contains(vals.TagValues, want) {
			t.Errorf("service.name values %v lack %s", vals.TagValues, want)
		}
	}

	// 3. An exemplar from the metrics side resolves through both APIs: the
	// Prometheus-side ExemplarQuerier and the Tempo API.
	err = idx.WriteExemplars(ctx, []exemplars.Record{{
		Series:   labels.FromStrings("__name__", "webstore_payment_duration_bucket", "le", "0.05"),
		Exemplar: exemplar.Exemplar{Labels: labels.FromStrings("trace_id", sdkTrace), Value: 0.02, Ts: time.Now().UnixMilli(), HasTs: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	eq, _ := idx.ExemplarQuerier(ctx)
	res, err := eq.Select(0, time.Now().Add(time.Minute).UnixMilli(), []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "webstore_payment_duration_bucket")})
	if err != nil || len(res) != 1 {
		t.Fatalf("query_exemplars: %v %v", res, err)
	}
	exTrace := res[0].Exemplars[0].Labels.Get("trace_id")
	code, _, _ := get(t, api.URL+"/api/traces/"+exTrace)
	if code != 200 {
		t.Errorf("exemplar's trace %s: %d", exTrace, code)
	}
	var link struct {
		TraceReceived bool
		Series        []struct{ SeriesLabels map[string]string }
	}
	getJSON("/api/lookout/exemplars?traceID="+exTrace, &link)
	if !link.TraceReceived || len(link.Series) != 1 || link.Series[0].SeriesLabels["le"] != "0.05" {
		t.Errorf("reverse link = %+v", link)
	}
	if pinned, _ := idx.IsPinned(ctx, mustID(sdkTrace)); !pinned {
		t.Error("exemplar's trace not pinned")
	}
	t.Logf("SDK trace %s and 20 telemetrygen traces stored and found", sdkTrace)
}
