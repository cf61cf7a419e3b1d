package spanmetrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/xpdata/xhash"

	"github.com/lookout-dev/lookout/internal/ingest"
)

// Options configure a Deriver. Start from DefaultOptions.
type Options struct {
	// FlushInterval is how often the metrics go to the metrics sink.
	// Default 15 s: Prometheus's usual scrape interval and Lookout's rule
	// evaluation interval, so rate(...[1m]) has four points and an alert
	// on span metrics sees a change within one evaluation; the connector's
	// own default, 60 s, would leave rate(...[1m]) with one point.
	FlushInterval time.Duration
	// CardinalityLimit bounds the series (distinct resource, span name,
	// kind and status) held across all resources. Once it is reached a
	// span of a new combination is counted in its resource's overflow
	// series (otel.metric.overflow=true), as the connector's
	// aggregation_cardinality_limit does per resource. 0 means no limit.
	// Default 10,000: 21 TSDB samples per series per flush, so at most
	// about 14,000 samples/s at the default interval.
	CardinalityLimit int
	// Buckets are the duration histogram's explicit upper bounds in
	// milliseconds, strictly increasing. Default the connector's: 2, 4, 6,
	// 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000.
	Buckets []float64
	// SeriesExpiration drops a series that has had no span for this long,
	// which frees its place under CardinalityLimit (the connector's
	// series_expiration); if spans come again it starts afresh. Default
	// 1 h; 0 keeps series for the Deriver's life, as the connector does by
	// default.
	SeriesExpiration time.Duration
	// InstanceID is the value of the collector.instance.id attribute the
	// connector adds to every point (its feature gate
	// connector.spanmetrics.includeCollectorInstanceID is beta, so on, in
	// v0.161 and v0.165; the value is the collector's service.instance.id,
	// a UUID made at start). Empty leaves the attribute out, as the
	// connector's exclude_dimensions can.
	InstanceID string
}

// DefaultOptions returns the defaults documented on Options.
func DefaultOptions() Options {
	return Options{
		FlushInterval:    15 * time.Second,
		CardinalityLimit: 10_000,
		Buckets:          []float64{2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10_000, 15_000},
		SeriesExpiration: time.Hour,
	}
}

// Validate reports every invalid option at once.
func (o Options) Validate() error {
	var errs []error
	if o.FlushInterval <= 0 {
		errs = append(errs, errors.New("flush interval must be positive"))
	}
	if o.CardinalityLimit < 0 {
		errs = append(errs, errors.New("cardinality limit must not be negative (0: no limit)"))
	}
	if len(o.Buckets) == 0 {
		errs = append(errs, errors.New("at least one histogram bucket bound is needed"))
	}
	for i := 1; i < len(o.Buckets); i++ {
		if !(o.Buckets[i] > o.Buckets[i-1]) {
			errs = append(errs, fmt.Errorf("histogram bucket bounds must increase strictly: %v then %v", o.Buckets[i-1], o.Buckets[i]))
			break
		}
	}
	if o.SeriesExpiration < 0 {
		errs = append(errs, errors.New("series expiration must not be negative (0: never)"))
	}
	return errors.Join(errs...)
}

// Names and attributes as the connector writes them (connector.go and
// internal/metrics/metrics.go of v0.165.0).
const (
	callsMetric       = "traces.span.metrics.calls"
	durationMetric    = "traces.span.metrics.duration"
	durationUnit      = "ms"
	scopeName         = "spanmetricsconnector"
	serviceNameKey    = "service.name"
	spanNameKey       = "span.name"
	spanKindKey       = "span.kind"
	statusCodeKey     = "status.code"
	instanceIDKey     = "collector.instance.id"
	overflowAttribute = "otel.metric.overflow"
)

// Deriver derives span metrics from the spans its next sink stores. It is
// an ingest.TracesSink, safe for concurrent use; Run flushes the metrics.
type Deriver struct {
	next    ingest.TracesSink
	metrics ingest.MetricsSink
	opts    Options
	logger  *slog.Logger
	m       deriverMetrics
	// now is time.Now; tests set a fixed clock.
	now func() time.Time

	// mu guards everything below. Aggregation takes it once per request.
	mu        sync.Mutex
	resources map[[16]byte]*resourceState
	// order holds the resources in the order they first came, so that a
	// flush's output is deterministic.
	order  []*resourceState
	series map[seriesKey]*series
	// limited counts the series subject to CardinalityLimit (all but the
	// overflow series).
	limited int
}

var _ ingest.TracesSink = (*Deriver)(nil)

