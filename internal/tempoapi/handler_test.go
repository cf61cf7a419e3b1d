package tempoapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/lookout-dev/lookout/internal/exemplars"
	"github.com/lookout-dev/lookout/internal/traceid"
	"github.com/lookout-dev/lookout/internal/tracestore"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var base = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

const (
	traceA = "4bf92f3577b34da6a3ce929d0e0e4736" // checkout with a payment error, two services
	traceB = "00000000000000000000000000c0ffee" // a short GET, 8-byte style ID
	traceC = "0af7651916cd43dd8448eb211c80319c" // referenced by an exemplar, never received
)

func mustID(s string) pcommon.TraceID {
	id, err := traceid.Parse(s)
	if err != nil {
		panic(err)
	}
	return id
}

type span struct {
	trace, service, name string
	id, parent           byte
	kind                 ptrace.SpanKind
	status               ptrace.StatusCode
	start, dur           time.Duration
	attrs                map[string]any
}

func request(spans ...span) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, s := range spans {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", s.service)
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("webstore")
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(mustID(s.trace))
		sp.SetSpanID(pcommon.SpanID{0x11, 7: s.id})
		if s.parent != 0 {
			sp.SetParentSpanID(pcommon.SpanID{0x11, 7: s.parent})
		}
		sp.SetName(s.name)
		sp.SetKind(s.kind)
		sp.Status().SetCode(s.status)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(base.Add(s.start)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(base.Add(s.start + s.dur)))
		// Insert in key order: map order would make golden files flaky.
		keys := slices.Sorted(maps.Keys(s.attrs))
		for _, k := range keys {
			_ = sp.Attributes().PutEmpty(k).FromRaw(s.attrs[k])
		}
	}
	return td
}

type fixture struct {
	store *tracestore.Store
	index *exemplars.Index
	h     http.Handler
	url   string
}

