package otlpin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // OTLP exporters may gzip gRPC payloads.
	"google.golang.org/grpc/status"

	"github.com/lookout-dev/lookout/internal/ingest"
	"github.com/lookout-dev/lookout/internal/webauth"
)

// Options configure a Receiver. Start from DefaultOptions.
type Options struct {
	// GRPCListen is the OTLP/gRPC address; empty disables gRPC.
	// Default 127.0.0.1:4317.
	GRPCListen string
	// HTTPListen is the OTLP/HTTP address; empty disables HTTP.
	// Default 127.0.0.1:4318.
	HTTPListen string
	// MaxRequestBytes bounds one request's decompressed size. Default 16 MiB.
	MaxRequestBytes int64
	// MaxConcurrentRequests bounds requests being stored at once; requests
	// beyond it are refused with 429 / RESOURCE_EXHAUSTED so the client backs
	// off. Default 64.
	MaxConcurrentRequests int
	// MaxInFlightBytes bounds the request bytes (decompressed) being read,
	// decoded and stored at once across HTTP and gRPC; a request that would
	// go over it is refused with 429 / RESOURCE_EXHAUSTED before its body is
	// read (a request larger than the whole budget is admitted alone).
	// Default 256 MiB.
	MaxInFlightBytes int64
	// MemoryLimit, when not 0, refuses new requests with 429 /
	// RESOURCE_EXHAUSTED while the process's memory is above 90% of it, as
	// the Collector's memory_limiter does.
	MemoryLimit uint64
	// RetryAfter is the delay suggested to clients told to retry. Default 1s.
	RetryAfter time.Duration
	// Limits bound what a data point or span may carry. Default
	// DefaultLimits(); the zero value means none.
	Limits Limits
	// WebConfigFile, in exporter-toolkit's format, sets TLS and basic
	// authentication on both listeners; empty: plain, no authentication.
	WebConfigFile string
}

// DefaultOptions returns the defaults described on Options.
func DefaultOptions() Options {
	return Options{
		GRPCListen:            "127.0.0.1:4317",
		HTTPListen:            "127.0.0.1:4318",
		MaxRequestBytes:       16 << 20,
		MaxConcurrentRequests: 64,
		MaxInFlightBytes:      256 << 20,
		RetryAfter:            time.Second,
		Limits:                DefaultLimits(),
	}
}

// Receiver serves OTLP over gRPC and HTTP and hands the decoded data to the
// sinks. Start binds the listeners; Shutdown stops accepting, waits for
// requests in flight and returns. A Receiver is started at most once.
type Receiver struct {
	opts    Options
	metrics ingest.MetricsSink
	traces  ingest.TracesSink
	logger  *slog.Logger
	m       *receiverMetrics
	sem     chan struct{}
	admit   *admission

	grpcLn, httpLn net.Listener
	grpcSrv        *grpc.Server
	httpSrv        *http.Server
	wg             sync.WaitGroup
	serveErr       chan error
	bound, started bool
}

