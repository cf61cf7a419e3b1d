package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/lookout-dev/lookout/internal/testpeers"
)

// TestPrometheusCompatibility sends the same OTLP batches to Lookout and to
// a real Prometheus (its OTLP receiver, exemplar storage on, the same
// translation strategy) and requires identical answers to a table of API
// requests.
func TestPrometheusCompatibility(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	// Lookout as cmd/lookout assembles it: exemplar queries read the
	// durable index, and the TSDB's exemplar ring has its default size.
	a := startApp(t, testConfig(t))
	promAddr := testpeers.StartPrometheus(t)

	base := time.Now().Add(-30 * time.Minute).Truncate(time.Minute)
	const steps = 40
	step := 15 * time.Second
	send := func(body []byte) {
		post(t, "http://"+a.OTLPHTTPAddr()+"/v1/metrics", body)
		post(t, "http://"+promAddr+"/api/v1/otlp/v1/metrics", body)
	}
	for i := range steps {
		send(compatBatch(base, i, step))
	}
	// An SDK re-exports its exemplars; Prometheus keeps one of each.
	send(compatBatch(base, steps-1, step))
	// Exemplars out of Prometheus's order (older than the series' newest,
	// or as old with a lower value) are refused, duplicates of the newest
	// ignored, later ones kept.
	for i, e := range []struct {
		ts    time.Duration
		value float64
	}{{20, 5}, {10, 6}, {20, 5}, {20, 4}, {20, 7}, {21, 1}, {15, 9}} {
		send(exemplarProbe(base.Add(time.Duration(i)*step), base.Add(e.ts*time.Second), e.value, i))
	}
	end := base.Add(time.Duration(steps-1) * step)
	ts := strconv.FormatInt(end.Unix(), 10)
	rng := url.Values{"start": {strconv.FormatInt(base.Unix(), 10)}, "end": {ts}, "step": {"15"}}

	queries := []string{
		`webstore_payment_duration_bucket`,
		`rate(webstore_payment_duration_bucket[2m])`,
		`histogram_quantile(0.95, sum by (le) (rate(webstore_payment_duration_bucket[5m])))`,
		`histogram_quantile(0.5, sum by (le, country) (rate(webstore_payment_duration_bucket[5m])))`,
		`sum by (job) (rate(http_server_requests[5m]))`,
		`increase(http_server_requests[10m])`,
		`avg by (job) (queue_depth)`,
		`max_over_time(queue_depth[5m])`,
		`inflight_requests`,
		`rpc_latency{quantile="0.99"}`,
		`rate(rpc_latency_sum[5m]) / rate(rpc_latency_count[5m])`,
		`histogram_quantile(0.9, rate(request_size[5m]))`,
		`histogram_count(rate(request_size[5m]))`,
		`target_info`,
		`count by (__name__) ({__name__=~".+"})`,
		`topk(2, webstore_payment_duration_sum)`,
	}
	type req struct {
		path   string
		params url.Values
	}
	var reqs []req
	for _, q := range queries {
		reqs = append(reqs,
			req{"/api/v1/query", url.Values{"query": {q}, "time": {ts}}},
			req{"/api/v1/query_range", merge(rng, url.Values{"query": {q}})})
	}
	reqs = append(reqs,
		req{"/api/v1/query_exemplars", merge(rng, url.Values{"query": {`webstore_payment_duration_bucket`}})},
		req{"/api/v1/query_exemplars", merge(rng, url.Values{"query": {`webstore_payment_duration_bucket{country="DE"}`}})},
		req{"/api/v1/query_exemplars", merge(rng, url.Values{"query": {`exemplar_probe`}})},
		req{"/api/v1/query_exemplars", url.Values{"query": {"test"}, "start": {strconv.FormatInt(base.UnixMilli(), 10)}, "end": {strconv.FormatInt(end.UnixMilli(), 10)}}},
		req{"/api/v1/series", merge(rng, url.Values{"match[]": {`{__name__=~"webstore.*"}`}})},
		req{"/api/v1/labels", rng},
		req{"/api/v1/label/job/values", rng},
		req{"/api/v1/label/__name__/values", rng},
		req{"/api/v1/query", url.Values{"query": {"sum(rate(http_server_requests[5m]"}, "time": {ts}}},
		req{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {"x"}}},
		req{"/api/v1/format_query", url.Values{"query": {"sum(rate(foo[5m]))by(job)"}}},
	)
	// Most points took the stream cache rather than the translator; the
	// answers below must not tell.
	if _, body := call(t, http.MethodGet, "http://"+a.PrometheusAddr()+"/metrics", nil); !regexp.MustCompile(`(?m)^lookout_metricstore_cached_points_total [1-9]`).Match(body) {
		t.Error("no points went through the stream cache")
	}
	for _, r := range reqs {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			name := method + " " + r.path + "?" + r.params.Encode()
			lcode, lbody := call(t, method, "http://"+a.PrometheusAddr()+r.path, r.params)
			pcode, pbody := call(t, method, "http://"+promAddr+r.path, r.params)
			if lcode != pcode {
				t.Errorf("%s: status %d, Prometheus %d\nlookout:    %s\nprometheus: %s", name, lcode, pcode, lbody, pbody)
				continue
			}
			l, p := normalize(t, lbody), normalize(t, pbody)
			if !reflect.DeepEqual(l, p) {
				t.Errorf("%s: answers differ\nlookout:    %s\nprometheus: %s", name, lbody, pbody)
			}
			if (r.path == "/api/v1/query" || r.path == "/api/v1/query_range") && lcode == http.StatusOK && bytes.Contains(lbody, []byte(`"result":[]`)) {
				t.Errorf("%s: empty result, the query table should only hold queries with answers: %s", name, lbody)
			}
			if testing.Verbose() && method == http.MethodGet {
				t.Logf("%s: %.300s", name, lbody)
			}
			if r.path == "/api/v1/query_exemplars" && r.params.Get("query") != "test" && bytes.Count(lbody, []byte("trace_id")) == 0 {
				t.Errorf("%s: no exemplars in %s", name, lbody)
			}
		}
	}
}

