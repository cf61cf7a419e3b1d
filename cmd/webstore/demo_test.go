package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lookout-dev/lookout/internal/testpeers"
)

// TestDemoSeedWalkthrough runs `webstore demo` as a new user would and
// replays every command and URL of the seed guide that applies to Lookout:
// the Prometheus query piped through jq, the exemplar → trace click (through
// the Tempo API), the dashboard URLs, promtool's histogram_quantile, and the
// HighPaymentLatency alert firing with its evidence. It takes about three
// minutes: the alert has the seed's `for: 1m`.
func TestDemoSeedWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole demo and waits for an alert to fire; skipped with -short")
	}
	// Build the peer first: on a fresh machine that takes minutes, which
	// must not eat into the demo's incident window.
	promtool := testpeers.Promtool(t)
	bin := filepath.Join(t.TempDir(), "webstore")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dataDir := t.TempDir()
	cmd := exec.Command(bin, "demo", "--data-dir", dataDir,
		"--ui.listen", "127.0.0.1:0", "--prometheus.listen", "127.0.0.1:0", "--tempo.listen", "127.0.0.1:0",
		"--otlp.grpc-listen", "127.0.0.1:0", "--otlp.http-listen", "127.0.0.1:0",
		"--main-listen", "127.0.0.1:0", "--payments-listen", "127.0.0.1:0",
		"--provider-listen", "127.0.0.1:0", "--inventory-listen", "127.0.0.1:0",
		"--rate", "6", "--incident-start", "5s", "--incident-duration", "5m", "--incident-every", "10m")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var out lockedLines
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.add(sc.Text())
		}
		exited <- cmd.Wait()
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("demo stdout:\n%s\ndemo stderr:\n%s", out.String(), stderr.String())
		}
	})

	promRe := regexp.MustCompile(`Prometheus API (http://\S+), Tempo API (http://\S+)`)
	uiRe := regexp.MustCompile(`open (http://\S+)/d/service-health`)
	var prom, tempo, ui string
	waitFor(t, 2*time.Minute, "the demo to print its URLs", func() bool {
		s := out.String()
		if m := promRe.FindStringSubmatch(s); m != nil {
			prom, tempo = strings.TrimRight(m[1], ","), m[2]
		}
		if m := uiRe.FindStringSubmatch(s); m != nil {
			ui = m[1]
		}
		return prom != "" && ui != ""
	})

	// The seed's verification command, verbatim but for the port.
	seedCmd := fmt.Sprintf(`curl -s '%s/api/v1/query?query=webstore_payment_duration_bucket' | jq '.data.result[0].exemplars'`, prom)
	var seedOut []struct {
		Labels    map[string]string `json:"labels"`
		Value     string            `json:"value"`
		Timestamp float64           `json:"timestamp"`
	}
	_, curlErr := exec.LookPath("curl")
	_, jqErr := exec.LookPath("jq")
	if curlErr != nil || jqErr != nil {
		t.Logf("curl or jq missing: running the seed command's equivalent in Go")
	}
	waitFor(t, 2*time.Minute, "the seed's curl | jq command to print exemplars", func() bool {
		var b []byte
		if curlErr == nil && jqErr == nil {
			var err error
			if b, err = exec.Command("sh", "-c", seedCmd).Output(); err != nil {
				t.Logf("seed command: %v", err)
				return false
			}
		} else {
			var r struct {
				Data struct {
					Result []struct {
						Exemplars json.RawMessage `json:"exemplars"`
					} `json:"result"`
				} `json:"data"`
			}
			getJSON(t, prom+"/api/v1/query?query=webstore_payment_duration_bucket", &r)
			if len(r.Data.Result) == 0 {
				return false
			}
			b = r.Data.Result[0].Exemplars
		}
		seedOut = nil
		return json.Unmarshal(b, &seedOut) == nil && len(seedOut) > 0
	})
	for _, e := range seedOut {
		if len(e.Labels["trace_id"]) != 32 || len(e.Labels["span_id"]) != 16 || e.Value == "" || e.Timestamp == 0 {
			t.Errorf("seed command printed an exemplar without trace_id/span_id/value/timestamp: %+v", e)
		}
	}

	// One click: every exemplar of the spike resolves to a stored trace.
	var ex struct {
		Data []struct {
			Exemplars []struct {
				Labels map[string]string `json:"labels"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	now := time.Now()
	getJSON(t, fmt.Sprintf("%s/api/v1/query_exemplars?query=%s&start=%d&end=%d", prom,
		url.QueryEscape("histogram_quantile(0.95, rate(webstore_payment_duration_bucket[5m]))"), now.Add(-10*time.Minute).Unix(), now.Unix()), &ex)
	var ids []string
	for _, s := range ex.Data {
		for _, e := range s.Exemplars {
			ids = append(ids, e.Labels["trace_id"])
		}
	}
	if len(ids) == 0 {
		t.Fatal("query_exemplars returned no exemplars for the Payment Duration P95 query")
	}
	for _, id := range ids[:min(len(ids), 10)] {
		waitFor(t, 30*time.Second, "trace "+id+" to be fetchable from the Tempo API", func() bool {
			resp, err := http.Get(tempo + "/api/traces/" + id)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode == 200 && strings.Contains(string(body), "process_payment")
		})
	}

	// The seed's dashboard URLs.
	for _, path := range []string{"/d/http-metrics", "/d/service-health"} {
		resp, err := http.Get(ui + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}

	// promtool, a real client, runs the seed's quantile.
	waitFor(t, time.Minute, "promtool query instant to print the payment p95", func() bool {
		pt, err := exec.Command(promtool, "query", "instant", prom, "histogram_quantile(0.95, rate(webstore_payment_duration_bucket[5m]))").CombinedOutput()
		if err != nil {
			t.Logf("promtool query instant: %v\n%s", err, pt)
		}
		return err == nil && strings.Contains(string(pt), `job="main-service"`) && strings.Contains(string(pt), "=>")
	})

	// The seed's alert fires during the incident, carrying its evidence.
	var evidence string
	waitFor(t, 4*time.Minute, "HighPaymentLatency to fire with evidence", func() bool {
		var alerts struct {
			Data struct {
				Alerts []struct {
					Labels      map[string]string `json:"labels"`
					Annotations map[string]string `json:"annotations"`
					State       string            `json:"state"`
				} `json:"alerts"`
			} `json:"data"`
		}
		getJSON(t, prom+"/api/v1/alerts", &alerts)
		for _, a := range alerts.Data.Alerts {
			if a.Labels["alertname"] == "HighPaymentLatency" && a.State == "firing" && a.Annotations["evidence_trace_ids"] != "" {
				evidence = a.Annotations["evidence_summary"]
				return true
			}
		}
		return false
	})
	if !strings.Contains(evidence, "payment_provider_api") {
		t.Errorf("HighPaymentLatency evidence %q does not name payment_provider_api", evidence)
	}
	waitFor(t, 30*time.Second, "the terminal to report the firing alert", func() bool {
		return strings.Contains(out.String(), "ALERT HighPaymentLatency is FIRING")
	})

	// Ctrl-C stops everything cleanly.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("demo exited with %v after Ctrl-C", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("demo did not stop within 90s of Ctrl-C")
	}
	if !strings.Contains(out.String(), "stopped cleanly") {
		t.Errorf("demo did not report a clean stop")
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(time.Second)
	}
}

type lockedLines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
	l.b.WriteByte('\n')
}

func (l *lockedLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
