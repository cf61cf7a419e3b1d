package metricstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/lookout-dev/lookout/internal/ingest"
)

// FuzzConsumeMetrics sends what clients can send (any OTLP metrics
// request) through the real store, one store for the whole run so that
// requests meet earlier series and samples: no panic, and a partial
// success never reports more rejected data points than were sent.
func FuzzConsumeMetrics(f *testing.F) {
	seed := func(build func(ms pmetric.MetricSlice)) {
		md := pmetric.NewMetrics()
		build(newScope(md))
		b, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(func(ms pmetric.MetricSlice) { histogramWithExemplars(ms, 0, 0.5, 7, 12) })
	seed(func(ms pmetric.MetricSlice) { histogramWithExemplars(ms, 24*time.Hour, 3) })
	seed(func(ms pmetric.MetricSlice) {
		gauge(ms, "temperature", map[time.Duration]float64{0: 1, time.Minute: 2})
		histogramWithExemplars(ms, -time.Minute, 0.1)
	})
	seed(func(ms pmetric.MetricSlice) { expHistogram(ms, ts(0), 3) })
	seed(func(ms pmetric.MetricSlice) {
		s := ms.AppendEmpty()
		s.SetName("latency")
		dp := s.SetEmptySummary().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts(0))
		q := dp.QuantileValues().AppendEmpty()
		q.SetQuantile(0.5)
		q.SetValue(1)
	})
	seed(func(ms pmetric.MetricSlice) {
		d := ms.AppendEmpty()
		d.SetName("orders")
		sum := d.SetEmptySum()
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		sum.SetIsMonotonic(true)
		dp := sum.DataPoints().AppendEmpty()
		dp.SetTimestamp(ts(0))
		dp.SetStartTimestamp(ts(-time.Minute))
		dp.SetIntValue(3)
		dp.Attributes().PutStr("country", "NL")
	})
	s, err := Open(f.TempDir(), DefaultOptions(), nil, prometheus.NewRegistry())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(b)
		if err != nil {
			return
		}
		// Keep timestamps near now, where the TSDB accepts samples, so
		// the fuzzer explores storing rather than only refusals.
		forEachPoint(md, func(p pcommon.Timestamp) pcommon.Timestamp {
			return ts(time.Duration(uint64(p)%uint64(2*time.Hour)) - time.Hour)
		})
		points := int64(md.DataPointCount())
		res, err := s.ConsumeMetrics(context.Background(), md)
		if err != nil {
			if !errors.Is(err, ingest.ErrBadData) {
				t.Fatalf("ConsumeMetrics: %v", err)
			}
			return
		}
		if res.Rejected < 0 || res.Rejected > points {
			t.Fatalf("%d of %d data points rejected", res.Rejected, points)
		}
	})
}

// forEachPoint rewrites the timestamp of every number, histogram,
// exponential histogram and summary data point in md.
func forEachPoint(md pmetric.Metrics, f func(pcommon.Timestamp) pcommon.Timestamp) {
	for m := range allMetrics(md) {
		switch m.Type() {
		case pmetric.MetricTypeGauge:
			restamp(m.Gauge().DataPoints(), f)
		case pmetric.MetricTypeSum:
			restamp(m.Sum().DataPoints(), f)
		case pmetric.MetricTypeHistogram:
			restamp(m.Histogram().DataPoints(), f)
		case pmetric.MetricTypeExponentialHistogram:
			restamp(m.ExponentialHistogram().DataPoints(), f)
		case pmetric.MetricTypeSummary:
			restamp(m.Summary().DataPoints(), f)
		}
	}
}

func restamp[P interface {
	Timestamp() pcommon.Timestamp
	SetTimestamp(pcommon.Timestamp)
}](points pointSlice[P], f func(pcommon.Timestamp) pcommon.Timestamp) {
	for i := range points.Len() {
		p := points.At(i)
		p.SetTimestamp(f(p.Timestamp()))
	}
}
