package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"golang.org/x/sync/errgroup"

	"github.com/lookout-dev/lookout/internal/analysis"
	"github.com/lookout-dev/lookout/internal/otlpin"
	"github.com/lookout-dev/lookout/internal/remote"
	"github.com/lookout-dev/lookout/internal/webauth"
)

// App is one lookout process: receivers, stores and HTTP servers, as New
// assembled them. Run serves until told to stop and then closes everything.
type App struct {
	cfg    Config
	logger *slog.Logger
	reg    *prometheus.Registry

	receiver *otlpin.Receiver
	servers  []served
	// services run for the App's lifetime (the rule manager, the span
	// metrics deriver, the dashboards library). Their context is cancelled
	// on shutdown after the receivers and servers stop; a service returning
	// an error before shutdown stops the App.
	services       []func(ctx context.Context) error
	runServices    errgroup.Group
	cancelServices context.CancelFunc // set by Run
	// closers holds the close of every part New opened, last opened on
	// top; New closes them on failure and Run when it stops.
	closers closerStack

	promLn, tempoLn, uiLn net.Listener

	ready     chan struct{}
	readyOnce sync.Once
	ran       bool
}

// serve binds addr and gives it an HTTP server with handler h, started by
// Run; its close stops the server gracefully, or closes the listener when
// the server never started.
func (a *App) serve(what, addr string, h http.Handler) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s on %s: %w", what, addr, err)
	}
	s := a.newServer(ln, h)
	a.servers = append(a.servers, s)
	a.closers.push("stop the "+what+" server", func(ctx context.Context) error {
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	})
	return ln, nil
}

// served is an HTTP server and the listener it serves.
type served struct {
	srv *http.Server
	ln  net.Listener
}

func (a *App) newServer(ln net.Listener, h http.Handler) served {
	return served{ln: ln, srv: &http.Server{
		Addr:              ln.Addr().String(),
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// Prometheus's --web.read-timeout default; no answer takes longer to
		// write than the longest query may run, plus a minute to send it.
		ReadTimeout:  5 * time.Minute,
		WriteTimeout: max(a.cfg.QueryTimeout, a.cfg.TempoQueryTimeout, analysis.DefaultTimeout) + time.Minute,
		IdleTimeout:  5 * time.Minute,
		ErrorLog:     slog.NewLogLogger(a.logger.Handler(), slog.LevelDebug),
	}}
}

// uiHandler serves site at /, the Prometheus API under /prometheus/ and
// the Tempo API under /tempo/ (or proxies to --prometheus.url/--tempo.url),
// with the analysis engine over the same sources.
func (a *App) uiHandler(prom, tempo http.Handler, local *analysis.Analyzer, site http.Handler) (http.Handler, error) {
	var err error
	if a.cfg.PrometheusURL != "" {
		if prom, err = proxy(a.cfg.PrometheusURL); err != nil {
			return nil, err
		}
	}
	if a.cfg.TempoURL != "" {
		if tempo, err = proxy(a.cfg.TempoURL); err != nil {
			return nil, err
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/prometheus/", http.StripPrefix("/prometheus", prom))
	an, err := a.cfg.uiAnalyzer(local)
	if err != nil {
		return nil, err
	}
	// Served here even when /prometheus/ proxies to a remote Prometheus,
	// which has no such endpoint.
	mux.Handle("/prometheus"+AnalyzePath, an.Handler())
	// The UI listener serves reads only: a UI opened to a team must not
	// take writes on the Prometheus listener's write paths.
	readOnly := func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "the UI listener takes no writes: send them to the Prometheus or OTLP listener", http.StatusNotFound)
	}
	mux.HandleFunc("/prometheus/api/v1/write", readOnly)
	mux.HandleFunc("/prometheus/api/v1/otlp/", readOnly)
	// Go's profiler is never served to the UI's audience.
	mux.Handle("/prometheus/debug/", http.NotFoundHandler())
	mux.Handle("/tempo/", http.StripPrefix("/tempo", tempo))
	mux.Handle("/", site)
	return instrument(a.reg, "ui", mux), nil
}

// AnalyzePath is the spike analysis endpoint on the Prometheus listener.
const AnalyzePath = "/api/lookout/analyze"