// resourceState is one distinct span resource and the series derived from
// its spans.
type resourceState struct {
	hash    [16]byte
	attrs   pcommon.Map
	service string
	// series in creation order, overflow included.
	series   []*series
	overflow *series
}

// seriesKey identifies a series: its resource (by hash of all attributes,
// as the connector keys resources) and its dimensions. kind and status are
// the indexes of the connector's strings, so values it has no name for
// share one series as they share the connector's empty string.
type seriesKey struct {
	resource [16]byte
	name     string
	kind     uint8
	status   uint8
}

// series is one calls point and one duration point, with shared dimensions.
type series struct {
	key      seriesKey
	overflow bool
	start    pcommon.Timestamp
	lastSeen pcommon.Timestamp
	// flushed is set by the first flush, which reports calls as 0.
	flushed bool
	calls   uint64
	count   uint64
	sum     float64
	buckets []uint64
	// exemplars has one slot per bucket, for the largest span since the
	// last flush, of which a flush reports the highest bucket's (the
	// slowest span); nil until the first span with a trace ID.
	exemplars []exemplar
}

type exemplar struct {
	traceID pcommon.TraceID
	spanID  pcommon.SpanID
	value   float64
	set     bool
}

type deriverMetrics struct {
	spans         prometheus.Counter
	skipped       *prometheus.CounterVec
	overflowSpans prometheus.Counter
	series        prometheus.Gauge
	expired       prometheus.Counter
	flushes       prometheus.Counter
	flushErrors   prometheus.Counter
}

func newDeriverMetrics(reg prometheus.Registerer) deriverMetrics {
	f := promauto.With(reg)
	c := func(name, help string) prometheus.Counter {
		return f.NewCounter(prometheus.CounterOpts{Namespace: "lookout", Subsystem: "spanmetrics", Name: name, Help: help})
	}
	return deriverMetrics{
		spans: c("spans_total", "Spans counted into span metrics."),
		skipped: f.NewCounterVec(prometheus.CounterOpts{Namespace: "lookout", Subsystem: "spanmetrics", Name: "spans_skipped_total",
			Help: "Stored spans not counted into span metrics, by reason: no_service_name (as the connector), partial_rejection (the trace store refused other spans of the same request, without saying which)."},
			[]string{"reason"}),
		overflowSpans: c("overflow_spans_total", "Spans counted in an overflow series (otel.metric.overflow) because the cardinality limit was reached."),
		series: f.NewGauge(prometheus.GaugeOpts{Namespace: "lookout", Subsystem: "spanmetrics", Name: "series",
			Help: "Span metrics series held, overflow series included; each is one calls and one duration point per flush."}),
		expired:     c("series_expired_total", "Series dropped after no span for the series expiration."),
		flushes:     c("flushes_total", "Flushes of span metrics to the metric store."),
		flushErrors: c("flush_errors_total", "Flushes the metric store refused; the next flush sends the cumulative values again."),
	}
}

// New returns a Deriver storing spans in next and flushing metrics to
// metrics. It registers its own metrics (lookout_spanmetrics_*) with reg,
// which may be nil.
func New(next ingest.TracesSink, metrics ingest.MetricsSink, opts Options, logger *slog.Logger, reg prometheus.Registerer) (*Deriver, error) {
	if next == nil || metrics == nil {
		return nil, errors.New("spanmetrics: a traces sink and a metrics sink are required")
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("spanmetrics options: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts.Buckets = slices.Clone(opts.Buckets)
	return &Deriver{
		next:      next,
		metrics:   metrics,
		opts:      opts,
		logger:    logger,
		m:         newDeriverMetrics(reg),
		now:       time.Now,
		resources: map[[16]byte]*resourceState{},
		series:    map[seriesKey]*series{},
	}, nil
}

// ConsumeTraces stores td in the next sink and then counts its spans. An
// error from the next sink is returned unchanged and nothing is counted. A
// partial success (Result.Rejected > 0) is returned unchanged too, but
// none of that request's spans is counted: the Result does not say which
// spans were refused, and counting a refused span (one with no trace ID,
// ending before it starts, ...) would make the metrics disagree with the
// traces. lookout_spanmetrics_spans_skipped_total{reason="partial_rejection"}
// counts the stored spans so left out.
func (d *Deriver) ConsumeTraces(ctx context.Context, td ptrace.Traces) (ingest.Result, error) {
	res, err := d.next.ConsumeTraces(ctx, td)
	if err != nil {
		return res, err
	}
	if res.Rejected > 0 {
		if kept := int64(td.SpanCount()) - res.Rejected; kept > 0 {
			d.m.skipped.WithLabelValues("partial_rejection").Add(float64(kept))
		}
		return res, nil
	}
	d.aggregate(td)
	return res, nil
}

// aggregate counts every span of td. It allocates only for new series and
// new resources, and for the first span of each run of spans sharing a
// sampling tracestate.
func (d *Deriver) aggregate(td ptrace.Traces) {
	now := pcommon.NewTimestampFromTime(d.now())
	var adjusted adjustedCountCache
	var counted, noService int
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, rs := range td.ResourceSpans().All() {
		attrs := rs.Resource().Attributes()
		svc, ok := attrs.Get(serviceNameKey)
		if !ok {
			for _, ss := range rs.ScopeSpans().All() {
				noService += ss.Spans().Len()
			}
			continue
		}
		hash := xhash.MapHash(attrs)
		var res *resourceState
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				key := seriesKey{resource: hash, name: sp.Name(), kind: kindIndex(sp.Kind()), status: statusIndex(sp.Status().Code())}
				s := d.series[key]
				if s == nil {
					if res == nil {
						res = d.resource(hash, attrs, svc)
					}
					s = d.newSeries(res, key, now)
				}
				var ms float64
				if start, end := sp.StartTimestamp(), sp.EndTimestamp(); end > start {
					ms = float64(end-start) / float64(time.Millisecond)
				}
				n := adjusted.count(sp.TraceState().AsRaw())
				s.observe(ms, n, d.opts.Buckets, sp, now)
				counted++
			}
		}
	}
	d.m.spans.Add(float64(counted))
	if noService > 0 {
		d.m.skipped.WithLabelValues("no_service_name").Add(float64(noService))
	}
}

