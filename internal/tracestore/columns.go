package tracestore

import (
	"encoding/binary"
	"errors"
	"slices"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/traceql"
)

// Column blocks are the search index a scan reads. Each request writes, for
// every minute its traces start in, one column block holding the search
// fields of those spans column by column, strings replaced by ids into a
// block dictionary, and one column per span attribute key in a key of its
// own, so a query reads only the columns it uses (when the minute's rows
// are cut into pages, its blocks are merged into a few: colmerge.go):
//
//	c | minute(8) | seq(8)       → column block (below)
//	a | minute(8) | seq(8) | key → the spans' values of attribute key
//
// A column block holds the same fields, with the same truncation, as the
// row-oriented search records (x), so conditions evaluated on it decide
// exactly what they decide on the records; the records stay the source of
// the spans a search reports. Column blocks are written in the same batch as
// the minute's block summary and deleted with it, so a minute has column
// blocks for all its records exactly when it has a summary.
//
// Column block layout (uvarints unless noted):
//
//	version byte
//	chunks, spans
//	chunk ids      chunks × (traceID(16) seq(8 BE) minStart(8 BE)), fixed width
//	chunk spans    chunks × count; a chunk's spans are contiguous, in order
//	dictionary     n, n × (len, bytes): span names and status messages
//	resources      n, n × attribute list as in search records
//	8 columns      each (byte length, body): per span resource id, name id,
//	               status code (byte), kind (byte), status message id,
//	               duration in ns (end - start), start in ns after its
//	               chunk's index time (minStart), whether it has a parent
//	               (byte: 0 for a root span, 1 otherwise)
//	attribute keys n, n × (len, bytes): the keys that have an a-column
//
// Attribute column layout: entries, entries whose value is not a string,
// dictionary (n, n × (len, bytes)), then per entry the span index minus the
// previous entry's (the first: index+1), a value type byte and the value, a
// string as a dictionary id. A span appears once per key: with its first
// value, as search records look it up. A condition that no dictionary entry
// satisfies is thus decided for a column of strings without its entries.
//
// Version 1 blocks, written before the start and parent columns existed,
// have only the first 6 columns; they still read, and metrics take those
// spans from the search records.
const (
	pColumns     = 'c'
	pAttrCol     = 'a'
	colVersion   = 2
	colVersionV1 = 1
	colIDWidth   = 16 + 8 + 8
)

// Column indexes in a column block.
const (
	colRes = iota
	colName
	colStatus
	colKind
	colMessage
	colDuration
	colStart
	colParent
	numCols
	numColsV1 = colStart
)

func columnKey(minute, seq uint64) []byte {
	k := make([]byte, 0, 17)
	k = append(k, pColumns)
	k = binary.BigEndian.AppendUint64(k, minute)
	return binary.BigEndian.AppendUint64(k, seq)
}

// columnBound is the first column-block key of minute.
func columnBound(table byte, minute uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{table}, minute)
}

func attrColumnKey(dst []byte, minute, seq uint64, key string) []byte {
	dst = append(dst, pAttrCol)
	dst = binary.BigEndian.AppendUint64(dst, minute)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	return append(dst, key...)
}

// stringDict assigns ids to strings in order of first use.
type stringDict struct {
	ids map[string]uint64
	enc []byte
}

func (d *stringDict) reset() {
	clear(d.ids)
	d.enc = d.enc[:0]
}

func (d *stringDict) id(s string) uint64 {
	if id, ok := d.ids[s]; ok {
		return id
	}
	if d.ids == nil {
		d.ids = make(map[string]uint64, 16)
	}
	id := uint64(len(d.ids))
	d.ids[s] = id
	d.enc = appendString(d.enc, s)
	return id
}

// columnBuilders keeps builders between requests so that their maps and
// buffers keep their capacity.
var columnBuilders = sync.Pool{New: func() any { return &columnBuilder{} }}

