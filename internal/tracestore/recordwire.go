package tracestore

import (
	"encoding/binary"
	"math"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/lookout-dev/lookout/internal/traceql"
)

// Search records of cut chunks are made from their OTLP protobuf whenever a
// search judges them. Decoding the protobuf into pdata first took about
// 2.5 µs per span, most of a structural query's time over a million
// paged spans; recordFromWire reads the fields a search record holds
// straight from the wire. It handles the OTLP messages our own marshaller
// writes: any field it does not know, and attribute values that search
// sees by their string form (arrays, maps, bytes: their JSON and base64
// forms are pdata's), make it decline, and appendRecordOf uses pdata.

// OTLP field numbers (opentelemetry-proto trace/v1, common/v1, resource/v1).
const (
	fTracesResourceSpans = 1
	fRSResource          = 1
	fRSScopeSpans        = 2
	fRSSchemaURL         = 3
	fResourceAttributes  = 1
	fResourceDropped     = 2
	fSSScope             = 1
	fSSSpans             = 2
	fSSSchemaURL         = 3
	fSpanTraceID         = 1
	fSpanSpanID          = 2
	fSpanTraceState      = 3
	fSpanParentSpanID    = 4
	fSpanName            = 5
	fSpanKind            = 6
	fSpanStart           = 7
	fSpanEnd             = 8
	fSpanAttributes      = 9
	fSpanDroppedAttrs    = 10
	fSpanEvents          = 11
	fSpanDroppedEvents   = 12
	fSpanLinks           = 13
	fSpanDroppedLinks    = 14
	fSpanStatus          = 15
	fSpanFlags           = 16
	fStatusMessage       = 2
	fStatusCode          = 3
	fKVKey               = 1
	fKVValue             = 2
	fAnyString           = 1
	fAnyBool             = 2
	fAnyInt              = 3
	fAnyDouble           = 4
)

// wireRecord makes search records from the wire; its buffers are reused
// from chunk to chunk.
type wireRecord struct {
	spans  []byte   // the current scope's encoded spans
	attrs  []byte   // an attribute list's body
	res    []span32 // the current resource's KeyValue messages, in its ResourceSpans
	kvs    []span32 // the current span's, in the span
	scopes []span32 // in the ResourceSpans
}

// span32 locates a field's bytes in a message without a pointer, so that
// the lists of them cost the garbage collector nothing.
type span32 struct{ off, n uint32 }

func (p span32) in(msg []byte) []byte { return msg[p.off : p.off+p.n] }

var wireRecords = sync.Pool{New: func() any { return new(wireRecord) }}

// reset drops the references into the last protobuf read, keeping the
// buffers' capacity.
func (w *wireRecord) reset() {
	w.res, w.kvs, w.scopes = w.res[:0], w.kvs[:0], w.scopes[:0]
}

// recordFromWire appends to b the search record of the OTLP TracesData pb,
// exactly as recordFromPdata makes it; ok is false when pb holds something
// it leaves to pdata, and then b is returned as it was.
func (w *wireRecord) recordFromWire(b, pb []byte) (out []byte, ok bool) {
	n := len(b)
	it := newWireFields(pb)
	for it.next() {
		if it.num != fTracesResourceSpans || it.typ != protowire.BytesType {
			return b[:n], false
		}
		if b, ok = w.resourceSpans(b, it.v); !ok {
			return b[:n], false
		}
	}
	if it.bad {
		return b[:n], false
	}
	return b, true
}

// wireFields iterates over the fields of a protobuf message.
type wireFields struct {
	all []byte // the message
	msg []byte // the rest of it
	num protowire.Number
	typ protowire.Type
	v   []byte // a length-delimited field's bytes
	at  span32 // where v is in all
	x   uint64 // a varint or fixed field's value
	bad bool   // the message does not parse
}

func newWireFields(msg []byte) wireFields { return wireFields{all: msg, msg: msg} }

