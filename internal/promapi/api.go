package promapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/lookout-dev/lookout/internal/buildinfo"

	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/gzip"
	"github.com/lookout-dev/lookout/internal/querylimit"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/route"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/notifications"
	v1 "github.com/prometheus/prometheus/web/api/v1"
)

// PrometheusVersion is the version of the embedded Prometheus libraries,
// reported by /api/v1/status/buildinfo so clients such as Grafana enable the
// features this API has.
const PrometheusVersion = "3.16.0"

// Options configure the API. Start from DefaultOptions and set Queryable,
// ExemplarQueryable and AdminStats, which are required.
type Options struct {
	Queryable         storage.SampleAndChunkQueryable
	ExemplarQueryable storage.ExemplarQueryable
	// Appendable receives remote writes when RemoteWrite is set.
	Appendable storage.AppendableV2
	// RemoteWrite serves Prometheus's remote-write receiver at
	// /api/v1/write (remote write 1.0 and 2.0 messages, as Prometheus
	// accepts by default); it needs Appendable.
	RemoteWrite bool
	// OTLP, when set, serves Prometheus's OTLP receiver path
	// /api/v1/otlp/v1/metrics: it receives the request with the prefix
	// /api/v1/otlp stripped.
	OTLP       http.Handler
	AdminStats v1.TSDBAdminStats
	DBDir      string
	// RulesRetriever serves /api/v1/rules and /api/v1/alerts; nil serves
	// empty lists.
	RulesRetriever func(context.Context) v1.RulesRetriever
	// AlertExtension, when set, adds its fields to every alert of the
	// /api/v1/alerts and /api/v1/rules answers.
	AlertExtension AlertExtension
	// Engine evaluates PromQL; nil creates one with NewEngine, which the
	// API's Close releases.
	Engine *promql.Engine
	// LookbackDelta is PromQL's lookback and the window of the exemplars
	// extension. Default 5 minutes.
	LookbackDelta time.Duration
	// QueryExemplars turns on the "exemplars" member of instant query
	// results. Default on in DefaultOptions.
	QueryExemplars bool
	// Retention is reported by /api/v1/status/runtimeinfo.
	Retention time.Duration
	// Flags are reported by /api/v1/status/flags.
	Flags map[string]string
	// Pprof serves Go's profiler at /debug/pprof/. Default off.
	Pprof bool
	// Ready reports whether the server is ready; nil means always.
	Ready func() bool
	// Gatherer serves /metrics; nil serves no /metrics.
	Gatherer prometheus.Gatherer
	// Registerer receives the engine's and API's own metrics; nil registers
	// them nowhere.
	Registerer prometheus.Registerer
	// Logger receives the API's logs. Default: a logger that discards.
	Logger *slog.Logger
}

// DefaultOptions returns options with the defaults filled in; the storage
// fields still need setting.
func DefaultOptions() Options {
	return Options{LookbackDelta: 5 * time.Minute, QueryExemplars: true, Logger: slog.New(slog.DiscardHandler)}
}

// EngineOptions are the PromQL engine's limits, named and defaulted as
// Prometheus's server flags.
type EngineOptions struct {
	// Lookback is --query.lookback-delta. Default 5m.
	Lookback time.Duration
	// Timeout is --query.timeout: a query running longer is stopped.
	// Default 2m.
	Timeout time.Duration
	// MaxSamples is --query.max-samples: a query loading more samples into
	// memory at once fails. Default 50,000,000.
	MaxSamples int
	// Tracker, when set, queues queries beyond its maximum concurrency
	// (--query.max-concurrency) and logs those running at a crash.
	Tracker promql.QueryTracker
}

// DefaultEngineOptions returns Prometheus's defaults (no tracker).
func DefaultEngineOptions() EngineOptions {
	return EngineOptions{Lookback: 5 * time.Minute, Timeout: 2 * time.Minute, MaxSamples: 50_000_000}
}

// NewEngine returns a PromQL engine configured as Prometheus's server
// configures it, with opts' limits.
func NewEngine(logger *slog.Logger, reg prometheus.Registerer, opts EngineOptions) *promql.Engine {
	return promql.NewEngine(promql.EngineOpts{
		Logger:                   logger.With("component", "query engine"),
		Reg:                      reg,
		MaxSamples:               opts.MaxSamples,
		Timeout:                  opts.Timeout,
		LookbackDelta:            opts.Lookback,
		ActiveQueryTracker:       opts.Tracker,
		NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() },
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
	})
}

