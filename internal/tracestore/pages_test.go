package tracestore

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/exemplars"
)

// pageStats checks the page invariants (entries in key order, each page's
// key its last entry's, its header its first entry's, pages not
// overlapping) and returns the entries per trace and the rows left.
func pageStats(t *testing.T, s *Store) (entries map[pcommon.TraceID]int, rows int) {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pPage}, UpperBound: []byte{pPage + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	entries = map[pcommon.TraceID]int{}
	var prevLast []byte
	for ok := it.First(); ok; ok = it.Next() {
		es, err := s.pages.decode(it.Value())
		if err != nil {
			t.Fatalf("page %x: %v", it.Key(), err)
		}
		first, _ := pageFirstKey(it.Value())
		if !bytes.Equal(first, es[0].key[:]) || !bytes.Equal(it.Key()[1:], es[len(es)-1].key[:]) {
			t.Fatalf("page %x: header or key is not its first or last entry", it.Key())
		}
		if prevLast != nil && bytes.Compare(prevLast, first) >= 0 {
			t.Fatalf("page %x overlaps the page before it", it.Key())
		}
		for i := range es {
			if i > 0 && bytes.Compare(es[i-1].key[:], es[i].key[:]) >= 0 {
				t.Fatalf("page %x: entries out of order", it.Key())
			}
			entries[es[i].traceID()]++
		}
		prevLast = append(prevLast[:0], it.Key()[1:]...)
	}
	rit, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pData}, UpperBound: []byte{pData + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer rit.Close()
	for ok := rit.First(); ok; ok = rit.Next() {
		rows++
	}
	return entries, rows
}

// spanPrints renders every span of td as one comparable line.
func spanPrints(td ptrace.Traces) []string {
	var out []string
	if td == (ptrace.Traces{}) {
		return nil
	}
	for _, rs := range td.ResourceSpans().All() {
		svc, _ := rs.Resource().Attributes().Get("service.name")
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				out = append(out, fmt.Sprintf("%s %s %s %s %d %d %v", svc.Str(), ss.Scope().Name(), sp.SpanID(), sp.Name(), sp.StartTimestamp(), sp.EndTimestamp(), sp.Attributes().AsRaw()))
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestPagesDifferential ingests generated traces in four rounds, each trace
// split over requests that may land in rounds after its rows were cut into
// pages, and cuts after every round: every trace must read back exactly as
// the spans sent for it (the brute-force reference), the pages must keep
// their invariants, and no row due for cutting may stay a row.
func TestPagesDifferential(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			now := base.Add(time.Hour)
			s := openTest(t, t.TempDir(), Options{Now: func() time.Time { return now }})
			defer s.Close()
			ctx := context.Background()
			const traces = 600
			type request struct {
				td     ptrace.Traces
				id     pcommon.TraceID
				prints []string
				round  int
			}
			var reqs []request
			want := map[pcommon.TraceID][]string{}
			var ids []pcommon.TraceID
			routes := []string{"GET /products", "POST /checkout", "GET /cart", "process_payment"}
			for i := range traces {
				var id pcommon.TraceID
				for j := range id {
					id[j] = byte(rng.IntN(256))
				}
				ids = append(ids, id)
				start := time.Duration(rng.Int64N(int64(10 * time.Minute)))
				parts := 1 + rng.IntN(3)
				for p := range parts {
					td := ptrace.NewTraces()
					rs := td.ResourceSpans().AppendEmpty()
					rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", p))
					rs.Resource().Attributes().PutStr("host.name", fmt.Sprintf("host-%d", rng.IntN(4)))
					ss := rs.ScopeSpans().AppendEmpty()
					ss.Scope().SetName("gen")
					for range 1 + rng.IntN(6) {
						sp := ss.Spans().AppendEmpty()
						sp.SetTraceID(id)
						var sid pcommon.SpanID
						for j := range sid {
							sid[j] = byte(rng.IntN(256))
						}
						sp.SetSpanID(sid)
						sp.SetName(routes[rng.IntN(len(routes))])
						// A later request's spans may start minutes later:
						// its row lands in another minute.
						at := start + time.Duration(p)*time.Duration(rng.Int64N(int64(2*time.Minute)))
						sp.SetStartTimestamp(pcommon.NewTimestampFromTime(base.Add(at)))
						sp.SetEndTimestamp(pcommon.NewTimestampFromTime(base.Add(at + time.Duration(rng.Int64N(int64(time.Second))))))
						sp.Attributes().PutInt("i", int64(i))
						sp.Attributes().PutStr("payload", fmt.Sprintf("%0*d", rng.IntN(400), rng.IntN(1000)))
					}
					prints := spanPrints(td)
					want[id] = append(want[id], prints...)
					reqs = append(reqs, request{td: td, id: id, prints: prints, round: min(3, p+rng.IntN(3))})
				}
			}
			for round := range 4 {
				for _, r := range reqs {
					if r.round == round {
						consume(t, s, r.td)
					}
				}
				now = now.Add(cutQuiet + time.Second) // the minutes written are quiet again
				if err := s.CutPages(ctx); err != nil {
					t.Fatal(err)
				}
				entries, rows := pageStats(t, s)
				if rows != 0 {
					t.Errorf("round %d: %d rows left after the cut", round, rows)
				}
				if len(entries) == 0 {
					t.Fatalf("round %d: no pages", round)
				}
				for _, id := range ids {
					var sent []string
					for _, r := range reqs {
						if r.round <= round && r.id == id {
							sent = append(sent, r.prints...)
						}
					}
					slices.Sort(sent)
					td, ok, err := s.GetTrace(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					if ok != (len(sent) > 0) || !slices.Equal(spanPrints(td), sent) {
						t.Fatalf("round %d: trace %s reads back %d spans, sent %d", round, id, td.SpanCount(), len(sent))
					}
				}
			}
			for _, id := range ids {
				slices.Sort(want[id])
				td, _, err := s.GetTrace(ctx, id)
				if err != nil || !slices.Equal(spanPrints(td), want[id]) {
					t.Fatalf("trace %s differs at the end (err %v)", id, err)
				}
			}
			if got := testutil.ToFloat64(s.m.rowsPaged); got == 0 {
				t.Error("lookout_tracestore_rows_paged_total is 0")
			}
		})
	}
}

