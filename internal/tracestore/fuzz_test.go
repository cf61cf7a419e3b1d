package tracestore

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/ingest"
	"github.com/lookout-dev/lookout/internal/traceql"
)

// FuzzConsumeTraces sends what clients can send (any OTLP traces request)
// through one real store for the whole run: no panic, rejected spans
// within what was sent, every trace with an accepted span found again,
// and search still answering.
func FuzzConsumeTraces(f *testing.F) {
	for _, td := range []ptrace.Traces{
		makeTraces(
			spanSpec{trace: 1, span: 1, service: "main-service", name: "POST /checkout", dur: time.Second, attrs: map[string]any{"http.route": "/checkout", "n": 3}},
			spanSpec{trace: 1, span: 2, parent: 1, service: "payments-service", name: "process_payment", start: 10 * time.Millisecond, dur: 500 * time.Millisecond, status: ptrace.StatusCodeError},
		),
		makeTraces(spanSpec{trace: 2, span: 1, service: "a", name: "bad", start: time.Second, dur: -time.Millisecond}),
	} {
		b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	now := base.Add(time.Hour)
	s := openFuzzStore(f, now)
	f.Fuzz(func(t *testing.T, b []byte) {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(b)
		if err != nil {
			return
		}
		consumeAndReadBack(t, s, td, now)
	})
}

// FuzzConsumeTracesJSON is FuzzConsumeTraces for OTLP/JSON, whose decoder
// takes attribute values nested far deeper than the store's protobuf reader
// reads back: what is accepted must read back, and no stored chunk may be
// undecodable.
func FuzzConsumeTracesJSON(f *testing.F) {
	deep := strings.Repeat(`{"kvlistValue":{"values":[{"key":"k","value":`, 60) + `{"stringValue":"x"}` + strings.Repeat(`}]}}`, 60)
	f.Add(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"deep","startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[{"key":"a","value":` + deep + `}]}]}]}]}`)
	f.Add(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","name":"flat","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}`)
	now := base.Add(time.Hour)
	s := openFuzzStore(f, now)
	f.Fuzz(func(t *testing.T, js string) {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces([]byte(js))
		if err != nil {
			return
		}
		consumeAndReadBack(t, s, td, now)
		if n := testutil.ToFloat64(s.m.undecodable); n != 0 {
			t.Fatalf("%v stored chunks do not decode", n)
		}
	})
}

// openFuzzStore opens one real store for a whole fuzz run, its clock at now.
func openFuzzStore(f *testing.F, now time.Time) *Store {
	opts := DefaultOptions()
	opts.Now = func() time.Time { return now }
	opts.RetentionInterval = time.Hour
	s, err := Open(f.TempDir(), opts, nil, prometheus.NewRegistry())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	return s
}

// consumeAndReadBack stores td (its spans moved into the hour before now)
// and checks the outcome: no panic, rejected spans within what was sent,
// every trace of a fully accepted request found again, search answering.
func consumeAndReadBack(t *testing.T, s *Store, td ptrace.Traces, now time.Time) {
	t.Helper()
	// Keep spans within the last hour, where the store takes them,
	// so the fuzzer explores storing rather than only refusals.
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				start, end := uint64(sp.StartTimestamp()), uint64(sp.EndTimestamp())
				at := uint64(base.UnixNano()) + start%uint64(time.Hour)
				sp.SetStartTimestamp(pcommon.Timestamp(at))
				if end >= start {
					sp.SetEndTimestamp(pcommon.Timestamp(at + (end-start)%uint64(time.Minute)))
				} else {
					sp.SetEndTimestamp(pcommon.Timestamp(at - 1))
				}
			}
		}
	}
	spans := int64(td.SpanCount())
	ids := map[pcommon.TraceID]bool{}
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				ids[sp.TraceID()] = true
			}
		}
	}
	ctx := context.Background()
	res, err := s.ConsumeTraces(ctx, td)
	if err != nil {
		if !errors.Is(err, ingest.ErrBadData) {
			t.Fatalf("ConsumeTraces: %v", err)
		}
		return
	}
	if res.Rejected < 0 || res.Rejected > spans {
		t.Fatalf("%d of %d spans rejected", res.Rejected, spans)
	}
	if res.Rejected == 0 {
		for id := range ids {
			if _, found, err := s.GetTrace(ctx, id); err != nil || !found {
				t.Fatalf("trace %s accepted, then GetTrace: found %v, %v", id, found, err)
			}
		}
	}
	if _, err := s.Search(ctx, SearchRequest{Start: base.Add(-time.Minute), End: now}); err != nil {
		t.Fatalf("search after an accepted request: %v", err)
	}
}

// FuzzSearchColumnsMatchRows runs any query that parses through the column
// scan and through the row records of one real store: the same traces and
// spans, or the same failure, and never a panic (search evaluates on its
// own goroutines, where a panic would end the process).
func FuzzSearchColumnsMatchRows(f *testing.F) {
	for _, q := range equivalenceQueries {
		f.Add(q)
	}
	f.Add(`{ .n / 0 > 1 }`)
	f.Add(`{ duration > 1ms } | count() > 2`)
	f.Add(`({nestedSetParent<0 && true } &>> { kind = server }) || ({nestedSetParent<0 && true }) | select(nestedSetLeft)`)
	f.Add(`{ nestedSetParent<0 && true && event.exception.type = "x" } | select(event.exception.message) with(most_recent=true)`)
	f.Add(`{ span:id != "1" } !>> { span:parentID != "0" }`)
	opts := DefaultOptions()
	opts.Now = func() time.Time { return base.Add(time.Hour) }
	opts.RetentionInterval = time.Hour
	s, err := Open(f.TempDir(), opts, nil, prometheus.NewRegistry())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	rng := rand.New(rand.NewPCG(11, 11))
	for i := range 6 {
		if _, err := s.ConsumeTraces(context.Background(), randomRequest(rng, 20, byte(i), base.Add(time.Duration(i)*40*time.Second))); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, qs string) {
		q, err := traceql.Parse(qs)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req := SearchRequest{Query: q, Limit: 1000}
		got, gerr := s.Search(ctx, req)
		s.searchRows = true
		want, werr := s.Search(ctx, req)
		s.searchRows = false
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%s: columns error %v, records error %v", qs, gerr, werr)
		}
		if gerr == nil && !reflect.DeepEqual(got.Traces, want.Traces) {
			t.Fatalf("%s: columns found %d traces, records %d, or different spans", qs, len(got.Traces), len(want.Traces))
		}
	})
}