// API serves Prometheus's HTTP API v1 (Prometheus's own handler) plus
// /metrics, /-/ready and /-/healthy. It works mounted under a prefix with
// http.StripPrefix.
type API struct {
	ownEngine *promql.Engine // created by New; nil when Options.Engine was given
	handler   http.Handler
}

// New builds the API.
func New(opts Options) (*API, error) {
	if opts.Queryable == nil || opts.AdminStats == nil {
		return nil, errors.New("promapi: Queryable and AdminStats are required")
	}
	if opts.RemoteWrite && opts.Appendable == nil {
		return nil, errors.New("promapi: RemoteWrite needs an Appendable")
	}
	if opts.Logger == nil || opts.LookbackDelta <= 0 {
		return nil, errors.New("promapi: Logger and a positive LookbackDelta are required (start from DefaultOptions)")
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	engine := opts.Engine
	var ownEngine *promql.Engine
	if engine == nil {
		eo := DefaultEngineOptions()
		eo.Lookback = opts.LookbackDelta
		engine = NewEngine(opts.Logger, opts.Registerer, eo)
		ownEngine = engine
	}
	rr := opts.RulesRetriever
	if rr == nil {
		rr = func(context.Context) v1.RulesRetriever { return noRules{} }
	}
	ready := opts.Ready
	if ready == nil {
		ready = func() bool { return true }
	}
	readyFunc := func(f http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !ready() {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, "Service Unavailable")
				return
			}
			f(w, r)
		}
	}
	start := time.Now()
	cwd, _ := os.Getwd()
	retention := opts.Retention
	build := buildinfo.Get()
	runtimeInfo := func() (v1.RuntimeInfo, error) {
		host, _ := os.Hostname()
		return v1.RuntimeInfo{
			StartTime:           start,
			CWD:                 cwd,
			Hostname:            host,
			ServerTime:          time.Now().UTC(),
			ReloadConfigSuccess: true,
			LastConfigTime:      start,
			GoroutineCount:      runtime.NumGoroutine(),
			GOMAXPROCS:          runtime.GOMAXPROCS(0),
			GOGC:                os.Getenv("GOGC"),
			GODEBUG:             os.Getenv("GODEBUG"),
			StorageRetention:    retention.String(),
		}, nil
	}
	flags := opts.Flags
	if flags == nil {
		flags = map[string]string{}
	}
	cfg := config.DefaultConfig
	var gatherer prometheus.Gatherer = prometheus.NewRegistry()
	if opts.Gatherer != nil {
		gatherer = opts.Gatherer
	}
	// query_exemplars with Lookout's extension parameters (exemplarfilter.go).
	var exemplars storage.ExemplarQueryable
	if opts.ExemplarQueryable != nil {
		exemplars = filteringExemplars{opts.ExemplarQueryable}
	}
	api := v1.NewAPI(
		engine,
		opts.Queryable,
		opts.Appendable,
		exemplars,
		func(context.Context) v1.ScrapePoolsRetriever { return noTargets{} },
		func(context.Context) v1.TargetRetriever { return noTargets{} },
		func(context.Context) v1.AlertmanagerRetriever { return noAlertmanagers{} },
		func() config.Config { return cfg },
		flags,
		v1.GlobalURLOptions{ListenAddress: "", Host: "localhost:9090", Scheme: "http"},
		readyFunc,
		opts.AdminStats,
		opts.DBDir,
		false, // admin API
		false, // search API
		0,
		opts.Logger.With("component", "api"),
		rr,
		5e7, // remote read sample limit
		10,  // remote read concurrency
		1048576,
		false, // agent
		nil,   // CORS origin
		runtimeInfo,
		&v1.PrometheusVersion{Version: PrometheusVersion, Revision: build.Revision, BuildDate: build.Date, Branch: "lookout", GoVersion: runtime.Version()},
		func() []notifications.Notification { return nil },
		func() (<-chan notifications.Notification, func(), bool) { return nil, func() {}, false },
		gatherer, // for the chunk count of /status/tsdb
		opts.Registerer,
		nil, // stats renderer
		opts.RemoteWrite,
		remoteapi.MessageTypes{remoteapi.WriteV1MessageType, remoteapi.WriteV2MessageType},
		false, false, false, // OTLP receiver here: Lookout has its own
		opts.LookbackDelta,
		false,
		false,
		nil,
		nil,
		v1.OpenAPIOptions{Version: PrometheusVersion},
		nil,
		false,
		2*time.Minute,
	)
	if (opts.QueryExemplars && opts.ExemplarQueryable != nil) || opts.AlertExtension != nil {
		c := codec{lookback: opts.LookbackDelta, logger: opts.Logger}
		if opts.QueryExemplars {
			c.eq = opts.ExemplarQueryable
		}
		if opts.AlertExtension != nil {
			c.alerts = alertsJSON(opts.AlertExtension)
		}
		api.ClearCodecs()
		api.InstallCodec(c)
	}
	router := route.New()
	api.Register(router.WithPrefix("/api/v1"))

	apiHandler, err := fastGzip(router)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", checkQueries(withExemplarFilter(apiHandler)))
	// Prometheus's answers for switched-off receivers name its own flags.
	if !opts.RemoteWrite {
		mux.HandleFunc("/api/v1/write", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "remote write receiver is off (lookout --prometheus.remote-write-receiver=false)", http.StatusNotFound)
		})
	}
	if opts.OTLP != nil {
		mux.Handle("/api/v1/otlp/", http.StripPrefix("/api/v1/otlp", opts.OTLP))
	} else {
		mux.HandleFunc("/api/v1/otlp/", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "no OTLP receiver on this listener: send OTLP to Lookout's OTLP listeners", http.StatusNotFound)
		})
	}
	if opts.Gatherer != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	mux.Handle("/federate", checkQueries(readyFunc((&federation{
		q: opts.Queryable, lookback: opts.LookbackDelta, now: time.Now,
		parser: parser.NewParser(parser.Options{}), logger: opts.Logger,
	}).ServeHTTP)))
	// Go's profiler, where Prometheus serves it, for `go tool pprof`; only
	// when asked for (--web.enable-pprof): it exposes the process's memory.
	if opts.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "Lookout is Healthy.")
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "Service Unavailable")
			return
		}
		fmt.Fprintln(w, "Lookout is Ready.")
	})
	return &API{ownEngine: ownEngine, handler: mux}, nil
}