func newFixture(t testing.TB, opts Options) *fixture {
	t.Helper()
	now := func() time.Time { return base.Add(time.Hour) }
	store, err := tracestore.Open(t.TempDir(), tracestore.Options{Now: now, RetentionInterval: time.Hour}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	idx, err := exemplars.Open(t.TempDir(), exemplars.Options{Now: now, Traces: store}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	ctx := context.Background()
	ms := time.Millisecond
	for _, td := range []ptrace.Traces{
		request(span{trace: traceB, service: "main-service", name: "GET /products", id: 1, kind: ptrace.SpanKindServer, start: 0, dur: 12 * ms,
			attrs: map[string]any{"http.response.status_code": 200, "http.request.method": "GET"}}),
		request(
			span{trace: traceA, service: "main-service", name: "POST /checkout", id: 1, kind: ptrace.SpanKindServer, start: time.Second, dur: 1200 * ms,
				attrs: map[string]any{"http.response.status_code": 500, "http.request.method": "POST"}},
			span{trace: traceA, service: "main-service", name: "process_payment", id: 2, parent: 1, kind: ptrace.SpanKindClient, start: time.Second + 5*ms, dur: 1100 * ms},
		),
		request(span{trace: traceA, service: "payments-service", name: "payment_provider_api", id: 3, parent: 2, kind: ptrace.SpanKindServer,
			status: ptrace.StatusCodeError, start: time.Second + 10*ms, dur: 1050 * ms, attrs: map[string]any{"payment_method": "card", "retry": true, "amount": 12.5}}),
	} {
		if _, err := store.ConsumeTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
	}
	err = idx.WriteExemplars(ctx, []exemplars.Record{
		{Series: labels.FromStrings("__name__", "webstore_payment_duration_bucket", "le", "2.5", "job", "payments-service"),
			Exemplar: exemplar.Exemplar{Labels: labels.FromStrings("span_id", "1100000000000003", "trace_id", traceA), Value: 1.05, Ts: base.Add(time.Second).UnixMilli(), HasTs: true}},
		{Series: labels.FromStrings("__name__", "webstore_payment_duration_bucket", "le", "+Inf", "job", "payments-service"),
			Exemplar: exemplar.Exemplar{Labels: labels.FromStrings("trace_id", traceC), Value: 7, Ts: base.Add(2 * time.Second).UnixMilli(), HasTs: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	opts.Traces, opts.Exemplars = store, idx
	if opts.Registerer == nil {
		reg := prometheus.NewRegistry()
		opts.Registerer, opts.Gatherer = reg, reg
	}
	h := NewHandler(opts)
	srv := httptest.NewServer(h) // listens on 127.0.0.1:0
	t.Cleanup(srv.Close)
	return &fixture{store: store, index: idx, h: h, url: srv.URL}
}

func get(t *testing.T, u string, header ...string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// golden compares "<status>\n<body>" with testdata/<name>.golden; JSON
// bodies are indented so diffs are readable.
func golden(t *testing.T, name string, code int, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	if json.Valid(body) {
		if err := json.Indent(&buf, body, "", "  "); err != nil {
			t.Fatal(err)
		}
	} else {
		buf.Write(body)
	}
	got := fmt.Sprintf("%d\n%s\n", code, strings.TrimRight(buf.String(), "\n"))
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Errorf("%s: response differs from golden file\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestGolden(t *testing.T) {
	f := newFixture(t, Options{Version: "test"})
	s := func(start, end time.Duration) string {
		return fmt.Sprintf("start=%d&end=%d", base.Add(start).Unix(), base.Add(end).Unix())
	}
	q := url.QueryEscape
	// Metrics over three minutes around the fixture's spans, a step each.
	m := s(-time.Minute, 2*time.Minute) + "&step=1m"
	cases := []struct{ name, path string }{
		{"trace_v1", "/api/traces/" + traceA},
		{"trace_v1", "/api/traces/" + strings.ToUpper(traceA)},
		{"trace_v2", "/api/v2/traces/" + traceA},
		{"trace_v2_short_id", "/api/v2/traces/c0ffee"},
		{"trace_v2_short_id", "/api/v2/traces/0000000000c0ffee"},
		{"trace_v2_short_id", "/api/v2/traces/" + traceB},
		{"trace_not_found", "/api/traces/" + traceC},
		{"trace_v2_not_found", "/api/v2/traces/" + traceC},
		{"trace_bad_id", "/api/traces/not-hex"},
		{"trace_bad_id_long", "/api/v2/traces/" + traceA + "00"},
		{"search_all", "/api/search"},
		{"search_limit", "/api/search?limit=1"},
		{"search_traceql_error_status", "/api/search?q=" + q(`{ status = error }`) + "&spss=5"},
		{"search_traceql_structural", "/api/search?q=" + q(`{ resource.service.name = "main-service" } >> { .payment_method = "card" && .retry = true }`)},
		{"search_traceql_root", "/api/search?q=" + q(`{ rootServiceName = "main-service" && span.http.response.status_code >= 500 }`)},
		{"search_time_range", "/api/search?" + s(0, 500*time.Millisecond)},
		{"search_min_duration", "/api/search?minDuration=1s"},
		{"search_max_duration", "/api/search?maxDuration=100ms"},
		{"search_tags", "/api/search?tags=" + q(`service.name=payments-service payment_method="card"`)},
		{"search_tags_int", "/api/search?tags=" + q(`http.response.status_code=200`)},
		{"search_tags_name", "/api/search?tags=" + q(`name="GET /products"`)},
		{"search_bad_traceql", "/api/search?q=" + q(`{ name = }`)},
		{"search_unsupported_traceql", "/api/search?q=" + q(`{ name = "x" } | rate()`)},
		{"search_pipeline_by", "/api/search?q=" + q(`{ } | by(resource.service.name)`) + "&spss=5"},
		{"search_pipeline_by_count", "/api/search?q=" + q(`{ kind != internal } | by(resource.service.name) | count() > 1`)},
		{"search_pipeline_select", "/api/search?q=" + q(`{ status = error } | select(span.payment_method, span.amount, resource.service.name, kind)`)},
		{"search_drilldown_roots", "/api/search?q=" + q(`{nestedSetParent<0 && true}`) + "&limit=200&spss=10"},
		{"search_drilldown_structure", "/api/search?q=" + q(`({nestedSetParent<0 && true } &>> { kind = server }) || ({nestedSetParent<0 && true }) | select(status, resource.service.name, name, nestedSetParent, nestedSetLeft, nestedSetRight)`) + "&limit=200&spss=20"},
		{"search_drilldown_hints", "/api/search?q=" + q(`{ status = error } | select(resource.service.name, span:id, event.exception.message) with(most_recent=true)`) + "&limit=400&spss=10"},
		{"search_pipeline_aggregate", "/api/search?q=" + q(`{ } | avg(duration) > 1s | coalesce()`) + "&spss=1"},
		{"search_pipeline_tags", "/api/search?q=" + q(`{ } | count() > 1`) + "&tags=" + q(`name="process_payment"`)},
		{"search_pipeline_unsupported_and", "/api/search?q=" + q(`{ } | count() > 1 && { }`)},
		{"search_bad_limit", "/api/search?limit=-3"},
		{"search_bad_start", "/api/search?start=yesterday"},
		{"search_end_before_start", "/api/search?start=200&end=100"},
		{"search_bad_duration", "/api/search?minDuration=fast"},
		{"search_bad_tags", "/api/search?tags=" + q(`service.name="unterminated`)},
		{"metrics_rate", "/api/metrics/query_range?q=" + q(`{ } | rate()`) + "&" + m},
		{"metrics_rate_by", "/api/metrics/query_range?q=" + q(`{ } | rate() by (resource.service.name)`) + "&" + m},
		{"metrics_count_by_status", "/api/metrics/query_range?q=" + q(`{ } | count_over_time() by (status, span.http.request.method)`) + "&" + m},
		{"metrics_sum", "/api/metrics/query_range?q=" + q(`{ kind = server } | sum_over_time(duration) by (name)`) + "&" + m},
		{"metrics_min", "/api/metrics/query_range?q=" + q(`{ } | min_over_time(span.amount)`) + "&" + m},
		{"metrics_max", "/api/metrics/query_range?q=" + q(`{ } | max_over_time(duration) by (resource.service.name)`) + "&" + m},
		{"metrics_avg", "/api/metrics/query_range?q=" + q(`{ } | avg_over_time(duration)`) + "&" + m},
		{"metrics_quantile", "/api/metrics/query_range?q=" + q(`{ } | quantile_over_time(duration, .5, .99) by (resource.service.name)`) + "&" + m},
		{"metrics_histogram", "/api/metrics/query_range?q=" + q(`{ } | histogram_over_time(duration)`) + "&" + m},
		{"metrics_compare", "/api/metrics/query_range?q=" + q(`{ } | compare({ status = error })`) + "&" + s(-time.Minute, time.Minute) + "&step=120"},
		{"metrics_topk", "/api/metrics/query_range?q=" + q(`{ } | count_over_time() by (name) | topk(2)`) + "&" + m},
		{"metrics_structural", "/api/metrics/query_range?q=" + q(`{ kind = server } >> { status = error } | count_over_time() by (resource.service.name)`) + "&" + m},
		{"metrics_root", "/api/metrics/query_range?q=" + q(`{ nestedSetParent < 0 } | rate() by (name)`) + "&" + m + "&exemplars=1"},
		{"metrics_no_exemplars", "/api/metrics/query_range?q=" + q(`{ } | rate() with (exemplars=false)`) + "&" + m},
		{"metrics_instant", "/api/metrics/query?q=" + q(`{ } | count_over_time() by (resource.service.name)`) + "&" + s(-time.Minute, time.Minute)},
		{"metrics_no_query", "/api/metrics/query_range?" + m},
		{"metrics_search_query", "/api/metrics/query_range?q=" + q(`{ status = error }`) + "&" + m},
		{"metrics_bad_query", "/api/metrics/query_range?q=" + q(`{ } | rate() by (`) + "&" + m},
		{"metrics_bad_step", "/api/metrics/query_range?q=" + q(`{ } | rate()`) + "&" + s(-time.Minute, time.Minute) + "&step=fast"},
		{"metrics_step_too_small", "/api/metrics/query_range?q=" + q(`{ } | rate()`) + "&" + s(-20*time.Hour, 0) + "&step=1s"},
		{"metrics_range_too_long", "/api/metrics/query_range?q=" + q(`{ } | rate()`) + "&" + s(-30*24*time.Hour, 0) + "&step=1s"},
		{"metrics_end_before_start", "/api/metrics/query_range?q=" + q(`{ } | rate()`) + "&" + s(time.Minute, 0)},
		{"metrics_bad_start", "/api/metrics/query_range?q=" + q(`{ } | rate()`) + "&start=yesterday"},
		{"tags_v1", "/api/search/tags"},
		{"tags_v2", "/api/v2/search/tags"},
		{"tags_v2_resource", "/api/v2/search/tags?scope=resource"},
		{"tags_v2_bad_scope", "/api/v2/search/tags?scope=event"},
		{"tag_values_v1", "/api/search/tag/service.name/values"},
		{"tag_values_v2_resource", "/api/v2/search/tag/resource.service.name/values"},
		{"tag_values_v2_int", "/api/v2/search/tag/span.http.response.status_code/values"},
		{"tag_values_v2_unscoped", "/api/v2/search/tag/.retry/values"},
		{"tag_values_v2_name", "/api/v2/search/tag/name/values"},
		{"tag_values_v2_root_name", "/api/v2/search/tag/rootName/values"},
		{"tag_values_v2_root_service", "/api/v2/search/tag/rootServiceName/values"},
		{"tag_values_v2_status", "/api/v2/search/tag/status/values"},
		{"tag_values_v2_bad", "/api/v2/search/tag/nonsense/values"},
		{"echo", "/api/echo"},
		{"ready", "/ready"},
		{"lookout_exemplars", "/api/lookout/exemplars?traceID=" + traceA},
		{"lookout_exemplars_dangling", "/api/lookout/exemplars?traceID=" + strings.ToUpper(traceC)},
		{"lookout_exemplars_bad_id", "/api/lookout/exemplars?traceID=zz"},
		{"lookout_found", "/api/lookout/traces/found?ids=" + traceA + "," + traceC + ",c0ffee"},
		{"lookout_found_bad", "/api/lookout/traces/found?ids=" + traceA + ",nothex"},
	}
	for _, c := range cases {
		t.Run(c.name+c.path, func(t *testing.T) {
			code, _, body := get(t, f.url+c.path)
			golden(t, c.name, code, body)
		})
	}
}

func TestBuildinfoAndMetrics(t *testing.T) {
	f := newFixture(t, Options{Version: "1.2.3"})
	code, ctype, body := get(t, f.url+"/api/status/buildinfo")
	var bi map[string]string
	if err := json.Unmarshal(body, &bi); code != 200 || err != nil || bi["version"] != "1.2.3" || !strings.HasPrefix(bi["goVersion"], "go") || ctype != "application/json" {
		t.Errorf("buildinfo: %d %s %s", code, ctype, body)
	}
	// By default it answers as the Tempo release whose API it implements,
	// a version Grafana's data source can parse.
	_, _, body = get(t, newFixture(t, Options{}).url+"/api/status/buildinfo")
	if err := json.Unmarshal(body, &bi); err != nil || bi["version"] != TempoVersion || bi["branch"] != "lookout" {
		t.Errorf("default buildinfo: %s", body)
	}
	get(t, f.url+"/api/search")
	code, _, body = get(t, f.url+"/metrics")
	if code != 200 || !regexp.MustCompile(`lookout_tempo_api_requests_total\{code="200",route="/api/search"\} 1`).Match(body) {
		t.Errorf("metrics: %d\n%s", code, body)
	}
	// A second handler on the same registry (the UI mount) shares the metrics.
	reg := prometheus.NewRegistry()
	h1 := NewHandler(Options{Traces: f.store, Registerer: reg, Gatherer: reg})
	h2 := NewHandler(Options{Traces: f.store, Registerer: reg, PathPrefix: "/tempo"})
	for _, c := range []struct {
		h    http.Handler
		path string
	}{{h1, "/api/echo"}, {h2, "/tempo/api/echo"}} {
		c.h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, c.path, nil))
	}
	rec := httptest.NewRecorder()
	h1.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body = rec.Body.Bytes()
	if !regexp.MustCompile(`lookout_tempo_api_requests_total\{code="200",route="/api/echo"\} 2`).Match(body) {
		t.Errorf("shared metrics:\n%s", body)
	}
}

func TestTraceProtobuf(t *testing.T) {
	f := newFixture(t, Options{})
	want, _, _ := f.store.GetTrace(context.Background(), mustID(traceA))
	wantJSON, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(want)

	code, ctype, body := get(t, f.url+"/api/traces/"+traceA, "Accept", "application/protobuf")
	if code != 200 || ctype != "application/protobuf" {
		t.Fatalf("v1 protobuf: %d %s", code, ctype)
	}
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(body)
	if err != nil {
		t.Fatalf("v1 body is not OTLP TracesData: %v", err)
	}
	if got, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(td); !bytes.Equal(got, wantJSON) {
		t.Errorf("v1 protobuf decodes to a different trace")
	}

	code, ctype, body = get(t, f.url+"/api/v2/traces/"+traceA, "Accept", "application/protobuf")
	if code != 200 || ctype != "application/protobuf" || len(body) < 3 || body[0] != 0x0a {
		t.Fatalf("v2 protobuf: %d %s % x", code, ctype, body[:min(len(body), 4)])
	}
	// Field 1, length-delimited: the trace.
	n, w := binary.Uvarint(body[1:])
	k := 1 + w
	if w <= 0 || int(n) != len(body)-k {
		t.Fatalf("v2 protobuf: field 1 length %d, %d bytes follow", n, len(body)-k)
	}
	td, err = (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(body[k:])
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(td); !bytes.Equal(got, wantJSON) {
		t.Errorf("v2 protobuf decodes to a different trace")
	}
	if code, _, _ := get(t, f.url+"/api/v2/traces/"+traceC, "Accept", "application/protobuf"); code != 404 {
		t.Errorf("v2 protobuf absent trace: %d, want 404 (Grafana falls back to v1)", code)
	}
}

func TestMountedUnderPrefix(t *testing.T) {
	f := newFixture(t, Options{PathPrefix: "/tempo"})
	for _, p := range []string{"/tempo/api/traces/" + traceA, "/tempo/api/search", "/tempo/api/v2/search/tags", "/tempo/ready"} {
		if code, _, body := get(t, f.url+p); code != 200 {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	if code, _, _ := get(t, f.url+"/api/search"); code != 404 {
		t.Errorf("unprefixed path served with a prefix set: %d", code)
	}
	// The other way to mount: strip the prefix in front of an unprefixed handler.
	g := newFixture(t, Options{})
	mux := http.NewServeMux()
	mux.Handle("/tempo/", http.StripPrefix("/tempo", NewHandler(Options{Traces: g.store, Exemplars: g.index})))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if code, _, body := get(t, srv.URL+"/tempo/api/traces/"+traceA); code != 200 {
		t.Errorf("StripPrefix mount: %d %s", code, body)
	}
}

func TestQueryTimeout(t *testing.T) {
	f := newFixture(t, Options{QueryTimeout: time.Nanosecond})
	code, _, body := get(t, f.url+"/api/search?q="+url.QueryEscape(`{ name =~ ".*x.*" }`))
	if code != 400 || !strings.Contains(string(body), "query timed out after 1ns") {
		t.Errorf("timeout: %d %s", code, body)
	}
}

func TestParseLogfmt(t *testing.T) {
	cases := []struct {
		in   string
		want [][2]string
		err  bool
	}{
		{`a=b`, [][2]string{{"a", "b"}}, false},
		{`  a=b   c="d e" f=`, [][2]string{{"a", "b"}, {"c", "d e"}, {"f", ""}}, false},
		{`x="q\"uote"`, [][2]string{{"x", `q"uote`}}, false},
		{`novalue`, nil, true},
		{`=v`, nil, true},
		{`a="open`, nil, true},
	}
	for _, c := range cases {
		got, err := parseLogfmt(c.in)
		if (err != nil) != c.err || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("parseLogfmt(%q) = %v, %v", c.in, got, err)
		}
	}
}

func FuzzParseLogfmt(f *testing.F) {
	for _, s := range []string{`a=b c="d e"`, `service.name=x name="GET /"`, `x="\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tags, err := parseLogfmt(s)
		if err != nil {
			return
		}
		_, _ = tagsFilter(tags) // may reject, must not panic
	})
}
