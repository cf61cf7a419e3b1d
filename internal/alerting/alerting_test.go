package alerting

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"
	v1 "github.com/prometheus/prometheus/web/api/v1"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/lookout-dev/lookout/internal/analysis"
	"github.com/lookout-dev/lookout/internal/promapi"
	"github.com/lookout-dev/lookout/rules"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// memTraces is a trace getter over ptrace data held in memory: the one
// method of the trace store the Manager uses.
type memTraces struct {
	mu     sync.Mutex
	traces map[pcommon.TraceID]ptrace.Traces
}

func (m *memTraces) GetTrace(_ context.Context, id pcommon.TraceID) (ptrace.Traces, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	td, ok := m.traces[id]
	return td, ok, nil
}

func traceID(n int) pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[:8], 0xabcdef0000000000)
	binary.BigEndian.PutUint64(id[8:], uint64(n))
	return id
}

// checkoutTrace is a WebStore checkout whose payment provider call took provider.
func checkoutTrace(id pcommon.TraceID, start time.Time, provider time.Duration) ptrace.Traces {
	td := ptrace.NewTraces()
	span := func(service, name string, parent pcommon.SpanID, n uint64, from, to time.Time) pcommon.SpanID {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", service)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], n)
		sp.SetTraceID(id)
		sp.SetSpanID(sid)
		sp.SetParentSpanID(parent)
		sp.SetName(name)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(from))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(to))
		return sid
	}
	ms := time.Millisecond
	root := span("main-service", "POST /checkout", pcommon.SpanID{}, 1, start, start.Add(provider+60*ms))
	span("main-service", "validate_cart", root, 2, start.Add(ms), start.Add(4*ms))
	span("main-service", "check_inventory", root, 3, start.Add(5*ms), start.Add(25*ms))
	pp := span("main-service", "process_payment", root, 4, start.Add(25*ms), start.Add(provider+45*ms))
	pay := span("payments-service", "POST /payments", pp, 5, start.Add(27*ms), start.Add(provider+43*ms))
	span("payments-service", "payment_provider_api", pay, 6, start.Add(30*ms), start.Add(provider+30*ms))
	span("main-service", "create_order", root, 7, start.Add(provider+45*ms), start.Add(provider+58*ms))
	return td
}

// analyzer is the analysis engine over the fixture's TSDB and traces,
// without a trace search: spike and baseline are exemplar traces.
func (f *fixture) analyzer() *analysis.Analyzer {
	return &analysis.Analyzer{Exemplars: analysis.StorageExemplars{Queryable: f.db}, Traces: f.traces}
}

// options are DefaultOptions over the fixture's TSDB and engine.
func (f *fixture) options() Options {
	o := DefaultOptions()
	o.Engine, o.Queryable, o.Appendable = f.engine, f.db, f.db
	return o
}

type fixture struct {
	db     *tsdb.DB
	engine *promql.Engine
	traces *memTraces
	now    time.Time
	// slow lists the exemplars of the slow series: value and trace number.
	slow []struct {
		v float64
		n int
	}
}

var (
	slowSeries = labels.FromStrings("__name__", "webstore_payment_duration_bucket", "job", "payments-service", "country", "US", "payment_method", "card")
	fastSeries = labels.FromStrings("__name__", "webstore_payment_duration_bucket", "job", "payments-service", "country", "DE", "payment_method", "paypal")
	buckets    = []float64{0.1, 0.5, 1, 2.5, 5, 7.5, 10}
)

