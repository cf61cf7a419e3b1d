package exemplars

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/lookout-dev/lookout/internal/traceid"
)

// pendingCheck is the dangling check, due at due, of an exemplar at ts
// pointing at traceID.
type pendingCheck struct {
	traceID pcommon.TraceID
	due     int64 // unix ms
	ts      int64
}

// restoreChecks schedules again the dangling checks that lived only in
// memory: those of the exemplars written in the last two grace periods
// before the index was opened, due a grace period after each exemplar.
func (x *Index) restoreChecks() error {
	now := x.opts.Now().UnixMilli()
	from := now - 2*x.opts.DanglingGrace.Milliseconds()
	lo := binary.BigEndian.AppendUint32([]byte{pExemplar}, bucketOf(from, hourMs))
	hi := prefixEnd(binary.BigEndian.AppendUint32([]byte{pExemplar}, bucketOf(now, hourMs)))
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	var dec exemplarDecoder
	var checks []pendingCheck
	for ok := it.First(); ok && len(checks) < x.opts.MaxPending; ok = it.Next() {
		k := it.Key()
		if len(k) != eKeyLen {
			continue
		}
		ts := tsFromOrdered(binary.BigEndian.Uint64(k[13:]))
		if ts < from || ts > now {
			continue
		}
		e, err := decodeExemplarWith(&dec, k[13:], it.Value())
		if err != nil {
			return fmt.Errorf("exemplar index: exemplar %x: %w", k, err)
		}
		if tid, ok := storedTraceID(it.Value(), e.Labels); ok {
			checks = append(checks, pendingCheck{traceID: tid, due: ts + x.opts.DanglingGrace.Milliseconds(), ts: ts})
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	slices.SortFunc(checks, func(a, b pendingCheck) int { return cmp.Compare(a.due, b.due) })
	x.pending = checks
	return nil
}

// TraceIDOf returns the trace an exemplar points at, from its trace_id (or
// traceID) label in hex; ok is false when there is none or it is invalid.
func TraceIDOf(ls labels.Labels) (pcommon.TraceID, bool) {
	return traceid.FromLabels(ls.Get)
}

// ByTrace returns the series and exemplars (within retention) that point at
// the trace, in Select's order.
func (x *Index) ByTrace(ctx context.Context, traceID pcommon.TraceID) ([]exemplar.QueryResult, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed.Load() {
		return nil, ErrClosed
	}
	cutoff := x.cutoff()
	bySeries := map[uint64]*exemplar.QueryResult{}
	var order []uint64
	var dec exemplarDecoder
	err := x.traceLinks(ctx, traceID, cutoff, func(h uint64, ts []byte) (bool, error) {
		se, ok := x.series[h]
		if !ok {
			return true, nil
		}
		p := binary.BigEndian.AppendUint32([]byte{pExemplar}, bucketOf(tsFromOrdered(binary.BigEndian.Uint64(ts)), hourMs))
		p = binary.BigEndian.AppendUint64(p, h)
		p = append(p, ts...)
		it, err := x.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
		if err != nil {
			return false, err
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			e, err := decodeExemplarWith(&dec, it.Key()[13:], it.Value())
			if err != nil {
				return false, err
			}
			if id, ok := storedTraceID(it.Value(), e.Labels); !ok || id != traceID {
				continue // another trace's exemplar at the same time
			}
			r := bySeries[h]
			if r == nil {
				r = &exemplar.QueryResult{SeriesLabels: se.ls}
				bySeries[h] = r
				order = append(order, h)
			}
			r.Exemplars = append(r.Exemplars, e)
		}
		return true, it.Error()
	})
	if err != nil {
		return nil, err
	}
	out := make([]exemplar.QueryResult, 0, len(order))
	for _, h := range order {
		r := bySeries[h]
		slices.SortFunc(r.Exemplars, func(a, b exemplar.Exemplar) int {
			return strings.Compare(string(exemplarSuffix(nil, a)), string(exemplarSuffix(nil, b)))
		})
		r.Exemplars = slices.CompactFunc(r.Exemplars, func(a, b exemplar.Exemplar) bool {
			return a.Ts == b.Ts && a.Value == b.Value && labels.Equal(a.Labels, b.Labels)
		})
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b exemplar.QueryResult) int { return labels.Compare(a.SeriesLabels, b.SeriesLabels) })
	return out, nil
}

// traceLinks calls f with the series and ordered timestamp of each reverse
// link of the trace at or after cutoff, until f returns false. It visits
// only the days that hold links, seeking from one to the next.
func (x *Index) traceLinks(ctx context.Context, traceID pcommon.TraceID, cutoff int64, f func(h uint64, ts []byte) (bool, error)) error {
	it, err := x.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{pTrace}, UpperBound: []byte{pTrace + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	key := make([]byte, 0, tKeyLen)
	for day := bucketOf(cutoff, dayMs); ; day++ {
		key = binary.BigEndian.AppendUint32(append(key[:0], pTrace), day)
		key = append(key, traceID[:]...)
		ok := it.SeekGE(key)
		for ; ok; ok = it.Next() {
			k := it.Key()
			if len(k) != tKeyLen || !bytes.Equal(k[5:21], traceID[:]) {
				break
			}
			if tsFromOrdered(binary.BigEndian.Uint64(k[29:37])) < cutoff {
				continue
			}
			more, err := f(binary.BigEndian.Uint64(k[21:29]), k[29:37])
			if err != nil || !more {
				return err
			}
		}
		if !ok {
			return it.Error()
		}
		// The iterator is on the first key after this day's links: go on
		// from its day, or the next if it is still this one.
		next := binary.BigEndian.Uint32(it.Key()[1:5])
		if day == math.MaxUint32 {
			return nil
		}
		if next > day {
			day = next - 1
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// IsPinned reports whether an exemplar within retention points at the
// trace; the trace store keeps such traces past its own retention.
func (x *Index) IsPinned(ctx context.Context, traceID pcommon.TraceID) (bool, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed.Load() {
		return false, ErrClosed
	}
	pinned := false
	err := x.traceLinks(ctx, traceID, x.cutoff(), func(uint64, []byte) (bool, error) {
		pinned = true
		return false, nil
	})
	return pinned, err
}

// CheckDangling runs the due trace-arrival checks and re-checks traces
// already known to be dangling. It runs every CheckInterval; tests call it
// directly.
func (x *Index) CheckDangling(ctx context.Context) {
	traces := x.opts.Traces
	if traces == nil {
		return
	}
	now := x.opts.Now()
	x.pendMu.Lock()
	i := 0
	for i < len(x.pending) && x.pending[i].due <= now.UnixMilli() {
		i++
	}
	due := slices.Clone(x.pending[:i])
	x.pending = slices.Delete(x.pending, 0, i)
	recheck := make([]pcommon.TraceID, 0, min(len(x.dangling), 1000))
	cutoff := now.Add(-x.opts.Retention).UnixMilli()
	for tid, ts := range x.dangling {
		if ts < cutoff {
			delete(x.dangling, tid) // its exemplars expired
			continue
		}
		if len(recheck) < cap(recheck) {
			recheck = append(recheck, tid)
		}
	}
	x.pendMu.Unlock()

	found := map[pcommon.TraceID]bool{}
	has := func(tid pcommon.TraceID) (bool, bool) {
		if v, ok := found[tid]; ok {
			return v, true
		}
		ok, err := traces.HasTrace(ctx, tid)
		if err != nil {
			return false, false
		}
		found[tid] = ok
		return ok, true
	}
	var newlyDangling []pendingCheck
	for _, c := range due {
		if ok, known := has(c.traceID); known && !ok {
			newlyDangling = append(newlyDangling, c)
		}
	}
	var arrived []pcommon.TraceID
	for _, tid := range recheck {
		if ok, known := has(tid); known && ok {
			arrived = append(arrived, tid)
		}
	}
	x.pendMu.Lock()
	for _, c := range newlyDangling {
		x.m.danglingTotal.Inc()
		if c.ts > x.dangling[c.traceID] {
			x.dangling[c.traceID] = c.ts
		}
	}
	for _, tid := range arrived {
		delete(x.dangling, tid)
	}
	x.pendMu.Unlock()
}
