package tracestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/traceql"
)

// Key layout. Every key starts with a one-byte table prefix.
//
//	d | minStart(8) | traceID(16) | seq(8)   → OTLP protobuf of one trace's spans from one request
//	x | minStart(8) | traceID(16) | seq(8)   → search record of the same spans, until they
//	                                           are cut into a page (then made from it)
//	t | traceID(16)                          → trace summary with the list of its d/x keys,
//	                                           combined with a merge operator
//	p | minStart(8) | traceID(16) | seq(8)   → Zstandard page of consecutive d records, keyed
//	                                           by its last (pages.go); they leave d once cut
//
// Data and search records are keyed by time so that ingest appends mostly
// in key order and retention deletes contiguous ranges that compact cheaply;
// d rows and page entries together are the time index (walk.go).
//
//	b | minute(8)                            → block summary (blocks.go)
//	c | minute(8) | seq(8)                   → column block (columns.go)
//	m | name                                 → the store's own state (sampling.go)
//	a | minute(8) | seq(8) | key             → attribute column of that block
//	k | hour(4) | scope(1) | key             → tag name seen in that hour
//	v | hour(4) | scope(1) | key 0 type value → tag value seen in that hour
const (
	pData    = 'd'
	pIndex   = 'x'
	pSummary = 't'
	pTagKey  = 'k'
	pTagVal  = 'v'
	pMeta    = 'm'
)

// Tag scopes in the k and v tables.
const (
	scopeResource  = 'r'
	scopeSpan      = 's'
	scopeIntrinsic = 'i'
)

var errCorrupt = errors.New("tracestore: corrupt record")

func chunkKey(table byte, minStart uint64, tid pcommon.TraceID, seq uint64) []byte {
	k := make([]byte, 0, 33)
	k = append(k, table)
	k = binary.BigEndian.AppendUint64(k, minStart)
	k = append(k, tid[:]...)
	return binary.BigEndian.AppendUint64(k, seq)
}

func dataKey(minStart uint64, tid pcommon.TraceID, seq uint64) []byte {
	return chunkKey(pData, minStart, tid, seq)
}

func indexKey(minStart uint64, tid pcommon.TraceID, seq uint64) []byte {
	return chunkKey(pIndex, minStart, tid, seq)
}

// chunkRef locates one stored request's spans of a trace.
type chunkRef struct {
	MinStart, Seq uint64
}

func summaryKey(tid pcommon.TraceID) []byte {
	return append([]byte{pSummary}, tid[:]...)
}

// summary is the per-trace record used for search results and trace-level
// filters. Records from several requests combine with mergeSummaries.
type summary struct {
	MinStart, MaxEnd uint64
	Spans            uint64
	HasRoot          bool
	RootStart        uint64
	RootName         string
	RootService      string
	Chunks           []chunkRef
	// RootEnd is the root span's end; Errors counts spans with an error
	// status. Both are 0 in summaries written before they existed.
	RootEnd uint64
	Errors  uint64
}

func (s *summary) info() traceql.TraceInfo {
	info := traceql.TraceInfo{StartUnixNano: s.MinStart, EndUnixNano: s.MaxEnd, RootName: traceql.RootSpanNotReceived}
	if s.HasRoot {
		info.RootName, info.RootServiceName = s.RootName, s.RootService
	}
	return info
}

func (s *summary) merge(o *summary) {
	if s.Spans == 0 || o.MinStart < s.MinStart {
		s.MinStart = o.MinStart
	}
	if o.MaxEnd > s.MaxEnd {
		s.MaxEnd = o.MaxEnd
	}
	s.Spans += o.Spans
	s.Errors += o.Errors
	if o.HasRoot && (!s.HasRoot || o.RootStart < s.RootStart) {
		s.HasRoot, s.RootStart, s.RootEnd, s.RootName, s.RootService = true, o.RootStart, o.RootEnd, o.RootName, o.RootService
	}
	for _, c := range o.Chunks {
		if !slices.Contains(s.Chunks, c) {
			s.Chunks = append(s.Chunks, c)
		}
	}
}

// summaryV2 is the first byte of a summary encoded with its times as
// differences from MinStart, which takes about 20 bytes fewer per trace.
// A summary written before begins with MinStart's big-endian bytes, whose
// first is below 0xff for every start time the store accepts (before the
// year 2500).
const summaryV2 = 0xff

