package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/lookout-dev/lookout/internal/analysis"
	"github.com/lookout-dev/lookout/internal/tempoapi"
	"github.com/lookout-dev/lookout/internal/traceid"
	"github.com/lookout-dev/lookout/internal/tracestore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustTraceID(s string) pcommon.TraceID {
	id, err := traceid.Parse(s)
	if err != nil {
		panic("bad trace ID " + s)
	}
	return id
}

// testSpan is one span of a test trace; parent 0 makes a root.
type testSpan struct {
	service, name string
	id, parent    byte
	start, dur    time.Duration
	attrs         map[string]any
}

// buildTrace makes a trace of spans, one resource per span, starting at
// base.
func buildTrace(traceID pcommon.TraceID, base time.Time, spans ...testSpan) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, s := range spans {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", s.service)
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("remote-test")
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(traceID)
		sp.SetSpanID(pcommon.SpanID{0xa0, 7: s.id})
		if s.parent != 0 {
			sp.SetParentSpanID(pcommon.SpanID{0xa0, 7: s.parent})
		}
		sp.SetName(s.name)
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(base.Add(s.start)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(base.Add(s.start + s.dur)))
		if err := sp.Attributes().FromRaw(s.attrs); err != nil {
			panic(err)
		}
	}
	return td
}

// spanView is what a round trip must keep of a span.
type spanView struct {
	Service, Name             string
	TraceID, SpanID, ParentID string
	Start, End                pcommon.Timestamp
	Kind                      ptrace.SpanKind
	Attrs                     map[string]any
}

func spanViews(td ptrace.Traces) []spanView {
	var out []spanView
	for _, rs := range td.ResourceSpans().All() {
		svc, _ := rs.Resource().Attributes().Get("service.name")
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				out = append(out, spanView{
					Service: svc.Str(), Name: sp.Name(),
					TraceID: sp.TraceID().String(), SpanID: sp.SpanID().String(), ParentID: sp.ParentSpanID().String(),
					Start: sp.StartTimestamp(), End: sp.EndTimestamp(), Kind: sp.Kind(),
					Attrs: sp.Attributes().AsRaw(),
				})
			}
		}
	}
	slices.SortFunc(out, func(a, b spanView) int { return strings.Compare(a.SpanID, b.SpanID) })
	return out
}

// lookoutTempo is Lookout's Tempo API over a fresh trace store holding
// traces, served by an httptest server under prefix (e.g. "/tempo"); wrap,
// if set, sits in front of the handler.
func lookoutTempo(t *testing.T, prefix string, wrap func(http.Handler) http.Handler, traces ...ptrace.Traces) string {
	t.Helper()
	store, err := tracestore.Open(t.TempDir(), tracestore.DefaultOptions(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	for _, td := range traces {
		res, err := store.ConsumeTraces(context.Background(), td)
		if err != nil || res.Rejected > 0 {
			t.Fatalf("store traces: %v (%+v)", err, res)
		}
	}
	var h http.Handler = tempoapi.NewHandler(tempoapi.Options{Traces: store, PathPrefix: prefix})
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + prefix
}

func newTempo(t *testing.T, baseURL string) *Tempo {
	t.Helper()
	c, err := NewTempo(baseURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTempoGetTrace reads a two-service trace back from Lookout's Tempo API
// as protobuf, and as Tempo's JSON when a proxy drops the Accept header.
func TestTempoGetTrace(t *testing.T) {
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Millisecond)
	id := mustTraceID("4bf92f3577b34da6a3ce929d0e0e4736")
	td := buildTrace(id, base,
		testSpan{service: "main-service", name: "POST /checkout", id: 1, dur: 1200 * time.Millisecond,
			attrs: map[string]any{"http.request.method": "POST", "http.response.status_code": int64(500)}},
		testSpan{service: "payments-service", name: "payment_provider_api", id: 2, parent: 1, start: 5 * time.Millisecond, dur: time.Second,
			attrs: map[string]any{"payment_method": "card", "retry": true, "amount": 12.5, "tags": []any{"a", "b"}}},
	)
	want := spanViews(td)
	for _, tc := range []struct {
		name       string
		prefix     string
		dropAccept bool // as a proxy that converts to JSON would
		wantType   string
	}{
		{"protobuf", "", false, "application/protobuf"},
		{"protobuf under a path prefix", "/tempo", false, "application/protobuf"},
		{"JSON from a proxy", "", true, "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var served string // the Content-Type of the trace answer
			wrap := func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if tc.dropAccept {
						r.Header.Del("Accept")
					}
					h.ServeHTTP(w, r)
					served = w.Header().Get("Content-Type")
				})
			}
			tempo := newTempo(t, lookoutTempo(t, tc.prefix, wrap, td)+"/")
			got, found, err := tempo.GetTrace(context.Background(), id)
			if err != nil || !found {
				t.Fatalf("GetTrace = found %v, err %v; want the trace", found, err)
			}
			if served != tc.wantType {
				t.Errorf("the server answered %q, want %q", served, tc.wantType)
			}
			if gv := spanViews(got); !reflect.DeepEqual(gv, want) {
				t.Errorf("spans differ:\n got %+v\nwant %+v", gv, want)
			}

			_, found, err = tempo.GetTrace(context.Background(), mustTraceID("0af7651916cd43dd8448eb211c80319c"))
			if err != nil || found {
				t.Errorf("GetTrace(never received) = found %v, err %v; want not found", found, err)
			}
		})
	}
}