// resource returns the state of the resource with this hash, creating it
// with a copy of attrs: the request's data is not ours to keep.
func (d *Deriver) resource(hash [16]byte, attrs pcommon.Map, svc pcommon.Value) *resourceState {
	if r := d.resources[hash]; r != nil {
		return r
	}
	r := &resourceState{hash: hash, attrs: pcommon.NewMap(), service: strings.Clone(svc.Str())}
	attrs.CopyTo(r.attrs)
	d.resources[hash] = r
	d.order = append(d.order, r)
	return r
}

// newSeries creates the series for key, or returns its resource's overflow
// series once CardinalityLimit series exist.
func (d *Deriver) newSeries(r *resourceState, key seriesKey, now pcommon.Timestamp) *series {
	if d.opts.CardinalityLimit > 0 && d.limited >= d.opts.CardinalityLimit {
		d.m.overflowSpans.Inc()
		if r.overflow == nil {
			r.overflow = &series{overflow: true, start: now, buckets: make([]uint64, len(d.opts.Buckets)+1)}
			r.series = append(r.series, r.overflow)
			d.m.series.Inc()
		}
		return r.overflow
	}
	key.name = strings.Clone(key.name)
	s := &series{key: key, start: now, buckets: make([]uint64, len(d.opts.Buckets)+1)}
	d.series[key] = s
	r.series = append(r.series, s)
	d.limited++
	d.m.series.Inc()
	return s
}

// observe counts one span of duration ms (milliseconds) that stands for n
// spans. The overflow series keeps no exemplars, as in the connector.
func (s *series) observe(ms float64, n uint64, bounds []float64, sp ptrace.Span, now pcommon.Timestamp) {
	s.lastSeen = now
	s.calls += n
	s.count += n
	s.sum += ms * float64(n)
	// The smallest bound >= ms: bounds are upper-inclusive.
	i := sort.SearchFloat64s(bounds, ms)
	s.buckets[i] += n
	if s.overflow || sp.TraceID().IsEmpty() {
		return
	}
	if s.exemplars == nil {
		s.exemplars = make([]exemplar, len(s.buckets))
	}
	if e := &s.exemplars[i]; !e.set || ms > e.value {
		*e = exemplar{traceID: sp.TraceID(), spanID: sp.SpanID(), value: ms, set: true}
	}
}

// kindIndex and statusIndex map to the connector's strings (its
// traceutil.SpanKindStr and StatusCodeStr); the last index is "".
var (
	kindStrings   = [...]string{"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER", ""}
	statusStrings = [...]string{"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR", ""}
)

func kindIndex(k ptrace.SpanKind) uint8 {
	if k < 0 || int(k) >= len(kindStrings)-1 {
		return uint8(len(kindStrings) - 1)
	}
	return uint8(k)
}

func statusIndex(c ptrace.StatusCode) uint8 {
	if c < 0 || int(c) >= len(statusStrings)-1 {
		return uint8(len(statusStrings) - 1)
	}
	return uint8(c)
}
