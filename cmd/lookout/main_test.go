package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/lookout-dev/lookout/internal/testpeers"
)

// buildLookout compiles this command into a temp dir.
func buildLookout(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lookout")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type proc struct {
	cmd                  *exec.Cmd
	prom, otlp, otlpGRPC string
	mu                   sync.Mutex
	logs                 bytes.Buffer
	exited               chan struct{}
}

var readyLine = regexp.MustCompile(`msg="lookout ready" otlp_grpc=(\S+) otlp_http=(\S+) prometheus=(\S+)`)

// startLookout runs the binary on free loopback ports and waits until its
// log says it is ready; flags are added to the command line.
func startLookout(t *testing.T, bin, dataDir string, flags ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--data-dir", dataDir,
		"--otlp.grpc-listen", "127.0.0.1:0", "--otlp.http-listen", "127.0.0.1:0",
		"--prometheus.listen", "127.0.0.1:0", "--tempo.listen", "127.0.0.1:0", "--ui.listen", "127.0.0.1:0"}, flags...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	ready := make(chan [3]string, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			if m := readyLine.FindStringSubmatch(line); m != nil {
				ready <- [3]string{m[1], m[2], m[3]}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	// Wait closes the pipe: call it only after every log line was read
	// (EOF comes when the process exits), or the last lines may be lost.
	go func() { <-readDone; _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("lookout logs:\n%s", p.logText())
		}
	})
	select {
	case addrs := <-ready:
		p.otlpGRPC, p.otlp, p.prom = addrs[0], addrs[1], addrs[2]
	case <-p.exited:
		t.Fatalf("lookout exited before ready:\n%s", p.logText())
	case <-time.After(60 * time.Second):
		t.Fatalf("lookout not ready after 60s:\n%s", p.logText())
	}
	return p
}

func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// batch is one gauge sample and one histogram point with an exemplar.
func batch(name string, ts time.Time, v float64, traceID string) []byte {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "restart-test")
	sm := rm.ScopeMetrics().AppendEmpty()
	g := sm.Metrics().AppendEmpty()
	g.SetName(name)
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	dp.SetDoubleValue(v)
	h := sm.Metrics().AppendEmpty()
	h.SetName(name + ".duration")
	hh := h.SetEmptyHistogram()
	hh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := hh.DataPoints().AppendEmpty()
	hp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	hp.ExplicitBounds().FromRaw([]float64{1})
	hp.BucketCounts().FromRaw([]uint64{1, 0})
	hp.SetCount(1)
	hp.SetSum(v)
	e := hp.Exemplars().AppendEmpty()
	e.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	e.SetDoubleValue(0.5)
	var tid [16]byte
	copy(tid[:], traceID)
	e.SetTraceID(tid)
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		panic(err)
	}
	return b
}

func send(t *testing.T, p *proc, body []byte) {
	t.Helper()
	resp, err := http.Post("http://"+p.otlp+"/v1/metrics", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("export: %d %s", resp.StatusCode, b)
	}
}

// value returns the instant value of query, or "" when there is none.
func value(t *testing.T, p *proc, query string) string {
	t.Helper()
	resp, err := http.Get("http://" + p.prom + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if len(out.Data.Result) != 1 {
		return ""
	}
	return fmt.Sprint(out.Data.Result[0].Value[1])
}

func exemplarTraceIDs(t *testing.T, p *proc, query string) string {
	t.Helper()
	q := url.Values{"query": {query}, "start": {fmt.Sprint(time.Now().Add(-time.Hour).Unix())}, "end": {fmt.Sprint(time.Now().Unix() + 60)}}
	resp, err := http.Get("http://" + p.prom + "/api/v1/query_exemplars?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data []struct {
			Exemplars []struct {
				Labels map[string]string `json:"labels"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range out.Data {
		for _, e := range d.Exemplars {
			ids = append(ids, e.Labels["trace_id"])
		}
	}
	return strings.Join(ids, ",")
}

func hexID(s string) string {
	var b [16]byte
	copy(b[:], s)
	return fmt.Sprintf("%x", b)
}

// TestRestartRecovery checks that samples and exemplars acknowledged before
// a kill -9 and before a clean stop are queryable after restart.
func TestRestartRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildLookout(t)
	dir := t.TempDir()
	now := time.Now().Add(-10 * time.Second)

	p1 := startLookout(t, bin, dir)
	send(t, p1, batch("before.kill", now, 42, "trace-before-kill"))
	if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p1.exited

	p2 := startLookout(t, bin, dir)
	if got := value(t, p2, "before_kill"); got != "42" {
		t.Fatalf("after kill -9: before_kill = %q, want 42", got)
	}
	if got := exemplarTraceIDs(t, p2, "before_kill_duration_bucket"); got != hexID("trace-before-kill") {
		t.Fatalf("after kill -9: exemplar trace IDs %q, want %s", got, hexID("trace-before-kill"))
	}
	send(t, p2, batch("before.stop", now.Add(time.Second), 7, "trace-before-stop"))
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p2.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("lookout did not stop within 30s of SIGTERM")
	}
	if code := p2.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("clean stop exited %d", code)
	}
	if !strings.Contains(p2.logText(), "lookout stopped cleanly") {
		t.Fatalf("no clean stop in logs")
	}

	p3 := startLookout(t, bin, dir)
	for q, want := range map[string]string{"before_kill": "42", "before_stop": "7"} {
		if got := value(t, p3, q); got != want {
			t.Errorf("after clean restart: %s = %q, want %s", q, got, want)
		}
	}
	if got := exemplarTraceIDs(t, p3, "before_stop_duration_bucket"); got != hexID("trace-before-stop") {
		t.Errorf("after clean restart: exemplar trace IDs %q, want %s", got, hexID("trace-before-stop"))
	}
}

// TestFlags checks that bad flags are refused with a clear message and
// exit code 2.
func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--otlp.translation-strategy", "Nope"},
		{"--metrics.retention", "forever"},
		{"--prometheus.listen", "nonsense"},
		{"--spanmetrics.cardinality-limit", "-1"},
		{"--metrics.block-duration", "10s"},
		{"--traces.sampling", "share=2"},
		{"--traces.sampling", "window=2m"},
		{"--spanmetrics.enabled", "sometimes"},
		{"extra-arg"},
	} {
		if code := run(args); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
	}
	if code := run([]string{"-h"}); code != 0 {
		t.Errorf("run(-h) = %d, want 0", code)
	}
}

// TestTelemetrygen sends with telemetrygen, a real OTLP client no one here
// wrote, over gRPC and HTTP, and reads the data back.
func TestTelemetrygen(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	gen := testpeers.Telemetrygen(t)
	p := startLookout(t, buildLookout(t), t.TempDir())
	for _, tc := range []struct {
		service, endpoint string
		http              bool
	}{
		{"gen-grpc", p.otlpGRPC, false},
		{"gen-http", p.otlp, true},
	} {
		args := []string{"metrics", "--otlp-endpoint", tc.endpoint, "--otlp-insecure", "--metrics", "5", "--rate", "0",
			"--metric-type", "Histogram", "--otlp-metric-name", "gen.latency", "--service", tc.service}
		if tc.http {
			args = append(args, "--otlp-http")
		}
		if out, err := exec.Command(gen, args...).CombinedOutput(); err != nil {
			t.Fatalf("telemetrygen %v: %v\n%s", args, err, out)
		}
		if got := value(t, p, fmt.Sprintf(`count(gen_latency_count{job=%q})`, tc.service)); got == "" {
			t.Errorf("%s: no gen_latency_count series", tc.service)
		}
	}
}