func (it *wireFields) next() bool {
	if len(it.msg) == 0 {
		return false
	}
	num, typ, n := protowire.ConsumeTag(it.msg)
	if n < 0 {
		it.bad = true
		return false
	}
	it.msg = it.msg[n:]
	it.num, it.typ, it.v, it.x = num, typ, nil, 0
	switch typ {
	case protowire.VarintType:
		it.x, n = protowire.ConsumeVarint(it.msg)
	case protowire.Fixed64Type:
		it.x, n = protowire.ConsumeFixed64(it.msg)
	case protowire.Fixed32Type:
		var x32 uint32
		x32, n = protowire.ConsumeFixed32(it.msg)
		it.x = uint64(x32)
	case protowire.BytesType:
		it.v, n = protowire.ConsumeBytes(it.msg)
		if n >= 0 {
			it.at = span32{uint32(len(it.all) - len(it.msg) + n - len(it.v)), uint32(len(it.v))}
		}
	default:
		n = -1
	}
	if n < 0 {
		it.bad = true
		return false
	}
	it.msg = it.msg[n:]
	return true
}

func (w *wireRecord) resourceSpans(b, rs []byte) ([]byte, bool) {
	// The resource may follow its scopes on the wire; a repeated resource
	// field merges, so its attributes add up.
	w.res, w.scopes = w.res[:0], w.scopes[:0]
	it := newWireFields(rs)
	for it.next() {
		if it.typ != protowire.BytesType {
			return b, false
		}
		switch it.num {
		case fRSResource:
			r := newWireFields(it.v)
			for r.next() {
				switch {
				case r.num == fResourceAttributes && r.typ == protowire.BytesType:
					w.res = append(w.res, span32{it.at.off + r.at.off, r.at.n})
				case r.num == fResourceDropped && r.typ == protowire.VarintType:
				default:
					return b, false
				}
			}
			if r.bad {
				return b, false
			}
		case fRSScopeSpans:
			w.scopes = append(w.scopes, it.at)
		case fRSSchemaURL:
		default:
			return b, false
		}
	}
	if it.bad {
		return b, false
	}
	for _, at := range w.scopes {
		ss := at.in(rs)
		w.spans = w.spans[:0]
		count := 0
		it := newWireFields(ss)
		for it.next() {
			if it.typ != protowire.BytesType {
				return b, false
			}
			switch it.num {
			case fSSSpans:
				var ok bool
				if w.spans, ok = w.span(w.spans, it.v); !ok {
					return b, false
				}
				count++
			case fSSScope, fSSSchemaURL:
			default:
				return b, false
			}
		}
		if it.bad {
			return b, false
		}
		if count == 0 {
			continue
		}
		var ok bool
		if b, ok = w.appendAttrs(b, rs, w.res); !ok {
			return b, false
		}
		b = binary.AppendUvarint(b, uint64(count))
		b = append(b, w.spans...)
	}
	return b, true
}

// spanID reads an 8-byte ID field; an empty one is all zeros.
func spanID(dst *[8]byte, v []byte) bool {
	switch len(v) {
	case 0:
		*dst = [8]byte{}
	case 8:
		copy(dst[:], v)
	default:
		return false
	}
	return true
}