// uiAnalyzer is the analysis engine behind the UI: local, over the
// embedded stores, reading --prometheus.url and --tempo.url instead where
// the UI reads those.
func (c Config) uiAnalyzer(local *analysis.Analyzer) (*analysis.Analyzer, error) {
	if c.PrometheusURL == "" && c.TempoURL == "" {
		return local, nil
	}
	an := *local
	client := &http.Client{Timeout: analysis.DefaultTimeout}
	if c.PrometheusURL != "" {
		p, err := remote.NewPrometheus(c.PrometheusURL, client)
		if err != nil {
			return nil, fmt.Errorf("--prometheus.url: %w", err)
		}
		an.Exemplars = p
	}
	if c.TempoURL != "" {
		t, err := remote.NewTempo(c.TempoURL, client)
		if err != nil {
			return nil, fmt.Errorf("--tempo.url: %w", err)
		}
		an.Traces, an.Finder = t, t
	}
	return &an, nil
}

func proxy(raw string) (http.Handler, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.SetXForwarded()
		},
	}
	return rp, nil
}

// Run serves until ctx is cancelled or a server, a receiver or a service
// fails, then stops gracefully (within --shutdown-timeout) by closing what
// New opened in reverse order: the receivers first (no new data), then the
// HTTP servers and the services, then the PromQL engine, the metric store
// (flushing queued exemplars to the index), the trace store and the
// exemplar index. Run may be called once; it releases everything New
// opened, also when it fails.
func (a *App) Run(ctx context.Context) error {
	if a.ran {
		return errors.New("app: Run called twice")
	}
	a.ran = true
	stopCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	}
	if err := a.receiver.Start(); err != nil {
		sctx, cancel := stopCtx()
		defer cancel()
		return errors.Join(err, a.closers.close(sctx))
	}
	failed := make(chan error, len(a.servers)+len(a.services)+1)
	var serving sync.WaitGroup
	for _, s := range a.servers {
		serving.Go(func() {
			serve := s.srv.Serve
			if a.cfg.WebConfigFile != "" {
				serve = func(ln net.Listener) error {
					return webauth.Serve(ln, s.srv, a.cfg.WebConfigFile, a.logger.With("component", "web", "address", ln.Addr().String()))
				}
			}
			if err := serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("serve %s: %w", s.srv.Addr, err)
			}
		})
	}
	svcCtx, cancelSvc := context.WithCancel(context.WithoutCancel(ctx))
	a.cancelServices = cancelSvc
	for _, f := range a.services {
		a.runServices.Go(func() error {
			err := f(svcCtx)
			if err != nil && svcCtx.Err() == nil {
				failed <- err
			}
			return err
		})
	}
	a.readyOnce.Do(func() { close(a.ready) })
	a.logger.Info("lookout ready", a.addrAttrs()...)

	var runErr error
	select {
	case <-ctx.Done():
		a.logger.Info("shutting down")
	case runErr = <-failed:
		a.logger.Error("stopping after failure", "err", runErr)
	case runErr = <-a.receiver.Err():
		a.logger.Error("stopping after failure", "err", runErr)
	}

	sctx, cancel := stopCtx()
	defer cancel()
	err := errors.Join(runErr, a.closers.close(sctx))
	serving.Wait()
	if err != nil {
		return err
	}
	a.logger.Info("lookout stopped cleanly")
	return nil
}

