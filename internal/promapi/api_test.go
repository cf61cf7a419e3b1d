package promapi

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/goleak"

	"github.com/lookout-dev/lookout/internal/metricstore"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Fixed times make the answers byte-for-byte reproducible.
var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

// storeOptions returns DefaultOptions reading from s.
func storeOptions(s *metricstore.Store) Options {
	opts := DefaultOptions()
	opts.Queryable = s.Queryable()
	opts.ExemplarQueryable = s.ExemplarQueryable()
	opts.AdminStats = s.AdminStats()
	opts.DBDir = s.Dir()
	return opts
}

func seed(t *testing.T) (*metricstore.Store, http.Handler) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := metricstore.Open(t.TempDir(), metricstore.DefaultOptions(), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for i := range 5 {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "payments-service")
		rm.Resource().Attributes().PutStr("service.instance.id", "host-1")
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		m := ms.AppendEmpty()
		m.SetName("webstore.payment.duration")
		m.SetUnit("s")
		m.SetDescription("Payment duration")
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := h.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("country", "US")
		at := t0.Add(time.Duration(i) * 15 * time.Second)
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(-time.Minute)))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
		dp.ExplicitBounds().FromRaw([]float64{1, 5})
		n := uint64(i + 1)
		dp.BucketCounts().FromRaw([]uint64{2 * n, n, n})
		dp.SetCount(4 * n)
		dp.SetSum(float64(n) * 9.5)
		e := dp.Exemplars().AppendEmpty()
		e.SetDoubleValue(5.8)
		e.SetTimestamp(pcommon.NewTimestampFromTime(at.Add(-time.Second)))
		e.SetTraceID(pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, byte(i)})
		e.SetSpanID(pcommon.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, byte(i)})
		if _, err := s.ConsumeMetrics(context.Background(), md); err != nil {
			t.Fatal(err)
		}
	}
	opts := storeOptions(s)
	opts.Gatherer = reg
	api, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Close() })
	return s, api.Handler()
}

func TestGolden(t *testing.T) {
	_, h := seed(t)
	end := t0.Add(time.Minute)
	ts := func(tm time.Time) string { return tm.Format(time.RFC3339) }
	rng := func(q string) url.Values {
		return url.Values{"query": {q}, "start": {ts(t0)}, "end": {ts(end)}, "step": {"15s"}}
	}
	tests := []struct {
		name   string
		path   string
		params url.Values
		code   int
		post   bool // Prometheus also takes POST (form) here
	}{
		{"query_extension", "/api/v1/query", url.Values{"query": {"webstore_payment_duration_bucket"}, "time": {ts(end)}}, 200, true},
		{"query_no_exemplars_for_functions", "/api/v1/query", url.Values{"query": {"sum by (le) (rate(webstore_payment_duration_bucket[1m]))"}, "time": {ts(end)}}, 200, true},
		{"query_quantile", "/api/v1/query", url.Values{"query": {"histogram_quantile(0.95, rate(webstore_payment_duration_bucket[1m]))"}, "time": {ts(end)}}, 200, true},
		{"query_scalar", "/api/v1/query", url.Values{"query": {"1+1"}, "time": {ts(end)}}, 200, true},
		{"query_range", "/api/v1/query_range", rng("webstore_payment_duration_count"), 200, true},
		{"query_exemplars", "/api/v1/query_exemplars", rng("webstore_payment_duration_bucket"), 200, true},
		{"query_exemplars_grafana_probe", "/api/v1/query_exemplars", url.Values{"query": {"test"}, "start": {"1767322800000"}, "end": {"1767322900000"}}, 200, true},
		{"series", "/api/v1/series", url.Values{"match[]": {"webstore_payment_duration_count"}, "start": {ts(t0)}, "end": {ts(end)}}, 200, true},
		{"labels", "/api/v1/labels", url.Values{"start": {ts(t0)}, "end": {ts(end)}}, 200, true},
		{"label_values", "/api/v1/label/__name__/values", url.Values{"start": {ts(t0)}, "end": {ts(end)}}, 200, false},
		{"metadata", "/api/v1/metadata", nil, 200, false},
		{"rules", "/api/v1/rules", nil, 200, false},
		{"alerts", "/api/v1/alerts", nil, 200, false},
		{"format_query", "/api/v1/format_query", url.Values{"query": {"sum(rate(x[5m]))by(job)"}}, 200, true},
		{"bad_promql", "/api/v1/query", url.Values{"query": {"sum(rate(x[5m]"}}, 400, true},
		{"bad_time", "/api/v1/query_range", url.Values{"query": {"x"}, "start": {"yesterday"}}, 400, true},
		{"status_tsdb", "/api/v1/status/tsdb", nil, 200, false},
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			get := do(t, http.MethodGet, srv.URL+tc.path, tc.params)
			if get.code != tc.code {
				t.Fatalf("GET %d, want %d: %s", get.code, tc.code, get.body)
			}
			if tc.post {
				post := do(t, http.MethodPost, srv.URL+tc.path, tc.params)
				if post.code != tc.code || !bytes.Equal(get.body, post.body) {
					t.Errorf("GET and POST differ:\n%d %s\n%d %s", get.code, get.body, post.code, post.body)
				}
			}
			golden(t, tc.name, get.body)
		})
	}
}

