package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := map[string]func(*Config){
		"empty data dir":     func(c *Config) { c.DataDir = "" },
		"bad listen":         func(c *Config) { c.PrometheusListen = "9090" },
		"no prometheus port": func(c *Config) { c.PrometheusListen = "" },
		"bad strategy":       func(c *Config) { c.TranslationStrategy = "Underscores" },
		"zero retention":     func(c *Config) { c.MetricsRetention = 0 },
		"bad url":            func(c *Config) { c.PrometheusURL = "localhost:9090" },
		"bad log level":      func(c *Config) { c.LogLevel = "loud" },
		"zero request size":  func(c *Config) { c.MaxRequestBytes = 0 },
		"bad dashboard glob": func(c *Config) { c.Dashboards = []string{"x/[a-"} },
		"spanmetrics limit":  func(c *Config) { c.SpanMetricsCardinalityLimit = -1 },
		"spanmetrics flush":  func(c *Config) { c.SpanMetricsFlushInterval = -time.Second },
	}
	for name, mod := range tests {
		c := DefaultConfig()
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestFlags(t *testing.T) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("lookout", flag.ContinueOnError)
	c.RegisterFlags(fs)
	err := fs.Parse([]string{"--data-dir=/tmp/x", "--metrics.retention=30d", "--traces.retention=36h",
		"--otlp.translation-strategy=NoTranslation", "--otlp.grpc-listen=", "--otlp.promote-resource-attributes=k8s.pod.name, cloud.region"})
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/tmp/x" || c.MetricsRetention != 30*24*time.Hour || c.TracesRetention != 36*time.Hour ||
		c.TranslationStrategy != "NoTranslation" || c.OTLPGRPCListen != "" ||
		strings.Join(c.PromoteResourceAttributes, "|") != "k8s.pod.name|cloud.region" {
		t.Errorf("parsed %+v", c)
	}
	if err := fs.Parse([]string{"--metrics.retention=soon"}); err == nil {
		t.Error("bad duration accepted")
	}
	if !c.SpanMetrics || c.SpanMetricsCardinalityLimit != 10_000 {
		t.Errorf("span metrics defaults: enabled %v, limit %d; want true, 10000", c.SpanMetrics, c.SpanMetricsCardinalityLimit)
	}
	err = fs.Parse([]string{"--alerting.webhook-url=http://127.0.0.1:9/a,http://127.0.0.1:9/b", "--alerting.webhook-url=http://127.0.0.1:9/c",
		"--traces.max-bytes=-1", "--tempo.query-timeout=5s", "--rules.evaluation-interval=1m",
		"--spanmetrics.enabled=false", "--spanmetrics.cardinality-limit=500"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.WebhookURLs, " ") != "http://127.0.0.1:9/a http://127.0.0.1:9/b http://127.0.0.1:9/c" ||
		c.TracesMaxBytes != -1 || c.TempoQueryTimeout != 5*time.Second || c.RuleEvaluationInterval != time.Minute ||
		c.SpanMetrics || c.SpanMetricsCardinalityLimit != 500 {
		t.Errorf("parsed %+v", c)
	}
	if err := fs.Parse([]string{"--alerting.webhook-url=not a url"}); err == nil {
		t.Error("bad webhook URL accepted")
	}
	for _, tc := range []struct {
		arg  string
		want int64
	}{{"2GiB", 2 << 30}, {"512MB", 512 << 20}, {"1048576", 1 << 20}, {"0", 0}} {
		if err := fs.Parse([]string{"--memory.limit=" + tc.arg}); err != nil || c.MemoryLimit != tc.want {
			t.Errorf("--memory.limit=%s: %d, %v; want %d", tc.arg, c.MemoryLimit, err, tc.want)
		}
	}
	for _, bad := range []string{"-1", "lots", "2XB"} {
		if err := fs.Parse([]string{"--memory.limit=" + bad}); err == nil {
			t.Errorf("--memory.limit=%s accepted", bad)
		}
	}
	if err := fs.Parse([]string{"--dashboards=/etc/lookout/dashboards", "--dashboards", "/srv/*.json", "--dashboards=a,b.json"}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Dashboards, " ") != "/etc/lookout/dashboards /srv/*.json a,b.json" {
		t.Errorf("dashboards %q", c.Dashboards)
	}
	for _, bad := range []string{"--dashboards=", "--dashboards=/srv/[a-.json"} {
		if err := fs.Parse([]string{bad}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestWiring checks what New serves on each listener: the Tempo API on its
// port and under /tempo/ on the UI port, the UI (with its dashboards) at /,
// and the Prometheus API, with the rules New loaded and the analyze API,
// on its port and under /prometheus/.
func TestWiring(t *testing.T) {
	a := startApp(t, testConfig(t))
	for url, want := range map[string]string{
		"http://" + a.TempoAddr() + "/api/echo":                                  "echo",
		"http://" + a.UIAddr() + "/tempo/api/echo":                               "echo",
		"http://" + a.UIAddr() + "/":                                             "<title>Lookout",
		"http://" + a.UIAddr() + "/api/search":                                   `"uid":"service-health"`,
		"http://" + a.UIAddr() + "/prometheus/api/v1/rules":                      `"name":"HighPaymentLatency"`,
		"http://" + a.PrometheusAddr() + "/api/v1/rules":                         `"name":"HighPaymentLatency"`,
		"http://" + a.PrometheusAddr() + "/api/v1/alerts":                        `"alerts":[`,
		"http://" + a.PrometheusAddr() + "/-/ready":                              "Ready",
		"http://" + a.PrometheusAddr() + "/metrics":                              "lookout_metricstore_samples_appended_total",
		"http://" + a.UIAddr() + "/prometheus/api/v1/query?query=1":              `"result":[`,
		"http://" + a.PrometheusAddr() + AnalyzePath + "?query=up":               `"status":"error"`,
		"http://" + a.UIAddr() + "/prometheus" + AnalyzePath + "?query=up":       `"status":"error"`,
		"http://" + a.UIAddr() + "/prometheus/api/v1/status/buildinfo":           `"version"`,
		"http://" + a.PrometheusAddr() + "/api/v1/label/__name__/values?limit=1": `"status":"success"`,
	} {
		if body := get(t, url); !strings.Contains(body, want) {
			t.Errorf("%s: %q, want %q", url, body, want)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestAlertEvidenceOnBothPorts: a firing alert's evidence reaches the
// Prometheus API's /api/v1/alerts and /api/v1/rules answers on the
// Prometheus port and under /prometheus/ on the UI port.
func TestAlertEvidenceOnBothPorts(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "probe.yml")
	if err := os.WriteFile(rules, []byte(`groups:
- name: probe
  rules:
  - alert: ProbeAboveZero
    expr: exemplar_probe{series=""} > 0
    annotations:
      summary: the probe is above zero
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Rules = rules
	cfg.RuleEvaluationInterval = 100 * time.Millisecond
	a := startApp(t, cfg)
	now := time.Now()
	post(t, "http://"+a.OTLPHTTPAddr()+"/v1/metrics", exemplarProbe(now, now, 1, 1))

	alerts := "http://" + a.PrometheusAddr() + "/api/v1/alerts"
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(get(t, alerts), `"evidence":{`) {
		if time.Now().After(deadline) {
			t.Fatalf("no evidence in %s: %s", alerts, get(t, alerts))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, url := range []string{
		alerts,
		"http://" + a.PrometheusAddr() + "/api/v1/rules",
		"http://" + a.UIAddr() + "/prometheus/api/v1/alerts",
		"http://" + a.UIAddr() + "/prometheus/api/v1/rules",
	} {
		var out struct {
			Data struct {
				Alerts []map[string]json.RawMessage `json:"alerts"`
				Groups []struct {
					Rules []struct {
						Alerts []map[string]json.RawMessage `json:"alerts"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		body := get(t, url)
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("%s: %v: %s", url, err, body)
		}
		list := out.Data.Alerts
		for _, g := range out.Data.Groups {
			for _, r := range g.Rules {
				list = append(list, r.Alerts...)
			}
		}
		if len(list) != 1 {
			t.Errorf("%s: %d alerts, want 1: %s", url, len(list), body)
			continue
		}
		var ann map[string]string
		_ = json.Unmarshal(list[0]["annotations"], &ann)
		if list[0]["evidence"] == nil || ann["evidence_summary"] == "" || ann["summary"] != "the probe is above zero" {
			t.Errorf("%s: alert without its evidence: %s", url, body)
		}
	}
}

// TestCloserStack: closes run last pushed first, all of them even after a
// failure, once; the failures come back joined, each naming its part.
func TestCloserStack(t *testing.T) {
	var s closerStack
	var order []string
	for _, name := range []string{"index", "traces", "metrics", "receivers"} {
		s.push("close the "+name, func(context.Context) error {
			order = append(order, name)
			if name == "traces" || name == "receivers" {
				return errors.New(name + " failed")
			}
			return nil
		})
	}
	err := s.close(context.Background())
	if got := strings.Join(order, " "); got != "receivers metrics traces index" {
		t.Errorf("close order %q, want the reverse of the pushes", got)
	}
	if err == nil || err.Error() != "close the receivers: receivers failed\nclose the traces: traces failed" {
		t.Errorf("error %q, want both failures, named", err)
	}
	if err := s.close(context.Background()); err != nil || len(order) != 4 {
		t.Errorf("second close: %v, %d closes; want nothing done", err, len(order)-4)
	}
}

// TestRemoteAPIs points the UI's /prometheus/ at another Lookout's API.
func TestRemoteAPIs(t *testing.T) {
	remote := startApp(t, testConfig(t))
	cfg := testConfig(t)
	cfg.PrometheusURL = "http://" + remote.PrometheusAddr()
	a := startApp(t, cfg)
	resp, err := http.Get("http://" + a.UIAddr() + "/prometheus/api/v1/status/flags")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), remote.cfg.DataDir) {
		t.Errorf("proxied flags %s do not name the remote's data dir %s", b, remote.cfg.DataDir)
	}
}

func TestListenConflict(t *testing.T) {
	a := startApp(t, testConfig(t))
	cfg := testConfig(t)
	cfg.PrometheusListen = a.PrometheusAddr()
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "listen Prometheus API") {
		t.Errorf("want a listen error, got %v", err)
	}
}

// TestDashboardsFlag checks that --dashboards reaches the UI through New:
// a user's file is served beside the built-in dashboards, a broken one is
// reported, and a changed file is served changed while the App runs.
func TestDashboardsFlag(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("mine.json", `{"uid":"mine","title":"Mine","panels":[]}`)
	write("broken.json", `{`)
	cfg := testConfig(t)
	cfg.Dashboards = []string{dir}
	a, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	<-a.Ready()
	base := "http://" + a.UIAddr()
	read := func(path string) string {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if b := read("/api/search"); !strings.Contains(b, `"uid":"mine"`) || !strings.Contains(b, `"uid":"service-health"`) {
		t.Errorf("search = %s", b)
	}
	if b := read("/api/lookout/dashboards/problems"); !strings.Contains(b, "broken.json") {
		t.Errorf("problems = %s", b)
	}
	write("mine.json", `{"uid":"mine","title":"Mine, changed","panels":[]}`)
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(read("/api/dashboards/uid/mine"), "Mine, changed") {
		if time.Now().After(deadline) {
			t.Fatal("the changed file was not reloaded")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
