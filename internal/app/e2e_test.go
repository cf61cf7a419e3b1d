package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.uber.org/goleak"

	"github.com/lookout-dev/lookout/internal/exemplars"
	"github.com/lookout-dev/lookout/internal/ingest"
	"github.com/lookout-dev/lookout/internal/testpeers"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig returns a config on free loopback ports with a temp data dir.
func testConfig(t *testing.T) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.OTLPGRPCListen = "127.0.0.1:0"
	cfg.OTLPHTTPListen = "127.0.0.1:0"
	cfg.PrometheusListen = "127.0.0.1:0"
	cfg.TempoListen = "127.0.0.1:0"
	cfg.UIListen = "127.0.0.1:0"
	cfg.ShutdownTimeout = 10 * time.Second
	return cfg
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// startApp runs an App until the test ends, then stops it and checks the
// stop was clean.
func startApp(t *testing.T, cfg Config) *App {
	t.Helper()
	a, _ := runApp(t, cfg)
	return a
}

// runApp is startApp that also returns an idempotent stop function.
func runApp(t *testing.T, cfg Config) (*App, func()) {
	t.Helper()
	a, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("app stopped before ready: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("app stopped with error: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return a, stop
}

// countingTraces counts the spans the receivers hand to the sink it wraps
// (testHooks.tracesSink).
type countingTraces struct {
	next  ingest.TracesSink
	spans atomic.Int64
}

func (c *countingTraces) wrap(next ingest.TracesSink) ingest.TracesSink {
	c.next = next
	return c
}

func (c *countingTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) (ingest.Result, error) {
	c.spans.Add(int64(td.SpanCount()))
	return c.next.ConsumeTraces(ctx, td)
}

// TestEndToEndSDK sends histograms recorded inside spans with the real OTel
// Go SDK exporters, over gRPC and over HTTP, and reads them back with
// client_golang's Prometheus API client.
func TestEndToEndSDK(t *testing.T) {
	traces := &countingTraces{}
	writer := &recordingWriter{}
	cfg := testConfig(t)
	// The writer is to see the exemplars sent, not those of span metrics.
	cfg.SpanMetrics = false
	cfg.hooks = &testHooks{tracesSink: traces.wrap, exemplarWriter: writer.wrap}
	a, stop := runApp(t, cfg)
	allTraceIDs := map[string]bool{}
	api := queryAPI(t, a.PrometheusAddr())

	for _, transport := range []string{"grpc", "http"} {
		t.Run(transport, func(t *testing.T) {
			ctx := context.Background()
			job := "checkout-" + transport
			var mexp sdkmetric.Exporter
			var texp sdktrace.SpanExporter
			var err error
			switch transport {
			case "grpc":
				mexp, err = otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(a.OTLPGRPCAddr()), otlpmetricgrpc.WithInsecure())
				if err == nil {
					texp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(a.OTLPGRPCAddr()), otlptracegrpc.WithInsecure())
				}
			case "http":
				mexp, err = otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(a.OTLPHTTPAddr()), otlpmetrichttp.WithInsecure(), otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
				if err == nil {
					texp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(a.OTLPHTTPAddr()), otlptracehttp.WithInsecure())
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			res := resource.NewSchemaless(semconv.ServiceName(job), semconv.ServiceInstanceID("i-1"))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
				sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(time.Hour))))
			tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSyncer(texp))
			defer func() {
				_ = mp.Shutdown(ctx)
				_ = tp.Shutdown(ctx)
			}()
			hist, err := mp.Meter("webstore").Float64Histogram("webstore.payment.duration",
				metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.1, 0.5, 1, 5, 10))
			if err != nil {
				t.Fatal(err)
			}
			tracer := tp.Tracer("webstore")
			// One value per bucket, each inside its own trace, so each
			// bucket's exemplar names a different trace.
			record := func(values ...float64) map[string]bool {
				ids := map[string]bool{}
				for _, v := range values {
					sctx, span := tracer.Start(ctx, "process_payment")
					hist.Record(sctx, v, metric.WithAttributes(attribute.String("country", "US"), attribute.String("payment_method", "card")))
					ids[span.SpanContext().TraceID().String()] = true
					span.End()
				}
				return ids
			}
			start := time.Now().Add(-time.Minute)
			want := record(0.05, 0.3, 0.7, 3, 7, 12)
			if err := mp.ForceFlush(ctx); err != nil {
				t.Fatal(err)
			}
			// A second export: the SDK re-sends the same exemplars for
			// buckets without new measurements (cumulative temporality).
			// Its points must fall on a later millisecond than the first
			// export's, or the TSDB rightly refuses them as duplicate
			// samples with other values.
			time.Sleep(2 * time.Millisecond)
			want2 := record(0.2)
			if err := mp.ForceFlush(ctx); err != nil {
				t.Fatal(err)
			}
			for id := range want2 {
				want[id] = true
			}
			for id := range want {
				allTraceIDs[id] = true
			}
			end := time.Now().Add(time.Minute)

			sel := fmt.Sprintf(`webstore_payment_duration_bucket{job=%q}`, job)
			v, _, _, err := api.Query(ctx, sel, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			vec, ok := v.(model.Vector)
			if !ok || len(vec) != 6 {
				t.Fatalf("instant query %s: want 6 bucket series, got %v", sel, v)
			}
			for _, s := range vec {
				if s.Metric["instance"] != "i-1" || s.Metric["country"] != "US" {
					t.Errorf("series labels %v: want instance=i-1, country=US", s.Metric)
				}
				if s.Metric["le"] == "+Inf" && s.Value != 7 {
					t.Errorf("le=+Inf: want 7, got %v", s.Value)
				}
			}

			ex, err := api.QueryExemplars(ctx, sel, start, end)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			n := 0
			for _, r := range ex {
				for _, e := range r.Exemplars {
					n++
					got[string(e.Labels["trace_id"])] = true
					if len(e.Labels["span_id"]) != 16 {
						t.Errorf("exemplar %v: want a 16-hex-digit span_id", e.Labels)
					}
				}
			}
			if !mapsEqual(got, want) {
				t.Errorf("exemplar trace IDs:\n got %v\nwant %v", keys(got), keys(want))
			}
			if n != len(want) {
				t.Errorf("want %d exemplars (re-exported ones deduplicated), got %d", len(want), n)
			}

			// The extension: /api/v1/query series carry their exemplars.
			extIDs := queryExtensionTraceIDs(t, a.PrometheusAddr(), sel)
			if !mapsEqual(extIDs, want) {
				t.Errorf("query extension trace IDs:\n got %v\nwant %v", keys(extIDs), keys(want))
			}

			m, _, _, err := api.QueryRange(ctx, fmt.Sprintf(`sum(webstore_payment_duration_count{job=%q})`, job),
				promv1.Range{Start: start, End: end, Step: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			mat, ok := m.(model.Matrix)
			if !ok || len(mat) != 1 || mat[0].Values[len(mat[0].Values)-1].Value != 7 {
				t.Errorf("query_range: want one series ending at 7, got %v", m)
			}
		})
	}
	if traces.spans.Load() != 14 {
		t.Errorf("traces sink got %d spans, want 14", traces.spans.Load())
	}
	// Stopping flushes the exemplar queue: the writer has every exemplar
	// the TSDB took, once.
	stop()
	got := map[string]bool{}
	for _, r := range writer.records() {
		got[r.Exemplar.Labels.Get("trace_id")] = true
		if r.Series.Get("__name__") != "webstore_payment_duration_bucket" {
			t.Errorf("exemplar record on series %v", r.Series)
		}
	}
	if !mapsEqual(got, allTraceIDs) || len(writer.records()) != len(allTraceIDs) {
		t.Errorf("exemplar writer got %d records for trace IDs %v, want one each for %v", len(writer.records()), keys(got), keys(allTraceIDs))
	}
}