func (s *summary) encode() []byte {
	b := make([]byte, 0, 32+len(s.RootName)+len(s.RootService)+len(s.Chunks)*10)
	b = append(b, summaryV2)
	b = binary.AppendUvarint(b, s.MinStart)
	b = binary.AppendVarint(b, int64(s.MaxEnd-s.MinStart))
	b = binary.AppendUvarint(b, s.Spans)
	b = binary.AppendUvarint(b, s.Errors)
	if s.HasRoot {
		b = append(b, 1)
		b = binary.AppendVarint(b, int64(s.RootStart-s.MinStart))
		b = binary.AppendVarint(b, int64(s.RootEnd-s.RootStart))
		b = appendString(b, s.RootName)
		b = appendString(b, s.RootService)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Chunks)))
	for _, c := range s.Chunks {
		b = binary.AppendVarint(b, int64(c.MinStart-s.MinStart))
		b = binary.BigEndian.AppendUint64(b, c.Seq)
	}
	return b
}

func decodeSummary(b []byte) (summary, error) {
	if len(b) == 0 || b[0] != summaryV2 {
		return decodeSummaryV1(b)
	}
	var s summary
	d := decoder{b: b[1:]}
	s.MinStart = d.uvarint()
	s.MaxEnd = s.MinStart + uint64(d.varint())
	s.Spans = d.uvarint()
	s.Errors = d.uvarint()
	if d.byte() == 1 {
		s.HasRoot = true
		s.RootStart = s.MinStart + uint64(d.varint())
		s.RootEnd = s.RootStart + uint64(d.varint())
		s.RootName = d.string()
		s.RootService = d.string()
	}
	n := d.uvarint()
	if n > uint64(len(d.b))/9 {
		return s, errCorrupt
	}
	for range n {
		c := chunkRef{MinStart: s.MinStart + uint64(d.varint())}
		c.Seq = d.u64()
		s.Chunks = append(s.Chunks, c)
	}
	if d.err == nil && len(d.b) != 0 {
		return s, errCorrupt
	}
	return s, d.err
}

// decodeSummaryV1 decodes a summary written before summaryV2: fixed-width
// times, and RootEnd and Errors (0 when absent) after the chunks.
func decodeSummaryV1(b []byte) (summary, error) {
	var s summary
	d := decoder{b: b}
	s.MinStart = d.u64()
	s.MaxEnd = d.u64()
	s.Spans = d.uvarint()
	if d.byte() == 1 {
		s.HasRoot = true
		s.RootStart = d.uvarint()
		s.RootName = d.string()
		s.RootService = d.string()
	}
	n := d.uvarint()
	if n > uint64(len(d.b))/16 {
		return s, errCorrupt
	}
	for range n {
		s.Chunks = append(s.Chunks, chunkRef{MinStart: d.u64(), Seq: d.u64()})
	}
	if d.err == nil && len(d.b) > 0 {
		s.RootEnd = d.uvarint()
		s.Errors = d.uvarint()
	}
	return s, d.err
}

// summaryMerger combines summary operands; the operation is commutative and
// associative, so Pebble may apply it in any grouping.
var summaryMerger = &pebble.Merger{
	Name: "lookout.tracestore.summary.v1",
	Merge: func(_, value []byte) (pebble.ValueMerger, error) {
		s, err := decodeSummary(value)
		if err != nil {
			return nil, err
		}
		return &summaryValueMerger{s: s}, nil
	},
}

type summaryValueMerger struct{ s summary }

func (m *summaryValueMerger) MergeNewer(v []byte) error { return m.add(v) }
func (m *summaryValueMerger) MergeOlder(v []byte) error { return m.add(v) }
func (m *summaryValueMerger) add(v []byte) error {
	o, err := decodeSummary(v)
	if err != nil {
		return err
	}
	m.s.merge(&o)
	return nil
}
func (m *summaryValueMerger) Finish(bool) ([]byte, io.Closer, error) { return m.s.encode(), nil, nil }

// Limits of the search record. The full span is always kept in the data
// table; these bound only what search evaluates.
const (
	maxSearchAttrs    = 128
	maxSearchValueLen = 1024
)

// appendRecordOf appends the search record of a chunk's spans given as
// the OTLP protobuf stored for it: per scope's spans, its resource, their
// count and the spans, which is what ingest writes per part of a request.
// Chunks cut into pages have no search record row (pages.go); readers take
// their records from here.
func appendRecordOf(b []byte, pb []byte) ([]byte, error) {
	w := wireRecords.Get().(*wireRecord)
	out, ok := w.recordFromWire(b, pb)
	w.reset()
	wireRecords.Put(w)
	if ok {
		return out, nil
	}
	return recordFromPdata(b, pb)
}

// recordFromPdata is appendRecordOf through pdata, for what recordFromWire
// leaves to it.
func recordFromPdata(b []byte, pb []byte) ([]byte, error) {
	var un ptrace.ProtoUnmarshaler
	td, err := un.UnmarshalTraces(pb)
	if err != nil {
		return b, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			spans := ss.Spans()
			if spans.Len() == 0 {
				continue
			}
			b = appendResource(b, rs.Resource())
			b = binary.AppendUvarint(b, uint64(spans.Len()))
			for _, sp := range spans.All() {
				b = appendSpan(b, sp)
			}
		}
	}
	return b, nil
}

