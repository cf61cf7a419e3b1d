package app

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lookout-dev/lookout/internal/otlpin"
	"github.com/lookout-dev/lookout/internal/tracestore"

	"github.com/alecthomas/units"
	"github.com/lookout-dev/lookout/internal/memlimit"

	"github.com/prometheus/common/model"

	"github.com/lookout-dev/lookout/dashboards"
	"github.com/lookout-dev/lookout/internal/metricstore"
	"github.com/lookout-dev/lookout/internal/spanmetrics"
	"github.com/lookout-dev/lookout/internal/webauth"
)

// Config holds every lookout flag; New assembles Lookout from it. The zero
// value is not useful; start from DefaultConfig.
type Config struct {
	// DataDir holds all state: TSDB, trace store, exemplar index.
	DataDir string
	// OTLPGRPCListen is the OTLP/gRPC address; empty disables it.
	OTLPGRPCListen string
	// OTLPHTTPListen is the OTLP/HTTP address; empty disables it.
	OTLPHTTPListen string
	// PrometheusListen serves the Prometheus HTTP API and /metrics.
	PrometheusListen string
	// TempoListen serves the Tempo HTTP API; empty disables it.
	TempoListen string
	// UIListen serves the web UI and both APIs under /prometheus/ and
	// /tempo/; empty disables it.
	UIListen string
	// Rules is a glob of Prometheus rule files; empty means the built-in
	// rules/webstore.yml.
	Rules string
	// TranslationStrategy is Prometheus's name of the OTLP translation
	// strategy.
	TranslationStrategy string
	// PromoteResourceAttributes lists resource attributes to copy onto
	// every series, as Prometheus's otlp.promote_resource_attributes.
	PromoteResourceAttributes []string
	// DeltaToCumulative converts delta temporality to cumulative.
	DeltaToCumulative bool
	// MetricsRetention and TracesRetention are age limits.
	MetricsRetention, TracesRetention time.Duration
	// MetricsBlockDuration is the TSDB's block range (--metrics.block-duration).
	MetricsBlockDuration time.Duration
	// MaxExemplars sizes the TSDB's in-memory exemplar ring. Lookout's
	// queries read the exemplar index, and the metric store applies
	// Prometheus's duplicate and order rules itself, so the ring only logs
	// exemplars to the WAL (from which the index recovers) and 1 is enough.
	MaxExemplars int64
	// PrometheusURL and TempoURL, when set, make the UI read these remote
	// APIs instead of the embedded stores.
	PrometheusURL, TempoURL string
	// MaxRequestBytes bounds one OTLP request, decompressed.
	MaxRequestBytes int64
	// IngestLimits bound what one OTLP data point or span may carry.
	IngestLimits otlpin.Limits
	// MaxSeries refuses samples of new series once the TSDB head holds this
	// many; 0: no limit.
	MaxSeries int
	// MemoryLimit is the memory Lookout aims to stay under: above 90% of
	// it the OTLP receivers refuse new requests (429 / RESOURCE_EXHAUSTED
	// with a retry hint), a sixteenth of it bounds request bytes in flight,
	// and the binary sets GOMEMLIMIT from it unless the environment does.
	// 0 disables all three. Default memlimit.Default().
	MemoryLimit int64
	// QueryExemplars adds "exemplars" to instant query result series.
	QueryExemplars bool
	// WebConfigFile, in Prometheus's exporter-toolkit format, sets TLS and
	// basic authentication on every listener (HTTP and OTLP/gRPC); empty
	// serves plain HTTP without authentication.
	WebConfigFile string
	// QueryMaxConcurrency, QueryMaxSamples and QueryTimeout are the PromQL
	// engine's limits on every path (API, UI, rules), as Prometheus's
	// --query.max-concurrency, --query.max-samples and --query.timeout:
	// queries beyond the concurrency wait in a queue.
	QueryMaxConcurrency int
	QueryMaxSamples     int
	QueryTimeout        time.Duration
	// EnablePprof serves Go's /debug/pprof on the Prometheus listener
	// (never on the UI listener). Default off.
	EnablePprof bool
	// RemoteWriteReceiver serves Prometheus's remote-write receiver at
	// /api/v1/write on the Prometheus listener.
	RemoteWriteReceiver bool
	// ShutdownTimeout bounds the graceful stop.
	ShutdownTimeout time.Duration
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// TracesMaxBytes bounds the trace store's disk use; 0 keeps the
	// store's default and a negative value disables the size limit.
	TracesMaxBytes int64
	// TracesSampling, when not nil, is the trace store's exemplar-aware
	// sampling policy (--traces.sampling). Default nil: every trace kept.
	TracesSampling *tracestore.SamplingPolicy
	// TempoQueryTimeout bounds each trace search and tag request.
	TempoQueryTimeout time.Duration
	// RuleEvaluationInterval is the evaluation interval of rule groups that
	// do not set their own.
	RuleEvaluationInterval time.Duration
	// WebhookURLs receive firing and resolved alerts as Alertmanager
	// webhook JSON.
	WebhookURLs []string
	// Dashboards are users' Grafana dashboard JSON files: paths, directories
	// (their *.json) or globs, served beside the built-in dashboards and
	// reloaded on change (docs/dashboards.md).
	Dashboards []string
	// SpanMetrics derives the span metrics connector's calls and duration
	// metrics from the stored spans (internal/spanmetrics).
	SpanMetrics bool
	// SpanMetricsCardinalityLimit bounds the span metrics series; new
	// combinations beyond it go to an overflow series. 0 means no limit.
	SpanMetricsCardinalityLimit int
	// SpanMetricsFlushInterval is how often span metrics reach the metric
	// store (spanmetrics' default, 15 s). Tests shorten it; it is not a
	// flag.
	SpanMetricsFlushInterval time.Duration

	// hooks are this package's tests' view into the assembly; nil
	// otherwise.
	hooks *testHooks
}

