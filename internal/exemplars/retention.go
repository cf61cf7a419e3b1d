package exemplars

import (
	"context"
	"encoding/binary"

	"github.com/cockroachdb/pebble/v2"
)

// RunRetention deletes the exemplars of the hours, and the reverse links of
// the days, that ended before the retention cutoff, and forgets series
// without exemplars since the cutoff. (Reads already leave out anything
// older than the cutoff.) It runs every RetentionInterval; tests call it
// directly.
func (x *Index) RunRetention(ctx context.Context) error {
	x.mu.RLock()
	if x.closed.Load() {
		x.mu.RUnlock()
		return ErrClosed
	}
	cutoff := x.cutoff()
	hour := bucketOf(cutoff, hourMs)
	var err error
	if hour > x.expiredBelow {
		// Count what goes, for lookout_exemplars_expired_total.
		lo := binary.BigEndian.AppendUint32([]byte{pExemplar}, x.expiredBelow)
		hi := binary.BigEndian.AppendUint32([]byte{pExemplar}, hour)
		var n int
		n, err = x.count(ctx, lo, hi)
		if err == nil {
			b := x.db.NewBatch()
			_ = b.DeleteRange(lo, hi, nil)
			day := bucketOf(cutoff, dayMs)
			_ = b.DeleteRange([]byte{pTrace}, binary.BigEndian.AppendUint32([]byte{pTrace}, day), nil)
			err = b.Commit(pebble.NoSync)
			b.Close()
		}
		if err == nil {
			x.m.expired.Add(float64(n))
		}
	}
	x.mu.RUnlock()
	if err != nil {
		return err
	}
	// Forget series left without exemplars, holding the write lock so no
	// concurrent write adds an exemplar to a series being forgotten.
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed.Load() {
		return ErrClosed
	}
	x.expiredBelow = max(x.expiredBelow, hour)
	b := x.db.NewBatch()
	defer b.Close()
	var gone []uint64
	for h, e := range x.series {
		if e.newest.Load() < cutoff {
			gone = append(gone, h)
			_ = b.Delete(binary.BigEndian.AppendUint64([]byte{pSeries}, h), nil)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	for _, h := range gone {
		delete(x.series, h)
	}
	return nil
}

// count returns the number of keys in [lo, hi).
func (x *Index) count(ctx context.Context, lo, hi []byte) (int, error) {
	it, err := x.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n, it.Error()
}