// columnBuilder accumulates one column block. Not safe for concurrent use.
// Its maps hold strings of the spans added: reset drops them.
type columnBuilder struct {
	ids      []byte
	counts   []uint64
	minStart uint64 // of the current chunk
	spans    int
	dict     stringDict
	resIDs   map[int]uint64
	nRes     int // resources in res
	res      []byte
	cols     [numCols][]byte
	attrs    map[string]*attrColumnBuilder
	attrKeys []string
	spare    []*attrColumnBuilder
}

// reset empties the builder, keeping its capacity.
func (cb *columnBuilder) reset() {
	cb.ids, cb.counts, cb.spans = cb.ids[:0], cb.counts[:0], 0
	cb.dict.reset()
	clear(cb.resIDs)
	cb.nRes = 0
	cb.res = cb.res[:0]
	for i := range cb.cols {
		cb.cols[i] = cb.cols[i][:0]
	}
	for _, k := range cb.attrKeys {
		col := cb.attrs[k]
		col.dict.reset()
		col.n, col.other, col.entries, col.last = 0, 0, col.entries[:0], -1
		cb.spare = append(cb.spare, col)
	}
	clear(cb.attrs)
	clear(cb.attrKeys) // drop the strings
	cb.attrKeys = cb.attrKeys[:0]
}

type attrColumnBuilder struct {
	dict    stringDict
	n       uint64
	other   uint64 // entries whose value is not a string
	entries []byte
	last    int // index of the last span added, -1 before the first
}

// addChunk starts the spans of one stored chunk of a trace; addSpan then
// adds them.
func (cb *columnBuilder) addChunk(tid pcommon.TraceID, seq, minStart uint64) {
	cb.ids = append(cb.ids, tid[:]...)
	cb.ids = binary.BigEndian.AppendUint64(cb.ids, seq)
	cb.ids = binary.BigEndian.AppendUint64(cb.ids, minStart)
	cb.counts = append(cb.counts, 0)
	cb.minStart = minStart
}

// addSpan adds a span of the current chunk; resIndex identifies its
// resource within the request so that spans of one resource share it.
func (cb *columnBuilder) addSpan(resIndex int, res pcommon.Resource, sp ptrace.Span) {
	rid, ok := cb.resIDs[resIndex]
	if !ok {
		if cb.resIDs == nil {
			cb.resIDs = map[int]uint64{}
		}
		rid = uint64(cb.nRes)
		cb.resIDs[resIndex] = rid
		cb.res = appendAttrs(cb.res, res.Attributes())
		cb.nRes++
	}
	idx := cb.spans
	cb.spans++
	cb.counts[len(cb.counts)-1]++
	c := &cb.cols
	c[colRes] = binary.AppendUvarint(c[colRes], rid)
	c[colName] = binary.AppendUvarint(c[colName], cb.dict.id(sp.Name()))
	c[colStatus] = append(c[colStatus], byte(sp.Status().Code()))
	c[colKind] = append(c[colKind], byte(sp.Kind()))
	c[colMessage] = binary.AppendUvarint(c[colMessage], cb.dict.id(truncate(sp.Status().Message())))
	var d uint64
	if sp.EndTimestamp() >= sp.StartTimestamp() {
		d = uint64(sp.EndTimestamp() - sp.StartTimestamp())
	}
	c[colDuration] = binary.AppendUvarint(c[colDuration], d)
	c[colStart] = binary.AppendUvarint(c[colStart], uint64(sp.StartTimestamp())-cb.minStart)
	hasParent := byte(0)
	if !sp.ParentSpanID().IsEmpty() {
		hasParent = 1
	}
	c[colParent] = append(c[colParent], hasParent)

	m := sp.Attributes()
	n, i := min(m.Len(), maxSearchAttrs), 0
	for k, v := range m.All() {
		if i == n {
			break
		}
		i++
		cb.attr(truncate(k)).add(idx, searchValueOf(v))
	}
}