// DefaultConfig returns the defaults, which are the flags' defaults; the
// binary runs with them.
func DefaultConfig() Config {
	return Config{
		DataDir:                "./lookout-data",
		OTLPGRPCListen:         "127.0.0.1:4317",
		OTLPHTTPListen:         "127.0.0.1:4318",
		PrometheusListen:       "127.0.0.1:9090",
		TempoListen:            "127.0.0.1:3200",
		UIListen:               "127.0.0.1:3000",
		TranslationStrategy:    "UnderscoreEscapingWithoutSuffixes",
		DeltaToCumulative:      true,
		MetricsRetention:       15 * 24 * time.Hour,
		MetricsBlockDuration:   2 * time.Hour,
		TracesRetention:        7 * 24 * time.Hour,
		MaxExemplars:           1,
		MaxRequestBytes:        16 << 20,
		IngestLimits:           otlpin.DefaultLimits(),
		MaxSeries:              2_000_000,
		MemoryLimit:            int64(memlimit.Default()),
		QueryExemplars:         true,
		RemoteWriteReceiver:    true,
		ShutdownTimeout:        30 * time.Second,
		LogLevel:               "info",
		TempoQueryTimeout:      30 * time.Second,
		RuleEvaluationInterval: 15 * time.Second,
		QueryMaxConcurrency:    20,
		QueryMaxSamples:        50_000_000,
		QueryTimeout:           2 * time.Minute,

		SpanMetrics:                 true,
		SpanMetricsCardinalityLimit: spanmetrics.DefaultOptions().CardinalityLimit,
		SpanMetricsFlushInterval:    spanmetrics.DefaultOptions().FlushInterval,
	}
}

