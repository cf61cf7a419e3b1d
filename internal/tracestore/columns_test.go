package tracestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/traceql"
)

// equivalenceQueries exercise every kind of condition colScan evaluates
// differently from traceql: dictionary-coded strings, byte columns,
// durations, attribute columns with resource fallback, truncated and
// capped attributes, trace-level fields and spanset operators.
var equivalenceQueries = []string{
	`{}`,
	`{ name = "a" } | count() > 1`,
	`{ duration > 1ms } | avg(duration) >= 5ms`,
	`{ .n != nil } | by(resource.service.name) | max(.n) > 2`,
	`{ kind = server } | by(name) | count() = 1 | coalesce() | select(.k1)`,
	`{ name = "a" }`,
	`{ name != "a" && status = error }`,
	`{ name =~ "b.*" || kind = server }`,
	`{ name !~ "a|b" }`,
	`{ status = ok }`,
	`{ status != unset }`,
	`{ kind = consumer }`,
	`{ kind != client }`,
	`{ duration > 10ms }`,
	`{ duration <= 5ms }`,
	`{ duration = 5ns }`,
	`{ duration != 0s }`,
	`{ statusMessage = "boom" }`,
	`{ statusMessage =~ "b.*" }`,
	`{ .k1 = "v1" }`,
	`{ span.k1 = "v1" }`,
	`{ resource.k1 = "v1" }`,
	`{ .n = 3 }`,
	`{ .n > 2.5 }`,
	`{ resource.n >= 1 }`,
	`{ .f >= 1.5 }`,
	`{ .b = true }`,
	`{ .b != false }`,
	`{ .k1 != nil }`,
	`{ .k1 = nil }`,
	`{ span.k1 = nil }`,
	`{ resource.k1 != nil }`,
	`{ resource.service.name = "svc-1" }`,
	`{ .service.name =~ "svc-[02]" }`,
	`{ .mixed = 3 }`,
	`{ .mixed = "3" }`,
	`{ .mixed =~ "3" }`,
	`{ .bytes != nil }`,
	`{ .map = "{\"x\":1}" }`,
	`{ .long = "` + strings.Repeat("x", maxSearchValueLen) + `" }`,
	`{ .long = "` + strings.Repeat("x", maxSearchValueLen+5) + `" }`,
	`{ span."` + strings.Repeat("k", maxSearchValueLen) + `" = "v" }`,
	`{ span."` + strings.Repeat("k", maxSearchValueLen+1) + `" = "v" }`,
	`{ .attr5 = 5 }`,
	`{ .attr127 = 127 }`,
	`{ .attr128 = 128 }`,
	`{ rootName = "a" && name = "b" }`,
	`{ traceDuration > 1s || name = "c" }`,
	`{ rootServiceName = "svc-1" || .k1 = "x" }`,
	`{ true && name = "a" }`,
	`{ false || status = error }`,
	`{ event.exception.type = "x" }`,
	`{ event:name = "x" && name = "a" }`,
	`{ nestedSetLeft > 1 || kind = server }`,
	`{ nestedSetParent > 0 && status = error }`,
	`{ name = "a" } &>> { event.k1 = "v1" } !< { nestedSetRight = 2 }`,
	`{ .k2 = "v2" && (status = error || duration > 20ms) }`,
	`{ name = "a" } && { status = error }`,
	`{ kind = server } >> { status = error }`,
	`{ name = "nothing" } || { .k1 = "x" }`,
	`{ .n = 3 } ~ { false }`,
	`{ name = "nothing" }`,
	`{ name =~ "z.*" || span.k2 = "v2" }`,
	`{ span.k2 = "nothing" }`,
	`{ .k2 =~ "z.*" }`,
	`{ span.k1 = "x" && name = "a" }`,
	`{ span.mixed = "4" }`,
	`{ nestedSetParent < 0 && true }`,
	`{ nestedSetParent != -1 && status = error }`,
}