// TestTempoFindTraces searches Lookout's Tempo API with the TraceQL,
// window, minDuration and limit the analysis uses; Lookout's search answer
// leaves out leading zeros, as Tempo's does.
func TestTempoFindTraces(t *testing.T) {
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	ms := time.Millisecond
	root := func(service, name string, dur time.Duration) testSpan {
		return testSpan{service: service, name: name, id: 1, dur: dur}
	}
	var (
		slow      = mustTraceID("4bf92f3577b34da6a3ce929d0e0e4736")
		slowShort = mustTraceID("c0ffee") // 00000000000000000000000000c0ffee
		fast      = mustTraceID("1111111111111111aaaaaaaaaaaaaaaa")
		before    = mustTraceID("2222222222222222aaaaaaaaaaaaaaaa")
		otherSvc  = mustTraceID("3333333333333333aaaaaaaaaaaaaaaa")
		otherOp   = mustTraceID("4444444444444444aaaaaaaaaaaaaaaa")
	)
	url := lookoutTempo(t, "", nil,
		buildTrace(slow, base.Add(10*time.Second), root("svc", "op", 1200*ms),
			testSpan{service: "db", name: "query", id: 2, parent: 1, start: 10 * ms, dur: 50 * ms}),
		buildTrace(slowShort, base.Add(40*time.Second+500*ms), root("svc", "op", 1500*ms)),
		buildTrace(fast, base.Add(20*time.Second), root("svc", "op", 300*ms)),
		buildTrace(before, base.Add(-5*time.Minute), root("svc", "op", 2*time.Second)),
		buildTrace(otherSvc, base.Add(30*time.Second), root("other", "op", 2*time.Second)),
		buildTrace(otherOp, base.Add(35*time.Second), root("svc", "other-op", 2*time.Second)),
	)
	tempo := newTempo(t, url)
	q := analysis.TraceQuery{
		TraceQL: `{ rootServiceName = "svc" && rootName = "op" }`,
		// A fractional end is rounded up (to 40 s, which Tempo's API takes
		// as inclusive to the second): the trace starting at 40.5 s is in.
		Start: base, End: base.Add(39*time.Second + 800*ms),
		MinDuration: time.Second, Limit: 20,
	}
	for _, tc := range []struct {
		name string
		edit func(*analysis.TraceQuery)
		want []pcommon.TraceID
	}{
		{"window and minDuration", func(*analysis.TraceQuery) {}, []pcommon.TraceID{slowShort, slow}},
		{"limit", func(q *analysis.TraceQuery) { q.Limit = 1 }, []pcommon.TraceID{slowShort}},
		{"any duration", func(q *analysis.TraceQuery) { q.MinDuration = 0 }, []pcommon.TraceID{slowShort, fast, slow}},
		{"wider window", func(q *analysis.TraceQuery) { q.Start = base.Add(-10 * time.Minute) }, []pcommon.TraceID{slowShort, slow, before}},
		{"other root", func(q *analysis.TraceQuery) { q.TraceQL = `{ rootServiceName = "other" }` }, []pcommon.TraceID{otherSvc}},
		{"nothing", func(q *analysis.TraceQuery) { q.TraceQL = `{ rootName = "absent" }` }, []pcommon.TraceID{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := q
			tc.edit(&q)
			got, err := tempo.FindTraces(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("FindTraces = %v, want %v", got, tc.want)
			}
		})
	}

	_, err := tempo.FindTraces(context.Background(), analysis.TraceQuery{TraceQL: `{ rootName = `})
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest || !strings.Contains(se.Body, "TraceQL") {
		t.Errorf("FindTraces(bad TraceQL) = %v, want a 400 StatusError quoting the server's message", err)
	}
}

