package otlpin

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/lookout-dev/lookout/internal/ingest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sink records what it was given and answers with a fixed result.
type sink struct {
	mu     sync.Mutex
	points int
	spans  int
	res    ingest.Result
	err    error
	panics bool // a bug in a sink
}

func (s *sink) ConsumeMetrics(_ context.Context, md pmetric.Metrics) (ingest.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.panics {
		panic("sink bug")
	}
	if s.err == nil {
		s.points += md.DataPointCount()
	}
	return s.res, s.err
}

func (s *sink) ConsumeTraces(_ context.Context, td ptrace.Traces) (ingest.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.panics {
		panic("sink bug")
	}
	if s.err == nil {
		s.spans += td.SpanCount()
	}
	return s.res, s.err
}

func sampleMetrics(points int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("requests")
	g := m.SetEmptyGauge()
	for i := range points {
		dp := g.DataPoints().AppendEmpty()
		dp.SetIntValue(int64(i))
		dp.Attributes().PutInt("i", int64(i))
	}
	return md
}

func sampleTraces(spans int) ptrace.Traces {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for i := range spans {
		s := ss.Spans().AppendEmpty()
		s.SetName("op")
		s.SetTraceID(pcommon.TraceID{1, byte(i)})
		s.SetSpanID(pcommon.SpanID{2, byte(i)})
	}
	return td
}

