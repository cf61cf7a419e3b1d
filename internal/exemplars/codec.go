package exemplars

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"time"
	"unsafe"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Key layout (one-byte table prefix):
//
//	s | series(8)                                         → series labels
//	e | hour(4) | series(8) | ts(8) | value(8) | lhash(8)  → exemplar labels, value, hasTs
//	t | day(4) | traceID(16) | series(8) | ts(8)           → (empty) reverse link
//	m | name                                              → metadata (the WAL mark)
//
// ts, value and lhash are encoded so byte order is Prometheus's exemplar
// order within a series: timestamp, then value, then label hash. Leading
// time buckets (the hour or day of ts) keep new keys together, so Pebble's
// compactions rewrite only recent data, and let retention drop whole
// buckets with range deletions instead of a key per exemplar. Reads filter
// by the exact cutoff, so retention is exact to the millisecond.
const (
	pSeries   = 's'
	pExemplar = 'e'
	pTrace    = 't'
	pMeta     = 'm'

	hourMs = int64(time.Hour / time.Millisecond)
	dayMs  = 24 * hourMs

	eKeyLen = 1 + 4 + 8 + 8 + 8 + 8
	tKeyLen = 1 + 4 + 16 + 8 + 8
)

// bucketOf is the ordered index of the width-wide bucket holding ts.
func bucketOf(ts, width int64) uint32 {
	b := ts / width
	if ts < 0 && ts%width != 0 {
		b--
	}
	b = min(max(b, math.MinInt32), math.MaxInt32)
	return uint32(int32(b)) ^ (1 << 31)
}

func orderedTs(ts int64) uint64 { return uint64(ts) ^ (1 << 63) }

func tsFromOrdered(u uint64) int64 { return int64(u ^ (1 << 63)) }

func orderedFloat(f float64) uint64 {
	b := math.Float64bits(f)
	if b&(1<<63) != 0 {
		return ^b
	}
	return b | (1 << 63)
}

// exemplarSuffix is ts | value | lhash, the order within a series.
func exemplarSuffix(b []byte, e exemplar.Exemplar) []byte {
	b = binary.BigEndian.AppendUint64(b, orderedTs(e.Ts))
	b = binary.BigEndian.AppendUint64(b, orderedFloat(e.Value))
	return binary.BigEndian.AppendUint64(b, e.Labels.Hash())
}

// A stored exemplar is value(8) | flags(1) | [ids(24)] | labels. With
// flagIDs, its trace_id and span_id labels, canonical lower-case hex of 32
// and 16 digits as Prometheus's OTLP translation writes them, are the 24
// bytes they spell rather than among the labels: less than half the bytes
// for Pebble to write, flush and compact.
const (
	flagHasTs = 1 << iota
	flagIDs
)

// encodeExemplarTo appends the stored value of e to b.
func encodeExemplarTo(b []byte, e exemplar.Exemplar) []byte {
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(e.Value))
	var flags byte
	if e.HasTs {
		flags |= flagHasTs
	}
	var ids [24]byte
	if !hexBytes(ids[:16], e.Labels.Get("trace_id")) || !hexBytes(ids[16:], e.Labels.Get("span_id")) {
		return encodeLabels(append(b, flags), e.Labels, false)
	}
	b = append(append(b, flags|flagIDs), ids[:]...)
	return encodeLabels(b, e.Labels, true)
}

// storedTraceID is the trace that an exemplar with labels ls, stored as v,
// points at: the bytes v holds when it holds the IDs as bytes, else parsed
// from ls.
func storedTraceID(v []byte, ls labels.Labels) (pcommon.TraceID, bool) {
	if v[8]&flagIDs == 0 {
		return TraceIDOf(ls)
	}
	tid := pcommon.TraceID(v[9:25])
	return tid, !tid.IsEmpty()
}

// lowerHex maps a lower-case hex digit to its value, anything else to 0xff.
var lowerHex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	return t
}()

