package deploy_test

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/lookout-dev/lookout/internal/analysis"
	"github.com/lookout-dev/lookout/internal/remote"
	"github.com/lookout-dev/lookout/internal/testpeers"
)

// TestInterop runs the production path here, without Docker: a real
// Prometheus (go install) and a collector built by the OpenTelemetry
// Collector builder from collector/builder.yaml, both with the shipped
// configs (addresses rewritten to free loopback ports), and the WebStore
// exporting to the collector. Prometheus must return exemplars whose trace
// IDs the collector also forwarded to its trace exporter, which points at an
// OTLP/HTTP receiver in this test standing in for Tempo's ingest.
// promtool checks the shipped config and rules; the collector validates its
// config. -short skips it (the first run builds Prometheus and the collector).
func TestInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("interop test builds and runs Prometheus and a collector; skipped with -short")
	}
	root, err := testpeers.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	prometheus := testpeers.Prometheus(t)
	promtool := testpeers.Promtool(t)
	otelcol := testpeers.Collector(t, filepath.Join(root, "deploy/collector/builder.yaml"))
	dir := t.TempDir()

	promAddr, colHTTP, colGRPC, colTelemetry := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	tempo := newTraceSink(t)

	// The shipped Prometheus config with its addresses rewritten, next to
	// the shipped rule file as compose mounts it.
	promYML := readFile(t, filepath.Join(root, "deploy/prometheus/prometheus.yml"))
	promYML = strings.ReplaceAll(promYML, "localhost:9090", promAddr)
	promYML = strings.ReplaceAll(promYML, "otel-collector:8888", colTelemetry)
	writeFile(t, filepath.Join(dir, "prometheus.yml"), promYML)
	writeFile(t, filepath.Join(dir, "rules/webstore.yml"), readFile(t, filepath.Join(root, "rules/webstore.yml")))
	run(t, dir, nil, promtool, "check", "config", filepath.Join(dir, "prometheus.yml"))
	run(t, dir, nil, promtool, "check", "rules", filepath.Join(root, "rules/webstore.yml"))

	_, colPort, _ := net.SplitHostPort(colTelemetry)
	colEnv := []string{
		"OTELCOL_OTLP_GRPC_ENDPOINT=" + colGRPC,
		"OTELCOL_OTLP_HTTP_ENDPOINT=" + colHTTP,
		"PROMETHEUS_OTLP_ENDPOINT=http://" + promAddr + "/api/v1/otlp",
		"TEMPO_OTLP_ENDPOINT=" + tempo.URL,
		"OTELCOL_TELEMETRY_HOST=127.0.0.1",
		"OTELCOL_TELEMETRY_PORT=" + colPort,
		"OTELCOL_DEBUG_VERBOSITY=basic",
	}
	colConfig := filepath.Join(root, "deploy/collector/config.yaml")
	run(t, dir, colEnv, otelcol, "validate", "--config", colConfig)

	start(t, dir, "prometheus", nil, prometheus,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "prom-data"),
		"--web.listen-address="+promAddr,
		"--web.enable-otlp-receiver",
		"--enable-feature=exemplar-storage")
	waitHTTP(t, "http://"+promAddr+"/-/ready")
	start(t, dir, "otelcol", colEnv, otelcol, "--config", colConfig)
	waitHTTP(t, "http://"+colTelemetry+"/metrics")

	webstore := filepath.Join(dir, "webstore")
	run(t, root, nil, "go", "build", "-o", webstore, "./cmd/webstore")
	mainAddr := freeAddr(t)
	wsEnv := []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + colHTTP,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_METRIC_EXPORT_INTERVAL=1000",
		"OTEL_BSP_SCHEDULE_DELAY=200",
	}
	start(t, dir, "webstore", wsEnv, webstore, "serve",
		"--data-dir", filepath.Join(dir, "webstore-data"),
		"--main-listen", mainAddr, "--payments-listen", freeAddr(t),
		"--provider-listen", freeAddr(t), "--inventory-listen", freeAddr(t),
		// The seed's incident, shortened: the payment provider is slow.
		"--provider-latency", "1500ms")
	waitTCP(t, mainAddr)
	testStart := time.Now()
	run(t, dir, wsEnv, webstore, "traffic", "--target", "http://"+mainAddr, "--rate", "10", "--requests", "60")

	// Prometheus stored the seed's metric name, with exemplars carrying trace IDs.
	var exemplarIDs []string
	eventually(t, "exemplars on webstore_payment_duration_bucket in Prometheus", func() bool {
		exemplarIDs = queryExemplarTraceIDs(t, promAddr, "webstore_payment_duration_bucket")
		return len(exemplarIDs) > 0
	})
	// Every one of them was forwarded by the collector's trace pipeline.
	var missing []string
	eventually(t, "exemplar traces forwarded by the collector", func() bool {
		missing = missing[:0]
		for _, id := range exemplarIDs {
			if !tempo.has(id) {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0
	}, func() string {
		return fmt.Sprintf("exemplar trace IDs %v; not forwarded: %v (collector forwarded %d traces)", exemplarIDs, missing, tempo.count())
	})
	t.Logf("%d exemplar trace IDs in Prometheus, all among the %d traces the collector forwarded", len(exemplarIDs), tempo.count())

	// The analysis engine on a real Prometheus, as Lookout's UI runs it
	// with --prometheus.url: its exemplars through query_exemplars, their
	// traces from what the collector forwarded (polled: a trace's spans
	// from the four services arrive in separate batches).
	prom, err := remote.NewPrometheus("http://"+promAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	an := &analysis.Analyzer{Exemplars: prom, Traces: tempo}
	var res analysis.Result
	eventually(t, "the analysis of the spike to name payment_provider_api", func() bool {
		res, err = an.Analyze(context.Background(), analysis.Request{
			Query: `histogram_quantile(0.95, rate(webstore_payment_duration_bucket[5m])) > 1`,
			Start: testStart, End: time.Now(),
		})
		return err == nil && len(res.Findings) > 0 && res.Findings[0].Span == "payment_provider_api"
	}, func() string {
		return fmt.Sprintf("verdict %q (err %v) of exemplar traces %v", res.Verdict, err, exemplarIDs)
	})
	t.Logf("analysis on the real Prometheus: %s (%d spike exemplars)", res.Verdict, res.Spike.Exemplars)

	// The shipped rules are loaded, the seed's alert among them.
	body := get(t, "http://"+promAddr+"/api/v1/rules")
	if !strings.Contains(body, `"name":"HighPaymentLatency"`) {
		t.Errorf("HighPaymentLatency not among Prometheus's rules: %s", body)
	}
	// The seed's query: instant query on the bucket series answers.
	q := get(t, "http://"+promAddr+"/api/v1/query?query="+url.QueryEscape(`histogram_quantile(0.95, rate(webstore_payment_duration_bucket[5m]))`))
	if !strings.Contains(q, `"resultType":"vector"`) || strings.Contains(q, `"result":[]`) {
		t.Errorf("P95 query: %s", q)
	}
}

// traceSink is an OTLP/HTTP trace receiver (Tempo's ingest, for the test).
type traceSink struct {
	*httptest.Server
	mu     sync.Mutex
	traces map[string]ptrace.Traces
}

func newTraceSink(t *testing.T) *traceSink {
	s := &traceSink{traces: map[string]ptrace.Traces{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" {
			http.NotFound(w, r)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := ptraceotlp.NewExportRequest()
		if strings.Contains(r.Header.Get("Content-Type"), "json") {
			err = req.UnmarshalJSON(b)
		} else {
			err = req.UnmarshalProto(b)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		for _, rs := range req.Traces().ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					id := sp.TraceID()
					k := hex.EncodeToString(id[:])
					td, ok := s.traces[k]
					if !ok {
						td = ptrace.NewTraces()
						s.traces[k] = td
					}
					nrs := td.ResourceSpans().AppendEmpty()
					rs.Resource().CopyTo(nrs.Resource())
					sp.CopyTo(nrs.ScopeSpans().AppendEmpty().Spans().AppendEmpty())
				}
			}
		}
		s.mu.Unlock()
		resp, _ := ptraceotlp.NewExportResponse().MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(resp)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *traceSink) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.traces[id]
	return ok
}

func (s *traceSink) get(id string) (ptrace.Traces, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	td, ok := s.traces[id]
	if !ok {
		return ptrace.NewTraces(), false
	}
	cp := ptrace.NewTraces() // the handler keeps appending to td
	td.CopyTo(cp)
	return cp, true
}

// GetTrace makes the sink the analysis engine's TraceGetter.
func (s *traceSink) GetTrace(_ context.Context, id pcommon.TraceID) (ptrace.Traces, bool, error) {
	td, ok := s.get(id.String())
	return td, ok, nil
}

func (s *traceSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.traces)
}