func protoBody(t testing.TB, points int) []byte {
	b, err := pmetricotlp.NewExportRequestFromMetrics(sampleMetrics(points)).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonBody(t testing.TB, points int) []byte {
	b, err := pmetricotlp.NewExportRequestFromMetrics(sampleMetrics(points)).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

func newTestReceiver(t testing.TB, s *sink, limit int64) *Receiver {
	opts := DefaultOptions()
	opts.GRPCListen, opts.HTTPListen = "127.0.0.1:0", "127.0.0.1:0"
	opts.MaxRequestBytes = limit
	r, err := New(opts, s, s, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHTTP(t *testing.T) {
	bomb := gz(make([]byte, 64<<20)) // 64 MiB of zeros, ~64 KiB compressed
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		encoding    string
		body        []byte
		sinkRes     ingest.Result
		sinkErr     error
		wantCode    int
		wantPoints  int
		wantInBody  string
	}{
		{name: "protobuf", path: "/v1/metrics", contentType: "application/x-protobuf", body: protoBody(t, 3), wantCode: 200, wantPoints: 3},
		{name: "json", path: "/v1/metrics", contentType: "application/json", body: jsonBody(t, 2), wantCode: 200, wantPoints: 2, wantInBody: "{"},
		{name: "json with charset", path: "/v1/metrics", contentType: "application/json; charset=utf-8", body: jsonBody(t, 1), wantCode: 200, wantPoints: 1},
		{name: "gzip protobuf", path: "/v1/metrics", contentType: "application/x-protobuf", encoding: "gzip", body: gz(protoBody(t, 4)), wantCode: 200, wantPoints: 4},
		{name: "empty request", path: "/v1/metrics", contentType: "application/x-protobuf", body: nil, wantCode: 200},
		{name: "malformed protobuf", path: "/v1/metrics", contentType: "application/x-protobuf", body: []byte{0xff, 0xff, 0xff}, wantCode: 400, wantInBody: "decode OTLP metrics"},
		{name: "malformed json", path: "/v1/metrics", contentType: "application/json", body: []byte(`{"resourceMetrics":[`), wantCode: 400, wantInBody: "decode OTLP metrics"},
		{name: "bad exemplar trace id", path: "/v1/metrics", contentType: "application/json", body: []byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"h","histogram":{"aggregationTemporality":2,"dataPoints":[{"count":"1","bucketCounts":["1"],"exemplars":[{"asDouble":1,"traceId":"not-hex"}]}]}}]}]}]}`), wantCode: 400, wantInBody: "decode OTLP metrics"},
		{name: "wrong content type", path: "/v1/metrics", contentType: "text/plain", body: protoBody(t, 1), wantCode: 415, wantInBody: "unsupported content type"},
		{name: "no content type", path: "/v1/metrics", body: protoBody(t, 1), wantCode: 415},
		{name: "unknown path", path: "/v1/logs", contentType: "application/x-protobuf", body: protoBody(t, 1), wantCode: 404, wantInBody: "unknown path"},
		{name: "GET", method: http.MethodGet, path: "/v1/metrics", contentType: "application/x-protobuf", wantCode: 405},
		{name: "too large", path: "/v1/metrics", contentType: "application/x-protobuf", body: protoBody(t, 100000), wantCode: 413, wantInBody: "too large"},
		{name: "gzip bomb", path: "/v1/metrics", contentType: "application/x-protobuf", encoding: "gzip", body: bomb, wantCode: 413, wantInBody: "decompressed"},
		{name: "bad gzip", path: "/v1/metrics", contentType: "application/x-protobuf", encoding: "gzip", body: []byte("not gzip"), wantCode: 400, wantInBody: "gzip"},
		{name: "unknown encoding", path: "/v1/metrics", contentType: "application/x-protobuf", encoding: "br", body: protoBody(t, 1), wantCode: 400, wantInBody: "content encoding"},
		{name: "sink: bad data", path: "/v1/metrics", contentType: "application/x-protobuf", body: protoBody(t, 1), sinkErr: fmt.Errorf("%w: all out of order", ingest.ErrBadData), wantCode: 400, wantInBody: "out of order"},
		{name: "sink: overloaded", path: "/v1/metrics", contentType: "application/x-protobuf", body: protoBody(t, 1), sinkErr: ingest.ErrOverloaded, wantCode: 429},
		{name: "sink: failure", path: "/v1/metrics", contentType: "application/x-protobuf", body: protoBody(t, 1), sinkErr: fmt.Errorf("disk full"), wantCode: 500, wantInBody: "disk full"},
		{name: "sink: partial success", path: "/v1/metrics", contentType: "application/json", body: jsonBody(t, 5), sinkRes: ingest.Result{Rejected: 2, Message: "2 samples out of order"}, wantCode: 200, wantPoints: 5, wantInBody: `"rejectedDataPoints":"2"`},
		{name: "traces", path: "/v1/traces", contentType: "application/json", body: mustJSON(ptraceotlp.NewExportRequestFromTraces(sampleTraces(3)).MarshalJSON()), wantCode: 200},
		{name: "traces malformed", path: "/v1/traces", contentType: "application/x-protobuf", body: []byte{0x0a, 0xff}, wantCode: 400, wantInBody: "decode OTLP traces"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &sink{res: tc.sinkRes, err: tc.sinkErr}
			r := newTestReceiver(t, s, 1<<20)
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, tc.path, bytes.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			if tc.encoding != "" {
				req.Header.Set("Content-Encoding", tc.encoding)
			}
			rec := httptest.NewRecorder()
			r.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.wantCode {
				t.Fatalf("status %d, want %d; body %q", rec.Code, tc.wantCode, rec.Body.String())
			}
			if s.points != tc.wantPoints {
				t.Errorf("sink got %d points, want %d", s.points, tc.wantPoints)
			}
			if tc.wantInBody != "" && !strings.Contains(rec.Body.String(), tc.wantInBody) {
				t.Errorf("body %q does not contain %q", rec.Body.String(), tc.wantInBody)
			}
			if tc.wantCode == 429 && rec.Header().Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
		})
	}
}

func mustJSON(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestOverloadedByConcurrency fills every request slot and checks the next
// request is refused with 429 rather than queued.
func TestOverloadedByConcurrency(t *testing.T) {
	block := make(chan struct{})
	entered := make(chan struct{})
	bs := &blockingSink{block: block, entered: entered}
	opts := DefaultOptions()
	opts.MaxConcurrentRequests = 1
	r, err := New(opts, bs, nil, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	h := r.Handler()
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/v1/metrics", bytes.NewReader(protoBody(t, 1)))
		req.Header.Set("Content-Type", "application/x-protobuf")
		h.ServeHTTP(rec, req)
		done <- rec.Code
	}()
	<-entered
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/v1/metrics", bytes.NewReader(protoBody(t, 1)))
	req.Header.Set("Content-Type", "application/x-protobuf")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests {
		t.Errorf("second request: %d, want 429", rec.Code)
	}
	close(block)
	if code := <-done; code != 200 {
		t.Errorf("first request: %d, want 200", code)
	}
}

type blockingSink struct {
	block, entered chan struct{}
}

func (b *blockingSink) ConsumeMetrics(context.Context, pmetric.Metrics) (ingest.Result, error) {
	close(b.entered)
	<-b.block
	return ingest.Result{}, nil
}

func TestGRPC(t *testing.T) {
	tests := []struct {
		name      string
		res       ingest.Result
		err       error
		wantCode  codes.Code
		wantRetry bool
		wantRej   int64
		panics    bool
	}{
		{name: "ok", wantCode: codes.OK},
		{name: "partial", res: ingest.Result{Rejected: 1, Message: "one bad"}, wantCode: codes.OK, wantRej: 1},
		// More rejected than sent (a sink counting samples) must not
		// crash the receiver's counters.
		{name: "over-reported", res: ingest.Result{Rejected: 5, Message: "five bad"}, wantCode: codes.OK, wantRej: 5},
		{name: "bad data", err: fmt.Errorf("%w: nope", ingest.ErrBadData), wantCode: codes.InvalidArgument},
		{name: "overloaded", err: ingest.ErrOverloaded, wantCode: codes.ResourceExhausted, wantRetry: true},
		{name: "internal", err: io.ErrUnexpectedEOF, wantCode: codes.Internal},
		// A panic answers that request (metrics, then traces on the same
		// server) with Internal instead of ending the process.
		{name: "sink panics", panics: true, wantCode: codes.Internal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &sink{res: tc.res, err: tc.err, panics: tc.panics}
			r := newTestReceiver(t, s, 1<<20)
			if err := r.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := r.Shutdown(context.Background()); err != nil {
					t.Error(err)
				}
			}()
			conn, err := grpc.NewClient(r.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			resp, err := pmetricotlp.NewGRPCClient(conn).Export(context.Background(), pmetricotlp.NewExportRequestFromMetrics(sampleMetrics(2)))
			st := status.Convert(err)
			if st.Code() != tc.wantCode {
				t.Fatalf("code %v, want %v (%v)", st.Code(), tc.wantCode, err)
			}
			if tc.wantRetry {
				found := false
				for _, d := range st.Details() {
					if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
						found = true
					}
				}
				if !found {
					t.Errorf("RESOURCE_EXHAUSTED without RetryInfo: %v", st.Details())
				}
			}
			if err == nil && resp.PartialSuccess().RejectedDataPoints() != tc.wantRej {
				t.Errorf("rejected %d, want %d", resp.PartialSuccess().RejectedDataPoints(), tc.wantRej)
			}
			tresp, err := ptraceotlp.NewGRPCClient(conn).Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(sampleTraces(2)))
			if status.Code(err) != tc.wantCode {
				t.Fatalf("traces: code %v, want %v", status.Code(err), tc.wantCode)
			}
			if err == nil && tresp.PartialSuccess().RejectedSpans() != tc.wantRej {
				t.Errorf("traces rejected %d, want %d", tresp.PartialSuccess().RejectedSpans(), tc.wantRej)
			}
		})
	}
}

// TestHTTPServer checks the real listener end to end and that Shutdown
// without Start releases the ports.
func TestHTTPServer(t *testing.T) {
	s := &sink{}
	r := newTestReceiver(t, s, 1<<20)
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+r.HTTPAddr().String()+"/v1/metrics", "application/x-protobuf", bytes.NewReader(protoBody(t, 7)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || s.points != 7 {
		t.Fatalf("status %d, points %d", resp.StatusCode, s.points)
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	r2 := newTestReceiver(t, s, 1<<20)
	if err := r2.Listen(); err != nil {
		t.Fatal(err)
	}
	if err := r2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
