package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/lookout-dev/lookout/tailexemplar"
)

// Protocols accepted in Config.Protocol and OTEL_EXPORTER_OTLP_PROTOCOL.
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
)

// Exemplar reservoirs accepted in Config.ExemplarReservoir and WEBSTORE_EXEMPLAR_RESERVOIR.
const (
	// ReservoirDefault defers to WEBSTORE_EXEMPLAR_RESERVOIR, else ReservoirTail.
	ReservoirDefault = ""
	// ReservoirTail keeps, per histogram bucket and export interval, the
	// largest measurement of webstore.payment.duration and
	// webstore.checkout.amount (the tailexemplar package): the slowest
	// payment and the largest order of each bucket become exemplars.
	ReservoirTail = "tail"
	// ReservoirSDK leaves both instruments the SDK's default reservoir
	// (aligned-histogram: a random measurement per bucket).
	ReservoirSDK = "sdk"
	// ReservoirAligned keeps one random exemplar per bucket of
	// webstore.payment.duration (the SDK's aligned-histogram reservoir).
	ReservoirAligned = "aligned"
	// ReservoirFixed keeps a uniform sample of 4 measurements of
	// webstore.payment.duration (SimpleFixedSizeExemplarReservoir).
	ReservoirFixed = "fixed"
)

// Instruments whose exemplar reservoir Config.ExemplarReservoir selects
// through Views: ReservoirTail applies to both, ReservoirAligned and
// ReservoirFixed to PaymentDurationMetric alone (CheckoutAmountMetric then
// keeps the SDK's default).
const (
	PaymentDurationMetric = "webstore.payment.duration"
	CheckoutAmountMetric  = "webstore.checkout.amount"
)

// HTTPBodySizeMetrics are the otelhttp histograms dropped unless
// Config.HTTPBodySizeMetrics or WEBSTORE_HTTP_BODY_SIZE_METRICS keeps them.
// The request duration histograms are always kept.
var HTTPBodySizeMetrics = []string{
	"http.server.request.body.size",
	"http.server.response.body.size",
	"http.client.request.body.size",
}

// DefaultMetricInterval is the export interval used when neither
// Config.MetricInterval nor OTEL_METRIC_EXPORT_INTERVAL says otherwise.
const DefaultMetricInterval = 10 * time.Second

// Config overrides what the OTEL_* variables say. Zero fields defer to the
// environment, then to the defaults documented on each field.
type Config struct {
	// Disabled gives no-op providers: nothing is recorded or exported.
	Disabled bool
	// Endpoint is the OTLP endpoint for both signals, as a URL
	// ("http://127.0.0.1:4317") or host:port (then plaintext). Default:
	// OTEL_EXPORTER_OTLP_*ENDPOINT, else localhost:4317 (grpc) or localhost:4318 (http), plaintext.
	Endpoint string
	// Protocol is "grpc" or "http/protobuf". Default: OTEL_EXPORTER_OTLP_*PROTOCOL, else grpc.
	Protocol string
	// MetricInterval is the metric export interval. Default:
	// OTEL_METRIC_EXPORT_INTERVAL, else 10s.
	MetricInterval time.Duration
	// ExemplarReservoir is "tail", "sdk", "aligned" or "fixed" (the
	// Reservoir constants say what each keeps). Default:
	// WEBSTORE_EXEMPLAR_RESERVOIR, else "tail".
	ExemplarReservoir string
	// HTTPBodySizeMetrics keeps otelhttp's body-size histograms
	// (HTTPBodySizeMetrics lists them). Default: WEBSTORE_HTTP_BODY_SIZE_METRICS
	// ("true" keeps them), else they are dropped through a View: no dashboard
	// or rule reads them, they are not stable semantic conventions, and they
	// are 11 of the 18 histogram recordings otelhttp makes per checkout.
	HTTPBodySizeMetrics bool
	// ErrorLogInterval is the least time between two logged export errors of
	// one service. Default 30s.
	ErrorLogInterval time.Duration
	// ExtraSpanProcessors are added to every TracerProvider (tests use this to
	// see spans without an exporter).
	ExtraSpanProcessors []sdktrace.SpanProcessor
	// MetricReader, when set, builds an extra reader for each service (a
	// reader cannot be shared between providers); tests use a ManualReader.
	MetricReader func(service string) sdkmetric.Reader
}

