package telemetry

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestDisabledIsNoop(t *testing.T) {
	p, err := New(context.Background(), "main-service", Config{Disabled: true}, discard())
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.TracerProvider.Tracer("t").Start(context.Background(), "x")
	if span.SpanContext().IsValid() {
		t.Error("disabled telemetry produced a real span")
	}
	span.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{{Protocol: "http/json"}, {ExemplarReservoir: "random"}, {MetricInterval: -time.Second}} {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift")
	if _, err := New(context.Background(), "x", Config{}, discard()); err == nil || !strings.Contains(err.Error(), "thrift") {
		t.Errorf("bad protocol from env: %v", err)
	}
}

// TestResourceAndHTTPExport exports over OTLP/HTTP (protobuf) to a test
// server and checks the resource: service.name per service, attributes from
// OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME as service.namespace.
func TestResourceAndHTTPExport(t *testing.T) {
	var mu sync.Mutex
	var got []ptraceotlp.ExportRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" {
			w.WriteHeader(http.StatusOK) // metrics, ignored here
			return
		}
		if r.Header.Get("X-Team") != "shop" {
			t.Errorf("header from OTEL_EXPORTER_OTLP_HEADERS missing: %v", r.Header)
		}
		b, _ := io.ReadAll(r.Body)
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			t.Errorf("decode: %v", err)
		}
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := ptraceotlp.NewExportResponse().MarshalProto()
		_, _ = w.Write(out)
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "X-Team=shop")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test,service.name=ignored")
	t.Setenv("OTEL_SERVICE_NAME", "webstore")

	p, err := New(context.Background(), "payments-service", Config{}, discard())
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.TracerProvider.Tracer("t").Start(context.Background(), "authorize_payment")
	span.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		t.Fatal("no trace export received")
	}
	attrs := got[0].Traces().ResourceSpans().At(0).Resource().Attributes().AsRaw()
	for k, want := range map[string]string{"service.name": "payments-service", "service.namespace": "webstore", "deployment.environment.name": "test"} {
		if attrs[k] != want {
			t.Errorf("resource %s = %v, want %q (all: %v)", k, attrs[k], want, attrs)
		}
	}
}

