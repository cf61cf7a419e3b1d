package otlpin

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/lookout-dev/lookout/internal/ingest"
)

func TestAdmissionBudget(t *testing.T) {
	a := newAdmission(100, 0)
	for _, step := range []struct {
		acquire, release int64
		wantErr          bool
	}{
		{acquire: 60},
		{acquire: 50, wantErr: true}, // 110 > 100
		{acquire: 40},                // exactly 100
		{release: 60},
		{acquire: 50},
		{release: 90},
		{acquire: 500}, // alone, larger than the budget: admitted
		{acquire: 1, wantErr: true},
	} {
		if step.release > 0 {
			a.release(step.release)
			continue
		}
		err := a.acquire(step.acquire)
		if (err != nil) != step.wantErr || (err != nil && !errors.Is(err, ingest.ErrOverloaded)) {
			t.Fatalf("acquire %d with %d in flight: %v, want error %v", step.acquire, a.inFlight, err, step.wantErr)
		}
	}
}

// postHTTP serves one OTLP/HTTP request on h.
func postHTTP(h http.Handler, ctx context.Context, body []byte, encoding string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/metrics", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	h.ServeHTTP(rec, req)
	return rec
}

// failingReader fails the test if the body is read at all.
type failingReader struct{ t *testing.T }

func (f failingReader) Read([]byte) (int, error) {
	f.t.Error("body read although the request was refused from its headers")
	return 0, errors.New("must not be read")
}

func TestHTTPAdmission(t *testing.T) {
	body := protoBody(t, 50)
	t.Run("over the size limit by Content-Length, unread", func(t *testing.T) {
		r := newTestReceiver(t, &sink{}, 100)
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/v1/metrics", failingReader{t})
		req.ContentLength = 1000
		req.Header.Set("Content-Type", "application/x-protobuf")
		r.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("code %d, want 413", rec.Code)
		}
	})
	for _, tc := range []struct {
		name     string
		body     []byte
		encoding string
	}{{"plain", body, ""}, {"gzip, admitted as it decompresses", gz(body), "gzip"}} {
		t.Run("budget spent: "+tc.name, func(t *testing.T) {
			block, entered := make(chan struct{}), make(chan struct{})
			opts := DefaultOptions()
			opts.MaxInFlightBytes = int64(len(body)) + 10
			r, err := New(opts, &blockingSink{block: block, entered: entered}, nil, nil, prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			h := r.Handler()
			done := make(chan int)
			go func() { done <- postHTTP(h, context.Background(), body, "").Code }()
			<-entered
			rec := postHTTP(h, context.Background(), tc.body, tc.encoding)
			if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
				t.Errorf("second request: %d (Retry-After %q), want 429 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
			}
			close(block)
			if code := <-done; code != http.StatusOK {
				t.Errorf("first request: %d", code)
			}
			if r.admit.inFlight != 0 {
				t.Errorf("%d bytes still held after both requests", r.admit.inFlight)
			}
		})
	}
	t.Run("memory over the limit", func(t *testing.T) {
		s := &sink{}
		opts := DefaultOptions()
		opts.MemoryLimit = 1
		r, err := New(opts, s, s, nil, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		if rec := postHTTP(r.Handler(), context.Background(), body, ""); rec.Code != http.StatusTooManyRequests {
			t.Errorf("code %d, want 429", rec.Code)
		}
		if s.points != 0 {
			t.Errorf("stored %d points", s.points)
		}
	})
	t.Run("client gone: not stored", func(t *testing.T) {
		s := &sink{}
		r := newTestReceiver(t, s, 1<<20)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		postHTTP(r.Handler(), ctx, body, "")
		if s.points != 0 {
			t.Errorf("stored %d points of an abandoned request", s.points)
		}
	})
}

func TestGRPCAdmissionAndBadProtobuf(t *testing.T) {
	for _, tc := range []struct {
		name      string
		limit     uint64
		body      []byte
		wantCode  codes.Code
		wantRetry bool
	}{
		{name: "malformed protobuf", body: []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2}, wantCode: codes.InvalidArgument},
		{name: "valid", body: protoBody(t, 3), wantCode: codes.OK},
		{name: "memory over the limit", limit: 1, body: protoBody(t, 3), wantCode: codes.ResourceExhausted, wantRetry: true},
		{name: "over the size limit", body: bigMetrics(t, 2<<20), wantCode: codes.ResourceExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &sink{}
			opts := DefaultOptions()
			opts.GRPCListen, opts.HTTPListen = "127.0.0.1:0", ""
			opts.MemoryLimit = tc.limit
			opts.MaxRequestBytes = 1 << 20
			r, err := New(opts, s, s, nil, prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = r.Shutdown(context.Background()) }()
			conn, err := grpc.NewClient(r.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var out rawMessage
			err = conn.Invoke(context.Background(), "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
				&rawMessage{b: tc.body}, &out, grpc.ForceCodecV2(rawCodec{}))
			st := status.Convert(err)
			if st.Code() != tc.wantCode {
				t.Fatalf("code %v, want %v: %v", st.Code(), tc.wantCode, err)
			}
			if tc.wantRetry && !hasRetryInfo(st) {
				t.Errorf("RESOURCE_EXHAUSTED without RetryInfo: %v", st.Details())
			}
			if tc.wantCode == codes.OK {
				resp := pmetricotlp.NewExportResponse()
				if err := resp.UnmarshalProto(out.b); err != nil || s.points != 3 {
					t.Errorf("response %v, stored %d points", err, s.points)
				}
			} else if s.points != 0 {
				t.Errorf("stored %d points", s.points)
			}
			// The call's reservation, taken before its message was read,
			// is back in the budget however the call ended.
			r.admit.mu.Lock()
			defer r.admit.mu.Unlock()
			if r.admit.inFlight != 0 {
				t.Errorf("%d bytes still in flight after the call", r.admit.inFlight)
			}
		})
	}
}

