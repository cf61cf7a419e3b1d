package app

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lookout-dev/lookout/internal/testpeers"
)

// postRemoteWrite sends a remote write 1.0 request and returns the status
// and body of the answer.
func postRemoteWrite(t *testing.T, addr string, req *prompb.WriteRequest) (int, string) {
	t.Helper()
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	hr, err := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("Content-Encoding", "snappy")
	hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// queryAPI is a Prometheus API client for the server at addr.
func queryAPI(t *testing.T, addr string) promv1.API {
	t.Helper()
	client, err := promapi.NewClient(promapi.Config{Address: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	return promv1.NewAPI(client)
}

// awaitQuery runs query on api every 250 ms, for up to a minute, until
// done accepts its answer; it returns the last answer and whether done did.
func awaitQuery(t *testing.T, api promv1.API, query string, done func(model.Value) bool) (model.Value, bool) {
	t.Helper()
	var last model.Value
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		v, _, _, err := api.Query(context.Background(), query, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if last = v; done(v) {
			return v, true
		}
	}
	return last, false
}

func rwSeries(name, job string, ts int64, v float64, exemplarTrace string) prompb.TimeSeries {
	s := prompb.TimeSeries{
		Labels:  []prompb.Label{{Name: "__name__", Value: name}, {Name: "job", Value: job}},
		Samples: []prompb.Sample{{Timestamp: ts, Value: v}},
	}
	if exemplarTrace != "" {
		s.Exemplars = []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: exemplarTrace}}, Value: v, Timestamp: ts}}
	}
	return s
}

// TestRemoteWrite sends remote write 1.0 requests to /api/v1/write: the
// samples are queryable, the exemplars reach the exemplar writer and
// query_exemplars, and refused samples get Prometheus's 400.
func TestRemoteWrite(t *testing.T) {
	writer := &recordingWriter{}
	cfg := testConfig(t)
	cfg.hooks = &testHooks{exemplarWriter: writer.wrap}
	a := startApp(t, cfg)
	now := time.Now().Add(-time.Minute).UnixMilli()
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	code, body := postRemoteWrite(t, a.PrometheusAddr(), &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		rwSeries("rw_requests_total", "rw-test", now, 42, trace),
		rwSeries("rw_requests_total", "rw-other", now, 7, ""),
	}})
	if code != http.StatusNoContent {
		t.Fatalf("remote write: %d %s", code, body)
	}

	api := queryAPI(t, a.PrometheusAddr())
	ctx := context.Background()
	v, _, _, err := api.Query(ctx, `rw_requests_total{job="rw-test"}`, time.UnixMilli(now))
	if err != nil {
		t.Fatal(err)
	}
	if vec, ok := v.(model.Vector); !ok || len(vec) != 1 || vec[0].Value != 42 {
		t.Errorf("query = %v, want one sample of 42", v)
	}
	ex, err := api.QueryExemplars(ctx, "rw_requests_total", time.UnixMilli(now-1000), time.UnixMilli(now+1000))
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 1 || len(ex[0].Exemplars) != 1 || string(ex[0].Exemplars[0].Labels["trace_id"]) != trace {
		t.Errorf("query_exemplars = %+v, want the one exemplar of trace %s", ex, trace)
	}
	var recs []string
	for _, r := range writer.records() {
		recs = append(recs, r.Series.Get("job")+" "+r.Exemplar.Labels.Get("trace_id"))
	}
	if len(recs) != 1 || recs[0] != "rw-test "+trace {
		t.Errorf("exemplar writer got %v, want [rw-test %s]", recs, trace)
	}

	// An out-of-order sample is refused as Prometheus refuses it: 400, and
	// the whole request is rolled back.
	code, body = postRemoteWrite(t, a.PrometheusAddr(), &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		rwSeries("rw_requests_total", "rw-test", now-60_000, 41, ""),
		rwSeries("rw_requests_total", "rw-third", now, 3, ""),
	}})
	if code != http.StatusBadRequest || !strings.Contains(body, "out of order") {
		t.Errorf("out-of-order sample: %d %q, want 400 naming it", code, body)
	}
	v, _, _, err = api.Query(ctx, `rw_requests_total{job="rw-third"}`, time.UnixMilli(now))
	if err != nil {
		t.Fatal(err)
	}
	if vec, ok := v.(model.Vector); !ok || len(vec) != 0 {
		t.Errorf("a refused request's other series was stored: %v", v)
	}

	// The UI listener, which serves the Prometheus API under /prometheus/
	// for reading, takes no writes.
	code, body = postRemoteWrite(t, a.UIAddr()+"/prometheus", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{rwSeries("rw_requests_total", "rw-ui", now, 1, "")}})
	if code != http.StatusNotFound || !strings.Contains(body, "takes no writes") {
		t.Errorf("remote write on the UI listener: %d %q, want 404", code, body)
	}
	if code, _ := postProto(t, "http://"+a.UIAddr()+"/prometheus/api/v1/otlp/v1/metrics", nil); code != http.StatusNotFound {
		t.Errorf("OTLP on the UI listener: %d, want 404", code)
	}

	// Prometheus's handler refuses bodies over 32 MiB as sent (413) or as
	// their snappy header says they decompress (400), before it reads them
	// whole or inflates them; garbage gets 400.
	for _, c := range []struct {
		name string
		body []byte
		code int
	}{
		{"over the limit as sent", bytes.Repeat([]byte{0}, 33<<20), http.StatusRequestEntityTooLarge},
		{"announcing 1 GiB decompressed", append(binary.AppendUvarint(nil, 1<<30), 0, 1, 2, 3), http.StatusBadRequest},
		{"not snappy", []byte("not snappy"), http.StatusBadRequest},
	} {
		if code, msg := postProto(t, "http://"+a.PrometheusAddr()+"/api/v1/write", c.body); code != c.code {
			t.Errorf("%s: %d %q, want %d", c.name, code, msg, c.code)
		}
	}
}