// TestTempoSearchRequest checks the parameters FindTraces sends.
func TestTempoSearchRequest(t *testing.T) {
	start := time.Unix(1_700_000_000, 900_000_000)
	for _, tc := range []struct {
		name string
		q    analysis.TraceQuery
		want string
	}{
		{"all", analysis.TraceQuery{TraceQL: `{ rootName = "op" }`, Start: start, End: start.Add(time.Minute), MinDuration: 1500 * time.Millisecond, Limit: 7},
			"end=1700000061&limit=7&minDuration=1.5s&q=%7B+rootName+%3D+%22op%22+%7D&start=1700000000"},
		{"whole seconds", analysis.TraceQuery{Start: time.Unix(10, 0), End: time.Unix(20, 0)}, "end=20&start=10"},
		{"zero values left out", analysis.TraceQuery{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got, path, accept string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, path, accept = r.URL.RawQuery, r.URL.Path, r.Header.Get("Accept")
				fmt.Fprint(w, `{"traces":[]}`)
			}))
			defer srv.Close()
			if _, err := newTempo(t, srv.URL+"/prefix").FindTraces(context.Background(), tc.q); err != nil {
				t.Fatal(err)
			}
			if got != tc.want || path != "/prefix/api/search" || accept != "application/json" {
				t.Errorf("request %s?%s (Accept %q), want /prefix/api/search?%s (Accept application/json)", path, got, accept, tc.want)
			}
		})
	}
}

// answer is a canned HTTP answer.
type answer struct {
	status      int
	contentType string
	body        string
}

