package otlpin

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/ingest"
)

// Limits bound what one data point or span may carry, as Mimir's and
// Tempo's ingest limits do. A metric data point over a limit is dropped
// and reported in the answer's partial success, naming the limit; a span's
// over-long strings are cut, as Tempo cuts attribute values. Every string
// with invalid UTF-8 is repaired (each run of bad bytes becomes U+FFFD) so that
// every API answer is valid JSON. The zero value means no limits.
type Limits struct {
	// MaxPointAttributes bounds a metric data point's attributes (its
	// labels besides job and instance). Default 128.
	MaxPointAttributes int
	// MaxResourceAttributes bounds a resource's attributes. Default 1024.
	MaxResourceAttributes int
	// MaxLabelNameBytes and MaxLabelValueBytes bound a metric data point's
	// attribute keys and values, as Mimir's max_label_name_length and
	// max_label_value_length. Defaults 1024 and 2048.
	MaxLabelNameBytes, MaxLabelValueBytes int
	// MaxBuckets bounds an explicit histogram point's bounds and an
	// exponential one's buckets: each bound becomes a series. Default 512.
	MaxBuckets int
	// MaxEventLinkAttributes bounds the attributes a span's events and
	// links carry together; a span with more is refused. Default 2048, the
	// trace store's cap on a span's own attributes.
	MaxEventLinkAttributes int
	// MaxSpanStringBytes cuts span, event and link attribute values, span
	// and event names and status messages longer than this, as Tempo's
	// max_attribute_bytes does. Default 65536.
	MaxSpanStringBytes int
}

// DefaultLimits returns the documented defaults.
func DefaultLimits() Limits {
	return Limits{
		MaxPointAttributes:     128,
		MaxResourceAttributes:  1024,
		MaxLabelNameBytes:      1024,
		MaxLabelValueBytes:     2048,
		MaxBuckets:             512,
		MaxEventLinkAttributes: 2048,
		MaxSpanStringBytes:     64 << 10,
	}
}

// checkMetrics repairs invalid UTF-8 in md and drops the data points over
// a limit, returning why (the first limit broken), or "".
func (l Limits) checkMetrics(md pmetric.Metrics) (reason string) {
	reject := func(r string) bool {
		if reason == "" {
			reason = r
		}
		return true
	}
	md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		res := rm.Resource().Attributes()
		if l.MaxResourceAttributes > 0 && res.Len() > l.MaxResourceAttributes {
			return reject(fmt.Sprintf("a resource has %d attributes, more than the limit of %d", res.Len(), l.MaxResourceAttributes))
		}
		repairMap(res)
		for _, sm := range rm.ScopeMetrics().All() {
			sm.Scope().SetName(repair(sm.Scope().Name()))
			repairMap(sm.Scope().Attributes())
			for _, m := range sm.Metrics().All() {
				m.SetName(repair(m.Name()))
				m.SetUnit(repair(m.Unit()))
				m.SetDescription(repair(m.Description()))
				attrs := func(a pcommon.Map) bool {
					if r := l.pointAttributes(a); r != "" {
						return reject(r)
					}
					return false
				}
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					m.Gauge().DataPoints().RemoveIf(func(p pmetric.NumberDataPoint) bool { return attrs(p.Attributes()) })
				case pmetric.MetricTypeSum:
					m.Sum().DataPoints().RemoveIf(func(p pmetric.NumberDataPoint) bool { return attrs(p.Attributes()) })
				case pmetric.MetricTypeHistogram:
					m.Histogram().DataPoints().RemoveIf(func(p pmetric.HistogramDataPoint) bool {
						if l.MaxBuckets > 0 && p.ExplicitBounds().Len() > l.MaxBuckets {
							return reject(fmt.Sprintf("a histogram point has %d bucket bounds, more than the limit of %d", p.ExplicitBounds().Len(), l.MaxBuckets))
						}
						return attrs(p.Attributes())
					})
				case pmetric.MetricTypeExponentialHistogram:
					m.ExponentialHistogram().DataPoints().RemoveIf(func(p pmetric.ExponentialHistogramDataPoint) bool {
						if n := p.Positive().BucketCounts().Len() + p.Negative().BucketCounts().Len(); l.MaxBuckets > 0 && n > l.MaxBuckets {
							return reject(fmt.Sprintf("an exponential histogram point has %d buckets, more than the limit of %d", n, l.MaxBuckets))
						}
						return attrs(p.Attributes())
					})
				case pmetric.MetricTypeSummary:
					m.Summary().DataPoints().RemoveIf(func(p pmetric.SummaryDataPoint) bool { return attrs(p.Attributes()) })
				}
			}
		}
		return false
	})
	return reason
}

// pointAttributes repairs a data point's attributes and names the limit
// they break, or returns "".
func (l Limits) pointAttributes(a pcommon.Map) string {
	if l.MaxPointAttributes > 0 && a.Len() > l.MaxPointAttributes {
		return fmt.Sprintf("a data point has %d attributes, more than the limit of %d", a.Len(), l.MaxPointAttributes)
	}
	repairMap(a)
	for k, v := range a.All() {
		if l.MaxLabelNameBytes > 0 && len(k) > l.MaxLabelNameBytes {
			return fmt.Sprintf("an attribute name is %d bytes, more than the limit of %d", len(k), l.MaxLabelNameBytes)
		}
		if l.MaxLabelValueBytes > 0 && v.Type() == pcommon.ValueTypeStr && len(v.Str()) > l.MaxLabelValueBytes {
			return fmt.Sprintf("attribute %q's value is %d bytes, more than the limit of %d", truncateBytes(k, 64), len(v.Str()), l.MaxLabelValueBytes)
		}
	}
	return ""
}

