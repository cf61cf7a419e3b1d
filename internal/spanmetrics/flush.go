package spanmetrics

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Run flushes the metrics every FlushInterval until ctx is cancelled, then
// flushes once more (with ctx's values but without its cancellation) and
// returns nil. Stop the receivers before cancelling ctx, and close the
// metrics sink only after Run returned, so the last spans are flushed.
// Spans consumed after Run returned are still stored but no longer
// flushed. Run must be called once.
func (d *Deriver) Run(ctx context.Context) error {
	t := time.NewTicker(d.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			d.flush(context.WithoutCancel(ctx))
			return nil
		case <-t.C:
			d.flush(ctx)
		}
	}
}

// flush hands the cumulative metrics to the metrics sink. A refused flush
// is logged and counted; the next one sends the cumulative values again,
// so only the exemplars of the interval are lost.
func (d *Deriver) flush(ctx context.Context) {
	md, points := d.collect()
	if points == 0 {
		return
	}
	d.m.flushes.Inc()
	res, err := d.metrics.ConsumeMetrics(ctx, md)
	if err != nil {
		d.m.flushErrors.Inc()
		d.logger.Warn("span metrics flush failed", "points", points, "err", err)
		return
	}
	if res.Rejected > 0 {
		d.logger.Warn("the metric store refused some span metrics points", "rejected", res.Rejected, "reason", res.Message)
	}
}

// collect expires idle series and builds the flush: per resource one
// ResourceMetrics with the connector's scope, calls and duration metrics,
// each series one point of each. It clears the exemplars it reported and
// returns the number of data points.
func (d *Deriver) collect() (pmetric.Metrics, int) {
	now := pcommon.NewTimestampFromTime(d.now())
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(now)
	md := pmetric.NewMetrics()
	points := 0
	md.ResourceMetrics().EnsureCapacity(len(d.order))
	for _, r := range d.order {
		rm := md.ResourceMetrics().AppendEmpty()
		r.attrs.CopyTo(rm.Resource().Attributes())
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName(scopeName)

		calls := sm.Metrics().AppendEmpty()
		calls.SetName(callsMetric)
		sum := calls.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		sum.DataPoints().EnsureCapacity(len(r.series))

		duration := sm.Metrics().AppendEmpty()
		duration.SetName(durationMetric)
		duration.SetUnit(durationUnit)
		hist := duration.SetEmptyHistogram()
		hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		hist.DataPoints().EnsureCapacity(len(r.series))

		for _, s := range r.series {
			cp := sum.DataPoints().AppendEmpty()
			cp.SetStartTimestamp(s.start)
			cp.SetTimestamp(now)
			// The connector reports a new cumulative sum as 0 once, so
			// that the first increase is not lost to Prometheus's rate.
			if s.flushed {
				cp.SetIntValue(int64(s.calls))
			} else {
				cp.SetIntValue(0)
				s.flushed = true
			}
			d.putAttributes(cp.Attributes(), r, s)

			hp := hist.DataPoints().AppendEmpty()
			hp.SetStartTimestamp(s.start)
			hp.SetTimestamp(now)
			hp.ExplicitBounds().FromRaw(d.opts.Buckets)
			hp.BucketCounts().FromRaw(s.buckets)
			hp.SetCount(s.count)
			hp.SetSum(s.sum)
			// One exemplar per point: the slowest span since the last
			// flush (the highest bucket's), since every exemplar pins its
			// trace for the metrics' retention.
			for i := len(s.exemplars) - 1; i >= 0; i-- {
				if e := s.exemplars[i]; e.set {
					ex := hp.Exemplars().AppendEmpty()
					ex.SetTimestamp(now)
					ex.SetDoubleValue(e.value)
					ex.SetTraceID(e.traceID)
					ex.SetSpanID(e.spanID)
					break
				}
			}
			clear(s.exemplars)
			d.putAttributes(hp.Attributes(), r, s)
			points += 2
		}
	}
	return md, points
}

// putAttributes writes a point's attributes in the connector's order.
func (d *Deriver) putAttributes(m pcommon.Map, r *resourceState, s *series) {
	if s.overflow {
		m.PutBool(overflowAttribute, true)
		return
	}
	m.EnsureCapacity(5)
	m.PutStr(serviceNameKey, r.service)
	m.PutStr(spanNameKey, s.key.name)
	m.PutStr(spanKindKey, kindStrings[s.key.kind])
	m.PutStr(statusCodeKey, statusStrings[s.key.status])
	if d.opts.InstanceID != "" {
		m.PutStr(instanceIDKey, d.opts.InstanceID)
	}
}

// expire drops the series without a span for SeriesExpiration, and the
// resources left without series.
func (d *Deriver) expire(now pcommon.Timestamp) {
	if d.opts.SeriesExpiration <= 0 {
		return
	}
	cutoff := now - pcommon.Timestamp(d.opts.SeriesExpiration)
	if now < pcommon.Timestamp(d.opts.SeriesExpiration) {
		return
	}
	expired := 0
	keep := d.order[:0]
	for _, r := range d.order {
		live := r.series[:0]
		for _, s := range r.series {
			if s.lastSeen >= cutoff {
				live = append(live, s)
				continue
			}
			expired++
			if s.overflow {
				r.overflow = nil
			} else {
				delete(d.series, s.key)
				d.limited--
			}
		}
		clear(r.series[len(live):])
		r.series = live
		if len(live) == 0 {
			delete(d.resources, r.hash)
			continue
		}
		keep = append(keep, r)
	}
	clear(d.order[len(keep):])
	d.order = keep
	if expired > 0 {
		d.m.expired.Add(float64(expired))
		d.m.series.Sub(float64(expired))
	}
}