func serve(t *testing.T, a answer) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.contentType != "" {
			w.Header().Set("Content-Type", a.contentType)
		}
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestTempoFindTracesAnswers decodes search answers, good and bad.
func TestTempoFindTracesAnswers(t *testing.T) {
	long := strings.Repeat("x", 2000)
	for _, tc := range []struct {
		name    string
		answer  answer
		limit   int
		want    []pcommon.TraceID
		wantErr string // substring; "" means success
		status  int    // StatusError code wanted, if any
	}{
		{name: "short and upper-case IDs", answer: answer{200, "application/json", `{"traces":[{"traceID":"C0FFEE","rootServiceName":"svc"},{"traceID":"4BF92F3577B34DA6A3CE929D0E0E4736"}],"metrics":{}}`},
			want: []pcommon.TraceID{mustTraceID("c0ffee"), mustTraceID("4bf92f3577b34da6a3ce929d0e0e4736")}},
		{name: "duplicates", answer: answer{200, "application/json", `{"traces":[{"traceID":"abc"},{"traceID":"0abc"},{"traceID":"def"}]}`},
			want: []pcommon.TraceID{mustTraceID("abc"), mustTraceID("def")}},
		{name: "more than the limit", answer: answer{200, "", `{"traces":[{"traceID":"1"},{"traceID":"2"},{"traceID":"3"}]}`}, limit: 2,
			want: []pcommon.TraceID{mustTraceID("1"), mustTraceID("2")}},
		{name: "no traces key", answer: answer{200, "application/json", `{"metrics":{"inspectedTraces":0}}`}, want: []pcommon.TraceID{}},
		{name: "not hex", answer: answer{200, "application/json", `{"traces":[{"traceID":"xyz"}]}`}, wantErr: `invalid trace ID "xyz"`},
		{name: "too long", answer: answer{200, "application/json", `{"traces":[{"traceID":"` + strings.Repeat("a", 33) + `"}]}`}, wantErr: "invalid trace ID"},
		{name: "all zeros", answer: answer{200, "application/json", `{"traces":[{"traceID":"000"}]}`}, wantErr: "invalid trace ID"},
		{name: "empty ID", answer: answer{200, "application/json", `{"traces":[{"rootServiceName":"svc"}]}`}, wantErr: "invalid trace ID"},
		{name: "malformed JSON", answer: answer{200, "application/json", `{"traces":[`}, wantErr: "decode search answer"},
		{name: "HTML", answer: answer{200, "text/html", `<html>Grafana</html>`}, wantErr: "is the URL a Tempo API?"},
		{name: "trailing data", answer: answer{200, "application/json", `{"traces":[]} {}`}, wantErr: "decode search answer"},
		{name: "bad request", answer: answer{400, "text/plain", "invalid TraceQL query: unexpected end"}, wantErr: "400 Bad Request: invalid TraceQL query", status: 400},
		{name: "unavailable, long body", answer: answer{503, "text/plain", long}, wantErr: "503 Service Unavailable: xxx", status: 503},
		{name: "not found", answer: answer{404, "text/plain", "404 page not found"}, wantErr: "404 Not Found", status: 404},
		{name: "oversize", answer: answer{200, "application/json", `{"traces":[` + strings.Repeat(`{"traceID":"1"},`, 100) + `{"traceID":"1"}]}`}, wantErr: "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tempo := newTempo(t, serve(t, tc.answer))
			tempo.maxSearch = 1024
			got, err := tempo.FindTraces(context.Background(), analysis.TraceQuery{Limit: tc.limit})
			if tc.wantErr == "" {
				if err != nil || !slices.Equal(got, tc.want) {
					t.Errorf("FindTraces = %v, %v; want %v", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("FindTraces = %v, %v; want an error containing %q", got, err, tc.wantErr)
			}
			if len(err.Error()) > 1000 {
				t.Errorf("error is %d bytes long; the body must be quoted in part only", len(err.Error()))
			}
			var se *StatusError
			if gotStatus := errors.As(err, &se); gotStatus != (tc.status != 0) || (gotStatus && se.StatusCode != tc.status) {
				t.Errorf("error %v: StatusError %v, want status %d", err, se, tc.status)
			}
			if tc.name == "oversize" && !errors.Is(err, ErrResponseTooLarge) {
				t.Errorf("error %v is not ErrResponseTooLarge", err)
			}
		})
	}
}

// tempoJSONTrace is a trace as Grafana Tempo's JSON API writes it: IDs in
// base64, "batches", the older instrumentationLibrarySpans, and timestamps
// as strings beyond float64's exact range.
const tempoJSONTrace = `{"batches":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"main-service"}}]},
 "instrumentationLibrarySpans":[{"instrumentationLibrary":{"name":"webstore"},"spans":[
  {"traceId":"S/kvNXezTaajzpKdDg5HNg==","spanId":"oAAAAAAAAAE=","name":"POST /checkout","kind":"SPAN_KIND_SERVER",
   "startTimeUnixNano":"1764000000123456789","endTimeUnixNano":"1764000001323456789",
   "attributes":[{"key":"http.response.status_code","value":{"intValue":"500"}}],
   "links":[{"traceId":"AAAAAAAAAAAAAAAAAMD/7g==","spanId":"AAAAAAAAAAE="}]},
  {"traceId":"S/kvNXezTaajzpKdDg5HNg","spanId":"oAAAAAAAAAI","parentSpanId":"oAAAAAAAAAE=","name":"process_payment",
   "startTimeUnixNano":1764000000128456789,"endTimeUnixNano":"1764000001228456789","status":{"code":"STATUS_CODE_ERROR"}}]}]}]}`

// TestTempoGetTraceAnswers decodes trace answers, good and bad.
func TestTempoGetTraceAnswers(t *testing.T) {
	id := mustTraceID("4bf92f3577b34da6a3ce929d0e0e4736")
	td := buildTrace(id, time.Unix(1_764_000_000, 0), testSpan{service: "svc", name: "op", id: 1, dur: time.Second})
	pb, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	otlpJSON, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		answer    answer
		wantSpans []string // "name trace span parent"
		wantFound bool
		wantErr   string
		status    int
	}{
		{name: "protobuf", answer: answer{200, "application/protobuf", string(pb)}, wantFound: true,
			wantSpans: []string{"op 4bf92f3577b34da6a3ce929d0e0e4736 a000000000000001 "}},
		{name: "protobuf without a Content-Type", answer: answer{200, "", string(pb)}, wantFound: true,
			wantSpans: []string{"op 4bf92f3577b34da6a3ce929d0e0e4736 a000000000000001 "}},
		{name: "OTLP JSON", answer: answer{200, "application/json; charset=utf-8", string(otlpJSON)}, wantFound: true,
			wantSpans: []string{"op 4bf92f3577b34da6a3ce929d0e0e4736 a000000000000001 "}},
		{name: "Tempo JSON, base64 IDs", answer: answer{200, "application/json", tempoJSONTrace}, wantFound: true,
			wantSpans: []string{
				"POST /checkout 4bf92f3577b34da6a3ce929d0e0e4736 a000000000000001  link 00000000000000000000000000c0ffee 0000000000000001 500 1764000000123456789",
				"process_payment 4bf92f3577b34da6a3ce929d0e0e4736 a000000000000002 a000000000000001 Error 1764000000128456789",
			}},
		{name: "not found", answer: answer{404, "text/plain", "trace not found"}},
		{name: "no spans", answer: answer{200, "application/protobuf", ""}},
		{name: "empty JSON batches", answer: answer{200, "application/json", `{"batches":[]}`}},
		{name: "server error", answer: answer{500, "text/plain", "boom\n"}, wantErr: "500 Internal Server Error: boom", status: 500},
		{name: "unauthorized", answer: answer{401, "", ""}, wantErr: "401 Unauthorized", status: 401},
		{name: "HTML", answer: answer{200, "text/html; charset=utf-8", "<!doctype html><title>Grafana</title>"}, wantErr: "answer is text/html, not a trace"},
		{name: "bad Content-Type", answer: answer{200, "application/", ""}, wantErr: "invalid Content-Type"},
		{name: "garbage protobuf", answer: answer{200, "application/protobuf", "\x0a\xff\xff\xff"}, wantErr: "decode protobuf trace"},
		{name: "malformed JSON", answer: answer{200, "application/json", `{"batches":[`}, wantErr: "decode JSON trace"},
		{name: "bad base64 ID", answer: answer{200, "application/json", `{"batches":[{"scopeSpans":[{"spans":[{"traceId":"AAAA","spanId":"oAAAAAAAAAE="}]}]}]}`},
			wantErr: `traceId "AAAA"`},
		{name: "batches not an array", answer: answer{200, "application/json", `{"batches":{}}`}, wantErr: "not an array"},
		{name: "oversize", answer: answer{200, "application/protobuf", string(pb) + strings.Repeat("\x00", 2048)}, wantErr: "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tempo := newTempo(t, serve(t, tc.answer))
			tempo.maxTrace = 1024
			got, found, err := tempo.GetTrace(context.Background(), id)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("GetTrace = %v, %v; want an error containing %q", found, err, tc.wantErr)
				}
				var se *StatusError
				if gotStatus := errors.As(err, &se); gotStatus != (tc.status != 0) || (gotStatus && se.StatusCode != tc.status) {
					t.Errorf("error %v: StatusError %v, want status %d", err, se, tc.status)
				}
				return
			}
			if err != nil || found != tc.wantFound {
				t.Fatalf("GetTrace = found %v, err %v; want found %v", found, err, tc.wantFound)
			}
			if !found {
				return
			}
			var spans []string
			for _, rs := range got.ResourceSpans().All() {
				for _, ss := range rs.ScopeSpans().All() {
					for _, sp := range ss.Spans().All() {
						s := sp.Name() + " " + sp.TraceID().String() + " " + sp.SpanID().String() + " " + sp.ParentSpanID().String()
						for _, l := range sp.Links().All() {
							s += " link " + l.TraceID().String() + " " + l.SpanID().String()
						}
						if sp.Status().Code() != ptrace.StatusCodeUnset {
							s += " " + sp.Status().Code().String()
						}
						if v, ok := sp.Attributes().Get("http.response.status_code"); ok {
							s += " " + v.AsString()
						}
						if sp.Name() != "op" {
							s += fmt.Sprintf(" %d", sp.StartTimestamp())
						}
						spans = append(spans, s)
					}
				}
			}
			if !slices.Equal(spans, tc.wantSpans) {
				t.Errorf("spans:\n got %q\nwant %q", spans, tc.wantSpans)
			}
		})
	}
}

