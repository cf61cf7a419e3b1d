package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/promql"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/lookout-dev/lookout/dashboards"
	"github.com/lookout-dev/lookout/internal/alerting"
	"github.com/lookout-dev/lookout/internal/analysis"
	"github.com/lookout-dev/lookout/internal/exemplars"
	"github.com/lookout-dev/lookout/internal/ingest"
	"github.com/lookout-dev/lookout/internal/metricstore"
	"github.com/lookout-dev/lookout/internal/otlpin"
	"github.com/lookout-dev/lookout/internal/promapi"
	"github.com/lookout-dev/lookout/internal/spanmetrics"
	"github.com/lookout-dev/lookout/internal/tempoapi"
	"github.com/lookout-dev/lookout/internal/tracestore"
	"github.com/lookout-dev/lookout/internal/ui"
)

// New assembles the whole of Lookout from cfg: it opens every part in
// dependency order (registry, exemplar index, trace store, metric store,
// PromQL engine, analysis engine, rule manager, span metrics, APIs and UI,
// listeners), replaying the stores' logs and binding every listener, so
// addresses are known before Run. Each part pushes its close onto the App's
// closer stack as it opens; if a later part fails, New closes the opened
// ones in reverse order, and Run closes them all the same way when it
// stops (so an App New returned must be Run). cmd/lookout, `webstore demo`
// and the end-to-end tests start Lookout through New. A nil logger
// discards.
func New(cfg Config, logger *slog.Logger) (_ *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	reg := newRegistry()
	a := &App{cfg: cfg, logger: logger, reg: reg, ready: make(chan struct{})}
	defer func() {
		if err != nil {
			err = errors.Join(err, a.closers.close(context.Background()))
		}
	}()

	// The index and the store need each other: the store asks the index
	// which traces are pinned, the index asks the store which traces exist.
	traceChecker, tracesOpened := tracesWhenOpen()
	xo := exemplars.DefaultOptions()
	xo.Retention = cfg.MetricsRetention
	xo.Traces = traceChecker
	idx, err := exemplars.Open(filepath.Join(cfg.DataDir, "exemplars"), xo, logger.With("component", "exemplars"), reg)
	if err != nil {
		return nil, err
	}
	a.closers.push("close the exemplar index", func(context.Context) error { return idx.Close() })
	to := tracestore.DefaultOptions()
	to.Retention = cfg.TracesRetention
	if cfg.TracesMaxBytes != 0 {
		to.SizeLimit = cfg.TracesMaxBytes
	}
	to.Pinner = idx
	to.Sampling = cfg.TracesSampling
	traces, err := tracestore.Open(filepath.Join(cfg.DataDir, "traces"), to, logger.With("component", "tracestore"), reg)
	if err != nil {
		return nil, err
	}
	a.closers.push("close the trace store", func(context.Context) error { return traces.Close() })
	tracesOpened(traces)

	// Closing the metric store hands every queued exemplar to the index,
	// so it closes before the index (it was pushed after it).
	so := metricstore.DefaultOptions()
	so.Retention = cfg.MetricsRetention
	so.BlockDuration = cfg.MetricsBlockDuration
	so.MaxExemplars = cfg.MaxExemplars
	so.OTLP.TranslationStrategy = otlptranslator.TranslationStrategyOption(cfg.TranslationStrategy)
	so.OTLP.PromoteResourceAttributes = cfg.PromoteResourceAttributes
	so.DeltaToCumulative = cfg.DeltaToCumulative
	so.MaxSeries = cfg.MaxSeries
	so.ExemplarWriter = cfg.hooks.wrapExemplarWriter(idx)
	start := time.Now()
	store, err := metricstore.Open(metricstore.MetricsDir(cfg.DataDir), so, logger.With("component", "metricstore"), reg)
	if err != nil {
		return nil, err
	}
	a.closers.push("close the metric store", func(context.Context) error { return store.Close() })
	logger.Info("metric store open", "dir", store.Dir(), "took", time.Since(start).Round(time.Millisecond))

	// Prometheus's active query tracker: queues queries beyond
	// --query.max-concurrency and logs, at the next start, the queries that
	// were running when the process died. The engine closes it.
	queries, err := promql.NewActiveQueryTracker(cfg.DataDir, cfg.QueryMaxConcurrency, logger.With("component", "active queries"))
	if err != nil {
		return nil, err
	}
	engine := promapi.NewEngine(logger, reg, promapi.EngineOptions{
		Lookback: so.LookbackDelta, Timeout: cfg.QueryTimeout, MaxSamples: cfg.QueryMaxSamples, Tracker: queries,
	})
	a.closers.push("close the PromQL engine", func(context.Context) error { return engine.Close() })

	// One analysis engine behind the analyze API and the alerts' evidence,
	// reading the stores through the same interfaces a remote Prometheus
	// and Tempo satisfy.
	exemplarQueries := store.ReadAfterWrite(idx)
	analyzer := &analysis.Analyzer{
		Exemplars: analysis.StorageExemplars{Queryable: exemplarQueries},
		Traces:    traces,
		Finder:    storeFinder{store: traces},
		Logger:    logger.With("component", "analysis"),
	}

	ao := alerting.DefaultOptions()
	ao.Engine = engine
	ao.Queryable = store.Queryable()
	ao.Appendable = store.Appendable()
	ao.Analyzer = analyzer
	if cfg.Rules != "" {
		ao.RuleFiles = []string{cfg.Rules}
	}
	ao.EvalInterval = cfg.RuleEvaluationInterval
	ao.WebhookURLs = cfg.WebhookURLs
	ao.ExternalURL = cfg.ExternalURL()
	ao.Logger = logger.With("component", "alerting")
	ao.Registerer = reg
	rules, err := alerting.New(ao)
	if err != nil {
		return nil, err
	}
	a.services = append(a.services, rules.Run)

	// Received spans reach the trace store through the span metrics
	// deriver, whose Run (a service: it stops after the receivers and
	// before the metric store closes) makes its last flush on shutdown.
	var spans ingest.TracesSink = traces
	if cfg.SpanMetrics {
		d, err := spanmetrics.New(traces, store, spanMetricsOptions(cfg), logger.With("component", "spanmetrics"), reg)
		if err != nil {
			return nil, err
		}
		spans = d
		a.services = append(a.services, d.Run)
	}

	// The APIs and the UI: the built-in dashboards and the users'
	// (--dashboards), reloaded by the library's Run while the App runs.
	library, err := dashboards.New(dashboards.FS, cfg.Dashboards, dashboards.DefaultOptions(), logger.With("component", "dashboards"))
	if err != nil {
		return nil, err
	}
	a.services = append(a.services, library.Run)
	tempo := tempoapi.NewHandler(tempoapi.Options{
		Traces:       traces,
		Exemplars:    idx,
		Logger:       logger.With("component", "tempoapi"),
		Registerer:   reg,
		Gatherer:     reg,
		QueryTimeout: cfg.TempoQueryTimeout,
	})
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
	a.receiver, err = otlpin.New(ro, store, cfg.hooks.wrapTracesSink(spans), logger.With("component", "otlp"), reg)
	if err != nil {
		return nil, err
	}
	po := promapi.DefaultOptions()
	po.Queryable = store.Queryable()
	po.ExemplarQueryable = exemplarQueries
	po.Appendable = store.WriteAppendable()
	po.RemoteWrite = cfg.RemoteWriteReceiver
	// Prometheus's OTLP path takes metrics only, as Prometheus's does.
	otlpMetrics := http.NewServeMux()
	otlpMetrics.Handle("/v1/metrics", a.receiver.Handler())
	po.OTLP = otlpMetrics
	po.AdminStats = store.AdminStats()
	po.DBDir = store.Dir()
	po.RulesRetriever = rules.RulesRetriever
	po.AlertExtension = rules
	po.Engine = engine
	po.LookbackDelta = so.LookbackDelta
	po.QueryExemplars = cfg.QueryExemplars
	po.Retention = cfg.MetricsRetention
	po.Flags = cfg.flagMap()
	po.Pprof = cfg.EnablePprof
	po.Ready = a.isReady
	po.Gatherer = reg
	po.Registerer = reg
	po.Logger = logger
	api, err := promapi.New(po)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(AnalyzePath, analyzer.Handler())
	mux.Handle("/", api.Handler())
	prom := instrument(reg, "prometheus", mux)
	site, err := a.uiHandler(prom, tempo, analyzer, ui.NewHandler(ui.Options{Logger: logger.With("component", "ui"), Dashboards: library}))
	if err != nil {
		return nil, err
	}
	// Services stop once the receivers and the servers have (they were
	// pushed after this), before the stores close.
	a.closers.push("stop the services", a.stopServices)

	// The listeners. The OTLP receivers bind last, so they stop first.
	if a.promLn, err = a.serve("Prometheus API", cfg.PrometheusListen, prom); err != nil {
		return nil, err
	}
	if cfg.TempoListen != "" {
		if a.tempoLn, err = a.serve("Tempo API", cfg.TempoListen, instrument(reg, "tempo", tempo)); err != nil {
			return nil, err
		}
	}
	if cfg.UIListen != "" {
		if a.uiLn, err = a.serve("UI", cfg.UIListen, site); err != nil {
			return nil, err
		}
	}
	// Shutdown closes the receivers' listeners when they never started
	// (also those of a Listen that failed halfway) and stops them
	// gracefully once Run has started them.
	a.closers.push("stop the OTLP receivers", a.receiver.Shutdown)
	if err := a.receiver.Listen(); err != nil {
		return nil, err
	}
	return a, nil
}