// appendResource encodes a resource's attributes for the search record.
func appendResource(b []byte, res pcommon.Resource) []byte {
	return appendAttrs(b, res.Attributes())
}

func appendSpan(b []byte, s ptrace.Span) []byte {
	sid, pid := s.SpanID(), s.ParentSpanID()
	b = append(b, sid[:]...)
	b = append(b, pid[:]...)
	b = appendString(b, s.Name())
	b = append(b, byte(s.Kind()), byte(s.Status().Code()))
	b = appendString(b, truncate(s.Status().Message()))
	b = binary.AppendUvarint(b, uint64(s.StartTimestamp()))
	b = binary.AppendUvarint(b, uint64(s.EndTimestamp()))
	return appendAttrs(b, s.Attributes())
}

func truncate(s string) string {
	if len(s) > maxSearchValueLen {
		return s[:maxSearchValueLen]
	}
	return s
}

// appendAttrs writes the attributes as (byte length, count, entries) so a
// decoder that does not need them skips them in one step.
func appendAttrs(b []byte, m pcommon.Map) []byte {
	start := len(b)
	b = appendAttrsBody(b, m)
	var prefix [binary.MaxVarintLen64]byte
	p := binary.PutUvarint(prefix[:], uint64(len(b)-start))
	b = append(b, prefix[:p]...)
	copy(b[start+p:], b[start:len(b)-p])
	copy(b[start:], prefix[:p])
	return b
}

func appendAttrsBody(b []byte, m pcommon.Map) []byte {
	n := min(m.Len(), maxSearchAttrs)
	b = binary.AppendUvarint(b, uint64(n))
	i := 0
	for k, v := range m.All() {
		if i == n {
			break
		}
		i++
		b = appendString(b, truncate(k))
		b = appendSearchValue(b, searchValueOf(v))
	}
	return b
}

// searchValueOf is the value search evaluates for an attribute: strings
// truncated to maxSearchValueLen, and maps, slices and bytes searched by
// their string form. Row records and column blocks both use it so that the
// two judge a span alike.
func searchValueOf(v pcommon.Value) traceql.Value {
	x := valueOf(v)
	if x.Type == traceql.TypeString {
		x.S = truncate(x.S)
	}
	return x
}

// appendSearchValue writes a type byte and the value; strings inline.
func appendSearchValue(b []byte, v traceql.Value) []byte {
	b = append(b, byte(v.Type))
	switch v.Type {
	case traceql.TypeInt:
		return binary.AppendVarint(b, v.I)
	case traceql.TypeFloat:
		return binary.BigEndian.AppendUint64(b, math.Float64bits(v.F))
	case traceql.TypeBool:
		if v.B {
			return append(b, 1)
		}
		return append(b, 0)
	}
	return appendString(b, v.S)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// searchDecoder decodes search records without copying: strings alias the
// record and attributes share one arena, so results are valid only until
// the next decode; cloneSpan copies what must outlive it. Attributes not
// needed by the query are skipped.
type searchDecoder struct {
	spans     []traceql.Span
	arena     []traceql.Attr
	spanAttrs bool
	resAttrs  bool
}

func (sd *searchDecoder) decode(b []byte) ([]traceql.Span, error) {
	sd.spans, sd.arena = sd.spans[:0], sd.arena[:0]
	d := decoder{b: b, alias: true}
	for len(d.b) > 0 && d.err == nil {
		res := sd.attrs(&d, sd.resAttrs)
		n := d.uvarint()
		if n > uint64(len(d.b)) {
			return sd.spans, errCorrupt
		}
		for range n {
			var s traceql.Span
			copy(s.SpanID[:], d.take(8))
			copy(s.ParentSpanID[:], d.take(8))
			s.Name = d.string()
			s.Kind = int64(d.byte())
			s.StatusCode = int64(d.byte())
			s.StatusMessage = d.string()
			s.StartUnixNano = d.uvarint()
			s.EndUnixNano = d.uvarint()
			s.Attrs = sd.attrs(&d, sd.spanAttrs)
			s.Resource = res
			if d.err != nil {
				break
			}
			sd.spans = append(sd.spans, s)
		}
	}
	return sd.spans, d.err
}

func (sd *searchDecoder) attrs(outer *decoder, keep bool) []traceql.Attr {
	size := outer.uvarint()
	if size > uint64(len(outer.b)) {
		outer.fail()
		return nil
	}
	body := outer.take(int(size))
	if !keep || outer.err != nil {
		return nil
	}
	d := &decoder{b: body, alias: true}
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		outer.fail()
		return nil
	}
	if n == 0 {
		return nil
	}
	start := len(sd.arena)
	for range n {
		k := d.string()
		t := traceql.ValueType(d.byte())
		v, ok := d.scalar(t)
		switch {
		case ok:
		case t == traceql.TypeString:
			v = traceql.StringValue(d.string())
		default:
			d.fail()
		}
		if d.err != nil {
			outer.fail()
			return nil
		}
		sd.arena = append(sd.arena, traceql.Attr{Key: k, Value: v})
	}
	return sd.arena[start:len(sd.arena):len(sd.arena)]
}