// TestRemoteWriteReceiverOff checks the receiver can be switched off, with
// an answer that names Lookout's flag.
func TestRemoteWriteReceiverOff(t *testing.T) {
	cfg := testConfig(t)
	cfg.RemoteWriteReceiver = false
	a := startApp(t, cfg)
	code, body := postRemoteWrite(t, a.PrometheusAddr(), &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{rwSeries("x", "y", time.Now().UnixMilli(), 1, "")}})
	if code != http.StatusNotFound || !strings.Contains(body, "--prometheus.remote-write-receiver") {
		t.Errorf("remote write when off: %d %q", code, body)
	}
}

// TestRemoteWriteFromPrometheus has a real Prometheus scrape itself and
// remote-write to Lookout with both protocol versions (each series marked
// by a write relabel), then reads both back from Lookout.
func TestRemoteWriteFromPrometheus(t *testing.T) {
	a := startApp(t, testConfig(t))
	lookout := a.PrometheusAddr()
	testpeers.StartPrometheusConfig(t, func(addr string) string {
		return fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: [%q]}]
remote_write:
  - url: http://%[2]s/api/v1/write
    queue_config: {batch_send_deadline: 1s}
    write_relabel_configs: [{target_label: rw, replacement: v1}]
  - url: http://%[2]s/api/v1/write
    protobuf_message: io.prometheus.write.v2.Request
    queue_config: {batch_send_deadline: 1s}
    write_relabel_configs: [{target_label: rw, replacement: v2}]
`, addr, lookout)
	})
	api := queryAPI(t, lookout)
	last, ok := awaitQuery(t, api, `count by (rw) (up{job="prometheus"} == 1)`, func(v model.Value) bool {
		vec, ok := v.(model.Vector)
		return ok && len(vec) == 2
	})
	if !ok {
		t.Fatalf("Lookout did not get Prometheus's remote writes in both versions: %v", last)
	}
}

// TestRemoteReadFromPrometheus has a real Prometheus read Lookout's data
// through remote read (/api/v1/read, Prometheus's own handler) and answer
// a query with it.
func TestRemoteReadFromPrometheus(t *testing.T) {
	a := startApp(t, testConfig(t))
	now := time.Now().Add(-30 * time.Second)
	code, body := postRemoteWrite(t, a.PrometheusAddr(), &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		rwSeries("lookout_only_total", "rr-test", now.UnixMilli(), 17, ""),
	}})
	if code != http.StatusNoContent {
		t.Fatalf("remote write: %d %s", code, body)
	}
	prom := testpeers.StartPrometheusConfig(t, func(string) string {
		return fmt.Sprintf("remote_read:\n  - url: http://%s/api/v1/read\n    read_recent: true\n", a.PrometheusAddr())
	})
	v, _, _, err := queryAPI(t, prom).Query(context.Background(), `lookout_only_total{job="rr-test"}`, now)
	if err != nil {
		t.Fatal(err)
	}
	if vec, ok := v.(model.Vector); !ok || len(vec) != 1 || vec[0].Value != 17 {
		t.Errorf("Prometheus reading Lookout remotely: %v, want one sample of 17", v)
	}
}

// TestFederationFromPrometheus has a real Prometheus scrape Lookout's
// /federate with honor_labels, as a global Prometheus federates from a
// local one, and read the series back from that Prometheus.
func TestFederationFromPrometheus(t *testing.T) {
	a := startApp(t, testConfig(t))
	at := time.Now().Add(-10 * time.Second).UnixMilli()
	native := &histogram.Histogram{Schema: 0, Count: 5, Sum: 9, ZeroThreshold: 0.001,
		PositiveSpans: []histogram.Span{{Offset: 1, Length: 2}}, PositiveBuckets: []int64{2, 1}}
	code, body := postRemoteWrite(t, a.PrometheusAddr(), &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		rwSeries("lookout_fed_total", "fed-test", at, 5, ""),
		rwSeries("lookout_fed_total", "not-federated", at, 6, ""),
		{
			Labels:     []prompb.Label{{Name: "__name__", Value: "lookout_fed_latency"}, {Name: "job", Value: "fed-test"}},
			Histograms: []prompb.Histogram{prompb.FromIntHistogram(at, native)},
		},
	}})
	if code != http.StatusNoContent {
		t.Fatalf("remote write: %d %s", code, body)
	}
	prom := testpeers.StartPrometheusConfig(t, func(string) string {
		return fmt.Sprintf(`scrape_configs:
  - job_name: federate
    honor_labels: true
    scrape_native_histograms: true
    metrics_path: /federate
    scrape_interval: 1s
    params:
      'match[]': ['{job="fed-test"}']
    static_configs: [{targets: [%q]}]
`, a.PrometheusAddr())
	})
	api := queryAPI(t, prom)
	// Both the float series and the native histogram arrive; the
	// histogram's count and sum survive the trip.
	last, ok := awaitQuery(t, api, `{__name__=~"lookout_fed_.*"}`, func(v model.Value) bool {
		vec, _ := v.(model.Vector)
		var float, hist bool
		for _, s := range vec {
			if s.Metric["job"] != "fed-test" || s.Metric["instance"] != "" {
				continue
			}
			switch s.Metric["__name__"] {
			case "lookout_fed_total":
				float = s.Value == 5
			case "lookout_fed_latency":
				hist = s.Histogram != nil && s.Histogram.Count == 5 && s.Histogram.Sum == 9
			}
		}
		return len(vec) == 2 && float && hist
	})
	if ok {
		return
	}
	t.Fatalf("Prometheus federating from Lookout has %v, want lookout_fed_total 5 and the histogram (count 5, sum 9) of job fed-test, without an instance", last)
}

// TestOTLPOnPrometheusListener sends metrics with the OTel SDK's HTTP
// exporter to Prometheus's OTLP receiver path, /api/v1/otlp/v1/metrics, on
// the Prometheus listener; only metrics are taken there.
func TestOTLPOnPrometheusListener(t *testing.T) {
	writer := &recordingWriter{}
	cfg := testConfig(t)
	cfg.hooks = &testHooks{exemplarWriter: writer.wrap}
	a := startApp(t, cfg)
	ctx := context.Background()
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL("http://"+a.PrometheusAddr()+"/api/v1/otlp/v1/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()), sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
	tp := sdktrace.NewTracerProvider()
	h, err := mp.Meter("test").Float64Histogram("otlp.on.prom.duration", metric.WithUnit("s"))
	if err != nil {
		t.Fatal(err)
	}
	sctx, span := tp.Tracer("test").Start(ctx, "work")
	h.Record(sctx, 0.25)
	span.End()
	if err := mp.ForceFlush(ctx); err != nil {
		t.Fatalf("export to /api/v1/otlp/v1/metrics: %v", err)
	}
	_ = mp.Shutdown(ctx)
	_ = tp.Shutdown(ctx)

	v, _, _, err := queryAPI(t, a.PrometheusAddr()).Query(ctx, `otlp_on_prom_duration_count`, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if vec, ok := v.(model.Vector); !ok || len(vec) != 1 || vec[0].Value != 1 {
		t.Errorf("query = %v, want one count of 1", v)
	}
	if n := len(writer.records()); n != 1 {
		t.Errorf("exemplar writer got %d records, want the histogram's one", n)
	}

	if code, _ := postProto(t, "http://"+a.PrometheusAddr()+"/api/v1/otlp/v1/traces", nil); code != http.StatusNotFound {
		t.Errorf("traces on the Prometheus OTLP path: %d, want 404", code)
	}
}