// stopServices cancels the services' context and waits for them; it does
// nothing when Run never started them.
func (a *App) stopServices(context.Context) error {
	if a.cancelServices == nil {
		return nil
	}
	a.cancelServices()
	if err := a.runServices.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func (a *App) isReady() bool {
	select {
	case <-a.ready:
		return true
	default:
		return false
	}
}

// Ready is closed once every server is serving.
func (a *App) Ready() <-chan struct{} { return a.ready }

// PrometheusAddr is the bound Prometheus API address.
func (a *App) PrometheusAddr() string { return addrString(a.promLn) }

// TempoAddr is the bound Tempo API address ("" when disabled).
func (a *App) TempoAddr() string { return addrString(a.tempoLn) }

// UIAddr is the bound UI address ("" when disabled).
func (a *App) UIAddr() string { return addrString(a.uiLn) }

// OTLPGRPCAddr is the bound OTLP/gRPC address ("" when disabled).
func (a *App) OTLPGRPCAddr() string { return netAddrString(a.receiver.GRPCAddr()) }

// OTLPHTTPAddr is the bound OTLP/HTTP address ("" when disabled).
func (a *App) OTLPHTTPAddr() string { return netAddrString(a.receiver.HTTPAddr()) }

func (a *App) addrAttrs() []any {
	return []any{
		"otlp_grpc", a.OTLPGRPCAddr(), "otlp_http", a.OTLPHTTPAddr(),
		"prometheus", a.PrometheusAddr(), "tempo", a.TempoAddr(), "ui", a.UIAddr(),
		"data_dir", a.cfg.DataDir,
	}
}

func addrString(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

func netAddrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func (c Config) flagMap() map[string]string {
	return map[string]string{
		"data-dir":                         c.DataDir,
		"memory.limit":                     strconv.FormatInt(c.MemoryLimit, 10),
		"metrics.max-series":               strconv.Itoa(c.MaxSeries),
		"otlp.max-point-attributes":        strconv.Itoa(c.IngestLimits.MaxPointAttributes),
		"otlp.max-resource-attributes":     strconv.Itoa(c.IngestLimits.MaxResourceAttributes),
		"otlp.max-label-name-bytes":        strconv.Itoa(c.IngestLimits.MaxLabelNameBytes),
		"otlp.max-label-value-bytes":       strconv.Itoa(c.IngestLimits.MaxLabelValueBytes),
		"otlp.max-buckets":                 strconv.Itoa(c.IngestLimits.MaxBuckets),
		"otlp.max-span-string-bytes":       strconv.Itoa(c.IngestLimits.MaxSpanStringBytes),
		"otlp.max-event-link-attributes":   strconv.Itoa(c.IngestLimits.MaxEventLinkAttributes),
		"otlp.grpc-listen":                 c.OTLPGRPCListen,
		"otlp.http-listen":                 c.OTLPHTTPListen,
		"prometheus.listen":                c.PrometheusListen,
		"tempo.listen":                     c.TempoListen,
		"ui.listen":                        c.UIListen,
		"rules":                            c.Rules,
		"otlp.translation-strategy":        c.TranslationStrategy,
		"metrics.retention":                c.MetricsRetention.String(),
		"metrics.block-duration":           c.MetricsBlockDuration.String(),
		"traces.retention":                 c.TracesRetention.String(),
		"traces.sampling":                  c.samplingFlag(),
		"prometheus.url":                   c.PrometheusURL,
		"tempo.url":                        c.TempoURL,
		"otlp.promote-resource-attributes": strings.Join(c.PromoteResourceAttributes, ","),
		"prometheus.remote-write-receiver": strconv.FormatBool(c.RemoteWriteReceiver),
		"web.config.file":                  c.WebConfigFile,
		"web.enable-pprof":                 strconv.FormatBool(c.EnablePprof),
		"query.max-concurrency":            strconv.Itoa(c.QueryMaxConcurrency),
		"query.max-samples":                strconv.Itoa(c.QueryMaxSamples),
		"query.timeout":                    model.Duration(c.QueryTimeout).String(),
		"dashboards":                       strings.Join(c.Dashboards, ","),
		"spanmetrics.enabled":              strconv.FormatBool(c.SpanMetrics),
		"spanmetrics.cardinality-limit":    strconv.Itoa(c.SpanMetricsCardinalityLimit),
	}
}

// instrument records request latency by handler and code.
func instrument(reg prometheus.Registerer, server string, h http.Handler) http.Handler {
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace:   "lookout",
		Subsystem:   "http",
		Name:        "request_duration_seconds",
		Help:        "HTTP request latency by server, method and status code.",
		ConstLabels: prometheus.Labels{"server": server},
		Buckets:     prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"method", "code"})
	if err := reg.Register(hist); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			hist = are.ExistingCollector.(*prometheus.HistogramVec)
		}
	}
	return promhttp.InstrumentHandlerDuration(hist, h)
}

// newRegistry returns a registry for Lookout's own metrics with the Go
// runtime and process collectors, as Prometheus's /metrics has.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// samplingFlag is --traces.sampling as given, "" when off.
func (c Config) samplingFlag() string {
	if c.TracesSampling == nil {
		return ""
	}
	return c.TracesSampling.String()
}
