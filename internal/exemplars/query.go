package exemplars

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// ExemplarQuerier implements storage.ExemplarQueryable.
func (x *Index) ExemplarQuerier(ctx context.Context) (storage.ExemplarQuerier, error) {
	if x.closed.Load() {
		return nil, ErrClosed
	}
	return &querier{x: x, ctx: ctx}, nil
}

type querier struct {
	x   *Index
	ctx context.Context
}

// Select returns the exemplars in [start, end] (milliseconds, inclusive) of
// the series matching any of the matcher sets, with the semantics of
// Prometheus's in-memory exemplar storage: no matcher set selects nothing;
// series are sorted by labels; each series' exemplars are ordered by
// timestamp, then value, then label hash; series without exemplars in the
// range are left out.
func (q *querier) Select(start, end int64, matchers ...[]*labels.Matcher) ([]exemplar.QueryResult, error) {
	x := q.x
	ret := make([]exemplar.QueryResult, 0)
	start = max(start, x.cutoff())
	var sels []selectedSeries
	x.mu.RLock()
	for h, e := range x.series {
		if matchesSomeMatcherSet(e.ls, matchers) {
			sels = append(sels, selectedSeries{h, e.ls})
		}
	}
	x.mu.RUnlock()
	if len(sels) == 0 || start > end {
		return ret, nil
	}
	// Series are read in key order, so that consecutive seeks land near
	// each other.
	slices.SortFunc(sels, func(a, b selectedSeries) int { return cmp.Compare(a.h, b.h) })
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed.Load() {
		return nil, ErrClosed
	}
	// Large selections are read by two goroutines, each over half the
	// series; the result is sorted afterwards, so the split is invisible.
	parts := 1
	if len(sels) >= 16 {
		parts = 2
	}
	results := make([][]exemplar.QueryResult, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() {
			chunk := sels[p*len(sels)/parts : (p+1)*len(sels)/parts]
			results[p], errs[p] = q.selectSeries(chunk, start, end)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, r := range results {
		ret = append(ret, r...)
	}
	slices.SortFunc(ret, func(a, b exemplar.QueryResult) int {
		return labels.Compare(a.SeriesLabels, b.SeriesLabels)
	})
	return ret, nil
}

type selectedSeries struct {
	h  uint64
	ls labels.Labels
}

// selectSeries reads the exemplars in [start, end] of each series, hour
// bucket by hour bucket, skipping buckets that hold nothing.
func (q *querier) selectSeries(sels []selectedSeries, start, end int64) ([]exemplar.QueryResult, error) {
	first, last := bucketOf(start, hourMs), bucketOf(end, hourMs)
	lower := binary.BigEndian.AppendUint32([]byte{pExemplar}, first)
	upper := prefixEnd(binary.BigEndian.AppendUint32([]byte{pExemplar}, last))
	it, err := q.x.db.NewIterWithContext(q.ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	found := make([][]exemplar.Exemplar, len(sels))
	var dec exemplarDecoder
	lo := make([]byte, 0, eKeyLen)
	hi := make([]byte, 0, eKeyLen)
	for b := first; ; {
		// Skip to the next bucket that holds anything.
		if !it.SeekGE(binary.BigEndian.AppendUint32(append(lo[:0], pExemplar), b)) {
			break
		}
		b = binary.BigEndian.Uint32(it.Key()[1:5])
		for i, s := range sels {
			lo = binary.BigEndian.AppendUint32(append(lo[:0], pExemplar), b)
			lo = binary.BigEndian.AppendUint64(lo, s.h)
			hi = append(hi[:0], lo...)
			lo = binary.BigEndian.AppendUint64(lo, orderedTs(start))
			hi = binary.BigEndian.AppendUint64(hi, orderedTs(end))
			hi = append(hi, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
			for ok := it.SeekGE(lo); ok && bytes.Compare(it.Key(), hi) < 0; ok = it.Next() {
				e, err := decodeExemplarWith(&dec, it.Key()[13:], it.Value())
				if err != nil {
					return nil, err
				}
				found[i] = append(found[i], e)
			}
			if err := it.Error(); err != nil {
				return nil, err
			}
		}
		if err := q.ctx.Err(); err != nil {
			return nil, err
		}
		if b == last {
			break
		}
		b++
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	var ret []exemplar.QueryResult
	for i, es := range found {
		if len(es) > 0 {
			ret = append(ret, exemplar.QueryResult{SeriesLabels: sels[i].ls, Exemplars: es})
		}
	}
	return ret, nil
}

func matchesSomeMatcherSet(lbls labels.Labels, matchers [][]*labels.Matcher) bool {
Outer:
	for _, ms := range matchers {
		for _, m := range ms {
			if !m.Matches(lbls.Get(m.Name)) {
				continue Outer
			}
		}
		return true
	}
	return false
}