// randomRequest builds a request of traces with varied spans: several
// resources, attributes of every type, a key that is an int in some spans
// and a string in others, values and keys beyond the search limits, spans
// with more attributes than search keeps.
func randomRequest(rng *rand.Rand, traces int, first byte, start time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	var res []ptrace.SpanSlice
	for i := range 3 {
		rs := td.ResourceSpans().AppendEmpty()
		a := rs.Resource().Attributes()
		a.PutStr("service.name", fmt.Sprintf("svc-%d", i))
		if i != 1 {
			a.PutStr("k1", "v1")
		}
		a.PutInt("n", int64(i))
		res = append(res, rs.ScopeSpans().AppendEmpty().Spans())
	}
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	for t := range traces {
		for k := range 1 + rng.IntN(4) {
			sp := res[rng.IntN(len(res))].AppendEmpty()
			sp.SetTraceID(pcommon.TraceID{0xee, 14: first, 15: byte(t)})
			sp.SetSpanID(pcommon.SpanID{byte(t), 7: byte(k + 1)})
			if k > 0 {
				sp.SetParentSpanID(pcommon.SpanID{byte(t), 7: byte(rng.IntN(k) + 1)})
			}
			sp.SetName(pick("a", "b", "c", "bb"))
			sp.SetKind(ptrace.SpanKind(rng.IntN(6)))
			sp.Status().SetCode(ptrace.StatusCode(rng.IntN(3)))
			sp.Status().SetMessage(pick("", "", "boom", "bang"))
			s0 := start.Add(time.Duration(rng.IntN(int(50 * time.Second))))
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(s0))
			d := time.Duration(rng.IntN(30)) * time.Millisecond
			if rng.IntN(10) == 0 {
				d = 5
			}
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(s0.Add(d)))
			a := sp.Attributes()
			if rng.IntN(2) == 0 {
				a.PutStr("k1", pick("v1", "v2", "x"))
			}
			if rng.IntN(2) == 0 {
				a.PutStr("k2", pick("v1", "v2"))
			}
			if rng.IntN(2) == 0 {
				a.PutInt("n", int64(rng.IntN(6)))
			}
			if rng.IntN(3) == 0 {
				a.PutDouble("f", float64(rng.IntN(4))/2)
			}
			if rng.IntN(3) == 0 {
				a.PutBool("b", rng.IntN(2) == 0)
			}
			switch rng.IntN(3) {
			case 0:
				a.PutInt("mixed", 3)
			case 1:
				a.PutStr("mixed", "3")
			}
			if rng.IntN(5) == 0 {
				a.PutStr("long", strings.Repeat("x", maxSearchValueLen+rng.IntN(10)))
				a.PutStr(strings.Repeat("k", maxSearchValueLen+rng.IntN(2)), "v")
				a.PutEmptyBytes("bytes").FromRaw([]byte{1, 2})
				a.PutEmptyMap("map").PutInt("x", 1)
			}
			if rng.IntN(8) == 0 {
				for i := range maxSearchAttrs + 2 {
					a.PutInt(fmt.Sprintf("attr%d", i), int64(i))
				}
			}
		}
	}
	return td
}

// buildBoth encodes td as ConsumeTraces does: one search record per trace
// and one column block with its attribute columns. A nil cb means a new
// builder; otherwise cb is reset afterwards.
func buildBoth(td ptrace.Traces, cb *columnBuilder) (records [][]byte, block []byte, attrs map[string][]byte) {
	if cb == nil {
		cb = &columnBuilder{}
	}
	defer cb.reset()
	var order []pcommon.TraceID
	seen := map[pcommon.TraceID]bool{}
	for _, rs := range td.ResourceSpans().All() {
		for _, sp := range rs.ScopeSpans().At(0).Spans().All() {
			if !seen[sp.TraceID()] {
				seen[sp.TraceID()] = true
				order = append(order, sp.TraceID())
			}
		}
	}
	for i, id := range order {
		minStart := uint64(math.MaxUint64)
		for _, rs := range td.ResourceSpans().All() {
			for _, sp := range rs.ScopeSpans().At(0).Spans().All() {
				if sp.TraceID() == id {
					minStart = min(minStart, uint64(sp.StartTimestamp()))
				}
			}
		}
		cb.addChunk(id, uint64(i), minStart)
		var rec []byte
		for ri, rs := range td.ResourceSpans().All() {
			var spans []ptrace.Span
			for _, sp := range rs.ScopeSpans().At(0).Spans().All() {
				if sp.TraceID() == id {
					spans = append(spans, sp)
				}
			}
			if len(spans) == 0 {
				continue
			}
			rec = appendResource(rec, rs.Resource())
			rec = binary.AppendUvarint(rec, uint64(len(spans)))
			for _, sp := range spans {
				rec = appendSpan(rec, sp)
				cb.addSpan(ri, rs.Resource(), sp)
			}
		}
		records = append(records, rec)
	}
	attrs = map[string][]byte{}
	for _, k := range cb.attrKeys {
		attrs[k] = cb.encodeAttr(k)
	}
	return records, cb.encode(), attrs
}