// span appends one span as appendSpan does.
func (w *wireRecord) span(b, sp []byte) ([]byte, bool) {
	var sid, pid [8]byte
	var name, message []byte
	var kind, code byte
	var start, end uint64
	w.kvs = w.kvs[:0]
	it := newWireFields(sp)
	for it.next() {
		ok := true
		switch bytesField := it.typ == protowire.BytesType; {
		case it.num == fSpanSpanID && bytesField:
			ok = spanID(&sid, it.v)
		case it.num == fSpanParentSpanID && bytesField:
			ok = spanID(&pid, it.v)
		case it.num == fSpanName && bytesField:
			name = it.v
		case it.num == fSpanKind && it.typ == protowire.VarintType:
			kind = byte(int32(it.x))
		case it.num == fSpanStart && it.typ == protowire.Fixed64Type:
			start = it.x
		case it.num == fSpanEnd && it.typ == protowire.Fixed64Type:
			end = it.x
		case it.num == fSpanAttributes && bytesField:
			w.kvs = append(w.kvs, it.at)
		case it.num == fSpanStatus && bytesField:
			st := newWireFields(it.v)
			for st.next() {
				switch {
				case st.num == fStatusMessage && st.typ == protowire.BytesType:
					message = st.v
				case st.num == fStatusCode && st.typ == protowire.VarintType:
					code = byte(int32(st.x))
				default:
					return b, false
				}
			}
			ok = !st.bad
		case it.num == fSpanTraceID && bytesField:
			ok = len(it.v) == 0 || len(it.v) == 16
		case (it.num == fSpanTraceState || it.num == fSpanEvents || it.num == fSpanLinks) && bytesField:
		case (it.num == fSpanDroppedAttrs || it.num == fSpanDroppedEvents || it.num == fSpanDroppedLinks) && it.typ == protowire.VarintType:
		case it.num == fSpanFlags && it.typ == protowire.Fixed32Type:
		default:
			ok = false
		}
		if !ok {
			return b, false
		}
	}
	if it.bad {
		return b, false
	}
	b = append(b, sid[:]...)
	b = append(b, pid[:]...)
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	b = append(b, kind, code)
	if len(message) > maxSearchValueLen {
		message = message[:maxSearchValueLen]
	}
	b = binary.AppendUvarint(b, uint64(len(message)))
	b = append(b, message...)
	b = binary.AppendUvarint(b, start)
	b = binary.AppendUvarint(b, end)
	return w.appendAttrs(b, sp, w.kvs)
}

// appendAttrs appends the KeyValue messages at kvs in msg as appendAttrs
// does.
func (w *wireRecord) appendAttrs(b, msg []byte, kvs []span32) ([]byte, bool) {
	body := w.attrs[:0]
	n := min(len(kvs), maxSearchAttrs)
	body = binary.AppendUvarint(body, uint64(n))
	for _, at := range kvs[:n] {
		kv := at.in(msg)
		var key, str []byte
		val := traceql.StringValue("") // an absent value is pdata's empty value
		it := newWireFields(kv)
		for it.next() {
			switch {
			case it.num == fKVKey && it.typ == protowire.BytesType:
				key = it.v
			case it.num == fKVValue && it.typ == protowire.BytesType:
				// A repeated value field merges: its last value wins.
				av := newWireFields(it.v)
				for av.next() {
					switch {
					case av.num == fAnyString && av.typ == protowire.BytesType:
						val, str = traceql.Value{Type: traceql.TypeString}, av.v
					case av.num == fAnyBool && av.typ == protowire.VarintType:
						val = traceql.BoolValue(av.x != 0)
					case av.num == fAnyInt && av.typ == protowire.VarintType:
						val = traceql.IntValue(int64(av.x))
					case av.num == fAnyDouble && av.typ == protowire.Fixed64Type:
						val = traceql.FloatValue(math.Float64frombits(av.x))
					default:
						return b, false // arrays, maps, bytes: pdata's string forms
					}
				}
				if av.bad {
					return b, false
				}
			default:
				return b, false
			}
		}
		if it.bad {
			return b, false
		}
		if len(key) > maxSearchValueLen {
			key = key[:maxSearchValueLen]
		}
		body = binary.AppendUvarint(body, uint64(len(key)))
		body = append(body, key...)
		if val.Type == traceql.TypeString {
			if len(str) > maxSearchValueLen {
				str = str[:maxSearchValueLen]
			}
			body = append(body, byte(traceql.TypeString))
			body = binary.AppendUvarint(body, uint64(len(str)))
			body = append(body, str...)
		} else {
			body = appendSearchValue(body, val)
		}
	}
	w.attrs = body
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...), true
}
