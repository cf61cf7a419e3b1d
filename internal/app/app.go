package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	v1 "github.com/prometheus/prometheus/web/api/v1"
	"golang.org/x/sync/errgroup"

	"github.com/lookout-dev/lookout/internal/analysis"
	"github.com/lookout-dev/lookout/internal/exemplars"
	"github.com/lookout-dev/lookout/internal/ingest"
	"github.com/lookout-dev/lookout/internal/metricstore"
	"github.com/lookout-dev/lookout/internal/otlpin"
	"github.com/lookout-dev/lookout/internal/promapi"
	"github.com/lookout-dev/lookout/internal/remote"
	"github.com/lookout-dev/lookout/internal/webauth"
)

// Options are the wiring points for the parts other packages provide (trace
// store, exemplar index, Tempo API, UI, alerting). Every field is optional.
type Options struct {
	// TracesSink stores received spans; nil accepts and counts them only.
	TracesSink ingest.TracesSink
	// ExemplarWriter receives every exemplar the TSDB accepted.
	ExemplarWriter exemplars.Writer
	// ExemplarQueryable answers /api/v1/query_exemplars (and the query
	// extension); nil uses the TSDB's in-memory exemplar storage.
	ExemplarQueryable storage.ExemplarQueryable
	// RulesRetriever serves /api/v1/rules and /api/v1/alerts; nil serves
	// empty lists.
	RulesRetriever func(context.Context) v1.RulesRetriever
	// AlertExtension adds fields to the alerts of the Prometheus API's
	// /api/v1/alerts and /api/v1/rules answers (on the Prometheus port and
	// under /prometheus/ on the UI port), e.g. their evidence.
	AlertExtension promapi.AlertExtension
	// Analyzer serves /api/lookout/analyze on the Prometheus port (and
	// under /prometheus/ on the UI port); nil answers 404.
	Analyzer *analysis.Analyzer
	// TempoHandler serves the Tempo HTTP API on --tempo.listen and under
	// /tempo/ on the UI port; nil answers 503.
	TempoHandler http.Handler
	// UIHandler serves the UI at / on the UI port; nil serves a placeholder.
	UIHandler http.Handler
	// Extend runs in New after the metric store and PromQL engine exist
	// and before the servers are built, so it can fill in fields of o from
	// them (e.g. a rule manager's RulesRetriever).
	Extend func(p Parts, o *Options) error
	// Services run for the App's lifetime (e.g. a rule manager). Their
	// context is cancelled on shutdown after the receivers stop; Run waits
	// for them before closing the stores. A service returning an error
	// before shutdown stops the App.
	Services []func(ctx context.Context) error
	// Closers are closed on shutdown after the services end and after the
	// metric store has closed and flushed its exemplars to ExemplarWriter
	// (e.g. the trace store, the exemplar index).
	Closers []io.Closer
	// Registry collects Lookout's own metrics for /metrics; nil creates one
	// with the Go and process collectors.
	Registry *prometheus.Registry
}

// Parts are the assembled pieces handed to Options.Extend.
type Parts struct {
	Config      Config
	Logger      *slog.Logger
	Registry    *prometheus.Registry
	MetricStore *metricstore.Store
	Engine      *promql.Engine
}

// App is one lookout process: receivers, stores and HTTP servers.
type App struct {
	cfg    Config
	logger *slog.Logger
	opts   Options
	reg    *prometheus.Registry

	store    *metricstore.Store
	engine   *promql.Engine
	api      *promapi.API
	receiver *otlpin.Receiver

	promLn, tempoLn, uiLn net.Listener
	servers               []served
	listeners             []net.Listener

	ready     chan struct{}
	readyOnce sync.Once
	closeOnce sync.Once
	closeErr  error
	ran       bool
}

