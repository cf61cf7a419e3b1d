package shop

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
)

// otlpSink is an in-process OTLP/gRPC receiver built on pdata's services.
// It keeps everything it receives.
type otlpSink struct {
	ptraceotlp.UnimplementedGRPCServer
	addr string
	stop func()
	// countOnly drops what is received after counting it (benchmarks).
	countOnly bool

	mu      sync.Mutex
	traces  []ptrace.Traces
	metrics []pmetric.Metrics
	spans   int
}

type metricsService struct {
	pmetricotlp.UnimplementedGRPCServer
	sink *otlpSink
}

func (s *otlpSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	n := req.Traces().SpanCount()
	if s.countOnly {
		s.mu.Lock()
		s.spans += n
		s.mu.Unlock()
		return ptraceotlp.NewExportResponse(), nil
	}
	t := ptrace.NewTraces()
	req.Traces().CopyTo(t)
	s.mu.Lock()
	s.traces = append(s.traces, t)
	s.spans += n
	s.mu.Unlock()
	return ptraceotlp.NewExportResponse(), nil
}

func (m *metricsService) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	if m.sink.countOnly {
		return pmetricotlp.NewExportResponse(), nil
	}
	md := pmetric.NewMetrics()
	req.Metrics().CopyTo(md)
	m.sink.mu.Lock()
	m.sink.metrics = append(m.sink.metrics, md)
	m.sink.mu.Unlock()
	return pmetricotlp.NewExportResponse(), nil
}

// startOTLPSink serves OTLP/gRPC on a free loopback port until the test ends.
func startOTLPSink(tb testing.TB) *otlpSink {
	tb.Helper()
	s, err := newOTLPSink()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.stop)
	return s
}

// newOTLPSink starts a receiver; the caller must call its stop.
func newOTLPSink() (*otlpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &otlpSink{addr: ln.Addr().String()}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, s)
	pmetricotlp.RegisterGRPCServer(srv, &metricsService{sink: s})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	s.stop = func() {
		srv.Stop()
		<-done
	}
	return s, nil
}

// startOTLPSinkProcess runs a counting receiver in a child process (this
// test binary, re-executed) and returns its address.
func startOTLPSinkProcess(tb testing.TB) string {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), sinkProcessEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = stdin.Close() // the child exits when its stdin closes
		_ = cmd.Wait()
	})
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("OTLP sink process: %v", err)
	}
	return strings.TrimSpace(addr)
}

// snapshot returns what was received so far.
func (s *otlpSink) snapshot() ([]ptrace.Traces, []pmetric.Metrics) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ptrace.Traces(nil), s.traces...), append([]pmetric.Metrics(nil), s.metrics...)
}

func (s *otlpSink) spanCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spans
}