// TestTempoRequest checks what GetTrace asks for.
func TestTempoRequest(t *testing.T) {
	var path, accept string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, accept = r.URL.Path, r.Header.Get("Accept")
		http.NotFound(w, r)
	}))
	defer srv.Close()
	tempo := newTempo(t, srv.URL+"/tempo/")
	if _, _, err := tempo.GetTrace(context.Background(), mustTraceID("c0ffee")); err != nil {
		t.Fatal(err)
	}
	if path != "/tempo/api/traces/00000000000000000000000000c0ffee" || accept != "application/protobuf" {
		t.Errorf("GET %s (Accept %q), want /tempo/api/traces/00000000000000000000000000c0ffee (Accept application/protobuf)", path, accept)
	}
	if _, _, err := tempo.GetTrace(context.Background(), pcommon.TraceID{}); err == nil {
		t.Error("GetTrace(zero ID) succeeded")
	}
}

// TestTempoContext checks that a request ends with its context.
func TestTempoContext(t *testing.T) {
	srv := hangingServer(t)
	tempo := newTempo(t, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := tempo.GetTrace(ctx, mustTraceID("c0ffee")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GetTrace = %v, want context.DeadlineExceeded", err)
	}
	if _, err := tempo.FindTraces(ctx, analysis.TraceQuery{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("FindTraces = %v, want context.DeadlineExceeded", err)
	}
}

// TestNewClientURLs checks base URL validation of both constructors.
func TestNewClientURLs(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://localhost:3200", true},
		{"https://tempo.example.com/tempo/", true},
		{" http://localhost:9090 ", true},
		{"localhost:3200", false},
		{"ftp://host", false},
		{"http://", false},
		{"http://host/?x=1", false},
		{"http://host/#frag", false},
		{"", false},
		{"http://[::1", false},
	} {
		_, errT := NewTempo(tc.url, nil)
		_, errP := NewPrometheus(tc.url, nil)
		if (errT == nil) != tc.ok || (errP == nil) != tc.ok {
			t.Errorf("%q: NewTempo err %v, NewPrometheus err %v; want ok %v", tc.url, errT, errP, tc.ok)
		}
	}
}

// TestBoundedBody checks the read bound at and around its edge.
func TestBoundedBody(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 11, 100} {
		body := strings.Repeat("a", n)
		b, err := readBounded(nopCloser{strings.NewReader(body)}, 10)
		if n <= 10 && (err != nil || string(b) != body) {
			t.Errorf("%d bytes: %q, %v; want all of it", n, b, err)
		}
		if n > 10 && !errors.Is(err, ErrResponseTooLarge) {
			t.Errorf("%d bytes: %v, want ErrResponseTooLarge", n, err)
		}
	}
	// 512 bytes of three-byte runes end in a cut rune.
	if q := quotable([]byte(strings.Repeat("€", 400))); len(q) > maxErrorBody+3 || !utf8.ValidString(q) {
		t.Errorf("quotable kept %d bytes (valid UTF-8: %v)", len(q), utf8.ValidString(q))
	}
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

// hangingServer answers no request until the request's context ends (or
// the test does).
func hangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	return srv
}