// queryExemplarTraceIDs returns the distinct trace IDs of query's exemplars
// in the last hour, highest exemplar value first.
func queryExemplarTraceIDs(t *testing.T, addr, query string) []string {
	t.Helper()
	now := time.Now()
	u := fmt.Sprintf("http://%s/api/v1/query_exemplars?query=%s&start=%d&end=%d", addr, url.QueryEscape(query), now.Add(-time.Hour).Unix(), now.Add(time.Minute).Unix())
	var resp struct {
		Status string `json:"status"`
		Data   []struct {
			Exemplars []struct {
				Labels map[string]string `json:"labels"`
				Value  string            `json:"value"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(get(t, u)), &resp); err != nil {
		t.Fatal(err)
	}
	best := map[string]float64{}
	for _, d := range resp.Data {
		for _, e := range d.Exemplars {
			v, err := strconv.ParseFloat(e.Value, 64)
			if err != nil {
				t.Fatalf("exemplar value %q: %v", e.Value, err)
			}
			if id := e.Labels["trace_id"]; id != "" {
				if old, ok := best[id]; !ok || v > old {
					best[id] = v
				}
			}
		}
	}
	ids := slices.Collect(maps.Keys(best))
	slices.SortFunc(ids, func(a, b string) int { return cmp.Or(cmp.Compare(best[b], best[a]), strings.Compare(a, b)) })
	return ids
}

func get(t *testing.T, u string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", u, resp.Status, b)
	}
	return string(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs a command to completion and fails the test with its output on error.
func run(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

// start runs a long-lived process until the test ends (SIGTERM, then kill),
// its output in <dir>/<name>.log, shown when the test fails.
func start(t *testing.T, dir, name string, env []string, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("--- %s log (tail) ---\n%s", name, bytes.TrimSpace(b))
		}
	})
}

func waitHTTP(t *testing.T, u string) {
	t.Helper()
	eventually(t, u, func() bool {
		resp, err := http.Get(u) //nolint:noctx // polling a loopback peer
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func waitTCP(t *testing.T, addr string) {
	t.Helper()
	eventually(t, addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// eventually polls cond until it holds; on timeout it fails with what and,
// if given, the state describe reports.
func eventually(t *testing.T, what string, cond func() bool, describe ...func() string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			detail := ""
			for _, d := range describe {
				detail += "\n" + d()
			}
			t.Fatalf("timed out waiting for %s%s", what, detail)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