// TestColumnsDecideAsRecords checks that for every query and chunk the
// column scan keeps exactly the chunks traceql.PossibleInSpans keeps on
// their search records.
func TestColumnsDecideAsRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var cb columnBuilder // reused, as ConsumeTraces reuses builders
	for round := range 20 {
		records, block, attrs := buildBoth(randomRequest(rng, 1+rng.IntN(40), byte(round), base), &cb)
		for _, qs := range equivalenceQueries {
			q := traceql.MustParse(qs)
			cs := newColScan(q)
			cs.fetch = func(k string) ([]byte, error) { return attrs[k], nil }
			blk, cand, err := cs.match(block)
			if err != nil {
				t.Fatalf("%s: %v", qs, err)
			}
			if blk.chunks != len(records) {
				t.Fatalf("%d chunks, want %d", blk.chunks, len(records))
			}
			for j, rec := range records {
				sd := searchDecoder{spanAttrs: true, resAttrs: true}
				spans, err := sd.decode(rec)
				if err != nil {
					t.Fatal(err)
				}
				if want := traceql.PossibleInSpans(q, spans); cand[j] != want {
					t.Errorf("round %d, %s, chunk %d: column scan says %v, search record %v", round, qs, j, cand[j], want)
				}
			}
		}
		// Fields the search records hold and the columns lack (span IDs,
		// the parent ID that decides nestedSetParent < 0): the columns keep
		// at least what the records keep.
		for _, qs := range []string{`{ nestedSetParent < 0 && true }`, `{ nestedSetParent != -1 && name = "a" }`,
			`{ span:id = "cd00000000000001" }`, `{ span:parentID != "0" || status = error }`} {
			q := traceql.MustParse(qs)
			cs := newColScan(q)
			cs.fetch = func(k string) ([]byte, error) { return attrs[k], nil }
			_, cand, err := cs.match(block)
			if err != nil {
				t.Fatalf("%s: %v", qs, err)
			}
			for j, rec := range records {
				sd := searchDecoder{spanAttrs: true, resAttrs: true}
				spans, err := sd.decode(rec)
				if err != nil {
					t.Fatal(err)
				}
				if traceql.PossibleInSpans(q, spans) && !cand[j] {
					t.Errorf("round %d, %s, chunk %d: the column scan drops a chunk its search record keeps", round, qs, j)
				}
			}
		}
	}
}