// testHooks let this package's tests see what flows between the parts New
// assembles; they are nil outside tests.
type testHooks struct {
	// tracesSink wraps the sink the OTLP receivers hand spans to.
	tracesSink func(ingest.TracesSink) ingest.TracesSink
	// exemplarWriter wraps the writer (the exemplar index) the metric
	// store hands accepted exemplars to.
	exemplarWriter func(*exemplars.Index) exemplars.Writer
}

func (h *testHooks) wrapTracesSink(s ingest.TracesSink) ingest.TracesSink {
	if h == nil || h.tracesSink == nil {
		return s
	}
	return h.tracesSink(s)
}

func (h *testHooks) wrapExemplarWriter(idx *exemplars.Index) exemplars.Writer {
	if h == nil || h.exemplarWriter == nil {
		return idx
	}
	return h.exemplarWriter(idx)
}

// spanMetricsOptions are spanmetrics' defaults with cfg's settings and,
// as collector.instance.id, a UUID made at start, as the collector's
// service.instance.id is: series of an earlier run end rather than reset.
func spanMetricsOptions(cfg Config) spanmetrics.Options {
	so := spanmetrics.DefaultOptions()
	so.CardinalityLimit = cfg.SpanMetricsCardinalityLimit
	so.FlushInterval = cfg.SpanMetricsFlushInterval
	so.InstanceID = uuid.NewString()
	return so
}

// tracesWhenOpen breaks the cycle between the exemplar index and the trace
// store: the store asks the index which traces are pinned, so the index
// opens first, and it asks the store which traces arrived through checker,
// whose calls wait until opened hands it the store (or their context ends:
// the index's Close cancels it).
func tracesWhenOpen() (checker exemplars.TraceChecker, opened func(*tracestore.Store)) {
	ready := make(chan struct{})
	var store *tracestore.Store
	checker = exemplars.TraceCheckerFunc(func(ctx context.Context, id pcommon.TraceID) (bool, error) {
		select {
		case <-ready:
			return store.HasTrace(ctx, id)
		case <-ctx.Done():
			return false, ctx.Err()
		}
	})
	return checker, func(s *tracestore.Store) { store = s; close(ready) }
}
