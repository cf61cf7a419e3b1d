package app

import (
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/rules"
	v1 "github.com/prometheus/prometheus/web/api/v1"
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

type rulesStub struct{}

func (rulesStub) RuleGroups() []*rules.Group           { return nil }
func (rulesStub) AlertingRules() []*rules.AlertingRule { return nil }

type closer struct {
	name  string
	order *[]string
	mu    *sync.Mutex
}

func (c closer) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	*c.order = append(*c.order, c.name)
	return nil
}

// TestWiringPoints checks every Options hook: the Tempo and UI handlers,
// Extend, services and closers, and the /prometheus/
// and /tempo/ prefixes on the UI port.
func TestWiringPoints(t *testing.T) {
	var mu sync.Mutex
	var order []string
	extended := false
	serviceStopped := make(chan struct{})
	opts := Options{
		TempoHandler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "tempo:"+r.URL.Path)
		}),
		UIHandler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "ui:"+r.URL.Path)
		}),
		Extend: func(p Parts, o *Options) error {
			if p.MetricStore == nil || p.Engine == nil {
				return errors.New("parts missing")
			}
			extended = true
			o.RulesRetriever = func(context.Context) v1.RulesRetriever { return rulesStub{} }
			return nil
		},
		Services: []func(context.Context) error{func(ctx context.Context) error {
			<-ctx.Done()
			close(serviceStopped)
			return ctx.Err()
		}},
		Closers: []io.Closer{closer{"traces", &order, &mu}},
	}
	a, stop := runApp(t, testConfig(t), opts)
	if !extended {
		t.Fatal("Extend not called")
	}
	get := func(url string) (string, http.Header) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.Header
	}
	for url, want := range map[string]string{
		"http://" + a.TempoAddr() + "/api/traces/abc":               "tempo:/api/traces/abc",
		"http://" + a.UIAddr() + "/tempo/api/search":                "tempo:/api/search",
		"http://" + a.UIAddr() + "/d/http-metrics":                  "ui:/d/http-metrics",
		"http://" + a.UIAddr() + "/prometheus/api/v1/rules":         `"groups":[]`,
		"http://" + a.PrometheusAddr() + "/api/v1/alerts":           `"alerts":[]`,
		"http://" + a.PrometheusAddr() + "/-/ready":                 "Ready",
		"http://" + a.PrometheusAddr() + "/metrics":                 "lookout_metricstore_samples_appended_total",
		"http://" + a.UIAddr() + "/prometheus/api/v1/query?query=1": `"result":[`,
	} {
		body, _ := get(url)
		if !strings.Contains(body, want) {
			t.Errorf("%s: %q, want %q", url, body, want)
		}
	}
	select {
	case <-serviceStopped:
		t.Fatal("service stopped while running")
	default:
	}
	stop()
	select {
	case <-serviceStopped:
	default:
		t.Error("service not stopped on shutdown")
	}
	if len(order) != 1 {
		t.Errorf("closers run: %v", order)
	}
}

// TestRemoteAPIs points the UI's /prometheus/ at another Lookout's API.
func TestRemoteAPIs(t *testing.T) {
	remote := startApp(t, testConfig(t), Options{})
	cfg := testConfig(t)
	cfg.PrometheusURL = "http://" + remote.PrometheusAddr()
	a := startApp(t, cfg, Options{})
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
	a := startApp(t, testConfig(t), Options{})
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