// recordingWriter records the exemplars the metric store hands to the
// exemplar index it wraps (testHooks.exemplarWriter), which still gets
// them, and its WAL marks.
type recordingWriter struct {
	*exemplars.Index
	mu   sync.Mutex
	recs []exemplars.Record
}

func (w *recordingWriter) wrap(idx *exemplars.Index) exemplars.Writer {
	w.Index = idx
	return w
}

func (w *recordingWriter) WriteExemplars(ctx context.Context, recs []exemplars.Record) error {
	w.mu.Lock()
	w.recs = append(w.recs, recs...)
	w.mu.Unlock()
	return w.Index.WriteExemplars(ctx, recs)
}

// WALMark reports no mark: the recorder keeps nothing across restarts.
func (w *recordingWriter) WALMark() (int, bool, error) { return 0, false, nil }

// SetWALMark keeps nothing.
func (w *recordingWriter) SetWALMark(int) error { return nil }

func (w *recordingWriter) records() []exemplars.Record {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.recs)
}

// queryExtensionTraceIDs runs the seed's verification query over plain HTTP
// and collects the trace IDs of the "exemplars" of every result series.
func queryExtensionTraceIDs(t *testing.T, addr, query string) map[string]bool {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		Data struct {
			Result []struct {
				Exemplars []struct {
					Labels map[string]string `json:"labels"`
				} `json:"exemplars"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	ids := map[string]bool{}
	for _, r := range out.Data.Result {
		for _, e := range r.Exemplars {
			ids[e.Labels["trace_id"]] = true
		}
	}
	return ids
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return slices.Clip(out)
}

// TestPromtool runs the promtool command against Lookout.
func TestPromtool(t *testing.T) {
	if testing.Short() {
		t.Skip("needs promtool")
	}
	promtool := testpeers.Promtool(t)
	a := startApp(t, testConfig(t))
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Minute)
	for i := range 40 {
		post(t, "http://"+a.OTLPHTTPAddr()+"/v1/metrics", compatBatch(base, i, 15*time.Second))
	}
	at := base.Add(39 * 15 * time.Second)
	out, err := exec.Command(promtool, "query", "instant", "--time="+at.Format(time.RFC3339), "http://"+a.PrometheusAddr(),
		`histogram_quantile(0.95, rate(webstore_payment_duration_bucket[5m]))`).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `job="payments-service"`) || !strings.Contains(string(out), "=>") {
		t.Fatalf("promtool output lacks the quantile series:\n%s", out)
	}
}