func hasRetryInfo(st *status.Status) bool {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			return true
		}
	}
	return false
}

// bigMetrics is a valid OTLP metrics request of about n bytes.
func bigMetrics(t *testing.T, n int) []byte {
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	for i := 0; ; i++ {
		m := ms.AppendEmpty()
		m.SetName("flood")
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetIntValue(int64(i))
		dp.Attributes().PutStr("k", string(bytes.Repeat([]byte{'v'}, 1000)))
		if i%1000 == 999 {
			b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
			if err != nil {
				t.Fatal(err)
			}
			if len(b) >= n {
				return b
			}
		}
	}
}

// TestFloodStaysUnderMemoryLimit: many clients sending large valid bodies at
// once keep the process's memory under the limit; the receiver answers the
// excess 429 and stores the rest.
func TestFloodStaysUnderMemoryLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the receiver for a few seconds")
	}
	const limit = 512 << 20
	body := bigMetrics(t, 14<<20)
	s := &sink{}
	opts := DefaultOptions()
	opts.GRPCListen, opts.HTTPListen = "", "127.0.0.1:0"
	opts.MaxRequestBytes = 16 << 20
	opts.MemoryLimit = limit
	opts.MaxInFlightBytes = limit / 8
	r, err := New(opts, s, s, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Shutdown(context.Background()) }()
	url := "http://" + r.HTTPAddr().String() + "/v1/metrics"

	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		samples := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
		for {
			metrics.Read(samples)
			if used := samples[0].Value.Uint64() - samples[1].Value.Uint64(); used > peak.Load() {
				peak.Store(used)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(4 * time.Second)
	client := &http.Client{Timeout: 30 * time.Second}
	for range 100 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				resp, err := client.Post(url, "application/x-protobuf", bytes.NewReader(body))
				if err != nil {
					continue
				}
				_ = resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusTooManyRequests:
					refused.Add(1)
					time.Sleep(50 * time.Millisecond)
				default:
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-sampled
	t.Logf("100 clients × %d MiB bodies for 4 s: %d stored, %d refused, peak memory %d MiB (limit %d MiB)",
		len(body)>>20, ok.Load(), refused.Load(), peak.Load()>>20, limit>>20)
	if ok.Load() == 0 || refused.Load() == 0 {
		t.Errorf("want some requests stored and some refused: %d and %d", ok.Load(), refused.Load())
	}
	if peak.Load() > limit {
		t.Errorf("peak memory %d MiB over the %d MiB limit", peak.Load()>>20, limit>>20)
	}
}