// TestCutPagesWaitsForTheCutDelay: rows of the minutes that ended less
// than the cut delay ago stay rows, and so do the rows of a minute written
// to less than cutQuiet ago, whatever its age.
func TestCutPagesWaitsForTheCutDelay(t *testing.T) {
	now := base.Add(2 * time.Minute)
	s := openTest(t, t.TempDir(), Options{Now: func() time.Time { return now }})
	defer s.Close()
	ctx := context.Background()
	consume(t, s, makeTraces(spanSpec{trace: 1, span: 1, service: "a", name: "old", start: 10 * time.Second, dur: time.Millisecond}))
	consume(t, s, makeTraces(spanSpec{trace: 2, span: 1, service: "a", name: "young", start: 2*time.Minute + 10*time.Second, dur: time.Millisecond}))
	now = base.Add(3*time.Minute + 30*time.Second) // trace 1's minute is old enough, but was written 90 s ago...
	consume(t, s, makeTraces(spanSpec{trace: 3, span: 1, service: "a", name: "late", start: 20 * time.Second, dur: time.Millisecond}))
	if err := s.CutPages(ctx); err != nil { // ...and again now
		t.Fatal(err)
	}
	if entries, rows := pageStats(t, s); len(entries) != 0 || rows != 3 {
		t.Fatalf("entries %v, rows %d: want all rows, as the old minute was just written", entries, rows)
	}
	now = now.Add(cutQuiet + time.Second)
	if err := s.CutPages(ctx); err != nil {
		t.Fatal(err)
	}
	entries, rows := pageStats(t, s)
	if entries[tid(1)] != 1 || entries[tid(3)] != 1 || entries[tid(2)] != 0 || rows != 1 {
		t.Fatalf("entries %v, rows %d: want traces 1 and 3 paged and trace 2 a row", entries, rows)
	}
	if entries[tid(1)] != 1 || entries[tid(2)] != 0 || rows != 1 {
		t.Fatalf("entries %v, rows %d: want trace 1 paged and trace 2 a row", entries, rows)
	}
	now = base.Add(5 * time.Minute)
	if err := s.CutPages(ctx); err != nil {
		t.Fatal(err)
	}
	if entries, rows := pageStats(t, s); entries[tid(2)] != 1 || rows != 0 {
		t.Fatalf("entries %v, rows %d after the delay: want both paged", entries, rows)
	}
}

