package shop

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/lookout-dev/lookout/webstore/telemetry"
)

// writeCountingConn counts the writes made on a client connection.
type writeCountingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c writeCountingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func countWrites(t *http.Transport, writes *atomic.Int64) {
	var d net.Dialer
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return writeCountingConn{Conn: c, writes: writes}, nil
	}
}

// TestInstrumentedCallWritesOnce checks that an instrumented service call
// sends its headers and JSON body in one write, as an uninstrumented one
// does, and that otelhttp still counts the body for
// http.client.request.body.size.
func TestInstrumentedCallWritesOnce(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	reader := sdkmetric.NewManualReader()
	tel, err := telemetry.New(context.Background(), MainService, telemetry.Config{
		HTTPBodySizeMetrics: true,
		MetricReader:        func(string) sdkmetric.Reader { return reader },
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())

	in := reservationRequest{Items: nil}
	want, _ := json.Marshal(in)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		if string(got) != string(want) {
			t.Errorf("server got body %q, want %q", got, want)
		}
		writeJSON(w, http.StatusOK, map[string]string{"reservation_id": "r1"})
	}))
	defer srv.Close()

	var writes atomic.Int64
	c := newServiceClient(srv.URL, InventoryService, tel, 5*time.Second)
	defer c.base.CloseIdleConnections()
	countWrites(c.base, &writes)
	const calls = 3
	for range calls {
		var out reservationResponse
		if err := c.call(context.Background(), "POST /reservations", http.MethodPost, "/reservations", in, &out); err != nil {
			t.Fatal(err)
		}
		if out.ReservationID != "r1" {
			t.Fatalf("answer %+v", out)
		}
	}
	if got := writes.Load(); got != calls {
		t.Errorf("%d writes for %d calls, want one each", got, calls)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "http.client.request.body.size" {
				for _, dp := range m.Data.(metricdata.Histogram[int64]).DataPoints {
					sum += dp.Sum
				}
			}
		}
	}
	if sum != calls*int64(len(want)) {
		t.Errorf("http.client.request.body.size sums to %d, want %d", sum, calls*len(want))
	}

	// For the record: otelhttp's transport straight over net/http's.
	var plainWrites atomic.Int64
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	countWrites(base, &plainWrites)
	plain := &serviceClient{url: srv.URL, base: base, http: &http.Client{Transport: otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(tel.TracerProvider), otelhttp.WithMeterProvider(tel.MeterProvider))}}
	for range calls {
		if err := plain.call(context.Background(), "POST /reservations", http.MethodPost, "/reservations", in, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("writes for %d calls: %d through inMemoryBody, %d without", calls, writes.Load(), plainWrites.Load())
}

// BenchmarkInstrumentedCall measures one instrumented service call (client
// span, metrics, a JSON body, an in-process peer) with inMemoryBody under
// otelhttp's transport, as the shop runs, and without it. The process CPU
// per call includes the peer's side, which also reads two packets instead
// of one without it.
func BenchmarkInstrumentedCall(b *testing.B) {
	b.Setenv("OTEL_TRACES_EXPORTER", "none")
	b.Setenv("OTEL_METRICS_EXPORTER", "none")
	tel, err := telemetry.New(context.Background(), MainService, telemetry.Config{
		MetricReader: func(string) sdkmetric.Reader { return sdkmetric.NewManualReader() },
	}, testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req paymentRequest
		if err := decodeJSON(r.Body, &req); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, paymentResponse{PaymentID: "pay_1", ChargeID: "ch_1", Status: "succeeded"})
	}))
	defer srv.Close()
	in := paymentRequest{CheckoutRef: "chk_0123456789abcdef01234567", AmountCents: 8999, Currency: "USD", PaymentMethod: "card", Country: "US"}
	withFix := newServiceClient(srv.URL, PaymentsService, tel, 5*time.Second)
	defer withFix.base.CloseIdleConnections()
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	without := &serviceClient{url: srv.URL, base: base, http: &http.Client{Timeout: 5 * time.Second, Transport: otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(tel.TracerProvider), otelhttp.WithMeterProvider(tel.MeterProvider),
		otelhttp.WithPropagators(tel.Propagator))}}
	for _, c := range []struct {
		name   string
		client *serviceClient
	}{{"inMemoryBody", withFix}, {"otelhttp-only", without}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				var out paymentResponse
				if err := c.client.call(context.Background(), "POST /payments", http.MethodPost, "/payments", in, &out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
		})
	}
}
