package tracestore

import (
	"encoding/binary"
	"errors"
	"io"
	"math/bits"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/traceql"
)

// A block summary describes every search record whose time falls in one
// minute: the longest span, the status codes and kinds seen, and a Bloom
// filter of the strings (span names, attribute keys and string values) the
// records contain, plus each span name qualified by its span's status and by
// its duration's power of two, so that `name = X && status = error` or
// `name = X && duration > D` can rule a minute out even when X, errors and
// long spans all occur in it, just never together. Search skips minutes that cannot match without reading
// their records. Requests merge their partial summaries into the minute's
// key with a merge operator (max and bitwise or), so ingest never reads.
//
//	b | minute(8) → blockSummary (fixed size)
const (
	pBlock      = 'b'
	bloomBytes  = 4096
	bloomHashes = 3
	blockLen    = 8 + 1 + 1 + bloomBytes
	blockWidth  = uint64(time.Minute)
)

type blockSummary struct {
	maxDur uint64
	status byte // bit per OTLP status code
	kinds  byte // bit per OTLP span kind
	bloom  [bloomBytes]byte
}

func blockKey(minute uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{pBlock}, minute)
}

func (b *blockSummary) encode() []byte {
	out := make([]byte, 0, blockLen)
	out = binary.BigEndian.AppendUint64(out, b.maxDur)
	out = append(out, b.status, b.kinds)
	return append(out, b.bloom[:]...)
}

func (b *blockSummary) mergeBytes(v []byte) error {
	if len(v) != blockLen {
		return errCorrupt
	}
	b.maxDur = max(b.maxDur, binary.BigEndian.Uint64(v))
	b.status |= v[8]
	b.kinds |= v[9]
	for i, x := range v[10:] {
		b.bloom[i] |= x
	}
	return nil
}

