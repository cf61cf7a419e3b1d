package tracestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/traceql"
)

// rowsOf returns the rows of table, keyed without the table byte.
func rowsOf(t *testing.T, s *Store, table byte) map[string][]byte {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{table}, UpperBound: []byte{table + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	out := map[string][]byte{}
	for ok := it.First(); ok; ok = it.Next() {
		out[string(it.Key()[1:])] = bytes.Clone(it.Value())
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPagedRecordsMatchRows checks that cutting rows into pages, which
// drops their search records, changes no answer: every record made from a
// page is byte for byte the one ingest wrote, the walks find the same
// chunks, and every search finds the same traces and spans, through
// column blocks and through records alone.
func TestPagedRecordsMatchRows(t *testing.T) {
	now := base.Add(time.Hour)
	s := openTest(t, t.TempDir(), Options{Now: func() time.Time { return now }})
	defer s.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(4, 4))
	for i := range 12 {
		first := byte(i)
		if i%3 == 2 {
			first = byte(i - 1) // continued traces: several chunks
		}
		td := randomRequest(rng, 20, first, base.Add(time.Duration(i)*40*time.Second))
		switch i % 4 {
		case 1:
			// A rejected span: the accepted ones are stored per trace.
			sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().AppendEmpty()
			sp.SetTraceID(pcommon.TraceID{1})
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(base))
		case 3:
			// One trace, stored as sent, with a scope that has no spans.
			one := randomRequest(rng, 1, first, base.Add(time.Duration(i)*40*time.Second))
			one.ResourceSpans().At(1).ScopeSpans().AppendEmpty().Scope().SetName("empty")
			consume(t, s, one)
		}
		consume(t, s, td)
	}
	records := rowsOf(t, s, pIndex)
	if len(records) == 0 || len(rowsOf(t, s, pData)) != len(records) {
		t.Fatalf("%d search records for %d rows", len(records), len(rowsOf(t, s, pData)))
	}
	type answer struct {
		q    string
		req  SearchRequest
		rows bool
	}
	reqs := []SearchRequest{
		{Limit: 1000},
		{Limit: 3},
		{Limit: 1000, Start: base.Add(70 * time.Second), End: base.Add(200 * time.Second)},
	}
	search := func() map[answer][]TraceMatch {
		out := map[answer][]TraceMatch{}
		for _, qs := range equivalenceQueries {
			for _, req := range reqs {
				for _, rows := range []bool{false, true} {
					req.Query = traceql.MustParse(qs)
					s.searchRows = rows
					res, err := s.Search(ctx, req)
					s.searchRows = false
					if err != nil {
						t.Fatalf("%s: %v", qs, err)
					}
					req.Query = nil // the key: parsed anew each time
					out[answer{qs, req, rows}] = res.Traces
				}
			}
		}
		return out
	}
	before := search()
	lo, hi, ok, err := s.chunkExtent(ctx, 0, ^uint64(0))
	if err != nil || !ok {
		t.Fatalf("extent before the cut: %v %v", ok, err)
	}

	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(rowsOf(t, s, pIndex)) + len(rowsOf(t, s, pData)); n != 0 {
		t.Fatalf("%d rows left after the cut", n)
	}
	for k, want := range records {
		key := []byte(k)
		got, ok, err := s.readRecord(ctx, nil, binary.BigEndian.Uint64(key[:8]), pcommon.TraceID(key[8:24]), binary.BigEndian.Uint64(key[24:]))
		if err != nil || !ok {
			t.Fatalf("record %x: %v %v", key, ok, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("record %x made from its page differs from the one ingest wrote", key)
		}
	}
	walked := map[string][]byte{}
	if err := s.walkRecords(ctx, 0, ^uint64(0), nil, func(k, rec []byte) error {
		walked[string(k)] = bytes.Clone(rec)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(walked, records) {
		t.Errorf("the walk found %d chunks, ingest wrote %d, or other records", len(walked), len(records))
	}
	if l, h, ok, err := s.chunkExtent(ctx, 0, ^uint64(0)); err != nil || !ok || l != lo || h != hi {
		t.Errorf("extent after the cut [%d, %d] %v %v, before [%d, %d]", l, h, ok, err, lo, hi)
	}
	// Any range: the extent holds every chunk in it and stays within it.
	for range 200 {
		a, b := lo-1e9+rng.Uint64N(hi-lo+2e9), lo-1e9+rng.Uint64N(hi-lo+2e9)
		a, b = min(a, b), max(a, b)
		var tmin, tmax uint64
		found := false
		for k := range records {
			if t := binary.BigEndian.Uint64([]byte(k)[:8]); t >= a && t <= b {
				if !found || t < tmin {
					tmin = t
				}
				tmax = max(tmax, t)
				found = true
			}
		}
		l, h, ok, err := s.chunkExtent(ctx, a, b)
		// A range inside a page's may hold no chunk and still have an
		// extent: it only narrows the scan.
		if err != nil || found && (!ok || l > tmin || h < tmax) || ok && (l < a || h > b || l > h) {
			t.Fatalf("extent of [%d, %d]: [%d, %d] %v %v; chunks in [%d, %d] %v", a, b, l, h, ok, err, tmin, tmax, found)
		}
	}
	after := search()
	for a, want := range before {
		if got := after[a]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s %+v (records only: %v): %d traces after the cut, %d before, or other spans", a.q, a.req, a.rows, len(got), len(want))
		}
	}
}

// TestLateRowMergedIntoCachedPage reads a page's records, so the page is
// cached, then merges a late row into that page: the record of the late
// row must then come from the rewritten page, not the cached one.
func TestLateRowMergedIntoCachedPage(t *testing.T) {
	now := base.Add(time.Hour)
	s := openTest(t, t.TempDir(), Options{Now: func() time.Time { return now }})
	defer s.Close()
	ctx := context.Background()
	tid := func(b byte) pcommon.TraceID { return pcommon.TraceID{15: b} }
	request := func(ids ...byte) ptrace.Traces {
		td := ptrace.NewTraces()
		spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
		for _, b := range ids {
			sp := spans.AppendEmpty()
			sp.SetTraceID(tid(b))
			sp.SetSpanID(pcommon.SpanID{b, 1})
			sp.SetName("op")
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(base))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Millisecond)))
		}
		return td
	}
	consume(t, s, request(1, 3))
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	chunk := func(b byte) (chunkRef, bool) {
		sum, ok, err := s.getSummary(tid(b))
		if err != nil || !ok {
			t.Fatalf("summary of trace %d: %v %v", b, ok, err)
		}
		c := sum.Chunks[len(sum.Chunks)-1]
		_, found, err := s.readRecord(ctx, nil, c.MinStart, tid(b), c.Seq)
		if err != nil {
			t.Fatal(err)
		}
		return c, found
	}
	if _, ok := chunk(1); !ok {
		t.Fatal("trace 1's record is not found in its page")
	}
	consume(t, s, request(2)) // between traces 1 and 3: inside their page
	if _, ok := chunk(2); !ok {
		t.Fatal("the late row's record is not found before the cut")
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(rowsOf(t, s, pData)); n != 0 {
		t.Fatalf("%d rows left after the cut", n)
	}
	if _, ok := chunk(2); !ok {
		t.Error("the late row's record is not found after it was merged into a cached page")
	}
}