// attr returns the builder of the attribute column of key.
func (cb *columnBuilder) attr(key string) *attrColumnBuilder {
	col := cb.attrs[key]
	if col == nil {
		if cb.attrs == nil {
			cb.attrs = map[string]*attrColumnBuilder{}
		}
		if n := len(cb.spare); n > 0 {
			col, cb.spare = cb.spare[n-1], cb.spare[:n-1]
		} else {
			col = &attrColumnBuilder{last: -1}
		}
		cb.attrs[key] = col
		cb.attrKeys = append(cb.attrKeys, key)
	}
	return col
}

// add adds span idx's value; spans come in order, and a span's repeated
// key keeps its first value, which lookups find.
func (col *attrColumnBuilder) add(idx int, val traceql.Value) {
	if col.last == idx {
		return
	}
	col.entries = binary.AppendUvarint(col.entries, uint64(idx-col.last))
	col.last = idx
	col.n++
	if val.Type == traceql.TypeString {
		col.entries = append(col.entries, byte(traceql.TypeString))
		col.entries = binary.AppendUvarint(col.entries, col.dict.id(val.S))
	} else {
		col.entries = appendSearchValue(col.entries, val)
		col.other++
	}
}

// encode returns the column block.
func (cb *columnBuilder) encode() []byte {
	size := 16 + len(cb.ids) + len(cb.counts) + len(cb.dict.enc) + len(cb.res)
	for _, c := range cb.cols {
		size += len(c) + binary.MaxVarintLen32
	}
	for _, k := range cb.attrKeys {
		size += len(k) + 2
	}
	b := make([]byte, 0, size)
	b = append(b, colVersion)
	b = binary.AppendUvarint(b, uint64(len(cb.counts)))
	b = binary.AppendUvarint(b, uint64(cb.spans))
	b = append(b, cb.ids...)
	for _, n := range cb.counts {
		b = binary.AppendUvarint(b, n)
	}
	b = binary.AppendUvarint(b, uint64(len(cb.dict.ids)))
	b = append(b, cb.dict.enc...)
	b = binary.AppendUvarint(b, uint64(cb.nRes))
	b = append(b, cb.res...)
	for _, c := range cb.cols {
		b = binary.AppendUvarint(b, uint64(len(c)))
		b = append(b, c...)
	}
	b = binary.AppendUvarint(b, uint64(len(cb.attrKeys)))
	for _, k := range cb.attrKeys {
		b = appendString(b, k)
	}
	return b
}

// encodeAttr returns the attribute column of key.
func (cb *columnBuilder) encodeAttr(key string) []byte {
	col := cb.attrs[key]
	b := make([]byte, 0, 3*binary.MaxVarintLen64+len(col.dict.enc)+len(col.entries))
	b = binary.AppendUvarint(b, col.n)
	b = binary.AppendUvarint(b, col.other)
	b = binary.AppendUvarint(b, uint64(len(col.dict.ids)))
	b = append(b, col.dict.enc...)
	return append(b, col.entries...)
}

// colBlock is a parsed column block: the sections located, nothing decoded.
// Its slices alias the block.
type colBlock struct {
	version       byte
	chunks, spans int
	ids           []byte
	counts        []byte
	nDict         int
	dict          []byte
	nRes          int
	res           []byte
	cols          [numCols][]byte
	nKeys         int
	keys          []byte
}

func parseColumnBlock(b []byte) (colBlock, error) {
	var blk colBlock
	d := decoder{b: b, alias: true}
	blk.version = d.byte()
	cols := numCols
	switch blk.version {
	case colVersion:
	case colVersionV1:
		cols = numColsV1
	default:
		return blk, errCorrupt
	}
	chunks, spans := d.uvarint(), d.uvarint()
	// Every chunk takes colIDWidth bytes and every span at least a byte.
	if chunks > uint64(len(d.b)/colIDWidth) || spans > uint64(len(d.b)) || (spans == 0) != (chunks == 0) {
		return blk, errCorrupt
	}
	blk.chunks, blk.spans = int(chunks), int(spans)
	blk.ids = d.take(blk.chunks * colIDWidth)
	blk.counts = d.section(func() {
		for range blk.chunks {
			d.uvarint()
		}
	})
	blk.nDict = d.count()
	blk.dict = d.section(func() {
		for range blk.nDict {
			d.skipString()
		}
	})
	blk.nRes = d.count()
	blk.res = d.section(func() {
		for range blk.nRes {
			d.skipString() // a byte-length-prefixed attribute list
		}
	})
	for i := range cols {
		n := d.uvarint()
		if n > uint64(len(d.b)) {
			return blk, errCorrupt
		}
		blk.cols[i] = d.take(int(n))
	}
	blk.nKeys = d.count()
	blk.keys = d.section(func() {
		for range blk.nKeys {
			d.skipString()
		}
	})
	if d.err == nil && len(d.b) != 0 {
		return blk, errCorrupt
	}
	return blk, d.err
}