// NewWithOptions assembles Lookout: it opens the stores (replaying the WAL)
// and binds every listener, so addresses are known before Run.
func NewWithOptions(cfg Config, logger *slog.Logger, opts Options) (_ *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg := opts.Registry
	if reg == nil {
		reg = newRegistry()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	a := &App{cfg: cfg, logger: logger, reg: reg, ready: make(chan struct{})}
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()

	so := metricstore.DefaultOptions()
	so.Retention = cfg.MetricsRetention
	so.MaxExemplars = cfg.MaxExemplars
	so.OTLP.TranslationStrategy = otlptranslator.TranslationStrategyOption(cfg.TranslationStrategy)
	so.OTLP.PromoteResourceAttributes = cfg.PromoteResourceAttributes
	so.DeltaToCumulative = cfg.DeltaToCumulative
	so.MaxSeries = cfg.MaxSeries
	so.ExemplarWriter = opts.ExemplarWriter
	start := time.Now()
	a.store, err = metricstore.Open(metricstore.MetricsDir(cfg.DataDir), so, logger.With("component", "metricstore"), reg)
	if err != nil {
		return nil, err
	}
	logger.Info("metric store open", "dir", a.store.Dir(), "took", time.Since(start).Round(time.Millisecond))
	// Prometheus's active query tracker: queues queries beyond
	// --query.max-concurrency and logs, at the next start, the queries that
	// were running when the process died. The engine closes it.
	queries, err := promql.NewActiveQueryTracker(cfg.DataDir, cfg.QueryMaxConcurrency, logger.With("component", "active queries"))
	if err != nil {
		return nil, err
	}
	a.engine = promapi.NewEngine(logger, reg, promapi.EngineOptions{
		Lookback: so.LookbackDelta, Timeout: cfg.QueryTimeout, MaxSamples: cfg.QueryMaxSamples, Tracker: queries,
	})

	if opts.Extend != nil {
		if err := opts.Extend(Parts{Config: cfg, Logger: logger, Registry: reg, MetricStore: a.store, Engine: a.engine}, &opts); err != nil {
			return nil, fmt.Errorf("extend: %w", err)
		}
	}
	a.opts = opts

	eq := opts.ExemplarQueryable
	if eq == nil {
		eq = a.store.ExemplarQueryable()
	}
	ro := otlpin.DefaultOptions()
	ro.GRPCListen = cfg.OTLPGRPCListen
	ro.HTTPListen = cfg.OTLPHTTPListen
	ro.MaxRequestBytes = cfg.MaxRequestBytes
	ro.Limits = cfg.IngestLimits
	if cfg.MemoryLimit > 0 {
		ro.MemoryLimit = uint64(cfg.MemoryLimit)
		ro.MaxInFlightBytes = cfg.MemoryLimit / 16
	}
	ro.WebConfigFile = cfg.WebConfigFile
	a.receiver, err = otlpin.New(ro, a.store, opts.TracesSink, logger.With("component", "otlp"), reg)
	if err != nil {
		return nil, err
	}

	po := promapi.DefaultOptions()
	po.Queryable = a.store.Queryable()
	po.ExemplarQueryable = eq
	po.Appendable = a.store.WriteAppendable()
	po.RemoteWrite = cfg.RemoteWriteReceiver
	// Prometheus's OTLP path takes metrics only, as Prometheus's does.
	otlpMetrics := http.NewServeMux()
	otlpMetrics.Handle("/v1/metrics", a.receiver.Handler())
	po.OTLP = otlpMetrics
	po.AdminStats = a.store.AdminStats()
	po.DBDir = a.store.Dir()
	po.RulesRetriever = opts.RulesRetriever
	po.AlertExtension = opts.AlertExtension
	po.Engine = a.engine
	po.LookbackDelta = so.LookbackDelta
	po.QueryExemplars = cfg.QueryExemplars
	po.Retention = cfg.MetricsRetention
	po.Flags = cfg.flagMap()
	po.Pprof = cfg.EnablePprof
	po.Ready = a.isReady
	po.Gatherer = reg
	po.Registerer = reg
	po.Logger = logger
	a.api, err = promapi.New(po)
	if err != nil {
		return nil, err
	}

	if err := a.receiver.Listen(); err != nil {
		return nil, err
	}

	promHandler := a.api.Handler()
	if opts.Analyzer != nil {
		mux := http.NewServeMux()
		mux.Handle(AnalyzePath, opts.Analyzer.Handler())
		mux.Handle("/", promHandler)
		promHandler = mux
	}
	promHandler = instrument(reg, "prometheus", promHandler)
	if a.promLn, err = a.listen("Prometheus API", cfg.PrometheusListen); err != nil {
		return nil, err
	}
	a.addServer(a.promLn, promHandler)

	tempo := opts.TempoHandler
	if tempo == nil {
		tempo = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "the trace store is not part of this build", http.StatusServiceUnavailable)
		})
	}
	if cfg.TempoListen != "" {
		if a.tempoLn, err = a.listen("Tempo API", cfg.TempoListen); err != nil {
			return nil, err
		}
		a.addServer(a.tempoLn, instrument(reg, "tempo", tempo))
	}
	if cfg.UIListen != "" {
		ui, err := a.uiHandler(promHandler, tempo)
		if err != nil {
			return nil, err
		}
		if a.uiLn, err = a.listen("UI", cfg.UIListen); err != nil {
			return nil, err
		}
		a.addServer(a.uiLn, ui)
	}
	return a, nil
}

func (a *App) listen(what, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s on %s: %w", what, addr, err)
	}
	a.listeners = append(a.listeners, ln)
	return ln, nil
}

// served is an HTTP server and the listener it serves.
type served struct {
	srv *http.Server
	ln  net.Listener
}

func (a *App) addServer(ln net.Listener, h http.Handler) {
	a.servers = append(a.servers, served{ln: ln, srv: &http.Server{
		Addr:              ln.Addr().String(),
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// Prometheus's --web.read-timeout default; no answer takes longer to
		// write than the longest query may run, plus a minute to send it.
		ReadTimeout:  5 * time.Minute,
		WriteTimeout: max(a.cfg.QueryTimeout, a.cfg.TempoQueryTimeout, analysis.DefaultTimeout) + time.Minute,
		IdleTimeout:  5 * time.Minute,
		ErrorLog:     slog.NewLogLogger(a.logger.Handler(), slog.LevelDebug),
	}})
}