// RegisterFlags binds the flags to c; the current values are the defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for all state: TSDB, trace store, exemplar index")
	fs.StringVar(&c.OTLPGRPCListen, "otlp.grpc-listen", c.OTLPGRPCListen, "OTLP/gRPC listen address; empty disables")
	fs.StringVar(&c.OTLPHTTPListen, "otlp.http-listen", c.OTLPHTTPListen, "OTLP/HTTP listen address (/v1/metrics, /v1/traces); empty disables")
	fs.StringVar(&c.PrometheusListen, "prometheus.listen", c.PrometheusListen, "Prometheus HTTP API (/api/v1/*) and Lookout's own /metrics")
	fs.StringVar(&c.TempoListen, "tempo.listen", c.TempoListen, "Tempo HTTP API listen address; empty disables")
	fs.StringVar(&c.UIListen, "ui.listen", c.UIListen, "web UI listen address, also serving /prometheus/ and /tempo/; empty disables")
	fs.StringVar(&c.Rules, "rules", c.Rules, "Prometheus rule files (glob); empty uses the built-in rules/webstore.yml")
	fs.StringVar(&c.TranslationStrategy, "otlp.translation-strategy", c.TranslationStrategy,
		"OTLP metric and label name translation, by Prometheus's names: UnderscoreEscapingWithSuffixes, UnderscoreEscapingWithoutSuffixes, NoUTF8EscapingWithSuffixes, NoTranslation")
	fs.Func("otlp.promote-resource-attributes", "comma-separated resource attributes to add as labels to every series", func(s string) error {
		c.PromoteResourceAttributes = splitList(s)
		return nil
	})
	fs.BoolVar(&c.DeltaToCumulative, "otlp.delta-to-cumulative", c.DeltaToCumulative, "convert delta temporality sums and histograms to cumulative")
	fs.Int64Var(&c.MaxRequestBytes, "otlp.max-request-bytes", c.MaxRequestBytes, "largest OTLP request accepted, in bytes after decompression")
	fs.IntVar(&c.MaxSeries, "metrics.max-series", c.MaxSeries, "most active series (in the TSDB head); samples of new series beyond it are refused in the answer's partial success, naming the limit, as Mimir's max_global_series_per_user (0: no limit)")
	l := &c.IngestLimits
	fs.IntVar(&l.MaxPointAttributes, "otlp.max-point-attributes", l.MaxPointAttributes, "most attributes (labels) one metric data point may carry; a point with more is refused in the answer's partial success (0: no limit)")
	fs.IntVar(&l.MaxResourceAttributes, "otlp.max-resource-attributes", l.MaxResourceAttributes, "most attributes one resource may carry; its data points or spans are refused otherwise (0: no limit)")
	fs.IntVar(&l.MaxLabelNameBytes, "otlp.max-label-name-bytes", l.MaxLabelNameBytes, "longest metric attribute (label) name, in bytes; a point with a longer one is refused (0: no limit)")
	fs.IntVar(&l.MaxLabelValueBytes, "otlp.max-label-value-bytes", l.MaxLabelValueBytes, "longest metric attribute (label) value, in bytes; a point with a longer one is refused (0: no limit)")
	fs.IntVar(&l.MaxBuckets, "otlp.max-buckets", l.MaxBuckets, "most bucket bounds of one explicit histogram point (each becomes a series), or buckets of an exponential one (0: no limit)")
	fs.IntVar(&l.MaxEventLinkAttributes, "otlp.max-event-link-attributes", l.MaxEventLinkAttributes, "most attributes a span's events and links may carry together; a span with more is refused in the partial success (0: no limit)")
	fs.IntVar(&l.MaxSpanStringBytes, "otlp.max-span-string-bytes", l.MaxSpanStringBytes, "longest span attribute value, span or event name or status message, in bytes; longer ones are cut, as Tempo's max_attribute_bytes (0: no limit)")
	fs.Func("memory.limit", fmt.Sprintf("memory to stay under, e.g. 2GiB: above 90%% of it OTLP requests are refused with 429 / RESOURCE_EXHAUSTED, a sixteenth of it bounds request bytes in flight, and GOMEMLIMIT is set from it unless set in the environment; 0 disables (default %s: 80%% of the cgroup limit, else a quarter of the machine's memory)", humanBytes(c.MemoryLimit)), func(s string) error {
		n, err := parseBytes(s)
		if err != nil {
			return err
		}
		c.MemoryLimit = n
		return nil
	})
	durationFlag(fs, &c.MetricsRetention, "metrics.retention", "how long metric samples are kept (e.g. 15d, 12h)")
	durationFlag(fs, &c.MetricsBlockDuration, "metrics.block-duration", "the TSDB's block range, as Prometheus's hidden --storage.tsdb.min-block-duration: the head goes to a block once it spans 1.5 times this; shorter suits soak tests and short retentions")
	durationFlag(fs, &c.TracesRetention, "traces.retention", "how long traces are kept; traces referenced by a kept exemplar are kept longer")
	fs.Int64Var(&c.MaxExemplars, "metrics.max-exemplars", c.MaxExemplars, "size of the TSDB's in-memory exemplar ring, which only logs exemplars to the WAL: queries read the durable exemplar index, which recovers from that WAL (0: exemplars stay out of the WAL)")
	fs.StringVar(&c.PrometheusURL, "prometheus.url", c.PrometheusURL, "if set, the UI reads this Prometheus-compatible API instead of the embedded store")
	fs.StringVar(&c.TempoURL, "tempo.url", c.TempoURL, "if set, the UI reads this Tempo-compatible API instead of the embedded store")
	fs.BoolVar(&c.QueryExemplars, "prometheus.query-exemplars", c.QueryExemplars, "add \"exemplars\" to /api/v1/query result series (extension)")
	fs.BoolVar(&c.RemoteWriteReceiver, "prometheus.remote-write-receiver", c.RemoteWriteReceiver, "accept Prometheus remote write (1.0 and 2.0) at /api/v1/write on the Prometheus listener")
	fs.StringVar(&c.WebConfigFile, "web.config.file", c.WebConfigFile, "file in Prometheus's exporter-toolkit web config format (tls_server_config, basic_auth_users) applied to every listener, HTTP and OTLP/gRPC; empty: plain, no authentication")
	fs.IntVar(&c.QueryMaxConcurrency, "query.max-concurrency", c.QueryMaxConcurrency, "most PromQL queries running at once (API, UI, rules); more wait in a queue")
	fs.IntVar(&c.QueryMaxSamples, "query.max-samples", c.QueryMaxSamples, "most samples one PromQL query may load into memory at once; a query needing more fails")
	durationFlag(fs, &c.QueryTimeout, "query.timeout", "longest a PromQL query may run")
	fs.BoolVar(&c.EnablePprof, "web.enable-pprof", c.EnablePprof, "serve Go's /debug/pprof profiler on the Prometheus listener")
	durationFlag(fs, &c.ShutdownTimeout, "shutdown-timeout", "how long a graceful stop may take")
	fs.StringVar(&c.LogLevel, "log.level", c.LogLevel, "log level: debug, info, warn, error")
	fs.Func("traces.sampling", "exemplar-aware trace sampling, off by default: share=<fraction or %>[,window=<duration>], e.g. share=10%. A trace stays whole for the window (default 2m) after its first span, then is kept if an exemplar references it, a span has an error, its root took longer than its operation's recent p99, or its trace ID falls in the share (as OpenTelemetry's TraceIDRatioBased decides); others are deleted", func(s string) error {
		p, err := tracestore.ParseSamplingPolicy(s)
		if err != nil {
			return err
		}
		c.TracesSampling = &p
		return nil
	})
	fs.Int64Var(&c.TracesMaxBytes, "traces.max-bytes", c.TracesMaxBytes, "disk bytes the trace store may use before the oldest unpinned traces go; 0 = default (10 GiB), negative = no limit")
	durationFlag(fs, &c.TempoQueryTimeout, "tempo.query-timeout", "how long one trace search or tag request may run")
	durationFlag(fs, &c.RuleEvaluationInterval, "rules.evaluation-interval", "evaluation interval of rule groups that set none")
	fs.BoolVar(&c.SpanMetrics, "spanmetrics.enabled", c.SpanMetrics,
		"derive request, error and duration metrics from received spans, as the OpenTelemetry Collector's span metrics connector does (traces_span_metrics_calls, traces_span_metrics_duration_bucket)")
	fs.IntVar(&c.SpanMetricsCardinalityLimit, "spanmetrics.cardinality-limit", c.SpanMetricsCardinalityLimit,
		"most span metrics series (service, span name, kind, status); spans of new combinations beyond it are counted in an otel_metric_overflow=\"true\" series (0: no limit)")
	fs.Func("alerting.webhook-url", "URL receiving alerts as Alertmanager webhook JSON (repeatable, or comma-separated)", func(s string) error {
		for _, u := range splitList(s) {
			if _, err := url.ParseRequestURI(u); err != nil {
				return fmt.Errorf("invalid webhook URL %q: %w", u, err)
			}
			c.WebhookURLs = append(c.WebhookURLs, u)
		}
		return nil
	})
	fs.Func("dashboards", "Grafana dashboard JSON file, directory (its *.json) or glob; repeatable; reloaded on change", func(s string) error {
		if err := dashboards.ValidatePattern(s); err != nil {
			return err
		}
		c.Dashboards = append(c.Dashboards, s)
		return nil
	})
}