// TestColumnBlockRoundTrip checks each column of an encoded block.
func TestColumnBlockRoundTrip(t *testing.T) {
	td := makeTraces(
		spanSpec{trace: 1, span: 1, service: "a", name: "root", kind: 2, status: 2, dur: time.Second,
			attrs: map[string]any{"s": "x", "i": -7, "f": 1.5, "b": true}},
		spanSpec{trace: 1, span: 2, parent: 1, service: "b", name: "child", kind: 3, start: 5 * time.Millisecond, dur: time.Millisecond, attrs: map[string]any{"s": "y"}},
		spanSpec{trace: 2, span: 1, service: "a", name: "root", start: time.Second, attrs: map[string]any{"s": "x"}},
	)
	_, block, attrs := buildBoth(td, nil)
	blk, err := parseColumnBlock(block)
	if err != nil {
		t.Fatal(err)
	}
	var cd colDecoder
	starts, err := cd.chunkStarts(&blk)
	if err != nil || !reflect.DeepEqual(starts, []int32{0, 2, 3}) {
		t.Errorf("chunk starts %v %v", starts, err)
	}
	id, seq, minStart := blk.chunkID(1)
	if id != tid(2) || seq != 1 || minStart != uint64(base.Add(time.Second).UnixNano()) {
		t.Errorf("chunk 1: %v %d %d", id, seq, minStart)
	}
	dict, err := cd.strings(&blk)
	if err != nil {
		t.Fatal(err)
	}
	col := func(i int) []string {
		ids, err := cd.idColumn(&blk, i, len(dict))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, id := range ids {
			out = append(out, dict[id])
		}
		return out
	}
	// makeTraces groups spans by service: spans are in resource order
	// within a chunk (trace 1: a/root, b/child; trace 2: a/root).
	if got := col(colName); !reflect.DeepEqual(got, []string{"root", "child", "root"}) {
		t.Errorf("names %v", got)
	}
	if got := col(colMessage); !reflect.DeepEqual(got, []string{"", "", ""}) {
		t.Errorf("messages %v", got)
	}
	status, _ := cd.byteColumn(&blk, colStatus)
	kinds, _ := cd.byteColumn(&blk, colKind)
	durs, _ := cd.durations(&blk)
	if !reflect.DeepEqual(status, []byte{2, 0, 0}) || !reflect.DeepEqual(kinds, []byte{2, 3, 0}) ||
		!reflect.DeepEqual(durs, []uint64{uint64(time.Second), uint64(time.Millisecond), 0}) {
		t.Errorf("status %v kinds %v durations %v", status, kinds, durs)
	}
	if parents, err := cd.byteColumn(&blk, colParent); err != nil || !reflect.DeepEqual(parents, []byte{0, 1, 0}) {
		t.Errorf("parent flags %v %v", parents, err)
	}
	if offs, err := cd.startOffsets(&blk); err != nil || !reflect.DeepEqual(offs, []uint64{0, uint64(5 * time.Millisecond), 0}) {
		t.Errorf("start offsets %v %v", offs, err)
	}
	// A version 1 block (no start column) still parses, without starts.
	v1, err := parseColumnBlock(asVersion1(t, block))
	if err != nil || v1.chunks != blk.chunks || v1.spans != blk.spans {
		t.Fatalf("version 1 block: %+v %v", v1, err)
	}
	if d, err := cd.durations(&v1); err != nil || !reflect.DeepEqual(d, durs) {
		t.Errorf("version 1 durations %v %v", d, err)
	}
	if _, err := cd.startOffsets(&v1); !errors.Is(err, errNoStarts) {
		t.Errorf("version 1 start offsets: %v", err)
	}
	res, err := cd.resources(&blk)
	if err != nil || len(res) != 2 || res[0][0].Value.S != "a" || res[1][0].Value.S != "b" {
		t.Errorf("resources %v %v", res, err)
	}
	rids, _ := cd.idColumn(&blk, colRes, len(res))
	if !reflect.DeepEqual(rids, []uint32{0, 1, 0}) {
		t.Errorf("resource ids %v", rids)
	}
	keys, _ := cd.attrKeys(&blk)
	if len(keys) != 4 {
		t.Errorf("attribute keys %v", keys)
	}
	for _, c := range []struct {
		key  string
		idx  []int32
		vals []traceql.Value
	}{
		{"s", []int32{0, 1, 2}, []traceql.Value{traceql.StringValue("x"), traceql.StringValue("y"), traceql.StringValue("x")}},
		{"i", []int32{0}, []traceql.Value{traceql.IntValue(-7)}},
		{"f", []int32{0}, []traceql.Value{traceql.FloatValue(1.5)}},
		{"b", []int32{0}, []traceql.Value{traceql.BoolValue(true)}},
	} {
		var ac attrColumn
		if err := decodeAttrColumn(&ac, attrs[c.key], blk.spans); err != nil {
			t.Fatalf("%s: %v", c.key, err)
		}
		if !reflect.DeepEqual(ac.idx, c.idx) || !reflect.DeepEqual(ac.vals, c.vals) {
			t.Errorf("attribute %s: %v %v, want %v %v", c.key, ac.idx, ac.vals, c.idx, c.vals)
		}
	}
	if ac := (attrColumn{}); decodeAttrColumn(&ac, attrs["s"], 2) == nil {
		t.Error("an attribute column naming a span past the block decoded")
	}
	for _, bad := range [][]byte{nil, {9}, block[:len(block)-1], append(append([]byte(nil), block...), 0)} {
		if _, err := parseColumnBlock(bad); err == nil {
			t.Errorf("parsed corrupt block %x", bad)
		}
	}
}