// uiHandler serves the UI at /, the Prometheus API under /prometheus/ and
// the Tempo API under /tempo/ (or proxies to --prometheus.url/--tempo.url).
func (a *App) uiHandler(prom, tempo http.Handler) (http.Handler, error) {
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
	an, err := a.uiAnalyzer()
	if err != nil {
		return nil, err
	}
	if an != nil {
		// Served here even when /prometheus/ proxies to a remote
		// Prometheus, which has no such endpoint.
		mux.Handle("/prometheus"+AnalyzePath, an.Handler())
	}
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
	if a.opts.UIHandler != nil {
		mux.Handle("/", a.opts.UIHandler)
	} else {
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintln(w, "Lookout: the web UI is not part of this build. APIs: /prometheus/api/v1/..., /tempo/api/...")
		})
	}
	return instrument(a.reg, "ui", mux), nil
}

// AnalyzePath is the spike analysis endpoint on the Prometheus listener.
const AnalyzePath = "/api/lookout/analyze"

// uiAnalyzer is the analysis engine behind the UI: the embedded stores', or
// one over --prometheus.url and --tempo.url when the UI reads those.
func (a *App) uiAnalyzer() (*analysis.Analyzer, error) {
	if a.cfg.PrometheusURL == "" && a.cfg.TempoURL == "" {
		return a.opts.Analyzer, nil
	}
	an := &analysis.Analyzer{Logger: a.logger.With("component", "analysis")}
	if a.opts.Analyzer != nil {
		*an = *a.opts.Analyzer
	}
	client := &http.Client{Timeout: analysis.DefaultTimeout}
	if a.cfg.PrometheusURL != "" {
		p, err := remote.NewPrometheus(a.cfg.PrometheusURL, client)
		if err != nil {
			return nil, fmt.Errorf("--prometheus.url: %w", err)
		}
		an.Exemplars = p
	}
	if a.cfg.TempoURL != "" {
		t, err := remote.NewTempo(a.cfg.TempoURL, client)
		if err != nil {
			return nil, fmt.Errorf("--tempo.url: %w", err)
		}
		an.Traces, an.Finder = t, t
	}
	if an.Exemplars == nil || an.Traces == nil {
		return nil, nil
	}
	return an, nil
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

// Run serves until ctx is cancelled or a server fails, then stops
// gracefully: receivers first (no new data), then the HTTP servers and the
// services, then the TSDB (flushing exemplars to the writer), and finally
// the closers. Run may be called once.
func (a *App) Run(ctx context.Context) error {
	if a.ran {
		return errors.New("app: Run called twice")
	}
	a.ran = true
	if err := a.receiver.Start(); err != nil {
		a.closeAll()
		return err
	}
	svcCtx, cancelSvc := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSvc()
	failed := make(chan error, len(a.servers)+len(a.opts.Services)+1)
	var srvWG sync.WaitGroup
	for _, s := range a.servers {
		srvWG.Go(func() {
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
	var svc errgroup.Group
	for _, f := range a.opts.Services {
		svc.Go(func() error {
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

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	errs = append(errs, runErr)
	if err := a.receiver.Shutdown(sctx); err != nil {
		errs = append(errs, err)
	}
	for _, s := range a.servers {
		if err := s.srv.Shutdown(sctx); err != nil {
			_ = s.srv.Close()
		}
	}
	srvWG.Wait()
	cancelSvc()
	if err := svc.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		errs = append(errs, err)
	}
	a.closeAll()
	errs = append(errs, a.closeErr)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.logger.Info("lookout stopped cleanly")
	return nil
}

// Close releases an App whose Run was never called. Run closes on its own.
func (a *App) Close() error {
	a.closeAll()
	return a.closeErr
}

func (a *App) closeAll() {
	a.closeOnce.Do(func() {
		var errs []error
		for _, ln := range a.listeners {
			_ = ln.Close()
		}
		if a.receiver != nil && !a.ran {
			_ = a.receiver.Shutdown(context.Background()) // closes its listeners
		}
		// The metric store first: closing it hands every queued exemplar
		// to the exemplar writer, which may be one of the closers.
		if a.store != nil {
			if err := a.store.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		for _, c := range a.opts.Closers {
			if err := c.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		if a.api != nil {
			if err := a.api.Close(); err != nil {
				errs = append(errs, err)
			}
		} else if a.engine != nil {
			_ = a.engine.Close()
		}

		a.closeErr = errors.Join(errs...)
	})
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

// MetricStore returns the metric store.
func (a *App) MetricStore() *metricstore.Store { return a.store }

// Engine returns the PromQL engine.
func (a *App) Engine() *promql.Engine { return a.engine }

// Registry returns the registry of Lookout's own metrics.
func (a *App) Registry() *prometheus.Registry { return a.reg }

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
		"traces.retention":                 c.TracesRetention.String(),
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