// section runs skip over the decoder and returns the bytes it consumed.
func (d *decoder) section(skip func()) []byte {
	start := d.b
	skip()
	if d.err != nil {
		return nil
	}
	return start[:len(start)-len(d.b)]
}

// count reads a count of entries that each take at least one byte.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

// chunkID returns the trace ID, sequence number and index time of chunk j.
func (blk *colBlock) chunkID(j int) (pcommon.TraceID, uint64, uint64) {
	e := blk.ids[j*colIDWidth : (j+1)*colIDWidth]
	return pcommon.TraceID(e[:16]), binary.BigEndian.Uint64(e[16:24]), binary.BigEndian.Uint64(e[24:32])
}

// colDecoder decodes the parts of column blocks a query needs into buffers
// reused from block to block. Decoded strings alias the block.
type colDecoder struct {
	starts []int32
	dict   []string
	ids    [numCols][]uint32
	durs   []uint64
	offs   []uint64
	sd     searchDecoder
	res    [][]traceql.Attr
	keys   []string
}

// chunkStarts returns the index of each chunk's first span, and spans last.
func (cd *colDecoder) chunkStarts(blk *colBlock) ([]int32, error) {
	cd.starts = cd.starts[:0]
	d := decoder{b: blk.counts}
	sum := uint64(0)
	for range blk.chunks {
		cd.starts = append(cd.starts, int32(sum))
		n := d.uvarint()
		if n == 0 || n > uint64(blk.spans) {
			return nil, errCorrupt
		}
		sum += n
	}
	if d.err != nil || sum != uint64(blk.spans) {
		return nil, errCorrupt
	}
	cd.starts = append(cd.starts, int32(sum))
	return cd.starts, nil
}

func (cd *colDecoder) strings(blk *colBlock) (dict []string, err error) {
	cd.dict, err = decodeStrings(cd.dict[:0], blk.dict, blk.nDict)
	return cd.dict, err
}

// decodeStrings appends the n strings encoded in b to out; a short or
// corrupt b is errCorrupt.
func decodeStrings(out []string, b []byte, n int) ([]string, error) {
	d := decoder{b: b, alias: true}
	for range n {
		s := d.string()
		if d.err != nil {
			return out, errCorrupt
		}
		out = append(out, s)
	}
	return out, nil
}

// idColumn decodes column i as one id per span, each below limit.
func (cd *colDecoder) idColumn(blk *colBlock, i int, limit int) ([]uint32, error) {
	out, err := uint32Column(cd.ids[i][:0], blk.cols[i], blk.spans, limit)
	if err != nil {
		return nil, err
	}
	cd.ids[i] = out
	return out, nil
}

// byteColumn returns column i, one byte per span.
func (cd *colDecoder) byteColumn(blk *colBlock, i int) ([]byte, error) {
	if len(blk.cols[i]) != blk.spans {
		return nil, errCorrupt
	}
	return blk.cols[i], nil
}

func (cd *colDecoder) durations(blk *colBlock) ([]uint64, error) {
	out, err := uvarintColumn(cd.durs[:0], blk.cols[colDuration], blk.spans)
	cd.durs = out
	return out, err
}

