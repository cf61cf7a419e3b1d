package tracestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// The time index. Every stored chunk of a trace is keyed by its index time
// (minStart), first as a row of OTLP protobuf (d) beside its search record
// (x), then, once cut, as an entry of a page (p) with neither row. The
// walks below read the chunks of a time range from the search records and
// the pages, in key order: retention, the sampling pass and the scans of
// minutes without column blocks use them.

// errStopWalk ends a walk early without an error.
var errStopWalk = errors.New("tracestore: walk stopped")

// walkChunks calls fn, in key order, for every chunk whose index time is
// in [lo, hi): key is its row key without the table byte; v is its search
// record while it is a row, its OTLP protobuf once paged; key and v are
// valid during the call only and must not be modified. A chunk found both
// as a row and in a page is reported once, as its row. Pages that do not
// decode are skipped and counted. fn returning errStopWalk ends the walk
// with no error.
func (s *Store) walkChunks(ctx context.Context, lo, hi uint64, fn func(key, v []byte, paged bool) error) error {
	if lo >= hi {
		return nil
	}
	rows, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: chunkBound(pIndex, lo),
		UpperBound: chunkBound(pIndex, hi),
	})
	if err != nil {
		return err
	}
	defer rows.Close()
	// Pages are keyed by their last key: the first that may hold a chunk
	// at lo is the first whose key is not below lo.
	pages, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: binary.BigEndian.AppendUint64([]byte{pPage}, lo),
		UpperBound: []byte{pPage + 1},
	})
	if err != nil {
		return err
	}
	defer pages.Close()
	end := binary.BigEndian.AppendUint64(nil, hi)
	var entries []pageEntry // of the current page, from lo, below hi
	// Pages decoded by a walk go to the page cache: the workers of a
	// metrics query walk the same pages at about the same time.
	gen := s.pageCache.generation()
	pok := pages.First()
	next := func() error { // loads the next page's entries in range
		for len(entries) == 0 && pok {
			v := pages.Value()
			if first, err := pageFirstKey(v); err == nil && bytes.Compare(first, end) >= 0 {
				pok = false // this page and all later ones start at or after hi
				break
			}
			es, ok := s.pageCache.get(pages.Key())
			if !ok {
				var err error
				if es, err = s.pages.decode(v); err != nil {
					s.m.undecodable.Inc()
					s.logger.Warn("skipping a page that does not decode", "page", fmt.Sprintf("%x", pages.Key()), "err", err)
				} else {
					s.pageCache.put(pages.Key(), es, gen)
				}
			}
			for _, e := range es {
				if t := e.minStart(); t >= lo && t < hi {
					entries = append(entries, e)
				}
			}
			pok = pages.Next()
		}
		return pages.Error()
	}
	rok := rows.First()
	for n := 0; ; n++ {
		if n%256 == 255 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := next(); err != nil {
			return err
		}
		var rk []byte
		if rok {
			if rk = rows.Key(); len(rk) != 1+rowKeyLen {
				rok = rows.Next()
				continue
			}
			rk = rk[1:]
		}
		switch {
		case rok && (len(entries) == 0 || bytes.Compare(rk, entries[0].key[:]) <= 0):
			if len(entries) > 0 && bytes.Equal(rk, entries[0].key[:]) {
				entries = entries[1:]
			}
			v, err := rows.ValueAndErr()
			if err != nil {
				return err
			}
			if err := fn(rk, v, false); err != nil {
				return stopped(err)
			}
			rok = rows.Next()
		case len(entries) > 0:
			e := &entries[0]
			entries = entries[1:]
			if err := fn(e.key[:], e.value, true); err != nil {
				return stopped(err)
			}
		default:
			return rows.Error()
		}
	}
}

func stopped(err error) error {
	if errors.Is(err, errStopWalk) {
		return nil
	}
	return err
}

// walkRecords calls fn, in key order, for every chunk whose index time is
// in [lo, hi) and whose key want accepts (nil: every chunk), with its
// search record: its row's, else made from its protobuf. rec is valid
// during the call only. Chunks whose protobuf does not decode are skipped
// and counted.
func (s *Store) walkRecords(ctx context.Context, lo, hi uint64, want func(key []byte) bool, fn func(key, rec []byte) error) error {
	var buf []byte
	return s.walkChunks(ctx, lo, hi, func(key, v []byte, paged bool) error {
		if want != nil && !want(key) {
			return nil
		}
		if !paged {
			return fn(key, v)
		}
		var err error
		if buf, err = appendRecordOf(buf[:0], v); err != nil {
			s.m.undecodable.Inc()
			s.logger.Warn("skipping stored spans that do not decode", "chunk", fmt.Sprintf("%x", key), "err", err)
			return nil
		}
		return fn(key, buf)
	})
}

// chunkExtent narrows [lo, hi] to the index times of the stored chunks,
// by the search records' keys and the pages' key ranges; ok is false when the range
// holds none.
func (s *Store) chunkExtent(ctx context.Context, lo, hi uint64) (uint64, uint64, bool, error) {
	rows, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: chunkBound(pIndex, lo), UpperBound: chunkBoundAfter(pIndex, hi)})
	if err != nil {
		return 0, 0, false, err
	}
	defer rows.Close()
	first, last, ok := uint64(0), uint64(0), false
	if rows.First() {
		first, ok = binary.BigEndian.Uint64(rows.Key()[1:9]), true
		rows.Last()
		last = binary.BigEndian.Uint64(rows.Key()[1:9])
	}
	if err := rows.Error(); err != nil {
		return 0, 0, false, err
	}
	pages, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: chunkBound(pPage, lo), UpperBound: []byte{pPage + 1}})
	if err != nil {
		return 0, 0, false, err
	}
	defer pages.Close()
	// Pages are keyed by their last chunk and do not overlap. The pages
	// holding chunks in [lo, hi] are those from the first ending at or
	// after lo to the last starting at or before hi.
	startOf := func() (uint64, bool) {
		first, err := pageFirstKey(pages.Value())
		if err != nil {
			return 0, false
		}
		return binary.BigEndian.Uint64(first[:8]), true
	}
	if pages.First() {
		if t, valid := startOf(); valid && t <= hi {
			if t = max(t, lo); !ok || t < first {
				first = t
			}
			// The first page ending after hi, if it starts by hi, holds
			// chunks up to hi; else the page before it ends the range.
			t = hi
			if !pages.SeekGE(chunkBoundAfter(pPage, hi)) {
				pages.Last()
				t = binary.BigEndian.Uint64(pages.Key()[1:9])
			} else if start, valid := startOf(); !valid || start > hi {
				pages.Prev() // valid: the first page found above ends by hi
				t = binary.BigEndian.Uint64(pages.Key()[1:9])
			}
			if !ok || t > last {
				last = t
			}
			ok = true
		}
	}
	if err := pages.Error(); err != nil {
		return 0, 0, false, err
	}
	return first, last, ok, nil
}

// chunkBound is the first key of table at index time ts.
func chunkBound(table byte, ts uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{table}, ts)
}

// chunkBoundAfter is the first key of table after every key at time ts.
func chunkBoundAfter(table byte, ts uint64) []byte {
	if ts == ^uint64(0) {
		return []byte{table + 1}
	}
	return chunkBound(table, ts+1)
}