// TestDropPagedRecords starts from a store as the version before wrote it,
// whose cut chunks kept their search records: the next cut pass drops the
// records of paged chunks, once, and keeps those of rows.
func TestDropPagedRecords(t *testing.T) {
	now := base.Add(time.Hour)
	s := openTest(t, t.TempDir(), Options{Now: func() time.Time { return now }})
	defer s.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(6, 6))
	for i := range 4 {
		consume(t, s, randomRequest(rng, 10, byte(i), base.Add(time.Duration(i)*time.Minute)))
	}
	records := rowsOf(t, s, pIndex)
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	// As the earlier version left it: records of paged chunks, no mark.
	b := s.db.NewBatch()
	for k, v := range records {
		_ = b.Set(append([]byte{pIndex}, k...), v, nil)
	}
	_ = b.Delete(pagedRecordsKey, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	consume(t, s, randomRequest(rng, 10, 9, now)) // rows of the current minute, not cut
	kept := rowsOf(t, s, pData)
	if err := s.CutPages(ctx); err != nil {
		t.Fatal(err)
	}
	left := rowsOf(t, s, pIndex)
	if len(left) != len(kept) {
		t.Fatalf("%d search records left, want the %d of the rows", len(left), len(kept))
	}
	for k := range kept {
		if _, ok := left[k]; !ok {
			t.Fatalf("the search record of row %x was dropped", k)
		}
	}
	if _, closer, err := s.db.Get(pagedRecordsKey); err != nil {
		t.Fatalf("no mark after the pass: %v", err)
	} else {
		closer.Close()
	}
	// Searches find every trace, the cut ones from their pages.
	res, err := s.Search(ctx, SearchRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Traces) != 50 {
		t.Errorf("search found %d traces, want 50", len(res.Traces))
	}
}

