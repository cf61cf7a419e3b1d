package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memTraces holds traces by ID: the TraceGetter side of a trace store.
type memTraces struct {
	mu sync.Mutex
	m  map[pcommon.TraceID]ptrace.Traces
}

func (s *memTraces) GetTrace(_ context.Context, id pcommon.TraceID) (ptrace.Traces, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	td, ok := s.m[id]
	return td, ok, nil
}

// shopFixture is a real TSDB holding webstore_payment_duration exemplars
// of 120 normal checkouts in the baseline window and 30 slow ones (7–8 s)
// in the spike window, and those checkouts' traces.
type shopFixture struct {
	analyzer   *Analyzer
	spikeStart time.Time
	spikeEnd   time.Time
}

func newShopFixture(t *testing.T) *shopFixture {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.EnableExemplarStorage = true
	opts.MaxExemplars = 10000
	db, err := tsdb.Open(t.TempDir(), promslog.NewNopLogger(), nil, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	traces := &memTraces{m: map[pcommon.TraceID]ptrace.Traces{}}
	end := time.Date(2026, 12, 6, 14, 30, 0, 0, time.UTC)
	f := &shopFixture{spikeStart: end.Add(-5 * time.Minute), spikeEnd: end}
	app := db.Appender(context.Background())
	add := func(tds []ptrace.Traces, from time.Time, step time.Duration) {
		for i, td := range tds {
			sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
			id := sp.TraceID()
			traces.m[id] = td
			series := labels.FromStrings("__name__", "webstore_payment_duration_bucket", "job", "payments-service", "le", "10")
			ref, err := app.Append(0, series, from.Add(time.Duration(i)*step).UnixMilli(), float64(i))
			if err != nil {
				t.Fatal(err)
			}
			d := sp.EndTimestamp().AsTime().Sub(sp.StartTimestamp().AsTime())
			if _, err := app.AppendExemplar(ref, series, exemplar.Exemplar{
				Labels: labels.FromStrings("trace_id", id.String(), "span_id", "0000000000000001"),
				Value:  d.Seconds(), Ts: from.Add(time.Duration(i) * step).UnixMilli(), HasTs: true,
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(shop(1000, 120, normal), end.Add(-60*time.Minute), 20*time.Second)
	add(shop(1, 30, func(i int, _ string) (time.Duration, int, string) {
		return time.Duration(7000+i*30) * ms, 1, ""
	}), f.spikeStart, 5*time.Second)
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	f.analyzer = &Analyzer{Exemplars: StorageExemplars{Queryable: db}, Traces: traces}
	return f
}

func get(t *testing.T, h http.Handler, params url.Values) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/lookout/analyze?"+params.Encode(), nil))
	return rec.Code, rec.Body.Bytes()
}

func TestHandler(t *testing.T) {
	f := newShopFixture(t)
	h := f.analyzer.Handler()
	unix := func(t time.Time) string { return fmt.Sprint(t.Unix()) }

	code, body := get(t, h, url.Values{
		"query": {`histogram_quantile(0.95, sum by (le) (rate(webstore_payment_duration_bucket[5m]))) > 5`},
		"start": {unix(f.spikeStart)}, "end": {f.spikeEnd.Format(time.RFC3339)},
	})
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	golden(t, "analyze.golden.json", body)
	var res struct {
		Status string `json:"status"`
		Data   Result `json:"data"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	d := res.Data
	if res.Status != "success" || d.Threshold == nil || *d.Threshold != 5 || d.Spike.Exemplars != 30 || d.Spike.Traces != 30 ||
		d.Baseline.Traces != 120 || len(d.Findings) == 0 || d.Findings[0].Span != "payment_provider_api" {
		t.Errorf("answer %+v", d)
	}

	// A baseline window with the normal checkouts: threshold from the
	// expression, baseline from the exemplars at or below it.
	code, body = get(t, h, url.Values{
		"query": {`webstore_payment_duration_bucket`}, "threshold": {"1"},
		"start": {unix(f.spikeStart)}, "end": {unix(f.spikeEnd)},
		"baseline_start": {unix(f.spikeStart.Add(-time.Hour))}, "baseline_end": {unix(f.spikeStart)},
	})
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if d := res.Data; d.Baseline.Traces != 120 || !strings.HasPrefix(d.Verdict, "payment_provider_api self time 80 ms → 7.4 s in 30 of 30 slow traces") {
		t.Errorf("with baseline: %d baseline traces, verdict %q", d.Baseline.Traces, d.Verdict)
	}

	// A region over the normal traffic and the spike, with nothing before
	// it: the window's own values split at their gap, and its normal
	// requests are the baseline.
	code, body = get(t, h, url.Values{"query": {`webstore_payment_duration_bucket`},
		"start": {unix(f.spikeStart.Add(-62 * time.Minute))}, "end": {unix(f.spikeEnd)}})
	if err := json.Unmarshal(body, &res); code != http.StatusOK || err != nil {
		t.Fatalf("%d %s", code, body)
	}
	if d := res.Data; d.Threshold == nil || *d.Threshold < 0.1 || *d.Threshold > 7 || d.Baseline.Source != "rest" ||
		!strings.HasPrefix(d.Verdict, "payment_provider_api self time 80 ms → 7.4 s in 30 of 30 slow traces") {
		t.Errorf("no baseline window: threshold %v, baseline %+v, verdict %q", d.Threshold, d.Baseline, d.Verdict)
	}

	// No exemplars in the window is an answer, not an error.
	code, body = get(t, h, url.Values{"query": {`webstore_payment_duration_bucket`},
		"start": {unix(f.spikeEnd.Add(time.Hour))}, "end": {unix(f.spikeEnd.Add(2 * time.Hour))}})
	if code != http.StatusOK || !bytes.Contains(body, []byte(`"findings":[]`)) || !bytes.Contains(body, []byte("no exemplars with trace IDs")) {
		t.Errorf("no exemplars: %d %s", code, body)
	}
}

func TestHandlerBadInput(t *testing.T) {
	h := (&Analyzer{}).Handler()
	now := time.Now()
	s, e := fmt.Sprint(now.Add(-time.Hour).Unix()), fmt.Sprint(now.Unix())
	tests := []struct {
		name   string
		params url.Values
		want   string
	}{
		{"no query", url.Values{"start": {s}, "end": {e}}, "query is required"},
		{"bad PromQL", url.Values{"query": {"rate(x[5m]"}, "start": {s}, "end": {e}}, "invalid query"},
		{"no start", url.Values{"query": {"x"}, "end": {e}}, "start is required"},
		{"bad time", url.Values{"query": {"x"}, "start": {"yesterday"}, "end": {e}}, "neither RFC 3339 nor Unix seconds"},
		{"end before start", url.Values{"query": {"x"}, "start": {e}, "end": {s}}, "end must be after start"},
		{"end equals start", url.Values{"query": {"x"}, "start": {e}, "end": {e}}, "end must be after start"},
		{"window over 24h", url.Values{"query": {"x"}, "start": {fmt.Sprint(now.Add(-25 * time.Hour).Unix())}, "end": {e}}, "longer than 24h0m0s"},
		{"half a baseline", url.Values{"query": {"x"}, "start": {s}, "end": {e}, "baseline_start": {s}}, "both baseline_start and baseline_end"},
		{"baseline reversed", url.Values{"query": {"x"}, "start": {s}, "end": {e}, "baseline_start": {e}, "baseline_end": {s}}, "baseline_end must be after"},
		{"NaN threshold", url.Values{"query": {"x"}, "start": {s}, "end": {e}, "threshold": {"NaN"}}, "not a finite number"},
		{"limit 0", url.Values{"query": {"x"}, "start": {s}, "end": {e}, "limit": {"0"}}, "limit"},
		{"huge limit", url.Values{"query": {"x"}, "start": {s}, "end": {e}, "limit": {"1000000"}}, "limit"},
		{"no series", url.Values{"query": {"1 + 1"}, "start": {s}, "end": {e}}, "selects no series"},
		{"nested too deep", url.Values{"query": {strings.Repeat("(", 200) + "x" + strings.Repeat(")", 200)}, "start": {s}, "end": {e}}, "nests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, h, tt.params)
			var r map[string]string
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if code != http.StatusBadRequest || r["status"] != "error" || r["errorType"] != "bad_data" || !strings.Contains(r["error"], tt.want) {
				t.Errorf("%d %s, want 400 bad_data containing %q", code, body, tt.want)
			}
		})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/api/lookout/analyze", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d", rec.Code)
	}
	// POST with a form body works like GET.
	rec = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/api/lookout/analyze", strings.NewReader("query=x&start="+e+"&end="+s))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "end must be after start") {
		t.Errorf("POST: %d %s", rec.Code, rec.Body)
	}
}

// FuzzParseRequest: parameters are outside input; parsing never panics,
// and what it accepts validates or fails with ErrBadRequest.
func FuzzParseRequest(f *testing.F) {
	f.Add("histogram_quantile(0.95, rate(x_bucket[5m])) > 5", "1700000000", "1700000300", "", "", "5", "200")
	f.Add("x", "2026-12-06T10:00:00Z", "2026-12-06T10:05:00.5Z", "1699990000", "1699999000", "-1", "1")
	f.Fuzz(func(t *testing.T, q, s, e, bs, be, th, lim string) {
		p := map[string]string{"query": q, "start": s, "end": e, "baseline_start": bs, "baseline_end": be, "threshold": th, "limit": lim}
		req, err := ParseRequest(func(k string) string { return p[k] })
		if err != nil {
			return
		}
		if _, err := req.validate(); err != nil && !strings.Contains(err.Error(), ErrBadRequest.Error()) {
			t.Fatalf("validate: %v", err)
		}
	})
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatal(err)
	}
	got, _ = json.MarshalIndent(v, "", "  ")
	got = append(got, '\n')
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file (run with -update):\n%s", name, got)
	}
}

func TestSelectorsAndThreshold(t *testing.T) {
	tests := []struct {
		expr      string
		names     string
		threshold string
		metric    string
		duration  bool
	}{
		{`histogram_quantile(0.95, rate(webstore_payment_duration_bucket[5m])) > 5`, "webstore_payment_duration_bucket", "5", "webstore_payment_duration", true},
		{`histogram_quantile(0.95, sum by (le, job) (rate(webstore_payment_duration_bucket[5m]))) > 5`, "webstore_payment_duration_bucket", "5", "webstore_payment_duration", true},
		{`5 < histogram_quantile(0.9, rate(h_seconds_bucket[5m]))`, "h_seconds_bucket", "5", "h_seconds", true},
		{`sum by (job) (rate(http_server_request_duration_count{http_response_status_code=~"5.."}[10m])) > 1`,
			"http_server_request_duration_count,http_server_request_duration_bucket", "none", "http_server_request_duration", true},
		{`sum(rate(h_count{code=~"5.."}[5m])) / sum(rate(h_count[5m])) > 0.05 and sum(rate(h_count[5m])) > 1`, "h_count,h_bucket", "none", "h", false},
		{`(sum(rate(webstore_checkout_amount_sum[5m])) / sum(rate(webstore_checkout_amount_count[5m]))) > 5 * (sum(rate(webstore_checkout_amount_sum[1d] offset 5m))) or histogram_quantile(0.99, sum by (job, le) (rate(webstore_checkout_amount_bucket[5m]))) > 10000`,
			"webstore_checkout_amount_sum,webstore_checkout_amount_bucket,webstore_checkout_amount_count", "10000", "webstore_checkout_amount", false},
		{`http_server_duration_bucket{http_method="GET"}`, "http_server_duration_bucket", "none", "http_server_duration", true},
	}
	p := func(s string) string {
		e, err := parserFor(s)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		sels := Selectors(e)
		for _, s := range sels {
			for _, m := range s {
				if m.Name == labels.MetricName {
					names = append(names, m.Value)
				}
			}
		}
		th := "none"
		if v := thresholdOf(e); v != nil {
			th = fmt.Sprint(*v)
		}
		_, dur := durationScale(metricName(sels))
		return fmt.Sprintf("%s %s %s %v", strings.Join(names, ","), th, metricName(sels), dur)
	}
	for _, tt := range tests {
		if got, want := p(tt.expr), fmt.Sprintf("%s %s %s %v", tt.names, tt.threshold, tt.metric, tt.duration); got != want {
			t.Errorf("%s:\n got %s\nwant %s", tt.expr, got, want)
		}
	}
}

func TestNaturalBreak(t *testing.T) {
	ex := func(vs ...float64) []Exemplar {
		out := make([]Exemplar, len(vs))
		for i, v := range vs {
			out[i].Value = v
		}
		return out
	}
	for _, tt := range []struct {
		name string
		exs  []Exemplar
		want float64 // 0: none
	}{
		{"normal and slow", ex(0.08, 0.1, 0.09, 0.12, 7.5, 7.9, 8.1, 7.2), math.Sqrt(0.12 * 7.2)},
		{"all slow", ex(7.5, 7.9, 8.1, 7.2, 6.9, 8.3), 0},
		{"a gap under 4x", ex(1, 1.1, 1.2, 3, 3.3, 3.5), 0},
		{"only two slow", ex(0.1, 0.1, 0.1, 0.1, 8, 9), 0},
		{"too few", ex(0.1, 9), 0},
		{"zeros and infinities ignored", ex(0, 0, 0.1, 0.1, 0.1, 9, 9, 9, math.Inf(1)), math.Sqrt(0.1 * 9)},
	} {
		got := naturalBreak(tt.exs)
		switch {
		case tt.want == 0 && got != nil:
			t.Errorf("%s: %v, want none", tt.name, *got)
		case tt.want != 0 && (got == nil || math.Abs(*got-tt.want) > 1e-9):
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