// Validate checks the fields that can be wrong.
func (c Config) Validate() error {
	var errs []error
	switch c.Protocol {
	case "", ProtocolGRPC, ProtocolHTTPProtobuf:
	default:
		errs = append(errs, fmt.Errorf("telemetry protocol %q: want grpc or http/protobuf", c.Protocol))
	}
	switch c.ExemplarReservoir {
	case ReservoirDefault, ReservoirTail, ReservoirSDK, ReservoirAligned, ReservoirFixed:
	default:
		errs = append(errs, fmt.Errorf("exemplar reservoir %q: want tail, sdk, aligned or fixed", c.ExemplarReservoir))
	}
	if c.MetricInterval < 0 {
		errs = append(errs, fmt.Errorf("metric interval must not be negative, got %s", c.MetricInterval))
	}
	return errors.Join(errs...)
}

// Providers is one service's telemetry.
type Providers struct {
	// Service is the service.name.
	Service string
	// TracerProvider creates the service's tracers.
	TracerProvider trace.TracerProvider
	// MeterProvider creates the service's meters.
	MeterProvider metric.MeterProvider
	// Propagator is W3C trace context plus baggage.
	Propagator propagation.TextMapPropagator
	// Disabled is set when the providers are no-ops; callers may then skip
	// instrumentation wrappers altogether.
	Disabled bool

	flush    []func(context.Context) error
	shutdown []func(context.Context) error
}

// ForceFlush exports everything buffered so far.
func (p *Providers) ForceFlush(ctx context.Context) error {
	var errs []error
	for _, f := range p.flush {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// Shutdown flushes and stops the providers. Calls after the first do nothing.
func (p *Providers) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range p.shutdown {
		errs = append(errs, f(ctx))
	}
	p.shutdown = nil
	p.flush = nil
	return errors.Join(errs...)
}

// New builds the providers of one service.
func New(ctx context.Context, service string, cfg Config, logger *slog.Logger) (*Providers, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	p := &Providers{
		Service:        service,
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  metricnoop.NewMeterProvider(),
		Propagator:     prop,
	}
	if cfg.Disabled {
		p.Disabled = true
		return p, nil
	}
	res, err := newResource(ctx, service)
	if err != nil {
		return nil, err
	}
	errLog := &rateLimitedLog{logger: logger.With("service", service), every: cfg.ErrorLogInterval}
	if errLog.every <= 0 {
		errLog.every = 30 * time.Second
	}

	// Traces.
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if !exporterNone("OTEL_TRACES_EXPORTER") {
		exp, err := newTraceExporter(ctx, cfg)
		if err != nil {
			return nil, err
		}
		topts = append(topts, sdktrace.WithBatcher(&loggingSpanExporter{next: exp, log: errLog}))
	}
	for _, sp := range cfg.ExtraSpanProcessors {
		topts = append(topts, sdktrace.WithSpanProcessor(sp))
	}
	tp := sdktrace.NewTracerProvider(topts...)
	p.TracerProvider = tp
	p.flush = append(p.flush, tp.ForceFlush)
	p.shutdown = append(p.shutdown, tp.Shutdown)

	// Metrics.
	reservoir := cfg.ExemplarReservoir
	if reservoir == ReservoirDefault {
		reservoir = strings.ToLower(strings.TrimSpace(os.Getenv("WEBSTORE_EXEMPLAR_RESERVOIR")))
	}
	views, err := reservoirViews(reservoir)
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, err
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithView(views...)}
	keepBodySizes, err := keepHTTPBodySizeMetrics(cfg)
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, err
	}
	if !keepBodySizes {
		for _, name := range HTTPBodySizeMetrics {
			mopts = append(mopts, sdkmetric.WithView(sdkmetric.NewView(
				sdkmetric.Instrument{Name: name},
				sdkmetric.Stream{Aggregation: sdkmetric.AggregationDrop{}},
			)))
		}
	}
	if !exporterNone("OTEL_METRICS_EXPORTER") {
		exp, err := newMetricExporter(ctx, cfg)
		if err != nil {
			_ = tp.Shutdown(ctx)
			return nil, err
		}
		var ropts []sdkmetric.PeriodicReaderOption
		if cfg.MetricInterval > 0 {
			ropts = append(ropts, sdkmetric.WithInterval(cfg.MetricInterval))
		} else if os.Getenv("OTEL_METRIC_EXPORT_INTERVAL") == "" {
			ropts = append(ropts, sdkmetric.WithInterval(DefaultMetricInterval))
		}
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(&loggingMetricExporter{Exporter: exp, log: errLog}, ropts...)))
	}
	if cfg.MetricReader != nil {
		mopts = append(mopts, sdkmetric.WithReader(cfg.MetricReader(service)))
	}
	mp := sdkmetric.NewMeterProvider(mopts...)
	p.MeterProvider = mp
	p.flush = append(p.flush, mp.ForceFlush)
	p.shutdown = append(p.shutdown, mp.Shutdown)
	return p, nil
}

