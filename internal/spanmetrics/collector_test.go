package spanmetrics

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/lookout-dev/lookout/internal/testpeers"
)

// TestAgainstCollector sends goldenTraces to a real OpenTelemetry
// Collector built from testdata/collector/builder.yaml (the contrib span
// metrics connector v0.165.0 with its default configuration; only the
// flush interval is shortened to 1 s) and compares the connector's first
// two flushes after the spans (calls at 0, then counted) with the
// Deriver's: resources, scope, metric names, types, units, temporality,
// attributes, values and bucket bounds must be equal. Timestamps, the
// collector.instance.id value (a UUID made at start) and exemplars (off in
// the connector's defaults, Lookout's own here) are set aside, and points
// are sorted (the connector iterates Go maps). -short skips it: the first
// run builds the collector with the builder (seconds with a warm Go build
// cache, minutes on a fresh machine).
func TestAgainstCollector(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs an OpenTelemetry Collector; skipped with -short")
	}
	bin := testpeers.Collector(t, filepath.Join("testdata", "collector", "builder.yaml"))

	exports := &exportRecorder{}
	srv := httptest.NewServer(exports)
	defer srv.Close()
	otlpAddr := freeAddr(t)
	dir := t.TempDir()
	config := fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
connectors:
  span_metrics:
    metrics_flush_interval: 1s
exporters:
  otlp_http:
    metrics_endpoint: %s/v1/metrics
    compression: none
    retry_on_failure:
      enabled: false
    sending_queue:
      enabled: false
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [span_metrics]
    metrics:
      receivers: [span_metrics]
      exporters: [otlp_http]
`, otlpAddr, srv.URL)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("collector logs:\n%s", logs.String())
		}
	}()
	running := func() bool {
		select {
		case <-exited:
			t.Errorf("the collector exited: %v", cmd.ProcessState)
			return false
		default:
			return true
		}
	}

	body, err := ptraceotlp.NewExportRequestFromTraces(goldenTraces()).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	sent := false
	for deadline := time.Now().Add(60 * time.Second); !sent && running() && time.Now().Before(deadline); {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+otlpAddr+"/v1/traces", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			sent = resp.StatusCode == http.StatusOK
		}
		if !sent {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !sent {
		t.Fatal("the collector did not take the spans within 60 s")
	}

	var theirs []pmetric.Metrics
	for deadline := time.Now().Add(60 * time.Second); len(theirs) < 2 && running() && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		theirs = exports.flushes()
	}
	if len(theirs) < 2 {
		t.Fatalf("%d flushes with points from the collector within 60 s, want 2", len(theirs))
	}

	opts := DefaultOptions()
	opts.InstanceID = "ours"
	d, sink, clk := newTestDeriver(t, opts, &traceSink{})
	if _, err := d.ConsumeTraces(context.Background(), goldenTraces()); err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Second)
	d.flush(context.Background())
	clk.advance(time.Second)
	d.flush(context.Background())
	ours := sink.all()

	for i := range 2 {
		checkTimes(t, "collector", theirs[i])
		checkTimes(t, "lookout", ours[i])
		got, want := normalise(t, ours[i]), normalise(t, theirs[i])
		if got != want {
			t.Errorf("flush %d: Lookout's span metrics differ from the connector's.\n--- lookout\n%s\n--- connector\n%s", i+1, got, want)
		}
	}
}

// exportRecorder is the OTLP/HTTP metrics endpoint of the collector's
// exporter.
type exportRecorder struct {
	mu  sync.Mutex
	got []pmetric.Metrics
}

func (e *exportRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	e.got = append(e.got, req.Metrics())
	e.mu.Unlock()
	resp, _ := pmetricotlp.NewExportResponse().MarshalProto()
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

// flushes returns the exports that have data points: the connector also
// exports empty flushes before the spans come.
func (e *exportRecorder) flushes() []pmetric.Metrics {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []pmetric.Metrics
	for _, md := range e.got {
		if md.DataPointCount() > 0 {
			out = append(out, md)
		}
	}
	return out
}

// checkTimes asserts what normalise then sets aside: every point has a
// start time, before its time; points of one flush share their time.
func checkTimes(t *testing.T, who string, md pmetric.Metrics) {
	t.Helper()
	var flushTime pcommon.Timestamp
	check := func(start, ts pcommon.Timestamp) {
		if flushTime == 0 {
			flushTime = ts
		}
		if start == 0 || start >= ts || ts != flushTime {
			t.Errorf("%s: point start %v time %v (flush time %v)", who, start, ts, flushTime)
		}
	}
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				switch m.Type() {
				case pmetric.MetricTypeSum:
					for _, dp := range m.Sum().DataPoints().All() {
						check(dp.StartTimestamp(), dp.Timestamp())
					}
				case pmetric.MetricTypeHistogram:
					for _, dp := range m.Histogram().DataPoints().All() {
						check(dp.StartTimestamp(), dp.Timestamp())
					}
				}
			}
		}
	}
}

// normalise returns md as indented OTLP/JSON without timestamps,
// exemplars and the collector.instance.id value, with resources and points
// in a fixed order. It changes md.
func normalise(t *testing.T, md pmetric.Metrics) string {
	t.Helper()
	attrKey := func(m pcommon.Map) string {
		b, err := json.Marshal(m.AsRaw())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	fix := func(m pcommon.Map) {
		if _, ok := m.Get(instanceIDKey); ok {
			m.PutStr(instanceIDKey, "<instance>")
		}
	}
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				switch m.Type() {
				case pmetric.MetricTypeSum:
					dps := m.Sum().DataPoints()
					for _, dp := range dps.All() {
						dp.SetStartTimestamp(0)
						dp.SetTimestamp(0)
						dp.Exemplars().RemoveIf(func(pmetric.Exemplar) bool { return true })
						fix(dp.Attributes())
					}
					dps.Sort(func(a, b pmetric.NumberDataPoint) bool { return attrKey(a.Attributes()) < attrKey(b.Attributes()) })
				case pmetric.MetricTypeHistogram:
					dps := m.Histogram().DataPoints()
					for _, dp := range dps.All() {
						dp.SetStartTimestamp(0)
						dp.SetTimestamp(0)
						dp.Exemplars().RemoveIf(func(pmetric.Exemplar) bool { return true })
						fix(dp.Attributes())
					}
					dps.Sort(func(a, b pmetric.HistogramDataPoint) bool { return attrKey(a.Attributes()) < attrKey(b.Attributes()) })
				default:
					t.Errorf("metric %q of type %v", m.Name(), m.Type())
				}
			}
		}
	}
	md.ResourceMetrics().Sort(func(a, b pmetric.ResourceMetrics) bool {
		return attrKey(a.Resource().Attributes()) < attrKey(b.Resource().Attributes())
	})
	return strings.TrimSpace(string(marshalJSON(t, md)))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer collects a process's output for the test log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
