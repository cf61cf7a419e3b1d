package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/google/uuid"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/lookout-dev/lookout/dashboards"
	"github.com/lookout-dev/lookout/internal/alerting"
	"github.com/lookout-dev/lookout/internal/analysis"
	"github.com/lookout-dev/lookout/internal/exemplars"
	"github.com/lookout-dev/lookout/internal/spanmetrics"
	"github.com/lookout-dev/lookout/internal/tempoapi"
	"github.com/lookout-dev/lookout/internal/tracestore"
	"github.com/lookout-dev/lookout/internal/ui"
)

// New assembles the whole of Lookout from cfg: the metrics side, the
// durable exemplar index, the trace store and the span metrics derived from
// its spans, the Tempo API, the web UI and the rule manager. cmd/lookout and
// `webstore demo` start Lookout through it (and so do their end-to-end
// tests, which run those binaries).
func New(cfg Config, logger *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts, closeStores, err := fullOptions(cfg, logger)
	if err != nil {
		return nil, err
	}
	a, err := NewWithOptions(cfg, logger, opts)
	if err != nil {
		// NewWithOptions may or may not have closed them: closing is idempotent.
		return nil, errors.Join(err, closeStores())
	}
	return a, nil
}

// fullOptions opens the stores that sit beside the TSDB and returns the
// Options wiring them in, and a function closing them (safe to call twice).
func fullOptions(cfg Config, logger *slog.Logger) (Options, func() error, error) {
	reg := newRegistry()

	// The index and the store need each other: the store asks the index
	// which traces are pinned, the index asks the store which traces exist.
	traceChecker, tracesOpened := tracesWhenOpen()
	xo := exemplars.DefaultOptions()
	xo.Retention = cfg.MetricsRetention
	xo.Traces = traceChecker
	idx, err := exemplars.Open(filepath.Join(cfg.DataDir, "exemplars"), xo, logger.With("component", "exemplars"), reg)
	if err != nil {
		return Options{}, nil, err
	}
	to := tracestore.DefaultOptions()
	to.Retention = cfg.TracesRetention
	if cfg.TracesMaxBytes != 0 {
		to.SizeLimit = cfg.TracesMaxBytes
	}
	to.Pinner = idx
	traces, err := tracestore.Open(filepath.Join(cfg.DataDir, "traces"), to, logger.With("component", "tracestore"), reg)
	if err != nil {
		return Options{}, nil, errors.Join(err, idx.Close())
	}
	tracesOpened(traces)
	// Stop ingest (done by App), then close the trace store, then the index.
	closeTraces, closeIdx := onceCloser(traces), onceCloser(idx)
	closeStores := func() error { return errors.Join(closeTraces.Close(), closeIdx.Close()) }

	// The built-in dashboards and the users' (--dashboards), reloaded by
	// the library's Run while the App runs.
	library, err := dashboards.New(dashboards.FS, cfg.Dashboards, dashboards.DefaultOptions(), logger.With("component", "dashboards"))
	if err != nil {
		return Options{}, nil, errors.Join(err, closeStores())
	}

	tempo := tempoapi.NewHandler(tempoapi.Options{
		Traces:       traces,
		Exemplars:    idx,
		Logger:       logger.With("component", "tempoapi"),
		Registerer:   reg,
		Gatherer:     reg,
		QueryTimeout: cfg.TempoQueryTimeout,
	})
	opts := Options{
		Registry:       reg,
		TracesSink:     traces,
		ExemplarWriter: idx,
		TempoHandler:   tempo,
		UIHandler:      ui.NewHandler(ui.Options{Logger: logger.With("component", "ui"), Dashboards: library}),
		Services:       []func(context.Context) error{library.Run},
		Closers:        []io.Closer{closeTraces, closeIdx},
		Extend: func(p Parts, o *Options) error {
			var files []string
			if cfg.Rules != "" {
				files = []string{cfg.Rules}
			}
			// One analysis engine behind the analyze API and the alerts'
			// evidence, reading the stores through the same interfaces a
			// remote Prometheus and Tempo satisfy.
			analyzer := &analysis.Analyzer{
				Exemplars: analysis.StorageExemplars{Queryable: p.MetricStore.ReadAfterWrite(idx)},
				Traces:    traces,
				Finder:    storeFinder{store: traces},
				Logger:    logger.With("component", "analysis"),
			}
			ao := alerting.DefaultOptions()
			ao.Engine = p.Engine
			ao.Queryable = p.MetricStore.Queryable()
			ao.Appendable = p.MetricStore.Appendable()
			ao.Analyzer = analyzer
			ao.RuleFiles = files
			ao.EvalInterval = cfg.RuleEvaluationInterval
			ao.WebhookURLs = cfg.WebhookURLs
			ao.ExternalURL = cfg.ExternalURL()
			ao.Logger = logger.With("component", "alerting")
			ao.Registerer = reg
			m, err := alerting.New(ao)
			if err != nil {
				return err
			}
			o.ExemplarQueryable = p.MetricStore.ReadAfterWrite(idx)
			o.Analyzer = analyzer
			o.RulesRetriever = m.RulesRetriever
			o.AlertExtension = m
			o.Services = append(o.Services, m.Run)
			if cfg.SpanMetrics {
				// Spans reach the trace store through the deriver, whose
				// Run (a service: it stops after the receivers and before
				// the metric store closes) makes its last flush on shutdown.
				d, err := spanmetrics.New(o.TracesSink, p.MetricStore, spanMetricsOptions(cfg), logger.With("component", "spanmetrics"), p.Registry)
				if err != nil {
					return err
				}
				o.TracesSink = d
				o.Services = append(o.Services, d.Run)
			}
			return nil
		},
	}
	return opts, closeStores, nil
}

// spanMetricsOptions are spanmetrics' defaults with cfg's settings and,
// as collector.instance.id, a UUID made at start, as the collector's
// service.instance.id is: series of an earlier run end rather than reset.
func spanMetricsOptions(cfg Config) spanmetrics.Options {
	so := spanmetrics.DefaultOptions()
	so.CardinalityLimit = cfg.SpanMetricsCardinalityLimit
	if cfg.SpanMetricsFlushInterval > 0 {
		so.FlushInterval = cfg.SpanMetricsFlushInterval
	}
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

// onceCloser makes Close idempotent.
func onceCloser(c io.Closer) io.Closer { return &closeOnce{c: c} }

type closeOnce struct {
	c    io.Closer
	once sync.Once
	err  error
}

func (c *closeOnce) Close() error {
	c.once.Do(func() { c.err = c.c.Close() })
	return c.err
}