func merge(vs ...url.Values) url.Values {
	out := url.Values{}
	for _, v := range vs {
		for k, x := range v {
			out[k] = append(out[k], x...)
		}
	}
	return out
}

func call(t *testing.T, method, u string, params url.Values) (int, []byte) {
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
	return resp.StatusCode, b
}

// normalize decodes an API answer, drops Lookout's "exemplars" extension
// member of query results, and sorts lists whose order Prometheus does not
// define.
func normalize(t *testing.T, b []byte) any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		return string(b) // not JSON (e.g. 405 text): compare as is
	}
	data, ok := v["data"].(map[string]any)
	if ok {
		if res, ok := data["result"].([]any); ok {
			for _, r := range res {
				if m, ok := r.(map[string]any); ok {
					delete(m, "exemplars")
				}
			}
			sortByJSON(res)
		}
	}
	if list, ok := v["data"].([]any); ok {
		sortByJSON(list)
	}
	return v
}

func sortByJSON(xs []any) {
	sort.Slice(xs, func(i, j int) bool {
		a, _ := json.Marshal(xs[i])
		b, _ := json.Marshal(xs[j])
		return string(a) < string(b)
	})
}

func post(t *testing.T, u string, body []byte) {
	t.Helper()
	if code, b := postProto(t, u, body); code != http.StatusOK {
		t.Fatalf("POST %s: %d %s", u, code, b)
	}
}

// postProto POSTs body as application/x-protobuf and returns the answer's
// status and body.
func postProto(t *testing.T, u string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(u, "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// exemplarProbe is one counter point (value n) at at, with one exemplar of value v at
// exTs whose trace ID is derived from n.
func exemplarProbe(at, exTs time.Time, v float64, n int) []byte {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "probe")
	g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName("exemplar_probe")
	sum := g.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
	dp.SetDoubleValue(float64(n))
	e := dp.Exemplars().AppendEmpty()
	e.SetDoubleValue(v)
	e.SetTimestamp(pcommon.NewTimestampFromTime(exTs))
	e.SetTraceID(pcommon.TraceID{15: byte(n + 1)})
	e.SetSpanID(pcommon.SpanID{7: byte(n + 1)})
	// A second series' exemplar follows, so a TSDB exemplar ring that
	// holds only the last exemplar cannot judge the next probe.
	other := sum.DataPoints().AppendEmpty()
	other.Attributes().PutStr("series", "other")
	other.SetTimestamp(dp.Timestamp())
	other.SetDoubleValue(float64(n))
	e = other.Exemplars().AppendEmpty()
	e.SetDoubleValue(1)
	e.SetTimestamp(dp.Timestamp())
	e.SetTraceID(pcommon.TraceID{0: 1, 15: byte(n + 1)})
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		panic(err)
	}
	return body
}

