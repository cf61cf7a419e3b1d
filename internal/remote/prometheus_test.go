package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/lookout-dev/lookout/internal/analysis"
	"github.com/lookout-dev/lookout/internal/testpeers"
)

func newPrometheusClient(t *testing.T, baseURL string) *Prometheus {
	t.Helper()
	p, err := NewPrometheus(baseURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testExemplar is an OTLP exemplar to push.
type testExemplar struct {
	value   float64
	at      time.Time
	traceID pcommon.TraceID
	spanID  pcommon.SpanID
	attr    string // a filtered attribute customer=attr, if set
}

// histogramRequest is an OTLP export request with one classic histogram
// point of webstore.payment.duration (buckets 0.5, 1, 2.5 s) carrying
// exemplars.
func histogramRequest(t *testing.T, service string, at time.Time, exemplars ...testExemplar) []byte {
	t.Helper()
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", service)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("webstore.payment.duration")
	m.SetUnit("s")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := h.DataPoints().AppendEmpty()
	dp.Attributes().PutStr("country", "DE")
	dp.Attributes().PutStr("payment_method", "card")
	dp.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(-time.Minute)))
	dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
	dp.ExplicitBounds().FromRaw([]float64{0.5, 1, 2.5})
	dp.BucketCounts().FromRaw([]uint64{1, 1, 1, 0})
	dp.SetCount(3)
	dp.SetSum(3)
	for _, e := range exemplars {
		x := dp.Exemplars().AppendEmpty()
		x.SetDoubleValue(e.value)
		x.SetTimestamp(pcommon.NewTimestampFromTime(e.at))
		x.SetTraceID(e.traceID)
		x.SetSpanID(e.spanID)
		if e.attr != "" {
			x.FilteredAttributes().PutStr("customer", e.attr)
		}
	}
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestPrometheusQueryExemplars pushes a histogram with exemplars over OTLP
// into a real Prometheus (exemplar storage on) and reads them back.
func TestPrometheusQueryExemplars(t *testing.T) {
	addr := testpeers.StartPrometheus(t)
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	full := testExemplar{value: 0.3, at: at.Add(-3 * time.Second),
		traceID: mustTraceID("4bf92f3577b34da6a3ce929d0e0e4736"), spanID: pcommon.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}}
	short := testExemplar{value: 1.7, at: at.Add(-2 * time.Second), // an 8-byte-style ID, as some tracers make
		traceID: mustTraceID("c0ffee"), spanID: pcommon.SpanID{7: 1}}
	noTrace := testExemplar{value: 0.9, at: at.Add(-time.Second), attr: "c1"}

	client := &http.Client{}
	defer client.CloseIdleConnections()
	resp, err := client.Post("http://"+addr+"/api/v1/otlp/v1/metrics", "application/x-protobuf",
		bytes.NewReader(histogramRequest(t, "payments-service", at, full, short, noTrace)))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP push to Prometheus: %d %s", resp.StatusCode, msg)
	}

	ctx := context.Background()
	start, end := at.Add(-time.Minute), at.Add(time.Minute)
	// What Prometheus holds, through client_golang directly: all three
	// exemplars, one of them without a trace ID.
	raw, err := promapi.NewClient(promapi.Config{Address: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	held, err := promv1.NewAPI(raw).QueryExemplars(ctx, "webstore_payment_duration_bucket", start, end)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range held {
		n += len(r.Exemplars)
	}
	if n != 3 {
		t.Fatalf("Prometheus holds %d exemplars (%+v), want 3", n, held)
	}

	series := func(le string) map[string]string {
		return map[string]string{"__name__": "webstore_payment_duration_bucket", "job": "payments-service",
			"country": "DE", "payment_method": "card", "le": le}
	}
	want := []analysis.Exemplar{
		{TraceID: full.traceID, SpanID: full.spanID, Value: 0.3, Time: full.at, Series: series("0.5")},
		{TraceID: short.traceID, SpanID: short.spanID, Value: 1.7, Time: short.at, Series: series("2.5")},
	}
	prom := newPrometheusClient(t, "http://"+addr)
	got, err := prom.QueryExemplars(ctx, "webstore_payment_duration_bucket", start, end)
	if err != nil {
		t.Fatal(err)
	}
	if !sameExemplars(got, want) {
		t.Errorf("QueryExemplars =\n%s\nwant\n%s", dumpExemplars(got), dumpExemplars(want))
	}

	got, err = prom.QueryExemplars(ctx, `webstore_payment_duration_bucket{le="2.5"}`, start, end)
	if err != nil {
		t.Fatal(err)
	}
	if !sameExemplars(got, want[1:]) {
		t.Errorf(`QueryExemplars(le="2.5") =\n%s\nwant\n%s`, dumpExemplars(got), dumpExemplars(want[1:]))
	}

	// Outside the window: none.
	if got, err := prom.QueryExemplars(ctx, "webstore_payment_duration_bucket", at.Add(time.Hour), at.Add(2*time.Hour)); err != nil || len(got) != 0 {
		t.Errorf("QueryExemplars(later window) = %v, %v; want none", got, err)
	}

	// Prometheus's own error reaches the caller.
	_, err = prom.QueryExemplars(ctx, "webstore_payment_duration_bucket{", start, end)
	if apiErr, ok := errors.AsType[*promv1.Error](err); !ok || apiErr.Type != promv1.ErrBadData || !strings.Contains(err.Error(), "parse error") {
		t.Errorf("QueryExemplars(bad PromQL) = %v, want Prometheus's bad_data parse error", err)
	}
}

// sameExemplars compares exemplars in order, their times as instants.
func sameExemplars(got, want []analysis.Exemplar) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.TraceID != w.TraceID || g.SpanID != w.SpanID || g.Value != w.Value || !g.Time.Equal(w.Time) || !maps.Equal(g.Series, w.Series) {
			return false
		}
	}
	return true
}

