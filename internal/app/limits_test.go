package app

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// TestIngestLimitsEndToEnd sends, over OTLP/HTTP, a point with 100,000
// attributes, a histogram point with 400,000 bounds and a point and a span
// whose strings are invalid UTF-8: the first two are refused in the
// answer's partial success, naming the limit, and every API answer about
// the rest is valid JSON.
func TestIngestLimitsEndToEnd(t *testing.T) {
	a, err := New(testConfig(t), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runStarted(t, a)
	const bad = "v\xff\xfe"
	now := time.Now()

	md := pmetric.NewMetrics()
	sm := md.ResourceMetrics().AppendEmpty()
	sm.Resource().Attributes().PutStr("service.name", "limits")
	ms := sm.ScopeMetrics().AppendEmpty().Metrics()
	wide := ms.AppendEmpty()
	wide.SetName("wide")
	wp := wide.SetEmptyGauge().DataPoints().AppendEmpty()
	wp.SetTimestamp(pcommon.NewTimestampFromTime(now))
	for i := range 100_000 {
		wp.Attributes().PutInt("a"+strings.Repeat("x", i%50)+string(rune('a'+i%26))+hex.EncodeToString([]byte{byte(i >> 16), byte(i >> 8), byte(i)}), 1)
	}
	buckets := ms.AppendEmpty()
	buckets.SetName("buckets")
	bh := buckets.SetEmptyHistogram()
	bh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	bp := bh.DataPoints().AppendEmpty()
	bp.SetTimestamp(pcommon.NewTimestampFromTime(now))
	bounds := make([]float64, 400_000)
	for i := range bounds {
		bounds[i] = float64(i)
	}
	bp.ExplicitBounds().FromRaw(bounds)
	bp.BucketCounts().FromRaw(make([]uint64, len(bounds)+1))
	utf := ms.AppendEmpty()
	utf.SetName("utf")
	up := utf.SetEmptyGauge().DataPoints().AppendEmpty()
	up.SetTimestamp(pcommon.NewTimestampFromTime(now))
	up.SetIntValue(1)
	up.Attributes().PutStr("k", bad)

	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	code, rb := postProto(t, "http://"+a.OTLPHTTPAddr()+"/v1/metrics", body)
	er := pmetricotlp.NewExportResponse()
	if err := er.UnmarshalProto([]byte(rb)); code != 200 || err != nil {
		t.Fatalf("%d %v %q", code, err, rb)
	}
	ps := er.PartialSuccess()
	if ps.RejectedDataPoints() != 2 || !strings.Contains(ps.ErrorMessage(), "100000 attributes, more than the limit of 128") {
		t.Errorf("partial success %d %q", ps.RejectedDataPoints(), ps.ErrorMessage())
	}
	t.Logf("answered in %s: %s", time.Since(began).Round(time.Millisecond), ps.ErrorMessage())

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "limits"+bad)
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	tid := pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	sp.SetTraceID(tid)
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	sp.SetName("op" + bad)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Second)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	sp.Attributes().PutStr("k"+bad, bad)
	tb, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	post(t, "http://"+a.OTLPHTTPAddr()+"/v1/traces", tb)

	for _, q := range []struct {
		u      string
		params url.Values
	}{
		{"http://" + a.PrometheusAddr() + "/api/v1/query", url.Values{"query": {"utf"}}},
		{"http://" + a.PrometheusAddr() + "/api/v1/label/k/values", nil},
		{"http://" + a.TempoAddr() + "/api/traces/" + hex.EncodeToString(tid[:]), nil},
		{"http://" + a.TempoAddr() + "/api/search", url.Values{"q": {"{}"}}},
	} {
		u := q.u
		code, b := call(t, http.MethodGet, u, q.params)
		if code != 200 || !json.Valid(b) || !utf8.Valid(b) {
			t.Errorf("GET %s: %d, valid JSON %v, valid UTF-8 %v: %.300s", u, code, json.Valid(b), utf8.Valid(b), b)
		}
		if !strings.Contains(string(b), "\uFFFD") && !strings.Contains(string(b), `\ufffd`) {
			t.Errorf("GET %s: the repaired value is missing: %.300s", u, b)
		}
	}
}