// checkTraces repairs invalid UTF-8 in td and cuts its over-long strings,
// returning how many strings it cut, and drops the spans over a limit,
// returning why (the first limit broken), or "".
func (l Limits) checkTraces(td ptrace.Traces) (cut int64, reason string) {
	reject := func(r string) bool {
		if reason == "" {
			reason = r
		}
		return true
	}
	str := func(s string) string {
		s = repair(s)
		if l.MaxSpanStringBytes > 0 && len(s) > l.MaxSpanStringBytes {
			cut++
			return truncateBytes(s, l.MaxSpanStringBytes)
		}
		return s
	}
	attrs := func(a pcommon.Map) {
		repairMap(a)
		if l.MaxSpanStringBytes <= 0 {
			return
		}
		for _, v := range a.All() {
			if v.Type() == pcommon.ValueTypeStr && len(v.Str()) > l.MaxSpanStringBytes {
				cut++
				v.SetStr(truncateBytes(v.Str(), l.MaxSpanStringBytes))
			}
		}
	}
	td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		res := rs.Resource().Attributes()
		if l.MaxResourceAttributes > 0 && res.Len() > l.MaxResourceAttributes {
			return reject(fmt.Sprintf("a resource has %d attributes, more than the limit of %d", res.Len(), l.MaxResourceAttributes))
		}
		attrs(res)
		for _, ss := range rs.ScopeSpans().All() {
			ss.Scope().SetName(repair(ss.Scope().Name()))
			attrs(ss.Scope().Attributes())
			ss.Spans().RemoveIf(func(sp ptrace.Span) bool {
				if l.MaxEventLinkAttributes > 0 {
					n := 0
					for _, e := range sp.Events().All() {
						n += e.Attributes().Len()
					}
					for _, lk := range sp.Links().All() {
						n += lk.Attributes().Len()
					}
					if n > l.MaxEventLinkAttributes {
						return reject(fmt.Sprintf("a span's events and links carry %d attributes, more than the limit of %d", n, l.MaxEventLinkAttributes))
					}
				}
				sp.SetName(str(sp.Name()))
				sp.Status().SetMessage(str(sp.Status().Message()))
				sp.TraceState().FromRaw(repair(sp.TraceState().AsRaw()))
				attrs(sp.Attributes())
				for _, e := range sp.Events().All() {
					e.SetName(str(e.Name()))
					attrs(e.Attributes())
				}
				for _, lk := range sp.Links().All() {
					attrs(lk.Attributes())
				}
				return false
			})
		}
		return false
	})
	return cut, reason
}

// repair replaces each run of invalid UTF-8 bytes with U+FFFD.
func repair(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// repairMap repairs a map's keys and string values, nested ones included.
func repairMap(a pcommon.Map) {
	badKey := false
	for k, v := range a.All() {
		if !utf8.ValidString(k) {
			badKey = true
		}
		repairValue(v)
	}
	if !badKey {
		return
	}
	fixed := pcommon.NewMap()
	fixed.EnsureCapacity(a.Len())
	for k, v := range a.All() {
		v.CopyTo(fixed.PutEmpty(repair(k)))
	}
	fixed.MoveTo(a)
}

func repairValue(v pcommon.Value) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		if s := v.Str(); !utf8.ValidString(s) {
			v.SetStr(repair(s))
		}
	case pcommon.ValueTypeMap:
		repairMap(v.Map())
	case pcommon.ValueTypeSlice:
		for _, e := range v.Slice().All() {
			repairValue(e)
		}
	}
}

// truncateBytes cuts s to at most n bytes without splitting a character.
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// metricsConsumer applies the limits to md and returns its data point count
// and the sink call, whose answer reports the dropped points as rejected.
func (r *Receiver) metricsConsumer(md pmetric.Metrics) (int64, consumeFunc) {
	n := int64(md.DataPointCount())
	reason := r.opts.Limits.checkMetrics(md)
	dropped := n - int64(md.DataPointCount())
	return n, func(ctx context.Context) (ingest.Result, error) {
		res, err := r.metrics.ConsumeMetrics(ctx, md)
		return withDropped(res, dropped, "data points", reason), err
	}
}

// tracesConsumer is metricsConsumer for spans; cut strings are counted.
func (r *Receiver) tracesConsumer(td ptrace.Traces) (int64, consumeFunc) {
	n := int64(td.SpanCount())
	cut, reason := r.opts.Limits.checkTraces(td)
	dropped := n - int64(td.SpanCount())
	if cut > 0 {
		r.m.truncated.Add(float64(cut))
	}
	return n, func(ctx context.Context) (ingest.Result, error) {
		res, err := r.traces.ConsumeTraces(ctx, td)
		return withDropped(res, dropped, "spans", reason), err
	}
}

// withDropped adds the items the limits dropped to a sink's answer.
func withDropped(res ingest.Result, dropped int64, what, reason string) ingest.Result {
	if dropped == 0 {
		return res
	}
	msg := fmt.Sprintf("%d %s over an ingest limit: %s", dropped, what, reason)
	if res.Message != "" {
		msg += "; " + res.Message
	}
	return ingest.Result{Rejected: res.Rejected + dropped, Message: msg}
}
