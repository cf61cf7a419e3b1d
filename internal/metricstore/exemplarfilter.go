package metricstore

import (
	"sync"
	"time"

	"github.com/prometheus/prometheus/storage"
)

// exemplarFilter applies Prometheus's exemplar rules to committed
// exemplars, the rules the TSDB's in-memory exemplar storage applies when
// it is large enough to remember every series: an exemplar equal to its
// series' newest is a duplicate (an SDK re-exports its exemplars every
// interval under cumulative temporality) and is ignored; one ordered before
// the newest (by timestamp, then value, then label hash) is out of order and
// refused. Everything else becomes the series' newest and goes on to the
// exemplar writer.
//
// The TSDB's own storage keeps these rules only for series it still holds,
// behind a map keyed by label strings; keyed by series reference this costs
// a fraction of that, so the TSDB's ring can stay small (Options.MaxExemplars)
// and serve only to log exemplars to the WAL.
//
// Memory is one entry per series that has exemplars. Series whose newest
// exemplar is older than filterForget are forgotten (checked every
// filterSweep), so series churn does not grow the map for ever; should it
// still outgrow max, it is dropped. Either at worst lets a re-exported
// exemplar through to the writer, whose contract is to ignore duplicates.
type exemplarFilter struct {
	mu        sync.Mutex
	newest    map[storage.SeriesRef]exemplarOrder
	max       int
	now       func() time.Time
	nextSweep time.Time
}

const (
	filterForget = time.Hour
	filterSweep  = 10 * time.Minute
)

func newExemplarFilter(maxSeries int) *exemplarFilter {
	return &exemplarFilter{newest: make(map[storage.SeriesRef]exemplarOrder), max: maxSeries, now: time.Now}
}

// sweep forgets the series whose newest exemplar is older than
// filterForget, at most every filterSweep. The caller holds mu.
func (c *exemplarFilter) sweep() {
	now := c.now()
	if now.Before(c.nextSweep) {
		return
	}
	c.nextSweep = now.Add(filterSweep)
	cutoff := now.Add(-filterForget).UnixMilli()
	for ref, n := range c.newest {
		if n.ts < cutoff {
			delete(c.newest, ref)
		}
	}
}

// exemplarKey is what the rules need of an exemplar of series ref.
type exemplarKey struct {
	ref storage.SeriesRef
	exemplarOrder
}

// exemplarOrder places an exemplar among its series' others.
type exemplarOrder struct {
	ts    int64
	value float64
	lhash uint64 // hash of the exemplar's labels
}

// verdict is what exemplarFilter decides for one exemplar.
type verdict uint8

const (
	fresh verdict = iota
	duplicate
	outOfOrder
)

// check decides k against the series' newest exemplar n (ok: there is one).
func check(k, n exemplarOrder, ok bool) verdict {
	switch {
	case !ok:
		return fresh
	case k.ts == n.ts && k.value == n.value && k.lhash == n.lhash:
		return duplicate
	case k.ts < n.ts,
		k.ts == n.ts && k.value < n.value,
		k.ts == n.ts && k.value == n.value && k.lhash < n.lhash:
		return outOfOrder
	}
	return fresh
}

// filter decides keys in order, each against its series' newest exemplar
// so far, and returns the indexes of the fresh ones and the number out of
// order.
func (c *exemplarFilter) filter(keys []exemplarKey) (freshIdx []int, ooo int) {
	freshIdx = make([]int, 0, len(keys))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep()
	if len(c.newest) > c.max {
		c.newest = make(map[storage.SeriesRef]exemplarOrder)
	}
	for i, k := range keys {
		switch c.decide(k) {
		case fresh:
			freshIdx = append(freshIdx, i)
		case outOfOrder:
			ooo++
		}
	}
	return freshIdx, ooo
}

// decide returns k's verdict and, when fresh, makes k its series' newest.
// The caller holds mu or owns c.
func (c *exemplarFilter) decide(k exemplarKey) verdict {
	n, ok := c.newest[k.ref]
	v := check(k.exemplarOrder, n, ok)
	if v == fresh {
		c.newest[k.ref] = k.exemplarOrder
	}
	return v
}