// blocksPerMinute counts each minute's column blocks.
func blocksPerMinute(t *testing.T, s *Store) map[uint64]int {
	t.Helper()
	out := map[uint64]int{}
	for k := range rowsOf(t, s, pColumns) {
		if len(k) == 16 {
			out[binary.BigEndian.Uint64([]byte(k)[:8])]++
		}
	}
	return out
}

// TestMergeColumns checks the merge of a minute's column blocks when its
// rows are cut: one block per minute, the chunks of deleted traces gone,
// at most maxSpans spans a block (but for a larger source block), and the
// same answers as the search records give.
func TestMergeColumns(t *testing.T) {
	now := base.Add(time.Hour)
	s := openTest(t, t.TempDir(), Options{Now: func() time.Time { return now }})
	defer s.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(8, 8))
	for i := range 16 {
		consume(t, s, randomRequest(rng, 12, byte(i), base.Add(time.Duration(i)*15*time.Second)))
	}
	before := blocksPerMinute(t, s)
	// Delete some traces, as sampling and retention do.
	b := s.db.NewBatch()
	deleted := map[pcommon.TraceID]bool{}
	for i := range 16 {
		tid := pcommon.TraceID{0xee, 14: byte(i), 15: 3}
		sum, ok, err := s.getSummary(tid)
		if err != nil || !ok {
			t.Fatalf("trace %x: %v %v", tid, ok, err)
		}
		s.deleteTrace(b, tid, &sum)
		deleted[tid] = true
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	// Merge one minute into small blocks, by hand.
	var m uint64
	for m = range before {
		if before[m] > 2 {
			break
		}
	}
	mb := s.db.NewBatch()
	if ok, err := s.mergeColumns(ctx, mb, m, 20, &liveChunks{s: s}); err != nil || !ok {
		t.Fatalf("merging minute %d: %v %v", m, ok, err)
	}
	if err := mb.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: columnBound(pColumns, m), UpperBound: columnBound(pColumns, m+1)})
	if err != nil {
		t.Fatal(err)
	}
	blocks, largest := 0, 0
	for ok := it.First(); ok; ok = it.Next() {
		blk, err := parseColumnBlock(it.Value())
		if err != nil {
			t.Fatal(err)
		}
		blocks++
		largest = max(largest, blk.spans)
		for j := range blk.chunks {
			if tid, _, _ := blk.chunkID(j); deleted[tid] {
				t.Errorf("merged block keeps a chunk of deleted trace %x", tid)
			}
		}
	}
	it.Close()
	// A block of more than 20 spans is a source block merged alone: one
	// request's spans of a minute, at most 12 traces of 4 spans.
	if blocks < 2 || largest > 48 {
		t.Errorf("minute %d merged into %d blocks, the largest of %d spans", m, blocks, largest)
	}

	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	for m, n := range blocksPerMinute(t, s) {
		if n != 1 {
			t.Errorf("minute %d has %d column blocks after the cut, was %d", m, n, before[m])
		}
	}
	for _, qs := range equivalenceQueries {
		req := SearchRequest{Limit: 1000, Query: traceql.MustParse(qs)}
		got, err := s.Search(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		s.searchRows = true
		want, err := s.Search(ctx, req)
		s.searchRows = false
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Traces, want.Traces) {
			t.Errorf("%s: merged columns found %d traces, records %d, or other spans", qs, len(got.Traces), len(want.Traces))
		}
		for _, tr := range got.Traces {
			if deleted[tr.TraceID] {
				t.Errorf("%s found deleted trace %x", qs, tr.TraceID)
			}
		}
	}
}

// TestMergeLeavesVersion1Minutes: a minute with a block written before the
// start and parent columns existed is not merged.
func TestMergeLeavesVersion1Minutes(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	rng := rand.New(rand.NewPCG(2, 8))
	for i := range 3 {
		consume(t, s, randomRequest(rng, 4, byte(i), base))
	}
	m := uint64(base.UnixNano()) / blockWidth
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: columnBound(pColumns, m), UpperBound: columnBound(pColumns, m+1)})
	if err != nil {
		t.Fatal(err)
	}
	if !it.First() {
		t.Fatal("no column block")
	}
	key, v1 := bytes.Clone(it.Key()), asVersion1(t, it.Value())
	it.Close()
	if err := s.db.Set(key, v1, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	before := rowsOf(t, s, pColumns)
	b := s.db.NewBatch()
	if ok, err := s.mergeColumns(context.Background(), b, m, maxMergedSpans, &liveChunks{s: s}); ok || err != nil || !b.Empty() {
		t.Fatalf("merged a minute with a version 1 block: %v %v", ok, err)
	}
	if after := rowsOf(t, s, pColumns); !reflect.DeepEqual(after, before) {
		t.Error("the minute's blocks changed")
	}
}