// compatBatch builds step i of a deterministic workload covering every
// OTLP metric type, with exemplars on the classic histogram.
func compatBatch(base time.Time, i int, step time.Duration) []byte {
	md := pmetric.NewMetrics()
	start := pcommon.NewTimestampFromTime(base.Add(-time.Minute))
	now := base.Add(time.Duration(i) * step)
	ts := pcommon.NewTimestampFromTime(now)
	for r, svc := range []string{"payments-service", "main-service"} {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", svc)
		rm.Resource().Attributes().PutStr("service.instance.id", "host-"+strconv.Itoa(r))
		rm.Resource().Attributes().PutStr("deployment.environment", "test")
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName("webstore")

		h := sm.Metrics().AppendEmpty()
		h.SetName("webstore.payment.duration")
		h.SetUnit("s")
		h.SetDescription("Payment duration")
		hh := h.SetEmptyHistogram()
		hh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		for c, country := range []string{"US", "DE"} {
			dp := hh.DataPoints().AppendEmpty()
			dp.Attributes().PutStr("country", country)
			dp.Attributes().PutStr("payment_method", "card")
			dp.SetStartTimestamp(start)
			dp.SetTimestamp(ts)
			dp.ExplicitBounds().FromRaw([]float64{0.1, 0.5, 1, 2.5, 5, 10})
			n := uint64(i + 1)
			counts := []uint64{n * 3, n * 5, n * uint64(2+c), n, n / 2, n / 4, uint64(i % 3)}
			var total uint64
			for _, x := range counts {
				total += x
			}
			dp.BucketCounts().FromRaw(counts)
			dp.SetCount(total)
			dp.SetSum(float64(total) * 0.7)
			for k, v := range []float64{0.05, 0.3, 0.8, 2.0, 6.1} {
				if (i+k+c)%2 == 1 {
					continue
				}
				e := dp.Exemplars().AppendEmpty()
				e.SetDoubleValue(v + float64(i)/1000)
				e.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Duration(k+1) * time.Second)))
				var tid [16]byte
				var sid [8]byte
				copy(tid[:], fmt.Sprintf("t%02d%02d%02d%09d", r, c, k, i))
				copy(sid[:], fmt.Sprintf("s%07d", i*10+k))
				e.SetTraceID(tid)
				e.SetSpanID(sid)
			}
		}

		s := sm.Metrics().AppendEmpty()
		s.SetName("http.server.requests")
		sum := s.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		for k, route := range []string{"/checkout", "/products"} {
			dp := sum.DataPoints().AppendEmpty()
			dp.Attributes().PutStr("http.route", route)
			dp.SetStartTimestamp(start)
			dp.SetTimestamp(ts)
			dp.SetIntValue(int64((i + 1) * (10 + 7*k + r)))
		}

		g := sm.Metrics().AppendEmpty()
		g.SetName("queue.depth")
		gdp := g.SetEmptyGauge().DataPoints().AppendEmpty()
		gdp.SetTimestamp(ts)
		gdp.SetDoubleValue(float64((i*7+r*3)%11) + 0.5)

		u := sm.Metrics().AppendEmpty()
		u.SetName("inflight.requests")
		us := u.SetEmptySum()
		us.SetIsMonotonic(false)
		us.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		udp := us.DataPoints().AppendEmpty()
		udp.SetTimestamp(ts)
		udp.SetIntValue(int64(i%5 - 2))

		q := sm.Metrics().AppendEmpty()
		q.SetName("rpc.latency")
		qdp := q.SetEmptySummary().DataPoints().AppendEmpty()
		qdp.SetStartTimestamp(start)
		qdp.SetTimestamp(ts)
		qdp.SetCount(uint64(10 * (i + 1)))
		qdp.SetSum(float64(3 * (i + 1)))
		for _, qq := range []float64{0.5, 0.99} {
			qv := qdp.QuantileValues().AppendEmpty()
			qv.SetQuantile(qq)
			qv.SetValue(qq * float64(1+i%4))
		}

		x := sm.Metrics().AppendEmpty()
		x.SetName("request.size")
		xh := x.SetEmptyExponentialHistogram()
		xh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		xdp := xh.DataPoints().AppendEmpty()
		xdp.SetStartTimestamp(start)
		xdp.SetTimestamp(ts)
		xdp.SetScale(2)
		xdp.SetZeroCount(uint64(i))
		xdp.Positive().SetOffset(3)
		n := uint64(i + 1)
		xdp.Positive().BucketCounts().FromRaw([]uint64{n, 2 * n, 3 * n, n})
		xdp.SetCount(uint64(i) + 7*n)
		xdp.SetSum(float64(7*n) * 3.3)
	}
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		panic(err)
	}
	return b
}
