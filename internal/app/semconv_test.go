package app

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	prommodel "github.com/prometheus/common/model"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/lookout-dev/lookout/dashboards"
	"github.com/lookout-dev/lookout/rules"
)

// httpApp describes the HTTP server histogram one instrumentation sends.
type httpApp struct {
	service string
	name    string    // metric name
	unit    string    // "s" or "ms"
	bounds  []float64 // explicit bounds, in unit
	attrs   func(route string, status int) map[string]any
	scale   float64 // seconds → unit
}

// fastAPI is opentelemetry-instrumentation-fastapi's default (the older HTTP
// conventions, _server_duration_attrs_old plus http.target, in
// opentelemetry-python-contrib's _semconv.py and the ASGI middleware), in
// milliseconds with HTTP_DURATION_HISTOGRAM_BUCKETS_OLD.
var fastAPI = httpApp{
	service: "fastapi-app", name: "http.server.duration", unit: "ms", scale: 1000,
	bounds: []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000},
	attrs: func(route string, status int) map[string]any {
		return map[string]any{
			"http.method": "GET", "http.host": "127.0.0.1:8000", "http.scheme": "http", "http.flavor": "1.1",
			"http.server_name": "localhost", "net.host.port": int64(8000), "http.status_code": int64(status),
			"http.target": route,
		}
	},
}

// stableHTTP is the stable HTTP conventions (otelhttp, the Python SDK with
// OTEL_SEMCONV_STABILITY_OPT_IN=http), in seconds.
var stableHTTP = httpApp{
	service: "stable-app", name: "http.server.request.duration", unit: "s", scale: 1,
	bounds: []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10},
	attrs: func(route string, status int) map[string]any {
		return map[string]any{
			"http.request.method": "GET", "url.scheme": "http", "network.protocol.version": "1.1",
			"http.response.status_code": int64(status), "http.route": route,
		}
	},
}

// metrics returns the app's cumulative histogram after n 15-second steps
// ending at ts: per step 90 requests of 120 ms answered 200 and 10 of 40 ms
// answered 500 on one route.
func (a httpApp) metrics(ts time.Time, n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	res := rm.Resource().Attributes()
	res.PutStr("service.name", a.service)
	res.PutStr("telemetry.sdk.name", "opentelemetry")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("opentelemetry.instrumentation." + a.service)
	m := sm.Metrics().AppendEmpty()
	m.SetName(a.name)
	m.SetUnit(a.unit)
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for _, c := range []struct {
		status  int
		perStep uint64
		seconds float64
	}{{200, 90, 0.12}, {500, 10, 0.04}} {
		dp := h.DataPoints().AppendEmpty()
		if err := dp.Attributes().FromRaw(a.attrs("/items/{item_id}", c.status)); err != nil {
			panic(err)
		}
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(ts.Add(-time.Hour)))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		dp.ExplicitBounds().FromRaw(a.bounds)
		count := c.perStep * uint64(n)
		v := c.seconds * a.scale
		buckets := make([]uint64, len(a.bounds)+1)
		i := 0
		for i < len(a.bounds) && v > a.bounds[i] {
			i++
		}
		buckets[i] = count
		dp.BucketCounts().FromRaw(buckets)
		dp.SetCount(count)
		dp.SetSum(float64(count) * v)
	}
	return md
}

// TestOlderAndStableHTTPConventions sends, as two apps would, the HTTP
// server histograms of FastAPI's default instrumentation (older conventions,
// milliseconds) and of the stable conventions (seconds), each with 10% of
// requests failing: every server panel of the shipped HTTP Metrics dashboard
// has data for both, in seconds, and the shipped HighErrorRate fires for
// both.
func TestOlderAndStableHTTPConventions(t *testing.T) {
	src, err := rules.Default.ReadFile(rules.DefaultFile)
	if err != nil {
		t.Fatal(err)
	}
	// The shipped rules, without their pending periods.
	fast := regexp.MustCompile(`(?m)^(\s+)for: \S+$`).ReplaceAll(src, []byte("${1}for: 0s"))
	cfg := testConfig(t)
	cfg.Rules = filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(cfg.Rules, fast, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.RuleEvaluationInterval = time.Second
	a, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runStarted(t, a)

	now := time.Now().Truncate(time.Second)
	for _, app := range []httpApp{fastAPI, stableHTTP} {
		for i := 0; i <= 16; i++ {
			b, err := pmetricotlp.NewExportRequestFromMetrics(app.metrics(now.Add(time.Duration(i-16)*15*time.Second), i)).MarshalProto()
			if err != nil {
				t.Fatal(err)
			}
			post(t, "http://"+a.OTLPHTTPAddr()+"/v1/metrics", b)
		}
	}

	ds, err := dashboards.Load(dashboards.FS)
	if err != nil {
		t.Fatal(err)
	}
	var model struct {
		Panels []struct {
			Title   string
			Targets []struct {
				RefID string
				Expr  string
			}
		}
	}
	for _, d := range ds {
		if d.UID == "http-metrics" {
			if err := json.Unmarshal(d.Model, &model); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(model.Panels) == 0 {
		t.Fatal("no http-metrics dashboard")
	}
	vars := strings.NewReplacer("$__rate_interval", "1m", "$job", ".*", "$route", ".*")
	api := queryAPI(t, a.PrometheusAddr())
	for _, p := range model.Panels {
		if strings.HasPrefix(p.Title, "Client") {
			continue // neither app sends client histograms
		}
		jobs := map[string]float64{}
		total := 0
		for _, tg := range p.Targets {
			v, _, _, err := api.Query(context.Background(), vars.Replace(tg.Expr), now)
			if err != nil {
				t.Fatalf("panel %q: %v", p.Title, err)
			}
			res, _ := v.(prommodel.Vector)
			total += len(res)
			for _, s := range res {
				if j := s.Metric["job"]; j != "" {
					jobs[string(j)] = float64(s.Value)
				}
			}
		}
		if total == 0 {
			t.Errorf("panel %q: no data", p.Title)
			continue
		}
		if e := p.Targets[0].Expr; !strings.HasPrefix(e, "sum by (job") && !strings.Contains(e, "sum by (le, job") {
			continue // not per service
		}
		for _, app := range []httpApp{fastAPI, stableHTTP} {
			v, ok := jobs[app.service]
			if !ok {
				t.Errorf("panel %q: no series for %s (got %v)", p.Title, app.service, jobs)
				continue
			}
			// Latency panels are in seconds whatever the unit sent: the
			// 90th and higher percentiles fall in the bucket of the 120 ms
			// requests, the median too.
			if strings.HasPrefix(p.Title, "Latency") && (v < 0.05 || v > 0.25) {
				t.Errorf("panel %q: %s = %g s, want within the 120 ms requests' bucket", p.Title, app.service, v)
			}
		}
	}

	firing := `count by (job) (ALERTS{alertname="HighErrorRate", alertstate="firing", job=~"fastapi-app|stable-app"})`
	if v, ok := awaitQuery(t, api, firing, func(v prommodel.Value) bool { return len(v.(prommodel.Vector)) == 2 }); !ok {
		t.Errorf("HighErrorRate firing for both apps: got %v", v)
	}
}