// newResource builds service.name=<service> on top of OTEL_RESOURCE_ATTRIBUTES.
// OTEL_SERVICE_NAME, which would give all four services one name, becomes
// service.namespace instead.
func newResource(ctx context.Context, service string) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{attribute.String("service.name", service)}
	if ns := strings.TrimSpace(os.Getenv("OTEL_SERVICE_NAME")); ns != "" {
		attrs = append(attrs, attribute.String("service.namespace", ns))
	}
	env, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost())
	if err != nil && env == nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	// Merge gives precedence to the second resource: our service.name wins.
	res, err := resource.Merge(env, resource.NewSchemaless(attrs...))
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	return res, nil
}

// reservoirViews returns the Views giving the instruments the exemplar
// reservoir kind names; "" is ReservoirTail.
func reservoirViews(kind string) ([]sdkmetric.View, error) {
	var sel sdkmetric.ExemplarReservoirProviderSelector
	switch kind {
	case ReservoirDefault, ReservoirTail:
		return []sdkmetric.View{tailexemplar.View(PaymentDurationMetric), tailexemplar.View(CheckoutAmountMetric)}, nil
	case ReservoirSDK:
		return nil, nil
	case ReservoirAligned:
		sel = func(agg sdkmetric.Aggregation) exemplar.ReservoirProvider {
			if h, ok := agg.(sdkmetric.AggregationExplicitBucketHistogram); ok {
				return exemplar.HistogramReservoirProvider(h.Boundaries)
			}
			return sdkmetric.DefaultExemplarReservoirProviderSelector(agg)
		}
	case ReservoirFixed:
		sel = func(sdkmetric.Aggregation) exemplar.ReservoirProvider {
			return exemplar.FixedSizeReservoirProvider(4)
		}
	default:
		return nil, fmt.Errorf("WEBSTORE_EXEMPLAR_RESERVOIR %q: want tail, sdk, aligned or fixed", kind)
	}
	return []sdkmetric.View{sdkmetric.NewView(
		sdkmetric.Instrument{Name: PaymentDurationMetric},
		sdkmetric.Stream{ExemplarReservoirProviderSelector: sel},
	)}, nil
}

// keepHTTPBodySizeMetrics resolves Config.HTTPBodySizeMetrics and
// WEBSTORE_HTTP_BODY_SIZE_METRICS.
func keepHTTPBodySizeMetrics(cfg Config) (bool, error) {
	if cfg.HTTPBodySizeMetrics {
		return true, nil
	}
	v := strings.TrimSpace(os.Getenv("WEBSTORE_HTTP_BODY_SIZE_METRICS"))
	if v == "" {
		return false, nil
	}
	keep, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("WEBSTORE_HTTP_BODY_SIZE_METRICS %q: want true or false", v)
	}
	return keep, nil
}

func exporterNone(key string) bool {
	return strings.EqualFold(strings.TrimSpace(os.Getenv(key)), "none")
}

// protocol resolves the protocol for one signal ("TRACES" or "METRICS").
func protocol(cfg Config, signal string) (string, error) {
	p := cfg.Protocol
	if p == "" {
		p = os.Getenv("OTEL_EXPORTER_OTLP_" + signal + "_PROTOCOL")
	}
	if p == "" {
		p = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch strings.ToLower(strings.TrimSpace(p)) {
	case "", ProtocolGRPC:
		return ProtocolGRPC, nil
	case ProtocolHTTPProtobuf:
		return ProtocolHTTPProtobuf, nil
	default:
		return "", fmt.Errorf("OTLP protocol %q is not supported: use grpc or http/protobuf", p)
	}
}

// endpointFromEnv reports whether the environment names an endpoint for signal.
func endpointFromEnv(signal string) bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") != ""
}