// checkQueries refuses PromQL too long or too deeply nested (the query and
// match[] parameters) with Prometheus's 400 bad_data answer before
// Prometheus's parser sees it: the parser's cost grows with nesting, and
// it runs outside the query timeout. Bodies that are not forms pass
// untouched (remote write, OTLP).
func checkQueries(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err == nil {
			for _, k := range []string{"query", "match[]"} {
				for _, q := range r.Form[k] {
					if err := querylimit.CheckPromQL(q); err != nil {
						w.Header().Set("Content-Type", "application/json")
						w.WriteHeader(http.StatusBadRequest)
						_ = json.NewEncoder(w).Encode(map[string]string{
							"status": "error", "errorType": "bad_data", "error": fmt.Sprintf("invalid parameter %q: %v", k, err),
						})
						return
					}
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// fastGzip gzips API answers at the fastest level. Prometheus's handler
// compresses at the default level, which took half of the time of a
// query_exemplars answer with 10k exemplars; requests that accept gzip now
// reach it without Accept-Encoding. Others (deflate, identity) are left to
// it.
func fastGzip(h http.Handler) (http.Handler, error) {
	wrap, err := gzhttp.NewWrapper(gzhttp.CompressionLevel(gzip.BestSpeed), gzhttp.EnableZstd(false))
	if err != nil {
		return nil, err
	}
	gz := wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Accept-Encoding")
		h.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			gz(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}), nil
}

// Handler returns the HTTP handler.
func (a *API) Handler() http.Handler { return a.handler }

// Close releases the engine New created, if it created one.
func (a *API) Close() error {
	if a.ownEngine == nil {
		return nil
	}
	return a.ownEngine.Close()
}

// noRules serves empty /api/v1/rules and /api/v1/alerts.
type noRules struct{}

func (noRules) RuleGroups() []*rules.Group           { return nil }
func (noRules) AlertingRules() []*rules.AlertingRule { return nil }

// noTargets: Lookout has no scrape targets.
type noTargets struct{}

func (noTargets) ScrapePools() []string                       { return []string{} }
func (noTargets) TargetsActive() map[string][]*scrape.Target  { return map[string][]*scrape.Target{} }
func (noTargets) TargetsDropped() map[string][]*scrape.Target { return map[string][]*scrape.Target{} }
func (noTargets) TargetsDroppedCounts() map[string]int        { return map[string]int{} }
func (noTargets) ScrapePoolConfig(string) (*config.ScrapeConfig, error) {
	return nil, errors.New("lookout does not scrape; it receives OTLP")
}

// noAlertmanagers: notifications are sent by the alerting part, not here.
type noAlertmanagers struct{}

func (noAlertmanagers) Alertmanagers() []*url.URL        { return nil }
func (noAlertmanagers) DroppedAlertmanagers() []*url.URL { return nil }