// startOffsets decodes the start column (version 2 blocks): each span's
// start in ns after its chunk's index time.
func (cd *colDecoder) startOffsets(blk *colBlock) ([]uint64, error) {
	if blk.version < colVersion {
		return nil, errNoStarts
	}
	out, err := uvarintColumn(cd.offs[:0], blk.cols[colStart], blk.spans)
	cd.offs = out
	return out, err
}

// errNoStarts is a version 1 block's answer for the start column.
var errNoStarts = errors.New("tracestore: column block has no start column")

// uvarintColumn appends to out the n uvarints that make up b exactly.
func uvarintColumn(out []uint64, b []byte, n int) ([]uint64, error) {
	for range n {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, errCorrupt
		}
		b = b[k:]
		out = append(out, v)
	}
	if len(b) != 0 {
		return nil, errCorrupt
	}
	return out, nil
}

// resources decodes the block's resource attributes.
func (cd *colDecoder) resources(blk *colBlock) ([][]traceql.Attr, error) {
	cd.res = cd.res[:0]
	cd.sd.arena = cd.sd.arena[:0]
	d := decoder{b: blk.res, alias: true}
	for range blk.nRes {
		a := cd.sd.attrs(&d, true)
		if d.err != nil {
			return nil, errCorrupt
		}
		cd.res = append(cd.res, a)
	}
	return cd.res, nil
}

func (cd *colDecoder) attrKeys(blk *colBlock) (keys []string, err error) {
	cd.keys, err = decodeStrings(cd.keys[:0], blk.keys, blk.nKeys)
	return cd.keys, err
}

// attrColumn is an attribute column: parseAttrColumn reads its header and
// dictionary, decodeEntries the entries: for each span that has the
// attribute, its index and value; string values also have their
// dictionary id in sid (-1 for other types).
type attrColumn struct {
	n, other int
	dict     []string
	rest     []byte // the undecoded entries
	decoded  bool
	idx      []int32
	vals     []traceql.Value
	sid      []int32
}

func parseAttrColumn(col *attrColumn, b []byte, spans int) error {
	d := decoder{b: b, alias: true}
	col.n = d.count()
	col.other = d.count()
	nd := d.count()
	col.dict = col.dict[:0]
	for range nd {
		col.dict = append(col.dict, d.string())
	}
	if d.err != nil || col.n > spans || col.other > col.n {
		return errCorrupt
	}
	col.rest, col.decoded = d.b, false
	return nil
}

func (col *attrColumn) decodeEntries(spans int) error {
	if col.decoded {
		return nil
	}
	d := decoder{b: col.rest, alias: true}
	// Sized once: a merged block's column has tens of thousands of entries.
	col.idx = slices.Grow(col.idx[:0], col.n)
	col.vals = slices.Grow(col.vals[:0], col.n)
	col.sid = slices.Grow(col.sid[:0], col.n)
	idx, other := -1, 0
	for range col.n {
		delta := d.uvarint()
		if delta == 0 || delta > uint64(spans-1-idx) {
			return errCorrupt
		}
		idx += int(delta)
		sid := int32(-1)
		t := traceql.ValueType(d.byte())
		v, ok := d.scalar(t)
		switch {
		case ok:
		case t == traceql.TypeString:
			id := d.uvarint()
			if id >= uint64(len(col.dict)) {
				return errCorrupt
			}
			sid = int32(id)
			v = traceql.StringValue(col.dict[id])
		default:
			return errCorrupt
		}
		if d.err != nil {
			return errCorrupt
		}
		if sid < 0 {
			other++
		}
		col.idx = append(col.idx, int32(idx))
		col.vals = append(col.vals, v)
		col.sid = append(col.sid, sid)
	}
	if len(d.b) != 0 || other != col.other {
		return errCorrupt
	}
	col.decoded = true
	return nil
}

// decodeAttrColumn parses and decodes a whole attribute column.
func decodeAttrColumn(col *attrColumn, b []byte, spans int) error {
	if err := parseAttrColumn(col, b, spans); err != nil {
		return err
	}
	return col.decodeEntries(spans)
}