// endpointMode says how to pass the endpoint: a URL, host:port plaintext, or
// nothing (the environment's or the exporter's default made plaintext).
type endpointMode struct {
	url, hostPort string
	insecure      bool
}

func resolveEndpoint(cfg Config, signal string) endpointMode {
	switch {
	case strings.Contains(cfg.Endpoint, "://"):
		return endpointMode{url: cfg.Endpoint}
	case cfg.Endpoint != "":
		return endpointMode{hostPort: cfg.Endpoint, insecure: true}
	case endpointFromEnv(signal):
		return endpointMode{}
	default:
		// Nothing configured: the local Lookout (or Collector) on loopback, plaintext.
		return endpointMode{insecure: true}
	}
}

func newTraceExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	proto, err := protocol(cfg, "TRACES")
	if err != nil {
		return nil, err
	}
	ep := resolveEndpoint(cfg, "TRACES")
	if proto == ProtocolHTTPProtobuf {
		var opts []otlptracehttp.Option
		if ep.url != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(ep.url))
		}
		if ep.hostPort != "" {
			opts = append(opts, otlptracehttp.WithEndpoint(ep.hostPort))
		}
		if ep.insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("OTLP/HTTP trace exporter: %w", err)
		}
		return exp, nil
	}
	var opts []otlptracegrpc.Option
	if ep.url != "" {
		opts = append(opts, otlptracegrpc.WithEndpointURL(ep.url))
	}
	if ep.hostPort != "" {
		opts = append(opts, otlptracegrpc.WithEndpoint(ep.hostPort))
	}
	if ep.insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("OTLP/gRPC trace exporter: %w", err)
	}
	return exp, nil
}

func newMetricExporter(ctx context.Context, cfg Config) (sdkmetric.Exporter, error) {
	proto, err := protocol(cfg, "METRICS")
	if err != nil {
		return nil, err
	}
	ep := resolveEndpoint(cfg, "METRICS")
	if proto == ProtocolHTTPProtobuf {
		var opts []otlpmetrichttp.Option
		if ep.url != "" {
			opts = append(opts, otlpmetrichttp.WithEndpointURL(ep.url))
		}
		if ep.hostPort != "" {
			opts = append(opts, otlpmetrichttp.WithEndpoint(ep.hostPort))
		}
		if ep.insecure {
			opts = append(opts, otlpmetrichttp.WithInsecure())
		}
		exp, err := otlpmetrichttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("OTLP/HTTP metric exporter: %w", err)
		}
		return exp, nil
	}
	var opts []otlpmetricgrpc.Option
	if ep.url != "" {
		opts = append(opts, otlpmetricgrpc.WithEndpointURL(ep.url))
	}
	if ep.hostPort != "" {
		opts = append(opts, otlpmetricgrpc.WithEndpoint(ep.hostPort))
	}
	if ep.insecure {
		opts = append(opts, otlpmetricgrpc.WithInsecure())
	}
	exp, err := otlpmetricgrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("OTLP/gRPC metric exporter: %w", err)
	}
	return exp, nil
}

// rateLimitedLog logs export errors at most once per interval, counting the
// ones it suppressed.
type rateLimitedLog struct {
	logger     *slog.Logger
	every      time.Duration
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (r *rateLimitedLog) log(signal string, err error) {
	r.mu.Lock()
	t := time.Now()
	if !r.last.IsZero() && t.Sub(r.last) < r.every {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	n := r.suppressed
	r.suppressed = 0
	r.last = t
	r.mu.Unlock()
	r.logger.Warn("telemetry export failed; requests are unaffected", "signal", signal, "err", err, "suppressed_since_last", n)
}

// loggingSpanExporter logs export errors and swallows them, so the SDK's
// global error handler is never involved.
type loggingSpanExporter struct {
	next sdktrace.SpanExporter
	log  *rateLimitedLog
}

func (e *loggingSpanExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if err := e.next.ExportSpans(ctx, spans); err != nil {
		e.log.log("traces", err)
	}
	return nil
}

func (e *loggingSpanExporter) Shutdown(ctx context.Context) error { return e.next.Shutdown(ctx) }

// loggingMetricExporter does the same for metrics.
type loggingMetricExporter struct {
	sdkmetric.Exporter
	log *rateLimitedLog
}

func (e *loggingMetricExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	if err := e.Exporter.Export(ctx, rm); err != nil {
		e.log.log("metrics", err)
	}
	return nil
}