// TestPagesDropDeletedTraces: traces retention deletes leave their pages,
// and so does every other deleted trace in a page it rewrites; the pinned
// one stays and reads back.
func TestPagesDropDeletedTraces(t *testing.T) {
	now := base.Add(time.Hour)
	clock := func() time.Time { return now }
	idx := openPinner(t, clock)
	s := openTest(t, t.TempDir(), Options{Retention: 24 * time.Hour, SizeLimit: -1, Pinner: idx, Now: clock})
	defer s.Close()
	ctx := context.Background()
	for i := byte(1); i <= 20; i++ {
		consume(t, s, makeTraces(
			spanSpec{trace: i, span: 1, service: "svc", name: "root", start: time.Duration(i) * 30 * time.Second, dur: time.Millisecond},
			spanSpec{trace: i, span: 2, parent: 1, service: "svc", name: "child", start: time.Duration(i) * 30 * time.Second, dur: time.Millisecond},
		))
	}
	err := idx.WriteExemplars(ctx, []exemplars.Record{{
		Series:   labels.FromStrings("__name__", "latency_bucket", "le", "1"),
		Exemplar: exemplar.Exemplar{Labels: labels.FromStrings("trace_id", tid(3).String()), Value: 0.5, Ts: base.UnixMilli(), HasTs: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(cutQuiet + time.Second)
	if err := s.CutPages(ctx); err != nil {
		t.Fatal(err)
	}
	if entries, rows := pageStats(t, s); len(entries) != 20 || rows != 0 {
		t.Fatalf("%d traces paged, %d rows: want 20 and 0", len(entries), rows)
	}
	// Trace 18 lost its summary without its pages being noted (as in a
	// deletion before a restart); it shares the one page with the rest.
	if err := s.db.Delete(summaryKey(tid(18)), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	// Traces 1–9 start before base+5m: expired, but for the pinned 3.
	now = base.Add(24*time.Hour + 5*time.Minute)
	if err := s.RunRetention(ctx); err != nil {
		t.Fatal(err)
	}
	entries, _ := pageStats(t, s)
	for i := byte(1); i <= 20; i++ {
		want := i == 3 || (i >= 10 && i != 18)
		if (entries[tid(i)] > 0) != want {
			t.Errorf("trace %d has %d page entries, want kept=%v", i, entries[tid(i)], want)
		}
	}
	if td, ok, err := s.GetTrace(ctx, tid(3)); err != nil || !ok || td.SpanCount() != 2 {
		t.Fatalf("pinned trace 3: ok=%v err=%v spans=%d", ok, err, td.SpanCount())
	}
	if got := testutil.ToFloat64(s.m.pageEntriesDropped); got != 9 {
		t.Errorf("lookout_tracestore_page_entries_dropped_total = %v, want 9 (traces 1, 2, 4–9 and 18)", got)
	}
	// Traces 10–19 expire.
	now = base.Add(24*time.Hour + 10*time.Minute)
	if err := s.RunRetention(ctx); err != nil {
		t.Fatal(err)
	}
	if entries, _ = pageStats(t, s); len(entries) != 2 || entries[tid(3)] != 1 || entries[tid(20)] != 1 {
		t.Errorf("entries after the second pass: %v; want traces 3 and 20", entries)
	}
}

// TestExpiredPagesLoseUnnotedTraces: a trace deleted with nothing noted
// (its summary and search record gone, as when the store restarted before
// its pages were rewritten) leaves its page once the page expires.
func TestExpiredPagesLoseUnnotedTraces(t *testing.T) {
	now := base.Add(time.Hour)
	s := openTest(t, t.TempDir(), Options{Retention: 24 * time.Hour, SizeLimit: -1, Now: func() time.Time { return now }})
	defer s.Close()
	ctx := context.Background()
	consume(t, s, makeTraces(spanSpec{trace: 1, span: 1, service: "svc", name: "gone", start: time.Second, dur: time.Millisecond}))
	consume(t, s, makeTraces(spanSpec{trace: 2, span: 1, service: "svc", name: "young", start: 30 * time.Minute, dur: time.Millisecond}))
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	sum, _, err := s.getSummary(tid(1))
	if err != nil || len(sum.Chunks) != 1 {
		t.Fatalf("summary of trace 1: %v %v", sum, err)
	}
	b := s.db.NewBatch()
	_ = b.Delete(summaryKey(tid(1)), nil)
	_ = b.Delete(indexKey(sum.Chunks[0].MinStart, tid(1), sum.Chunks[0].Seq), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	now = base.Add(24*time.Hour + 10*time.Minute)
	if err := s.RunRetention(ctx); err != nil {
		t.Fatal(err)
	}
	if entries, _ := pageStats(t, s); entries[tid(1)] != 0 || entries[tid(2)] != 1 {
		t.Errorf("entries %v: want trace 1 gone, trace 2 kept", entries)
	}
}

// TestCorruptPageIsSkipped: a page that does not decode fails neither a
// read of the trace nor a cut, and is counted.
func TestCorruptPageIsSkipped(t *testing.T) {
	now := base.Add(time.Hour)
	s := openTest(t, t.TempDir(), Options{Now: func() time.Time { return now }})
	defer s.Close()
	ctx := context.Background()
	consume(t, s, makeTraces(spanSpec{trace: 1, span: 1, service: "a", name: "x", start: time.Second, dur: time.Millisecond}))
	now = now.Add(cutQuiet + time.Second)
	if err := s.CutPages(ctx); err != nil {
		t.Fatal(err)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pPage}, UpperBound: []byte{pPage + 1}})
	if err != nil {
		t.Fatal(err)
	}
	if !it.First() {
		t.Fatal("no page")
	}
	key := slices.Clone(it.Key())
	first, _ := pageFirstKey(it.Value())
	bad := append(append([]byte{pageVersion}, first...), "not zstd"...)
	_ = it.Close()
	if err := s.db.Set(key, bad, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	// A second request of the trace lands in the corrupt page's range.
	consume(t, s, makeTraces(spanSpec{trace: 1, span: 2, service: "a", name: "y", start: time.Second, dur: time.Millisecond}))
	now = now.Add(cutQuiet + time.Second)
	if err := s.CutPages(ctx); err != nil {
		t.Fatal(err)
	}
	td, ok, err := s.GetTrace(ctx, tid(1))
	if err != nil || !ok || td.SpanCount() != 1 {
		t.Fatalf("ok=%v err=%v spans=%d: want the one readable span", ok, err, td.SpanCount())
	}
	if got := testutil.ToFloat64(s.m.undecodable); got == 0 {
		t.Error("the corrupt page was not counted")
	}
}

func FuzzPageDecode(f *testing.F) {
	c, err := newPageCodec()
	if err != nil {
		f.Fatal(err)
	}
	defer c.close()
	var e pageEntry
	e.key[0] = 1
	e.value = []byte("span")
	f.Add(c.encode([]pageEntry{e}))
	f.Add([]byte{pageVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := c.decode(b)
		if err == nil && len(entries) == 0 {
			t.Fatal("no error and no entries")
		}
	})
}

// BenchmarkCutPages measures cutting the OTLP protobuf rows of 200k spans
// into pages (the background loop's work, once per span), and reports the
// CPU per span and the pages' size per span.
func BenchmarkCutPages(b *testing.B) {
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		s := openBench(b)
		fill(b, s, 400)
		b.StartTimer()
		if err := s.cutPagesBefore(ctx, ^uint64(0), nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.db.Flush(); err != nil {
			b.Fatal(err)
		}
		u, err := s.TableUsage()
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range u {
			if t.Prefix == pPage {
				b.ReportMetric(float64(t.Bytes)/200_000, "page-B/span")
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/200_000, "ns/span")
}

// BenchmarkGetTracePaged is BenchmarkGetTrace with every trace in pages.
func BenchmarkGetTracePaged(b *testing.B) {
	s := openBench(b)
	fill(b, s, 400)
	if err := s.Compact(context.Background()); err != nil {
		b.Fatal(err)
	}
	getRandomTraces(b, s)
}