// New returns a receiver. A nil traces sink accepts and counts spans
// without storing them. metrics must not be nil.
func New(opts Options, metrics ingest.MetricsSink, traces ingest.TracesSink, logger *slog.Logger, reg prometheus.Registerer) (*Receiver, error) {
	if metrics == nil {
		return nil, errors.New("otlpin: a metrics sink is required")
	}
	if opts.MaxRequestBytes <= 0 {
		return nil, errors.New("otlpin: max request size must be positive")
	}
	if opts.MaxConcurrentRequests <= 0 {
		opts.MaxConcurrentRequests = DefaultOptions().MaxConcurrentRequests
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.MaxInFlightBytes <= 0 {
		opts.MaxInFlightBytes = DefaultOptions().MaxInFlightBytes
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if traces == nil {
		traces = discardTraces{}
	}
	return &Receiver{
		opts:     opts,
		metrics:  metrics,
		traces:   traces,
		logger:   logger,
		m:        newReceiverMetrics(reg),
		sem:      make(chan struct{}, opts.MaxConcurrentRequests),
		admit:    newAdmission(opts.MaxInFlightBytes, opts.MemoryLimit),
		serveErr: make(chan error, 2),
	}, nil
}

// Listen binds the configured listeners without serving yet, so their
// addresses are known. Start calls it if needed.
func (r *Receiver) Listen() error {
	if r.bound {
		return nil
	}
	r.bound = true
	if r.opts.GRPCListen != "" {
		ln, err := net.Listen("tcp", r.opts.GRPCListen)
		if err != nil {
			return fmt.Errorf("listen OTLP/gRPC on %s: %w", r.opts.GRPCListen, err)
		}
		auth, err := webauth.GRPCServerOptions(r.opts.WebConfigFile)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("OTLP/gRPC: %w", err)
		}
		r.grpcLn = ln
		r.grpcSrv = grpc.NewServer(append([]grpc.ServerOption{
			grpc.MaxRecvMsgSize(int(r.opts.MaxRequestBytes)),
			grpc.ChainUnaryInterceptor(r.recoverPanic),
			// Requests arrive as raw bytes, so that their size is admitted
			// before they are decoded and a malformed one is answered
			// InvalidArgument.
			grpc.ForceServerCodecV2(rawCodec{}),
			grpc.InTapHandle(r.tapAdmit),
		}, auth...)...)
		r.grpcSrv.RegisterService(&metricsServiceDesc, r)
		r.grpcSrv.RegisterService(&tracesServiceDesc, r)
	}
	if r.opts.HTTPListen != "" {
		ln, err := net.Listen("tcp", r.opts.HTTPListen)
		if err != nil {
			if r.grpcLn != nil {
				_ = r.grpcLn.Close()
			}
			return fmt.Errorf("listen OTLP/HTTP on %s: %w", r.opts.HTTPListen, err)
		}
		r.httpLn = ln
		// A request may take a minute to arrive and its answer a minute to
		// leave (a slow link, a 16 MiB body); idle connections close after two.
		r.httpSrv = &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: time.Minute, WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	}
	return nil
}

// Start binds the listeners (unless Listen did) and serves in the
// background.
func (r *Receiver) Start() error {
	if err := r.Listen(); err != nil {
		return err
	}
	r.started = true
	if r.grpcSrv != nil {
		r.wg.Go(func() {
			if err := r.grpcSrv.Serve(r.grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				r.serveErr <- fmt.Errorf("OTLP/gRPC server: %w", err)
			}
		})
	}
	if r.httpSrv != nil {
		r.wg.Go(func() {
			serve := r.httpSrv.Serve
			if r.opts.WebConfigFile != "" {
				serve = func(ln net.Listener) error { return webauth.Serve(ln, r.httpSrv, r.opts.WebConfigFile, r.logger) }
			}
			if err := serve(r.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.serveErr <- fmt.Errorf("OTLP/HTTP server: %w", err)
			}
		})
	}
	return nil
}

// Err reports a server that stopped on its own; it never closes.
func (r *Receiver) Err() <-chan error { return r.serveErr }

// GRPCAddr returns the bound gRPC address, or nil when disabled.
func (r *Receiver) GRPCAddr() net.Addr {
	if r.grpcLn == nil {
		return nil
	}
	return r.grpcLn.Addr()
}

// HTTPAddr returns the bound HTTP address, or nil when disabled.
func (r *Receiver) HTTPAddr() net.Addr {
	if r.httpLn == nil {
		return nil
	}
	return r.httpLn.Addr()
}

// Shutdown stops accepting requests and waits for those in flight to reach
// the sinks, or for ctx to end.
func (r *Receiver) Shutdown(ctx context.Context) error {
	if !r.started {
		for _, ln := range []net.Listener{r.grpcLn, r.httpLn} {
			if ln != nil {
				_ = ln.Close()
			}
		}
		return nil
	}
	var errs []error
	if r.httpSrv != nil {
		if err := r.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop OTLP/HTTP: %w", err))
			_ = r.httpSrv.Close()
		}
	}
	if r.grpcSrv != nil {
		done := make(chan struct{})
		go func() { r.grpcSrv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			r.grpcSrv.Stop()
			<-done
			errs = append(errs, fmt.Errorf("stop OTLP/gRPC: %w", ctx.Err()))
		}
	}
	r.wg.Wait()
	return errors.Join(errs...)
}

// acquire takes a request slot, or reports overload.
func (r *Receiver) acquire() bool {
	select {
	case r.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

func (r *Receiver) release() { <-r.sem }

type discardTraces struct{}

func (discardTraces) ConsumeTraces(context.Context, ptrace.Traces) (ingest.Result, error) {
	return ingest.Result{}, nil
}

type receiverMetrics struct {
	truncated prometheus.Counter
	items     *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
}

func newReceiverMetrics(reg prometheus.Registerer) *receiverMetrics {
	f := promauto.With(reg)
	m := &receiverMetrics{
		truncated: f.NewCounter(prometheus.CounterOpts{
			Namespace: "lookout", Subsystem: "otlp", Name: "truncated_strings_total",
			Help: "Span strings (attribute values, names, status messages) cut to the ingest limit.",
		}),
		items: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "lookout", Subsystem: "otlp", Name: "accepted_items_total",
			Help: "Metric data points or spans accepted, by signal and transport.",
		}, []string{"signal", "transport"}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "lookout", Subsystem: "otlp", Name: "rejected_items_total",
			Help: "Metric data points or spans refused (bad data, partial success, overload), by signal and transport.",
		}, []string{"signal", "transport"}),
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "lookout", Subsystem: "otlp", Name: "requests_total",
			Help: "OTLP export requests by signal, transport and outcome code (HTTP status or gRPC code).",
		}, []string{"signal", "transport", "code"}),
		latency: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "lookout", Subsystem: "otlp", Name: "request_duration_seconds",
			Help:    "Time to decode and store one OTLP export request.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"signal", "transport"}),
	}
	// Export zeros from the start so rate() works from the first request.
	for _, signal := range []string{"metrics", "traces"} {
		for _, transport := range []string{"grpc", "http"} {
			m.items.WithLabelValues(signal, transport)
			m.rejected.WithLabelValues(signal, transport)
		}
	}
	return m
}

// recoverPanic turns a panic in an OTLP/gRPC handler into an Internal
// error for that request, as net/http does for the HTTP receiver, instead
// of ending the process.
func (r *Receiver) recoverPanic(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.logger.Error("panic in OTLP/gRPC handler", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	return handler(ctx, req)
}