type answer struct {
	code int
	body []byte
}

func do(t *testing.T, method, u string, params url.Values) answer {
	t.Helper()
	var resp *http.Response
	var err error
	if method == http.MethodGet {
		resp, err = http.Get(u + "?" + params.Encode())
	} else {
		resp, err = http.PostForm(u, params)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, b}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatalf("not JSON: %s", got)
	}
	sortTies(v)
	pretty, _ := json.MarshalIndent(v, "", "  ")
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(pretty, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if strings.TrimSpace(string(want)) != strings.TrimSpace(string(pretty)) {
		t.Errorf("%s differs from %s:\n%s", name, path, pretty)
	}
}

// TestSeedCommand checks the seed's jq path: .data.result[0].exemplars
// holds exemplars with a trace_id.
func TestSeedCommand(t *testing.T) {
	_, h := seed(t)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api/v1/query?query=webstore_payment_duration_bucket&time="+url.QueryEscape(t0.Add(time.Minute).Format(time.RFC3339)), nil)
	h.ServeHTTP(rec, req)
	var out struct {
		Data struct {
			Result []struct {
				Exemplars []struct {
					Labels    map[string]string `json:"labels"`
					Value     string            `json:"value"`
					Timestamp float64           `json:"timestamp"`
				} `json:"exemplars"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range out.Data.Result {
		for _, e := range r.Exemplars {
			if len(e.Labels["trace_id"]) == 32 && e.Value == "5.8" && e.Timestamp > 0 {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("no exemplar with trace_id in %s", rec.Body.String())
	}
}

// TestPrefixAndProbes mounts the handler under /prometheus as the UI port
// does and checks the health and readiness endpoints.
func TestPrefixAndProbes(t *testing.T) {
	_, h := seed(t)
	mux := http.NewServeMux()
	mux.Handle("/prometheus/", http.StripPrefix("/prometheus", h))
	for path, want := range map[string]string{
		"/prometheus/api/v1/label/job/values": `"payments-service"`,
		"/prometheus/-/ready":                 "Ready",
		"/prometheus/-/healthy":               "Healthy",
		"/prometheus/api/v1/status/buildinfo": `"version":"` + PrometheusVersion + `"`,
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s: %d %s, want %s", path, rec.Code, rec.Body.String(), want)
		}
	}
}

func TestNotReady(t *testing.T) {
	s, _ := seed(t)
	opts := storeOptions(s)
	opts.Ready = func() bool { return false }
	api, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	for _, path := range []string{"/-/ready", "/api/v1/query?query=1"} {
		rec := httptest.NewRecorder()
		api.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("%s: %d, want 503", path, rec.Code)
		}
	}
}

// sortTies orders lists of {"name","value"} pairs (TSDB statistics), whose
// order among equal values Prometheus leaves open.
func sortTies(v any) {
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			sortTies(e)
		}
	case []any:
		for _, e := range x {
			sortTies(e)
		}
		if len(x) > 0 {
			if m, ok := x[0].(map[string]any); ok && len(m) == 2 && m["name"] != nil && m["value"] != nil {
				sort.SliceStable(x, func(i, j int) bool {
					a, b := x[i].(map[string]any), x[j].(map[string]any)
					if a["value"] != b["value"] {
						return a["value"].(float64) > b["value"].(float64)
					}
					return a["name"].(string) < b["name"].(string)
				})
			}
		}
	}
}

// TestCompression: gzip (at the fastest level, here) and deflate (left to
// Prometheus's handler) both decode to the uncompressed answer. (Answers
// under 1 KiB are not gzipped.)
func TestCompression(t *testing.T) {
	_, h := seed(t)
	path := "/api/v1/query?query=webstore_payment_duration_bucket&time=" + url.QueryEscape(t0.Add(time.Minute).Format(time.RFC3339))
	plain := httptest.NewRecorder()
	h.ServeHTTP(plain, httptest.NewRequest(http.MethodGet, path, nil))
	if plain.Code != http.StatusOK || plain.Header().Get("Content-Encoding") != "" || !bytes.Contains(plain.Body.Bytes(), []byte("trace_id")) {
		t.Fatalf("plain: %d %q %s", plain.Code, plain.Header().Get("Content-Encoding"), plain.Body)
	}
	for _, tc := range []struct {
		accept string
		decode func(io.Reader) (io.Reader, error)
	}{
		{"gzip", func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
		{"gzip, deflate, br", func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
		{"deflate", func(r io.Reader) (io.Reader, error) { return zlib.NewReader(r) }},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Accept-Encoding", tc.accept)
		h.ServeHTTP(rec, req)
		enc := strings.Fields(strings.ReplaceAll(tc.accept, ",", " "))[0]
		if got := rec.Header().Get("Content-Encoding"); got != enc {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", tc.accept, got, enc)
			continue
		}
		r, err := tc.decode(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(body, plain.Body.Bytes()) {
			t.Errorf("Accept-Encoding %q: decoded %q (%v), want %q", tc.accept, body, err, plain.Body)
		}
	}
}

// TestQueryTooCostlyToParse: PromQL nested too deep (or too long) gets
// Prometheus's 400 bad_data from every path that parses it, by GET and by
// POST, before the parser runs; ordinary queries pass.
func TestQueryTooCostlyToParse(t *testing.T) {
	_, h := seed(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	deep := strings.Repeat("(", 30_000) + "up" + strings.Repeat(")", 30_000)
	for _, tc := range []struct {
		path   string
		params url.Values
	}{
		{"/api/v1/query", url.Values{"query": {deep}}},
		{"/api/v1/query_range", url.Values{"query": {deep}, "start": {"0"}, "end": {"60"}, "step": {"15"}}},
		{"/api/v1/query_exemplars", url.Values{"query": {deep}, "start": {"0"}, "end": {"60"}}},
		{"/api/v1/series", url.Values{"match[]": {"up", "{a=~\"x\"}" + strings.Repeat("[", 200)}}},
		{"/federate", url.Values{"match[]": {deep}}},
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			got := do(t, method, srv.URL+tc.path, tc.params)
			if got.code != http.StatusBadRequest || !strings.Contains(string(got.body), `"errorType":"bad_data"`) || !strings.Contains(string(got.body), "nests") {
				t.Errorf("%s %s: %d %.200s", method, tc.path, got.code, got.body)
			}
		}
	}
	if got := do(t, http.MethodPost, srv.URL+"/api/v1/query", url.Values{"query": {"sum(rate(webstore_payment_duration_bucket[5m]))"}}); got.code != http.StatusOK {
		t.Errorf("ordinary query: %d %s", got.code, got.body)
	}
}