// hexBytes fills dst with the bytes s spells if s is exactly 2*len(dst)
// lower-case hex digits, and reports whether it is.
func hexBytes(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	var bad byte
	for i := range dst {
		hi, lo := lowerHex[s[2*i]], lowerHex[s[2*i+1]]
		bad |= hi | lo
		dst[i] = hi<<4 | lo&0x0f
	}
	return bad&0xf0 == 0
}

// exemplarDecoder is the reusable scratch space of one reader of exemplars.
type exemplarDecoder struct {
	sb labels.ScratchBuilder
	// hx holds trace and span IDs in hex until sb.Labels copies them.
	hx [48]byte
}

// decodeExemplarWith decodes with a reused decoder; label strings alias v
// or d.hx until the builder copies them into the result.
func decodeExemplarWith(d *exemplarDecoder, suffix, v []byte) (exemplar.Exemplar, error) {
	if len(v) < 9 || len(suffix) < 8 {
		return exemplar.Exemplar{}, errCorrupt
	}
	flags, rest := v[8], v[9:]
	d.sb.Reset()
	if flags&flagIDs != 0 {
		if len(rest) < 24 {
			return exemplar.Exemplar{}, errCorrupt
		}
		hex.Encode(d.hx[:], rest[:24])
		rest = rest[24:]
		if aliasLabels {
			d.sb.Add("trace_id", unsafe.String(&d.hx[0], 32))
			d.sb.Add("span_id", unsafe.String(&d.hx[32], 16))
		} else {
			d.sb.Add("trace_id", string(d.hx[:32]))
			d.sb.Add("span_id", string(d.hx[32:]))
		}
	}
	if err := addLabels(&d.sb, rest, aliasLabels); err != nil {
		return exemplar.Exemplar{}, err
	}
	d.sb.Sort()
	return exemplar.Exemplar{
		Labels: d.sb.Labels(),
		Value:  math.Float64frombits(binary.BigEndian.Uint64(v)),
		Ts:     tsFromOrdered(binary.BigEndian.Uint64(suffix)),
		HasTs:  flags&flagHasTs != 0,
	}, nil
}

var errCorrupt = errors.New("exemplar index: corrupt record")

// encodeLabels appends ls to b; withoutIDs leaves out trace_id and span_id.
func encodeLabels(b []byte, ls labels.Labels, withoutIDs bool) []byte {
	n := ls.Len()
	if withoutIDs {
		n -= 2
	}
	b = binary.AppendUvarint(b, uint64(n))
	ls.Range(func(l labels.Label) {
		if withoutIDs && (l.Name == "trace_id" || l.Name == "span_id") {
			return
		}
		b = binary.AppendUvarint(b, uint64(len(l.Name)))
		b = append(b, l.Name...)
		b = binary.AppendUvarint(b, uint64(len(l.Value)))
		b = append(b, l.Value...)
	})
	return b
}

func decodeLabels(b []byte) (labels.Labels, error) {
	sb := labels.NewScratchBuilder(8)
	if err := addLabels(&sb, b, false); err != nil {
		return labels.EmptyLabels(), err
	}
	sb.Sort()
	return sb.Labels(), nil
}

// addLabels adds the labels encoded in b to sb. With alias, the names and
// values passed to sb point into b; sb.Labels copies them, so its result
// does not alias b.
func addLabels(sb *labels.ScratchBuilder, b []byte, alias bool) error {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return errCorrupt
	}
	b = b[k:]
	str := func() (string, bool) {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return "", false
		}
		raw := b[k : k+int(l)]
		b = b[k+int(l):]
		if alias && len(raw) > 0 {
			return unsafe.String(&raw[0], len(raw)), true
		}
		return string(raw), true
	}
	for range n {
		name, ok1 := str()
		value, ok2 := str()
		if !ok1 || !ok2 {
			return errCorrupt
		}
		sb.Add(name, value)
	}
	return nil
}

func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}