// parseBytes reads a byte size: a plain number of bytes or one with a unit
// (KiB, MiB, GiB, or KB, MB, GB meaning the same), as Prometheus's size
// flags do.
func parseBytes(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return n, nil
	}
	b, err := units.ParseBase2Bytes(s)
	if err != nil || b < 0 {
		return 0, fmt.Errorf("invalid size %q: use e.g. 2GiB, 512MiB or bytes", s)
	}
	return int64(b), nil
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// durationFlag accepts Prometheus durations such as 15d as well as Go's.
func durationFlag(fs *flag.FlagSet, d *time.Duration, name, usage string) {
	fs.Func(name, fmt.Sprintf("%s (default %s)", usage, model.Duration(*d)), func(s string) error {
		md, err := model.ParseDuration(s)
		if err != nil {
			gd, gerr := time.ParseDuration(s)
			if gerr != nil {
				return fmt.Errorf("invalid duration %q: use e.g. 15d, 12h, 30m", s)
			}
			*d = gd
			return nil
		}
		*d = time.Duration(md)
		return nil
	})
}

// Validate reports every invalid setting at once.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	if l := c.IngestLimits; l.MaxPointAttributes < 0 || l.MaxResourceAttributes < 0 || l.MaxLabelNameBytes < 0 || l.MaxLabelValueBytes < 0 || l.MaxBuckets < 0 || l.MaxSpanStringBytes < 0 || l.MaxEventLinkAttributes < 0 {
		errs = append(errs, errors.New("--otlp.max-* limits must not be negative (0: no limit)"))
	}
	if c.MaxSeries < 0 {
		errs = append(errs, errors.New("--metrics.max-series must not be negative (0: no limit)"))
	}
	if c.MemoryLimit < 0 {
		errs = append(errs, errors.New("--memory.limit must not be negative"))
	}
	if c.PrometheusListen == "" {
		errs = append(errs, errors.New("--prometheus.listen must not be empty"))
	}
	for name, addr := range map[string]string{
		"--otlp.grpc-listen": c.OTLPGRPCListen, "--otlp.http-listen": c.OTLPHTTPListen,
		"--prometheus.listen": c.PrometheusListen, "--tempo.listen": c.TempoListen, "--ui.listen": c.UIListen,
	} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want host:port: %w", name, addr, err))
		}
	}
	if err := metricstore.ValidateTranslationStrategy(c.TranslationStrategy); err != nil {
		errs = append(errs, fmt.Errorf("--otlp.translation-strategy: %w", err))
	}
	if c.MetricsBlockDuration < time.Minute {
		errs = append(errs, errors.New("--metrics.block-duration must be at least 1m"))
	}
	if c.MetricsRetention <= 0 {
		errs = append(errs, errors.New("--metrics.retention must be positive"))
	}
	if c.TracesRetention <= 0 {
		errs = append(errs, errors.New("--traces.retention must be positive"))
	}
	if c.MaxRequestBytes <= 0 {
		errs = append(errs, errors.New("--otlp.max-request-bytes must be positive"))
	}
	if c.MaxExemplars < 0 {
		errs = append(errs, errors.New("--metrics.max-exemplars must not be negative"))
	}
	for name, u := range map[string]string{"--prometheus.url": c.PrometheusURL, "--tempo.url": c.TempoURL} {
		if u == "" {
			continue
		}
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			errs = append(errs, fmt.Errorf("%s %q: want an http(s) URL", name, u))
		}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log.level %q: want debug, info, warn or error", c.LogLevel))
	}
	if c.QueryMaxConcurrency < 1 {
		errs = append(errs, errors.New("--query.max-concurrency must be at least 1"))
	}
	if c.QueryMaxSamples < 1 {
		errs = append(errs, errors.New("--query.max-samples must be at least 1"))
	}
	if c.QueryTimeout <= 0 {
		errs = append(errs, errors.New("--query.timeout must be positive"))
	}
	for _, p := range c.Dashboards {
		if err := dashboards.ValidatePattern(p); err != nil {
			errs = append(errs, fmt.Errorf("--dashboards: %w", err))
		}
	}
	if c.SpanMetricsCardinalityLimit < 0 {
		errs = append(errs, errors.New("--spanmetrics.cardinality-limit must not be negative (0: no limit)"))
	}
	if c.SpanMetricsFlushInterval <= 0 {
		errs = append(errs, errors.New("span metrics flush interval must be positive"))
	}
	if err := webauth.Validate(c.WebConfigFile); err != nil {
		errs = append(errs, fmt.Errorf("--web.config.file: %w", err))
	}
	return errors.Join(errs...)
}

// SlogLevel returns the configured log level (info if invalid).
func (c Config) SlogLevel() slog.Level {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return slog.LevelInfo
	}
	return lvl
}

// ExternalURL is where people reach this Lookout's UI, for links in alerts.
func (c Config) ExternalURL() string {
	if c.UIListen == "" {
		return "http://" + c.PrometheusListen
	}
	return "http://" + c.UIListen
}

// humanBytes writes n in GiB or MiB with one decimal, as the flag's help
// shows a machine-dependent default.
func humanBytes(n int64) string {
	if n >= 1<<30 {
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + "GiB"
	}
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "MiB"
}