func dumpExemplars(es []analysis.Exemplar) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "  %s %s %g %s", e.TraceID, e.SpanID, e.Value, e.Time.UTC().Format(time.RFC3339Nano))
		for _, k := range slices.Sorted(maps.Keys(e.Series)) {
			fmt.Fprintf(&b, " %s=%s", k, e.Series[k])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// promAnswer is a query_exemplars answer with the exemplar label cases
// the conversion handles.
const promAnswer = `{"status":"success","data":[
 {"seriesLabels":{"__name__":"m_bucket","le":"1","job":"svc"},"exemplars":[
  {"labels":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"},"value":"0.5","timestamp":1700000000.123},
  {"labels":{"traceID":"C0FFEE","spanID":"F067AA0BA902B7"},"value":"1","timestamp":1700000001},
  {"labels":{"trace_id":"not-hex","traceID":"abc","span_id":"xyz"},"value":"2","timestamp":1700000002},
  {"labels":{"span_id":"00f067aa0ba902b7"},"value":"3","timestamp":1700000003},
  {"labels":{"trace_id":"00000000000000000000000000000000"},"value":"4","timestamp":1700000004},
  {"labels":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e47360"},"value":"5","timestamp":1700000005}]},
 {"seriesLabels":{"__name__":"m_bucket","le":"+Inf","job":"svc"},"exemplars":[
  {"labels":{"customer":"c1"},"value":"9","timestamp":1700000009}]}]}`

// TestPrometheusAnswers decodes query_exemplars answers, good and bad,
// from a stand-in server (the real Prometheus writes only trace_id and
// span_id, in full).
func TestPrometheusAnswers(t *testing.T) {
	series := map[string]string{"__name__": "m_bucket", "le": "1", "job": "svc"}
	long := "<html>" + strings.Repeat("x", 5000) + "</html>"
	for _, tc := range []struct {
		name    string
		answer  answer
		want    []analysis.Exemplar
		wantErr string
		tooBig  bool
	}{
		{name: "label variants", answer: answer{200, "application/json", promAnswer}, want: []analysis.Exemplar{
			{TraceID: mustTraceID("4bf92f3577b34da6a3ce929d0e0e4736"), SpanID: pcommon.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
				Value: 0.5, Time: time.UnixMilli(1700000000123), Series: series},
			{TraceID: mustTraceID("00000000000000000000000000c0ffee"), SpanID: pcommon.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
				Value: 1, Time: time.Unix(1700000001, 0), Series: series},
			{TraceID: mustTraceID("abc"), Value: 2, Time: time.Unix(1700000002, 0), Series: series},
		}},
		{name: "no exemplars", answer: answer{200, "application/json", `{"status":"success","data":[]}`}, want: []analysis.Exemplar{}},
		{name: "bad PromQL", answer: answer{400, "application/json", `{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}`},
			wantErr: "bad_data: 1:5: parse error"},
		{name: "proxy error page", answer: answer{502, "text/html", long}, wantErr: "server error: 502: <html>xxx"},
		{name: "malformed JSON", answer: answer{200, "application/json", `{"status":"success","data":[{`}, wantErr: "query exemplars"},
		{name: "oversize", answer: answer{200, "application/json", `{"status":"success","data":[` + strings.Repeat(`{"seriesLabels":{},"exemplars":[]},`, 100) + `{}]}`},
			wantErr: "too large", tooBig: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prom, err := newPrometheus(serve(t, tc.answer), nil, 1024)
			if err != nil {
				t.Fatal(err)
			}
			got, err := prom.QueryExemplars(context.Background(), "m_bucket", time.Unix(1700000000, 0), time.Unix(1700000100, 0))
			if tc.wantErr == "" {
				if err != nil || !sameExemplars(got, tc.want) {
					t.Errorf("QueryExemplars = %v\n%s\nwant\n%s", err, dumpExemplars(got), dumpExemplars(tc.want))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("QueryExemplars = %v, %v; want an error containing %q", got, err, tc.wantErr)
			}
			if len(err.Error()) > 1000 {
				t.Errorf("error is %d bytes long; the body must be quoted in part only", len(err.Error()))
			}
			if errors.Is(err, ErrResponseTooLarge) != tc.tooBig {
				t.Errorf("error %v: errors.Is(ErrResponseTooLarge) = %v, want %v", err, !tc.tooBig, tc.tooBig)
			}
		})
	}
}

// headerTransport adds a header to every request, as a caller's client
// would for a tenant.
type headerTransport struct{ next http.RoundTripper }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Scope-OrgID", "tenant-1")
	return h.next.RoundTrip(r)
}