// TestSearchColumnsMatchRows runs the same searches through column blocks
// and through search records alone: results must be identical.
func TestSearchColumnsMatchRows(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range 12 {
		// Some traces continue in later requests: several chunks.
		first := byte(i)
		if i%3 == 2 {
			first = byte(i - 1)
		}
		consume(t, s, randomRequest(rng, 30, first, base.Add(time.Duration(i)*40*time.Second)))
	}
	reqs := []SearchRequest{
		{Limit: 1000},
		{Limit: 3},
		{Limit: 1000, Start: base.Add(70 * time.Second), End: base.Add(200 * time.Second)},
		{Limit: 1000, MinDuration: 20 * time.Millisecond},
	}
	for _, qs := range equivalenceQueries {
		for _, req := range reqs {
			req.Query = traceql.MustParse(qs)
			got, err := s.Search(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			s.searchRows = true
			want, err := s.Search(context.Background(), req)
			s.searchRows = false
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Traces, want.Traces) {
				t.Errorf("%s %+v: columns found %d traces, records %d, or different spans", qs, req, len(got.Traces), len(want.Traces))
			}
		}
	}
}

// FuzzDecodeColumns feeds arbitrary bytes to the column-block decoders and
// to a column scan: a corrupt block gives an error, never a panic or a hang.
func FuzzDecodeColumns(f *testing.F) {
	_, block, attrs := buildBoth(randomRequest(rand.New(rand.NewPCG(1, 2)), 3, 1, base), nil)
	f.Add(block, attrs["k1"])
	f.Add(block, attrs["n"])
	f.Add([]byte{colVersion, 1, 1}, []byte{1, 0, 1, 2, 4})
	queries := []traceql.Expr{
		traceql.MustParse(`{ name = "a" && duration > 1ms && status = error && kind = server }`),
		traceql.MustParse(`{ .k1 = "v1" || .n > 2 || resource.n = 1 || statusMessage = "boom" }`),
		traceql.MustParse(`{ span.n != nil } >> {}`),
	}
	f.Fuzz(func(t *testing.T, block, attr []byte) {
		for _, q := range queries {
			cs := newColScan(q)
			cs.fetch = func(string) ([]byte, error) { return attr, nil }
			_, _, _ = cs.match(block)
		}
		var ac attrColumn
		_ = decodeAttrColumn(&ac, attr, 1000)
	})
}

// asVersion1 rewrites a column block as version 1 wrote it: without the
// start column.
func asVersion1(t *testing.T, block []byte) []byte {
	t.Helper()
	blk, err := parseColumnBlock(block)
	if err != nil {
		t.Fatal(err)
	}
	// Everything up to the start column is laid out alike; drop the
	// columns from there (their lengths and bodies) to the attribute keys.
	start := len(block) - len(blk.keys) - uvarintLen(uint64(blk.nKeys))
	for _, c := range blk.cols[colStart:] {
		start -= len(c) + uvarintLen(uint64(len(c)))
	}
	out := append([]byte{colVersionV1}, block[1:start]...)
	return append(out, block[len(block)-len(blk.keys)-uvarintLen(uint64(blk.nKeys)):]...)
}

func uvarintLen(v uint64) int { return len(binary.AppendUvarint(nil, v)) }