// newFixture opens a real TSDB with exemplar storage and writes 10 minutes
// of webstore.payment.duration histograms: the US/card series slow (every
// request between 7.5 s and 10 s), the DE/paypal series fast. Both carry
// exemplars; one slow exemplar's trace is not in the trace store, and one
// slow exemplar is older than the alert window.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.EnableExemplarStorage = true
	opts.MaxExemplars = 10000
	db, err := tsdb.Open(t.TempDir(), promslog.NewNopLogger(), nil, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{
		db:     db,
		engine: promql.NewEngine(promql.EngineOpts{Logger: promslog.NewNopLogger(), MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute}),
		traces: &memTraces{traces: map[pcommon.TraceID]ptrace.Traces{}},
		now:    time.Now(),
	}
	// Slow exemplars by minute offset before now: value, trace number.
	exemplarAt := map[int]struct {
		v float64
		n int
	}{
		10: {9.9, 99}, // before the alert window: must not be evidence
		4:  {7.6, 1}, 3: {7.9, 2}, 2: {7.3, 3},
	}
	late := []struct {
		v float64
		n int
	}{{7.8, 4}, {7.4, 5}, {7.7, 6}} // 7.7: trace never received
	app := db.Appender(context.Background())
	var count float64
	for i := 40; i >= 0; i-- {
		ts := f.now.Add(-time.Duration(i) * 15 * time.Second)
		count += 10
		for _, le := range append(buckets, 1e308) {
			slowV, fastV := 0.0, count
			if le >= 10 {
				slowV = count
			}
			if le < 0.5 {
				fastV = 0
			}
			leStr := fmt.Sprint(le)
			if le == 1e308 {
				leStr = "+Inf"
			}
			sl := labels.NewBuilder(slowSeries).Set("le", leStr).Labels()
			fl := labels.NewBuilder(fastSeries).Set("le", leStr).Labels()
			if _, err := app.Append(0, sl, ts.UnixMilli(), slowV); err != nil {
				t.Fatal(err)
			}
			if _, err := app.Append(0, fl, ts.UnixMilli(), fastV); err != nil {
				t.Fatal(err)
			}
			if le != 10 {
				continue
			}
			var exs []struct {
				v float64
				n int
			}
			if i%4 == 0 {
				if e, ok := exemplarAt[i/4]; ok {
					exs = append(exs, e)
				}
			}
			if i == 6 {
				exs = append(exs, late...)
			}
			for k, e := range exs {
				id := traceID(e.n)
				ex := exemplar.Exemplar{
					Labels: labels.FromStrings("trace_id", hex.EncodeToString(id[:]), "span_id", fmt.Sprintf("%016x", 6)),
					Value:  e.v, Ts: ts.UnixMilli() + int64(k), HasTs: true,
				}
				if _, err := app.AppendExemplar(0, sl, ex); err != nil {
					t.Fatal(err)
				}
				if e.n != 6 {
					f.traces.traces[id] = checkoutTrace(id, ts.Add(-time.Duration(e.v*float64(time.Second))), time.Duration(e.v*float64(time.Second)))
				}
				if e.n != 99 {
					f.slow = append(f.slow, e)
				}
			}
			// A fast exemplar: same alert rule, other series.
			if i%8 == 0 {
				id := traceID(1000 + i)
				fe := exemplar.Exemplar{Labels: labels.FromStrings("trace_id", hex.EncodeToString(id[:])), Value: 0.3, Ts: ts.UnixMilli(), HasTs: true}
				if _, err := app.AppendExemplar(0, fl, fe); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	return f
}

// fastRules is the built-in rule file with every `for:` shortened to 1s and
// the group interval left to the Manager, so a test sees pending → firing
// within seconds on the real expressions.
func fastRules(t *testing.T) string {
	t.Helper()
	b, err := rules.Default.ReadFile(rules.DefaultFile)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "for: 1m", "for: 1s")
	s = strings.ReplaceAll(s, "for: 2m", "for: 1s")
	s = strings.ReplaceAll(s, "    interval: 15s\n", "")
	if s == string(b) {
		t.Fatal("rule file rewrite did nothing")
	}
	p := filepath.Join(t.TempDir(), "webstore.yml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// webhookSink records Alertmanager webhook messages.
type webhookSink struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (s *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.msgs = append(s.msgs, b)
	s.mu.Unlock()
}

func (s *webhookSink) firing(name string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.msgs {
		var m WebhookMessage
		if json.Unmarshal(b, &m) == nil && m.Status == "firing" && m.GroupLabels["alertname"] == name {
			return b
		}
	}
	return nil
}

func TestManagerFiresWithEvidence(t *testing.T) {
	f := newFixture(t)
	good := &webhookSink{}
	goodSrv := httptest.NewServer(good)
	defer goodSrv.Close()

	// A receiver that never answers and one whose port is closed.
	hung := make(chan struct{}, 10)
	release := make(chan struct{})
	hangSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hangSrv.Close()
	defer close(release)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + l.Addr().String() + "/hook"
	l.Close()

	reg := prometheus.NewRegistry()
	opts := f.options()
	opts.Analyzer = f.analyzer()
	opts.RuleFiles = []string{fastRules(t)}
	opts.EvalInterval = 100 * time.Millisecond
	opts.WebhookURLs = []string{goodSrv.URL + "/hook", deadURL, hangSrv.URL}
	opts.ExternalURL = "http://lookout.example:9090"
	opts.Registerer = reg
	opts.Webhook.InitialBackoff = 5 * time.Millisecond
	opts.Webhook.MaxAttempts = 3
	opts.Webhook.Timeout = time.Minute
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	// The shipped rule aggregates by job: one alert per affected service.
	alertLabels := labels.FromStrings("alertname", "HighPaymentLatency", "severity", "critical", "job", "payments-service")
	eventually(t, "HighPaymentLatency firing with evidence", func() bool {
		_, ok := m.Evidence(alertLabels)
		return ok
	})
	ev, _ := m.Evidence(alertLabels)

	// pending came before firing: the rules manager wrote both ALERTS states
	// (the pending series is stale by now, so count over a range).
	for _, state := range []string{"pending", "firing"} {
		eventually(t, "ALERTS "+state+" series", func() bool {
			q, err := f.engine.NewInstantQuery(context.Background(), f.db, nil,
				`count_over_time(ALERTS{alertname="HighPaymentLatency",job="payments-service",alertstate="`+state+`"}[10m])`, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			r := q.Exec(context.Background())
			return r.Err == nil && len(r.Value.(promql.Vector)) == 1
		})
	}

	// Only exemplars above the rule's threshold (5 s) count: the fast
	// series' 0.3 s ones are left out although the alert covers the job, and
	// so is the older-than-window 9.9. The example traces are the top
	// finding's, the largest payment_provider_api self time first.
	want := []string{traceHex(2), traceHex(4), traceHex(1), traceHex(5), traceHex(3)}
	if got := ev.TraceIDs(); got != strings.Join(want, ",") {
		t.Errorf("trace IDs = %s\nwant       %s", got, strings.Join(want, ","))
	}
	if ev.Threshold == nil || *ev.Threshold != 5 || ev.SpikeExemplars != 6 || ev.SpikeTraces != 5 {
		t.Errorf("threshold %v, spike exemplars %d traces %d; want 5, 6, 5", ev.Threshold, ev.SpikeExemplars, ev.SpikeTraces)
	}
	if len(ev.Findings) == 0 || ev.Findings[0].Span != "payment_provider_api" || ev.Findings[0].Coverage != 1 {
		t.Errorf("findings %+v, want payment_provider_api first, largest in every trace", ev.Findings)
	}
	if wantSum := "payment_provider_api self time 7.6 s, largest in 5 of 5 spike traces (no baseline traces to compare with) (1 of 6 spike exemplar traces not received)"; ev.Summary != wantSum {
		t.Errorf("summary %q, want %q", ev.Summary, wantSum)
	}
	if ev.MissingTraces != 1 {
		t.Errorf("missing traces %d, want 1", ev.MissingTraces)
	}
	if n := len(m.AlertingRules()[0].ActiveAlerts()); n != 1 {
		t.Errorf("%d HighPaymentLatency alerts, want one for the one job", n)
	}

	// Webhooks: the live receiver gets Alertmanager JSON; the hung one
	// holds its request while evaluation goes on.
	eventually(t, "webhook firing message", func() bool { return good.firing("HighPaymentLatency") != nil })
	golden(t, "webhook.golden.json", normalize(t, good.firing("HighPaymentLatency")))
	select {
	case <-hung:
	case <-time.After(time.Minute):
		t.Fatal("hung receiver never called")
	}
	group := m.RulesRetriever(context.Background()).RuleGroups()[0]
	hungAt := time.Now()
	eventually(t, "evaluation after a receiver hung", func() bool { return group.GetLastEvaluation().After(hungAt) })
	eventually(t, "dead receiver failure counted", func() bool {
		return testutil.ToFloat64(m.metrics.failed.WithLabelValues(deadURL)) >= 1
	})
	if got := testutil.ToFloat64(m.metrics.retries.WithLabelValues(deadURL)); got < 2 {
		t.Errorf("dead receiver retries %v, want >= 2 (3 attempts)", got)
	}
	if got := testutil.ToFloat64(m.metrics.sent.WithLabelValues(goodSrv.URL + "/hook")); got < 1 {
		t.Errorf("sent %v, want >= 1", got)
	}

	// The Prometheus API answers, extended.
	api := newPrometheusAPI(t, m.RulesRetriever, f, m)
	for _, tc := range []struct{ path, golden string }{
		{"/prometheus/api/v1/alerts", "alerts.golden.json"},
		{"/prometheus/api/v1/rules?type=alert", "rules.golden.json"},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		api.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.path, rec.Code, rec.Body)
		}
		golden(t, tc.golden, normalize(t, decoded(t, rec)))
	}
}

// decoded returns the recorded answer's body, gunzipped when it was sent
// gzipped.
func decoded(t *testing.T, rec *httptest.ResponseRecorder) []byte {
	t.Helper()
	if rec.Header().Get("Content-Encoding") != "gzip" {
		return rec.Body.Bytes()
	}
	r, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func traceHex(n int) string {
	id := traceID(n)
	return hex.EncodeToString(id[:])
}

// newPrometheusAPI is Lookout's Prometheus API (Prometheus's own
// web/api/v1 API) over the fixture, serving rr's rules and alerts extended
// by ext, mounted under /prometheus/api/v1 as Lookout's UI port serves it.
func newPrometheusAPI(t testing.TB, rr func(context.Context) v1.RulesRetriever, f *fixture, ext promapi.AlertExtension) http.Handler {
	t.Helper()
	opts := promapi.DefaultOptions()
	opts.Queryable = f.db
	opts.ExemplarQueryable = f.db
	opts.AdminStats = noAdminStats{}
	opts.Engine = f.engine
	opts.RulesRetriever = rr
	opts.AlertExtension = ext
	api, err := promapi.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/prometheus/", http.StripPrefix("/prometheus", api.Handler()))
	return mux
}

// noAdminStats stands in for the TSDB admin statistics, which the alerts
// and rules answers never read.
type noAdminStats struct{ v1.TSDBAdminStats }

// normalize replaces the values that depend on the wall clock so golden
// files compare shapes and content; everything else is compared exactly.
func normalize(t *testing.T, b []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				switch k {
				case "startsAt", "activeAt", "start", "end", "timestamp", "lastEvaluation", "evaluationTime", "keepFiringSince":
					x[k] = "<" + k + ">"
				case "file":
					if s, ok := e.(string); ok {
						x[k] = filepath.Base(s) // a temp dir
					}
				case "value":
					// An alert's value (a string) moves with the rate window;
					// exemplar values (numbers) are exact.
					if _, ok := e.(string); ok {
						x[k] = "<value>"
					}
				default:
					x[k] = walk(e)
				}
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		}
		return v
	}
	out, err := json.MarshalIndent(walk(v), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
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

func TestNewErrors(t *testing.T) {
	f := newFixture(t)
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("groups:\n- name: x\n  rules:\n  - alert: A\n    expr: rate(x[5m]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := f.options()
	tests := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"no engine", func(o *Options) { o.Engine = nil }, "Engine is required"},
		{"bad webhook", func(o *Options) { o.WebhookURLs = []string{"ftp://x"} }, "webhook URL"},
		{"glob matches nothing", func(o *Options) { o.RuleFiles = []string{filepath.Join(t.TempDir(), "*.yml")} }, "no file matches"},
		{"bad expression", func(o *Options) { o.RuleFiles = []string{bad} }, "load rules"},
		{"unknown builtin", func(o *Options) { o.RuleFiles = []string{"builtin:nope.yml"} }, "no such built-in file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.mod(&o)
			_, err := New(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New() error = %v, want containing %q", err, tt.want)
			}
		})
	}
	// The default is the built-in file, loaded and valid.
	m, err := New(base)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.RuleFiles(); len(got) != 1 || got[0] != "builtin:webstore.yml" {
		t.Errorf("RuleFiles() = %v", got)
	}
}

// TestExtendAlert: an alert with evidence gets the two annotations and the
// "evidence" member in the API's answers; one without gets nothing.
func TestExtendAlert(t *testing.T) {
	m := &Manager{evidence: newEvidenceStore()}
	ev := Evidence{Summary: "s", Traces: []string{"ab", "cd"}, Findings: []analysis.Finding{}}
	m.evidence.put(labels.FromStrings("alertname", "A").Hash(), ev)
	ann, members := m.ExtendAlert(&v1.Alert{Labels: labels.FromStrings("alertname", "A"), Annotations: labels.FromStrings("runbook", "r")})
	if len(ann) != 2 || ann[AnnotationSummary] != "s" || ann[AnnotationTraceIDs] != "ab,cd" {
		t.Errorf("annotations %v, want %s=s and %s=ab,cd", ann, AnnotationSummary, AnnotationTraceIDs)
	}
	got, err := json.Marshal(members)
	if want := `{"evidence":{"summary":"s","traceIDs":["ab","cd"],"findings":[],"spikeTraces":0,"spikeExemplars":0,"baselineTraces":0,"missingTraces":0,"start":"0001-01-01T00:00:00Z","end":"0001-01-01T00:00:00Z"}}`; err != nil || string(got) != want {
		t.Errorf("members %s (%v)\nwant    %s", got, err, want)
	}
	if ann, members := m.ExtendAlert(&v1.Alert{Labels: labels.FromStrings("alertname", "B")}); ann != nil || members != nil {
		t.Errorf("alert without evidence extended with %v, %v", ann, members)
	}
}

func TestWebhookRetriesThenSucceeds(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	met := newMetrics(nil)
	s := newSender(srv.URL, WebhookOptions{QueueSize: 1, MaxAttempts: 5, InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, Timeout: time.Minute}, met, slog.New(slog.DiscardHandler))
	s.deliver(context.Background(), []byte(`{}`))
	s.client.CloseIdleConnections()
	if calls != 3 || testutil.ToFloat64(met.sent.WithLabelValues(srv.URL)) != 1 || testutil.ToFloat64(met.retries.WithLabelValues(srv.URL)) != 2 {
		t.Errorf("calls %d sent %v retries %v", calls, testutil.ToFloat64(met.sent.WithLabelValues(srv.URL)), testutil.ToFloat64(met.retries.WithLabelValues(srv.URL)))
	}
	// A 400 is permanent: one attempt, counted as failed.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) }))
	defer bad.Close()
	s = newSender(bad.URL, WebhookOptions{QueueSize: 1, MaxAttempts: 5, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Timeout: time.Minute}, met, slog.New(slog.DiscardHandler))
	s.deliver(context.Background(), []byte(`{}`))
	s.client.CloseIdleConnections()
	if testutil.ToFloat64(met.failed.WithLabelValues(bad.URL)) != 1 || testutil.ToFloat64(met.retries.WithLabelValues(bad.URL)) != 0 {
		t.Error("400 not treated as permanent")
	}
	// A full queue drops instead of blocking.
	s.enqueue(WebhookMessage{})
	s.enqueue(WebhookMessage{})
	if testutil.ToFloat64(met.dropped.WithLabelValues(bad.URL)) != 1 {
		t.Error("full queue did not drop")
	}
}