// TestExportFailuresAreLoggedOnce points the exporters at a closed port and
// checks that failures are logged, rate-limited, and not returned.
func TestExportFailuresAreLoggedOnce(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	var buf safeBuffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	p, err := New(context.Background(), "main-service", Config{Endpoint: addr, Protocol: ProtocolHTTPProtobuf, ErrorLogInterval: time.Hour}, logger)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, span := p.TracerProvider.Tracer("t").Start(context.Background(), "x")
		span.End()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := p.ForceFlush(ctx); err != nil {
			t.Errorf("ForceFlush returned the export error: %v", err)
		}
		cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = p.Shutdown(ctx)
	if n := strings.Count(buf.String(), "telemetry export failed"); n != 1 {
		t.Errorf("logged %d export failures, want 1 (rate-limited):\n%s", n, buf.String())
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestExemplarReservoirView records 200 rising values into one bucket of
// an instrument, each in its own sampled span, in each of three export
// intervals, and checks how many exemplars each setting keeps and whether
// they are the interval's largest value every time: always with tail (the
// default), which a random reservoir does with probability (1/200)^3.
func TestExemplarReservoirView(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	for _, tc := range []struct {
		env, cfg, filter, instrument string
		want                         int  // exemplars per interval
		largest                      bool // the largest value is one of them in every interval
	}{
		{"", "", "", PaymentDurationMetric, 1, true}, // tail by default
		{"", "", "", CheckoutAmountMetric, 1, true},
		{ReservoirTail, "", "", PaymentDurationMetric, 1, true},
		{ReservoirTail, "", "", CheckoutAmountMetric, 1, true},
		{ReservoirSDK, "", "", PaymentDurationMetric, 1, false},
		{ReservoirSDK, "", "", CheckoutAmountMetric, 1, false},
		{ReservoirAligned, "", "", PaymentDurationMetric, 1, false}, // one per bucket
		{ReservoirAligned, "", "", CheckoutAmountMetric, 1, false},
		{ReservoirFixed, "", "", PaymentDurationMetric, 4, false},             // 4, uniformly
		{ReservoirFixed, "", "", CheckoutAmountMetric, 1, false},              // the SDK's, as before
		{ReservoirTail, ReservoirSDK, "", PaymentDurationMetric, 1, false},    // Config wins over the variable
		{ReservoirAligned, "", "always_off", PaymentDurationMetric, 0, false}, // OTEL_METRICS_EXEMPLAR_FILTER honoured
		{"", "", "always_off", PaymentDurationMetric, 0, false},
	} {
		t.Run(tc.env+"/"+tc.cfg+"/"+tc.filter+"/"+tc.instrument, func(t *testing.T) {
			t.Setenv("WEBSTORE_EXEMPLAR_RESERVOIR", tc.env)
			t.Setenv("OTEL_METRICS_EXEMPLAR_FILTER", tc.filter)
			reader := sdkmetric.NewManualReader()
			p, err := New(context.Background(), "main-service", Config{
				ExemplarReservoir: tc.cfg,
				MetricReader:      func(string) sdkmetric.Reader { return reader },
			}, discard())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			h, err := p.MeterProvider.Meter("t").Float64Histogram(tc.instrument,
				metric.WithExplicitBucketBoundaries(0.1, 1, 1000))
			if err != nil {
				t.Fatal(err)
			}
			attrs := metric.WithAttributes(attribute.String("country", "US"), attribute.String("payment_method", "card"))
			largestEveryTime := true
			for interval := range 3 {
				v := 1.0
				for range 200 {
					v += 0.01
					ctx, span := p.TracerProvider.Tracer("t").Start(context.Background(), "process_payment")
					h.Record(ctx, v, attrs)
					span.End()
				}
				var rm metricdata.ResourceMetrics
				if err := reader.Collect(context.Background(), &rm); err != nil {
					t.Fatal(err)
				}
				dps := rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Histogram[float64]).DataPoints
				if got := len(dps[0].Exemplars); got != tc.want {
					t.Errorf("interval %d: %d exemplars, want %d", interval, got, tc.want)
				}
				largest := false
				for _, ex := range dps[0].Exemplars {
					if len(ex.TraceID) != 16 || len(ex.SpanID) != 8 {
						t.Errorf("exemplar without trace context: %+v", ex)
					}
					largest = largest || ex.Value == v
				}
				largestEveryTime = largestEveryTime && largest
			}
			if tc.want > 0 && largestEveryTime != tc.largest {
				t.Errorf("the largest value kept in every interval: %v, want %v", largestEveryTime, tc.largest)
			}
		})
	}
	if _, err := reservoirViews("bogus"); err == nil {
		t.Error("bogus reservoir accepted")
	}
}

// TestHTTPBodySizeMetrics sends one request through otelhttp's handler and
// transport and checks that the duration histograms are always exported and
// the body-size histograms only when asked for.
func TestHTTPBodySizeMetrics(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	for _, tc := range []struct {
		name, env string
		cfg       bool
		keep      bool
	}{
		{"default", "", false, false},
		{"env", "true", false, true},
		{"env-false", "false", false, false},
		{"config", "", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WEBSTORE_HTTP_BODY_SIZE_METRICS", tc.env)
			reader := sdkmetric.NewManualReader()
			p, err := New(context.Background(), "main-service", Config{
				HTTPBodySizeMetrics: tc.cfg,
				MetricReader:        func(string) sdkmetric.Reader { return reader },
			}, discard())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			srv := httptest.NewServer(otelhttp.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				_, _ = w.Write([]byte(`{"ok":true}`))
			}), "POST /x", otelhttp.WithMeterProvider(p.MeterProvider), otelhttp.WithTracerProvider(p.TracerProvider)))
			defer srv.Close()
			client := &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport,
				otelhttp.WithMeterProvider(p.MeterProvider), otelhttp.WithTracerProvider(p.TracerProvider))}
			defer client.CloseIdleConnections()
			resp, err := client.Post(srv.URL, "application/json", strings.NewReader(`{"a":1}`))
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()

			var rm metricdata.ResourceMetrics
			if err := reader.Collect(context.Background(), &rm); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					got[m.Name] = true
				}
			}
			for _, name := range []string{"http.server.request.duration", "http.client.request.duration"} {
				if !got[name] {
					t.Errorf("%s missing; got %v", name, got)
				}
			}
			for _, name := range HTTPBodySizeMetrics {
				if got[name] != tc.keep {
					t.Errorf("%s exported = %v, want %v", name, got[name], tc.keep)
				}
			}
		})
	}
	t.Run("invalid", func(t *testing.T) {
		t.Setenv("WEBSTORE_HTTP_BODY_SIZE_METRICS", "sometimes")
		if _, err := New(context.Background(), "main-service", Config{}, discard()); err == nil {
			t.Error("WEBSTORE_HTTP_BODY_SIZE_METRICS=sometimes accepted")
		}
	})
}