// fnv64 hashes s (FNV-1a); the Bloom filter derives its bit positions from it.
func fnv64(s []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range s {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

func bloomBits(h uint64, f func(bit uint64)) {
	h1, h2 := h, (h>>33)|(h<<31)|1
	for i := range uint64(bloomHashes) {
		f((h1 + i*h2) % (bloomBytes * 8))
	}
}

func (b *blockSummary) addString(s string) {
	if len(s) > maxSearchValueLen {
		s = s[:maxSearchValueLen]
	}
	b.addBytes([]byte(s))
}

func (b *blockSummary) addBytes(s []byte) {
	bloomBits(fnv64(s), func(bit uint64) { b.bloom[bit/8] |= 1 << (bit % 8) })
}

// Tags of the qualified span-name entries.
const (
	qualStatus   = 's' // value: the OTLP status code
	qualDuration = 'd' // value: bits.Len64 of the duration in ns
)

// qualifiedName appends to dst the Bloom entry of span name qualified by
// tag and v. The leading zero byte keeps it apart from plain strings.
func qualifiedName(dst []byte, name string, tag, v byte) []byte {
	if len(name) > maxSearchValueLen {
		name = name[:maxSearchValueLen]
	}
	dst = append(dst, 0, tag, v)
	return append(dst, name...)
}

func (b *blockSummary) mayContain(s []byte) bool {
	ok := true
	bloomBits(fnv64(s), func(bit uint64) {
		if b.bloom[bit/8]&(1<<(bit%8)) == 0 {
			ok = false
		}
	})
	return ok
}

func (b *blockSummary) addAttrs(m pcommon.Map) {
	for k, v := range m.All() {
		b.addString(k)
		if v.Type() == pcommon.ValueTypeStr {
			b.addString(v.Str())
		} else if v.Type() != pcommon.ValueTypeInt && v.Type() != pcommon.ValueTypeDouble && v.Type() != pcommon.ValueTypeBool {
			b.addString(v.AsString())
		}
	}
}

func (b *blockSummary) addSpan(sp ptrace.Span) {
	if d := uint64(sp.EndTimestamp() - sp.StartTimestamp()); d > b.maxDur {
		b.maxDur = d
	}
	b.status |= 1 << (uint(sp.Status().Code()) & 7)
	b.kinds |= 1 << (uint(sp.Kind()) & 7)
	b.addString(sp.Name())
	var buf [3 + maxSearchValueLen]byte
	b.addBytes(qualifiedName(buf[:0], sp.Name(), qualStatus, byte(sp.Status().Code())))
	b.addBytes(qualifiedName(buf[:0], sp.Name(), qualDuration, byte(bits.Len64(uint64(sp.EndTimestamp()-sp.StartTimestamp())))))
	b.addString(sp.Status().Message())
	b.addAttrs(sp.Attributes())
}

var blockMerger = mergerFunc(func(v []byte) (pebble.ValueMerger, error) {
	m := &blockValueMerger{}
	return m, m.b.mergeBytes(v)
})

type blockValueMerger struct{ b blockSummary }

func (m *blockValueMerger) MergeNewer(v []byte) error { return m.b.mergeBytes(v) }
func (m *blockValueMerger) MergeOlder(v []byte) error { return m.b.mergeBytes(v) }
func (m *blockValueMerger) Finish(bool) ([]byte, io.Closer, error) {
	return m.b.encode(), nil, nil
}

type mergerFunc func(v []byte) (pebble.ValueMerger, error)

// storeMerger dispatches on the key's table: summaries and block summaries
// both use merge operands.
var storeMerger = &pebble.Merger{
	Name: "lookout.tracestore.v1",
	Merge: func(key, value []byte) (pebble.ValueMerger, error) {
		if len(key) > 0 && key[0] == pBlock {
			return blockMerger(value)
		}
		if len(key) > 0 && key[0] == pSummary {
			return summaryMerger.Merge(key, value)
		}
		return nil, errors.New("tracestore: merge on an unexpected key")
	},
}

// requirement is what one spanset filter needs of a block to possibly match.
type requirement struct {
	lits   [][]byte
	minDur uint64 // a span at least this long (0: none)
	status byte   // one of these status bits (0: any)
	kinds  byte   // one of these kind bits (0: any)
	// name, when the filter requires `name = <name>`, is that name: the
	// span with minDur and status must then also carry it.
	name *string
}

func (r requirement) met(b *blockSummary) bool {
	if r.minDur > 0 && b.maxDur < r.minDur {
		return false
	}
	if r.status != 0 && b.status&r.status == 0 {
		return false
	}
	if r.kinds != 0 && b.kinds&r.kinds == 0 {
		return false
	}
	for _, l := range r.lits {
		if !b.mayContain(l) {
			return false
		}
	}
	if r.name == nil {
		return true
	}
	var buf [3 + maxSearchValueLen]byte
	if r.status != 0 {
		ok := false
		for code := range 8 {
			if r.status&(1<<code) != 0 && b.mayContain(qualifiedName(buf[:0], *r.name, qualStatus, byte(code))) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if r.minDur > 0 {
		// A span of at least minDur has a duration of at least its bit length.
		for k := bits.Len64(r.minDur); k <= 64; k++ {
			if b.mayContain(qualifiedName(buf[:0], *r.name, qualDuration, byte(k))) {
				return true
			}
		}
		return false
	}
	return true
}

// blockFilter holds one requirement per spanset filter; a block may match
// when any filter's requirement is met (the same relaxation as
// traceql.PossibleInSpans).
type blockFilter []requirement

func newBlockFilter(e traceql.Expr) blockFilter {
	var out blockFilter
	var walk func(traceql.Expr)
	walk = func(e traceql.Expr) {
		switch e := e.(type) {
		case *traceql.Filter:
			r := requirement{lits: condLiterals(e.Cond)}
			condNeeds(e.Cond, &r)
			out = append(out, r)
		case *traceql.SpansetOp:
			walk(e.L)
			walk(e.R)
		case *traceql.Pipeline:
			walk(e.Input) // the pipeline only narrows its input's spans
		}
	}
	walk(e)
	return out
}

// condNeeds adds the span-duration, status and kind needs of the conjuncts of c.
func condNeeds(c traceql.Cond, r *requirement) {
	switch c := c.(type) {
	case *traceql.Logical:
		if c.And {
			condNeeds(c.L, r)
			condNeeds(c.R, r)
		}
	case *traceql.Compare:
		switch c.Field.Intrinsic {
		case traceql.IntrinsicDuration:
			d := uint64(max(c.Value.I, 0))
			switch c.Op {
			case traceql.CmpGt:
				d++
			case traceql.CmpGte, traceql.CmpEq:
			default:
				return
			}
			r.minDur = max(r.minDur, d)
		case traceql.IntrinsicStatus:
			if c.Op == traceql.CmpEq {
				r.status = 1 << (uint(c.Value.I) & 7)
			}
		case traceql.IntrinsicKind:
			if c.Op == traceql.CmpEq {
				r.kinds = 1 << (uint(c.Value.I) & 7)
			}
		case traceql.IntrinsicName:
			if c.Op == traceql.CmpEq && c.Value.Type == traceql.TypeString {
				r.name = &c.Value.S
			}
		}
	}
}

func (f blockFilter) mayMatch(b *blockSummary) bool {
	for _, r := range f {
		if r.met(b) {
			return true
		}
	}
	return len(f) == 0
}

// loadBlock reads a minute's summary; ok is false when there is none (the
// minute must then be scanned).
func (s *Store) loadBlock(minute uint64) (blockSummary, bool, error) {
	var b blockSummary
	v, closer, err := s.db.Get(blockKey(minute))
	if errors.Is(err, pebble.ErrNotFound) {
		return b, false, nil
	}
	if err != nil {
		return b, false, err
	}
	defer closer.Close()
	if err := b.mergeBytes(v); err != nil {
		return b, false, nil
	}
	return b, true, nil
}