// TestPrometheusRequest checks what QueryExemplars sends: client_golang's
// POST, then GET when a read-only proxy refuses POST, through the caller's
// transport, which NewPrometheus leaves unmodified.
func TestPrometheusRequest(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Scope-OrgID")+" "+r.Form.Encode())
		if r.Method == http.MethodPost {
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		}
		io.WriteString(w, `{"status":"success","data":[]}`)
	}))
	defer srv.Close()
	transport := headerTransport{next: http.DefaultTransport}
	client := &http.Client{Transport: transport}
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	prom, err := NewPrometheus(srv.URL+"/prometheus/", client)
	if err != nil {
		t.Fatal(err)
	}
	if client.Transport != transport {
		t.Error("NewPrometheus modified the caller's client")
	}
	if _, err := prom.QueryExemplars(context.Background(), `m{job="a"}`, time.Unix(1700000000, 500_000_000), time.Unix(1700000060, 0)); err != nil {
		t.Fatal(err)
	}
	const form = "end=1700000060&query=m%7Bjob%3D%22a%22%7D&start=1700000000.5"
	want := []string{
		"POST /prometheus/api/v1/query_exemplars tenant-1 " + form,
		"GET /prometheus/api/v1/query_exemplars tenant-1 " + form,
	}
	if !slices.Equal(got, want) {
		t.Errorf("requests:\n got %q\nwant %q", got, want)
	}
}

// TestPrometheusContext checks that a request ends with its context.
func TestPrometheusContext(t *testing.T) {
	srv := hangingServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := newPrometheusClient(t, srv.URL).QueryExemplars(ctx, "m", time.Time{}, time.Time{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("QueryExemplars = %v, want context.DeadlineExceeded", err)
	}
}
