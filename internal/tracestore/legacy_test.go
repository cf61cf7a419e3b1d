package tracestore

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lookout-dev/lookout/internal/traceql"
)

// TestReadsStoreOfA676135 opens a store written by commit a676135, before
// its WAL files stopped reserving space (pebbledb.UnreservedWAL):
// testdata/store-a676135 holds searchFixture's traces 1–6 in an sstable,
// trace 7 only in the WAL, and a flushed WAL file Pebble kept to reuse.
// Every trace must read back, before and after a compaction (which cuts
// its protobuf rows into pages), and the store must take new writes.
func TestReadsStoreOfA676135(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("testdata", "store-a676135")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	q, err := traceql.Parse(`{ span.http.status_code = 200 }`)
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string, s *Store, traces int) {
		t.Helper()
		for _, want := range []struct {
			trace byte
			spans int
		}{{1, 1}, {2, 3}, {6, 1}, {7, 1}} {
			td, ok, err := s.GetTrace(ctx, tid(want.trace))
			if err != nil || !ok || td.SpanCount() != want.spans {
				t.Errorf("%s: trace %d: ok=%v err=%v spans=%d, want %d", when, want.trace, ok, err, td.SpanCount(), want.spans)
			}
		}
		res, err := s.Search(ctx, SearchRequest{Query: q})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(res.Traces); got != traces {
			t.Errorf("%s: search found %d traces with status code 200, want %d", when, got, traces)
		}
	}

	s := openTest(t, dir, Options{})
	check("opened", s, 3)
	consume(t, s, makeTraces(spanSpec{trace: 8, span: 1, service: "main", name: "GET /new", start: 8 * time.Second, dur: time.Millisecond,
		attrs: map[string]any{"http.status_code": 200}}))
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	check("compacted", s, 4)
	// Compact cut the old store's protobuf rows into pages.
	if entries, rows := pageStats(t, s); rows != 0 || len(entries) != 8 {
		t.Errorf("after Compact: %d rows, %d traces in pages; want 0 and 8", rows, len(entries))
	}
	if n := len(rowsOf(t, s, pIndex)); n != 0 {
		t.Errorf("after Compact: %d search records left", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{})
	defer s.Close()
	check("reopened", s, 4)
}