// cloneSpan deep-copies a span decoded by searchDecoder.
func cloneSpan(s traceql.Span) traceql.Span {
	s.Name = strings.Clone(s.Name)
	s.StatusMessage = strings.Clone(s.StatusMessage)
	s.Attrs = cloneAttrs(s.Attrs)
	s.Resource = cloneAttrs(s.Resource)
	if s.Events != nil {
		evs := make([]traceql.Event, len(s.Events))
		for i, e := range s.Events {
			evs[i] = traceql.Event{Name: strings.Clone(e.Name), TimeUnixNano: e.TimeUnixNano, Attrs: cloneAttrs(e.Attrs)}
		}
		s.Events = evs
	}
	return s
}

func cloneAttrs(in []traceql.Attr) []traceql.Attr {
	if in == nil {
		return nil
	}
	out := make([]traceql.Attr, len(in))
	for i, a := range in {
		out[i] = traceql.Attr{Key: strings.Clone(a.Key), Value: a.Value}
		out[i].Value.S = strings.Clone(a.Value.S)
	}
	return out
}

type decoder struct {
	b     []byte
	err   error
	alias bool // strings alias b instead of copying
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) take(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.fail()
		return make([]byte, max(n, 0))
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte { return d.take(1)[0] }

func (d *decoder) u64() uint64 { return binary.BigEndian.Uint64(d.take(8)) }

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	b := d.take(int(n))
	if d.alias && len(b) > 0 {
		return unsafe.String(&b[0], len(b))
	}
	return string(b)
}

// scalar reads a value of type t written by appendSearchValue, unless t is
// a string (stored inline or as a dictionary id, as the caller knows) or
// unknown: then ok is false and nothing is read.
func (d *decoder) scalar(t traceql.ValueType) (v traceql.Value, ok bool) {
	switch t {
	case traceql.TypeInt:
		return traceql.IntValue(d.varint()), true
	case traceql.TypeFloat:
		return traceql.FloatValue(math.Float64frombits(d.u64())), true
	case traceql.TypeBool:
		return traceql.BoolValue(d.byte() == 1), true
	}
	return traceql.Value{}, false
}

func (d *decoder) skipString() {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return
	}
	d.b = d.b[n:]
}

// spansFromTraces converts stored OTLP spans to the evaluator's view.
func spansFromTraces(td ptrace.Traces, out []traceql.Span) []traceql.Span {
	for _, rs := range td.ResourceSpans().All() {
		res := attrsOf(rs.Resource().Attributes())
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				out = append(out, traceql.Span{
					SpanID:        [8]byte(s.SpanID()),
					ParentSpanID:  [8]byte(s.ParentSpanID()),
					Name:          s.Name(),
					Kind:          int64(s.Kind()),
					StatusCode:    int64(s.Status().Code()),
					StatusMessage: s.Status().Message(),
					StartUnixNano: uint64(s.StartTimestamp()),
					EndUnixNano:   uint64(s.EndTimestamp()),
					Attrs:         attrsOf(s.Attributes()),
					Resource:      res,
					Events:        eventsOf(s.Events()),
				})
			}
		}
	}
	return out
}

func eventsOf(evs ptrace.SpanEventSlice) []traceql.Event {
	if evs.Len() == 0 {
		return nil
	}
	out := make([]traceql.Event, 0, evs.Len())
	for _, e := range evs.All() {
		out = append(out, traceql.Event{Name: e.Name(), TimeUnixNano: uint64(e.Timestamp()), Attrs: attrsOf(e.Attributes())})
	}
	return out
}

func attrsOf(m pcommon.Map) []traceql.Attr {
	if m.Len() == 0 {
		return nil
	}
	out := make([]traceql.Attr, 0, m.Len())
	for k, v := range m.All() {
		out = append(out, traceql.Attr{Key: k, Value: valueOf(v)})
	}
	return out
}

func valueOf(v pcommon.Value) traceql.Value {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return traceql.IntValue(v.Int())
	case pcommon.ValueTypeDouble:
		return traceql.FloatValue(v.Double())
	case pcommon.ValueTypeBool:
		return traceql.BoolValue(v.Bool())
	case pcommon.ValueTypeStr:
		return traceql.StringValue(v.Str())
	}
	return traceql.StringValue(v.AsString())
}
