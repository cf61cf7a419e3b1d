package metricstore

import (
	"sync"

	"github.com/prometheus/prometheus/storage"
)

// dedupeCache remembers the newest exemplar written to each series, the
// rule the TSDB itself applies, so an exemplar re-exported every interval
// by an SDK under cumulative temporality is recognised and neither counted
// again nor handed to the exemplar writer again. Memory is one entry per
// series that has exemplars; the map is dropped when it outgrows max
// (series churn), which at worst re-sends a few exemplars to the writer,
// whose contract is to ignore duplicates.
type dedupeCache struct {
	mu   sync.Mutex
	last map[storage.SeriesRef]uint64
	max  int
}

func newDedupeCache(maxSeries int) *dedupeCache {
	return &dedupeCache{last: make(map[storage.SeriesRef]uint64), max: maxSeries}
}

type exemplarKey struct {
	ref storage.SeriesRef
	key uint64 // hash of timestamp, value and labels
}

// filter returns the indexes of keys that differ from their series' newest
// exemplar, updating it.
func (c *dedupeCache) filter(keys []exemplarKey) []int {
	fresh := make([]int, 0, len(keys))
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.last) > c.max {
		c.last = make(map[storage.SeriesRef]uint64)
	}
	for i, k := range keys {
		if last, ok := c.last[k.ref]; ok && last == k.key {
			continue
		}
		c.last[k.ref] = k.key
		fresh = append(fresh, i)
	}
	return fresh
}
