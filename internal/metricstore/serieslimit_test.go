package metricstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// TestMaxSeries: once the head holds MaxSeries series, samples of new series
// are refused, naming the limit, while known series keep taking samples,
// through the stream cache's fast path and the translator alike.
func TestMaxSeries(t *testing.T) {
	s := openStore(t, func(o *Options) { o.MaxSeries = 2 })
	ctx := context.Background()
	send := func(at time.Duration, names ...string) (int64, string) {
		t.Helper()
		md := pmetric.NewMetrics()
		ms := newScope(md)
		for _, n := range names {
			gauge(ms, n, map[time.Duration]float64{at: 1})
		}
		res, err := s.ConsumeMetrics(ctx, md)
		if err != nil && !strings.Contains(err.Error(), "active series limit") {
			t.Fatal(err)
		}
		if err != nil {
			return int64(len(names)), err.Error()
		}
		return res.Rejected, res.Message
	}
	// a and b (no target_info: the resource has only service.name and
	// service.instance.id) fill the limit.
	if rej, msg := send(0, "a", "b"); rej != 0 {
		t.Fatalf("under the limit: %d rejected (%s)", rej, msg)
	}
	rej, msg := send(time.Minute, "a", "b", "c", "d")
	if rej != 2 || !strings.Contains(msg, "active series limit of 2 reached (--metrics.max-series)") {
		t.Errorf("over the limit: %d rejected (%s), want c and d", rej, msg)
	}
	// The known series still take samples, twice (cached refs then).
	for _, at := range []time.Duration{2 * time.Minute, 3 * time.Minute} {
		if rej, msg := send(at, "a", "b"); rej != 0 {
			t.Errorf("known series at %s: %d rejected (%s)", at, rej, msg)
		}
	}
	if n := s.db.Head().NumSeries(); n != 2 {
		t.Errorf("head holds %d series, want 2", n)
	}
}
