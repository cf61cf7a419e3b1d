package tracestore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/lookout-dev/lookout/internal/exemplars"
	"github.com/lookout-dev/lookout/internal/ingest"
	"github.com/lookout-dev/lookout/internal/traceql"
)

// The exemplar index is the store's Pinner.
var _ Pinner = (*exemplars.Index)(nil)

func TestMain(m *testing.M) {
	if dir := os.Getenv("LOOKOUT_TRACESTORE_CHILD"); dir != "" {
		childIngest(dir)
		return
	}
	goleak.VerifyTestMain(m)
}

// base is a fixed time for test spans.
var base = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func tid(n byte) pcommon.TraceID { return pcommon.TraceID{0xab, 15: n} }
func sid(n byte) pcommon.SpanID  { return pcommon.SpanID{0xcd, 7: n} }

type spanSpec struct {
	trace, span, parent byte
	service, name       string
	kind                ptrace.SpanKind
	status              ptrace.StatusCode
	start, dur          time.Duration // relative to base
	attrs               map[string]any
}

// makeTraces builds a request with one resource per service, in spec order.
func makeTraces(specs ...spanSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	res := map[string]ptrace.SpanSlice{}
	for _, s := range specs {
		spans, ok := res[s.service]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", s.service)
			rs.Resource().Attributes().PutStr("deployment.environment", "test")
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName("test")
			spans = ss.Spans()
			res[s.service] = spans
		}
		sp := spans.AppendEmpty()
		sp.SetTraceID(tid(s.trace))
		sp.SetSpanID(sid(s.span))
		if s.parent != 0 {
			sp.SetParentSpanID(sid(s.parent))
		}
		sp.SetName(s.name)
		sp.SetKind(s.kind)
		sp.Status().SetCode(s.status)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(base.Add(s.start)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(base.Add(s.start + s.dur)))
		if err := sp.Attributes().FromRaw(s.attrs); err != nil {
			panic(err)
		}
	}
	return td
}

func openTest(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return base.Add(time.Hour) }
	}
	if opts.RetentionInterval == 0 {
		opts.RetentionInterval = time.Hour // tests run retention explicitly
	}
	s, err := Open(dir, opts, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openPinner opens an exemplar index, closed with the test, keeping
// exemplars 48 hours by clock.
func openPinner(t *testing.T, clock func() time.Time) *exemplars.Index {
	t.Helper()
	idx, err := exemplars.Open(t.TempDir(), exemplars.Options{Retention: 48 * time.Hour, Now: clock}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	return idx
}

func consume(t *testing.T, s *Store, td ptrace.Traces) ingest.Result {
	t.Helper()
	res, err := s.ConsumeTraces(context.Background(), td)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func spanIDs(td ptrace.Traces) []string {
	var out []string
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				svc, _ := rs.Resource().Attributes().Get("service.name")
				out = append(out, fmt.Sprintf("%s/%s", svc.Str(), sp.Name()))
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestGetTraceMergesBatches(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	ctx := context.Background()
	// Trace 1 arrives in three requests from two services, children first,
	// and the last request repeats a span (a client retry).
	consume(t, s, makeTraces(
		spanSpec{trace: 1, span: 3, parent: 2, service: "payments", name: "charge", start: 20 * time.Millisecond, dur: 50 * time.Millisecond},
		spanSpec{trace: 2, span: 1, service: "other", name: "GET /", dur: time.Millisecond},
	))
	consume(t, s, makeTraces(
		spanSpec{trace: 1, span: 2, parent: 1, service: "main", name: "process_payment", start: 10 * time.Millisecond, dur: 80 * time.Millisecond},
	))
	consume(t, s, makeTraces(
		spanSpec{trace: 1, span: 1, service: "main", name: "POST /checkout", dur: 100 * time.Millisecond},
		spanSpec{trace: 1, span: 3, parent: 2, service: "payments", name: "charge", start: 20 * time.Millisecond, dur: 50 * time.Millisecond},
	))
	td, ok, err := s.GetTrace(ctx, tid(1))
	if err != nil || !ok {
		t.Fatalf("GetTrace = %v, %v", ok, err)
	}
	want := []string{"main/POST /checkout", "main/process_payment", "payments/charge"}
	if got := spanIDs(td); !slices.Equal(got, want) {
		t.Errorf("spans = %v, want %v", got, want)
	}
	td, ok, err = s.GetTrace(ctx, tid(2))
	if err != nil || !ok || td.SpanCount() != 1 {
		t.Errorf("trace 2: ok=%v err=%v spans=%d", ok, err, td.SpanCount())
	}
	if _, ok, err := s.GetTrace(ctx, tid(9)); ok || err != nil {
		t.Errorf("absent trace: ok=%v err=%v", ok, err)
	}
	for id, want := range map[byte]bool{1: true, 2: true, 9: false} {
		if got, err := s.HasTrace(ctx, tid(id)); got != want || err != nil {
			t.Errorf("HasTrace(%d) = %v, %v", id, got, err)
		}
	}
	// The summary knows the root even though it arrived last.
	sum, _, _ := s.getSummary(tid(1))
	if !sum.HasRoot || sum.RootName != "POST /checkout" || sum.RootService != "main" || sum.Spans != 4 || len(sum.Chunks) != 3 {
		t.Errorf("summary = %+v", sum)
	}
}

func TestRejectsBadSpans(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{MaxAttributes: 100})
	defer s.Close()
	ctx := context.Background()
	good := spanSpec{trace: 1, span: 1, service: "a", name: "ok", dur: time.Millisecond}
	huge := map[string]any{}
	for i := range 100_000 {
		huge["k"+strconv.Itoa(i)] = i
	}
	cases := []struct {
		name    string
		mutate  func(ptrace.Span)
		attrs   map[string]any
		message string
	}{
		{"empty trace id", func(sp ptrace.Span) { sp.SetTraceID(pcommon.TraceID{}) }, nil, "empty trace ID"},
		{"empty span id", func(sp ptrace.Span) { sp.SetSpanID(pcommon.SpanID{}) }, nil, "empty span ID"},
		{"no start", func(sp ptrace.Span) { sp.SetStartTimestamp(0) }, nil, "without a start time"},
		{"far future", func(sp ptrace.Span) {
			sp.SetStartTimestamp(pcommon.Timestamp(1 << 62))
			sp.SetEndTimestamp(pcommon.Timestamp(1<<62 + 1))
		}, nil, "in the future"},
		{"ends before start", func(sp ptrace.Span) { sp.SetEndTimestamp(sp.StartTimestamp() - 1) }, nil, "ends before it starts"},
		{"100k attributes", func(ptrace.Span) {}, huge, "100000 attributes"},
		{"map nested 40 deep", func(sp ptrace.Span) { nest(sp.Attributes().PutEmpty("deep"), 40, false) }, nil, "nested more than 16 levels"},
		{"array nested 60 deep", func(sp ptrace.Span) { nest(sp.Attributes().PutEmpty("deep"), 60, true) }, nil, "nested more than 16 levels"},
		{"event attribute nested 17 deep", func(sp ptrace.Span) {
			nest(sp.Events().AppendEmpty().Attributes().PutEmpty("deep"), 17, false)
		}, nil, "nested more than 16 levels"},
		{"link attribute nested 40 deep", func(sp ptrace.Span) {
			nest(sp.Links().AppendEmpty().Attributes().PutEmpty("deep"), 40, true)
		}, nil, "nested more than 16 levels"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := spanSpec{trace: 2, span: 2, service: "a", name: "bad", dur: time.Millisecond, attrs: c.attrs}
			td := makeTraces(good, bad)
			c.mutate(td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1))
			res, err := s.ConsumeTraces(ctx, td)
			if err != nil || res.Rejected != 1 || !strings.Contains(res.Message, c.message) {
				t.Errorf("mixed request: res=%+v err=%v, want 1 rejected mentioning %q", res, err, c.message)
			}
			// A request with only bad spans is bad data.
			td = makeTraces(bad)
			c.mutate(td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0))
			if _, err := s.ConsumeTraces(ctx, td); !errors.Is(err, ingest.ErrBadData) {
				t.Errorf("all-bad request: err = %v, want ErrBadData", err)
			}
		})
	}
	if ok, _ := s.HasTrace(ctx, tid(2)); ok {
		t.Error("a rejected span was stored")
	}
	if td, ok, _ := s.GetTrace(ctx, tid(1)); !ok || td.SpanCount() != 1 {
		t.Error("good span lost")
	}
}

// nest makes v a map (or array) nested depth levels deep, ending in a string.
func nest(v pcommon.Value, depth int, array bool) {
	for range depth {
		if array {
			v = v.SetEmptySlice().AppendEmpty()
		} else {
			v = v.SetEmptyMap().PutEmpty("k")
		}
	}
	v.SetStr("bottom")
}

// TestAcceptedSpansReadBack: what ConsumeTraces accepts reads back the
// same, nesting up to the limit included; a resource nested too deep
// rejects its spans, not the others.
func TestAcceptedSpansReadBack(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	ctx := context.Background()
	td := makeTraces(spanSpec{trace: 1, span: 1, service: "a", name: "maps", dur: time.Millisecond},
		spanSpec{trace: 1, span: 2, service: "a", name: "arrays", dur: time.Millisecond})
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	nest(spans.At(0).Attributes().PutEmpty("deep"), 16, false)
	nest(spans.At(1).Attributes().PutEmpty("deep"), 16, true)
	nest(spans.At(1).Events().AppendEmpty().Attributes().PutEmpty("deep"), 16, false)
	if res := consume(t, s, td); res.Rejected != 0 {
		t.Fatalf("16 levels rejected: %+v", res)
	}
	got, ok, err := s.GetTrace(ctx, tid(1))
	if err != nil || !ok {
		t.Fatalf("GetTrace: %v %v", ok, err)
	}
	want, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	gotJSON, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(got)
	if !bytes.Equal(want, gotJSON) {
		t.Errorf("read back differs:\n got %s\nwant %s", gotJSON, want)
	}

	td = makeTraces(spanSpec{trace: 2, span: 1, service: "deep", name: "x", dur: time.Millisecond},
		spanSpec{trace: 2, span: 2, service: "fine", name: "y", dur: time.Millisecond})
	nest(td.ResourceSpans().At(0).Resource().Attributes().PutEmpty("deep"), 40, false)
	if res := consume(t, s, td); res.Rejected != 1 || !strings.Contains(res.Message, "nested more than 16 levels") {
		t.Errorf("deep resource: %+v", res)
	}
	if got, ok, _ := s.GetTrace(ctx, tid(2)); !ok || got.SpanCount() != 1 {
		t.Errorf("the other resource's span: ok %v", ok)
	}
}

// TestUndecodableChunkSkipped: a stored chunk that no longer decodes (data
// written before a limit existed) is skipped and counted; the rest of its
// trace and every search that finds it still answer.
func TestUndecodableChunkSkipped(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	ctx := context.Background()
	consume(t, s, makeTraces(spanSpec{trace: 1, span: 1, service: "a", name: "first", dur: time.Millisecond}))
	consume(t, s, makeTraces(spanSpec{trace: 1, span: 2, service: "a", name: "second", start: time.Millisecond, dur: time.Millisecond}))
	sum, ok, err := s.getSummary(tid(1))
	if err != nil || !ok || len(sum.Chunks) != 2 {
		t.Fatalf("summary %+v %v %v", sum, ok, err)
	}
	c := sum.Chunks[0]
	// A span whose attribute nests past the reader's limit, as an older
	// Lookout stored it: valid protobuf that the reader refuses.
	bad := makeTraces(spanSpec{trace: 1, span: 3, service: "a", name: "deep", dur: time.Millisecond})
	nest(bad.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutEmpty("deep"), 40, false)
	b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(dataKey(c.MinStart, tid(1), c.Seq), b, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.GetTrace(ctx, tid(1))
	if err != nil || !ok || got.SpanCount() != 1 {
		t.Fatalf("GetTrace = %d spans, %v, %v; want the other chunk's span", got.SpanCount(), ok, err)
	}
	if n := testutil.ToFloat64(s.m.undecodable); n != 1 {
		t.Errorf("undecodable chunks counted %v, want 1", n)
	}
	q, err := traceql.Parse(`{ name =~ "first|second" } && { }`)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Search(ctx, SearchRequest{Query: q, Start: base.Add(-time.Minute), End: base.Add(time.Minute), Limit: 10})
	if err != nil || len(res.Traces) != 1 {
		t.Errorf("search over the trace: %+v, %v", res.Traces, err)
	}
}

// searchFixture stores six traces, one second apart (trace n starts at n s).
func searchFixture(t *testing.T, s *Store) {
	sec := time.Second
	ms := time.Millisecond
	for _, td := range []ptrace.Traces{
		makeTraces(spanSpec{trace: 1, span: 1, service: "main", name: "GET /", kind: ptrace.SpanKindServer, start: 1 * sec, dur: 10 * ms,
			attrs: map[string]any{"http.status_code": 200}}),
		makeTraces(spanSpec{trace: 2, span: 1, service: "main", name: "POST /checkout", kind: ptrace.SpanKindServer, start: 2 * sec, dur: 900 * ms,
			attrs: map[string]any{"http.status_code": 500}},
			spanSpec{trace: 2, span: 2, parent: 1, service: "main", name: "process_payment", kind: ptrace.SpanKindClient, start: 2*sec + 10*ms, dur: 800 * ms}),
		// Trace 2's payment span comes from another service in another request.
		makeTraces(spanSpec{trace: 2, span: 3, parent: 2, service: "payments", name: "charge", kind: ptrace.SpanKindServer, status: ptrace.StatusCodeError,
			start: 2*sec + 20*ms, dur: 700 * ms, attrs: map[string]any{"payment.method": "card", "retry": true}}),
		makeTraces(spanSpec{trace: 3, span: 1, service: "inventory", name: "check", kind: ptrace.SpanKindInternal, start: 3 * sec, dur: 50 * ms,
			attrs: map[string]any{"items": 3.5}}),
		makeTraces(spanSpec{trace: 4, span: 1, service: "main", name: "POST /checkout", kind: ptrace.SpanKindServer, start: 4 * sec, dur: 20 * ms,
			attrs: map[string]any{"http.status_code": 200}}),
		makeTraces(spanSpec{trace: 5, span: 1, service: "worker", name: "consume", kind: ptrace.SpanKindConsumer, status: ptrace.StatusCodeOk, start: 5 * sec, dur: 2 * sec}),
		// Trace 6 has no root span yet.
		makeTraces(spanSpec{trace: 6, span: 2, parent: 1, service: "main", name: "orphan", start: 6 * sec, dur: ms}),
	} {
		consume(t, s, td)
	}
}

func TestSearch(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	searchFixture(t, s)
	sec := time.Second
	cases := []struct {
		name string
		q    string
		req  SearchRequest
		want []byte // trace numbers, newest first
	}{
		{name: "all", q: `{}`, want: []byte{6, 5, 4, 3, 2, 1}},
		{name: "empty query", want: []byte{6, 5, 4, 3, 2, 1}},
		{name: "limit", q: `{}`, req: SearchRequest{Limit: 2}, want: []byte{6, 5}},
		{name: "time range", q: `{}`, req: SearchRequest{Start: base.Add(2 * sec), End: base.Add(4 * sec)}, want: []byte{4, 3, 2}},
		{name: "service", q: `{ resource.service.name = "main" }`, want: []byte{6, 4, 2, 1}},
		{name: "service unscoped", q: `{ .service.name = "payments" }`, want: []byte{2}},
		{name: "span name", q: `{ name = "POST /checkout" }`, want: []byte{4, 2}},
		{name: "name regex", q: `{ name =~ "POST.*|GET.*" }`, want: []byte{4, 2, 1}},
		{name: "status", q: `{ status = error }`, want: []byte{2}},
		{name: "status ok", q: `{ status = ok }`, want: []byte{5}},
		{name: "kind", q: `{ kind = consumer }`, want: []byte{5}},
		{name: "span duration", q: `{ duration > 500ms }`, want: []byte{5, 2}},
		{name: "trace duration", q: `{ traceDuration >= 900ms }`, want: []byte{5, 2}},
		{name: "min duration", req: SearchRequest{MinDuration: 100 * time.Millisecond}, want: []byte{5, 2}},
		{name: "max duration", req: SearchRequest{MaxDuration: 30 * time.Millisecond}, want: []byte{6, 4, 1}},
		{name: "span attr int", q: `{ span.http.status_code >= 500 }`, want: []byte{2}},
		{name: "span attr float", q: `{ .items > 3 }`, want: []byte{3}},
		{name: "span attr bool", q: `{ .retry = true }`, want: []byte{2}},
		{name: "resource attr", q: `{ resource.deployment.environment = "test" && name = "check" }`, want: []byte{3}},
		{name: "root name", q: `{ rootName = "POST /checkout" }`, want: []byte{4, 2}},
		{name: "root service across batches", q: `{ rootServiceName = "main" && resource.service.name = "payments" }`, want: []byte{2}},
		{name: "root not received", q: `{ rootName = "<root span not yet received>" }`, want: []byte{6}},
		{name: "spanset and across batches", q: `{ name = "process_payment" } && { status = error }`, want: []byte{2}},
		{name: "descendant across services", q: `{ resource.service.name = "main" } >> { resource.service.name = "payments" }`, want: []byte{2}},
		{name: "child", q: `{ kind = server } > { kind = client }`, want: []byte{2}},
		{name: "or", q: `{ kind = consumer } || { kind = internal }`, want: []byte{5, 3}},
		{name: "no match", q: `{ name = "nothing" }`, want: nil},
		{name: "pipeline count across batches", q: `{} | count() > 2`, want: []byte{2}},
		{name: "pipeline count of a filter", q: `{ resource.service.name = "main" } | count() = 2`, want: []byte{2}},
		{name: "pipeline avg duration", q: `{} | avg(duration) > 1s`, want: []byte{5}},
		{name: "pipeline min duration", q: `{ kind = server } | min(duration) < 15ms`, want: []byte{1}},
		{name: "pipeline max attr", q: `{} | max(span.http.status_code) >= 500`, want: []byte{2}},
		{name: "pipeline sum attr", q: `{} | sum(.items) = 3.5`, want: []byte{3}},
		{name: "pipeline by count", q: `{} | by(resource.service.name) | count() > 1`, want: []byte{2}},
		{name: "pipeline by coalesce", q: `{} | by(resource.service.name) | coalesce() | count() = 3`, want: []byte{2}},
		{name: "pipeline filter stage", q: `{ resource.service.name = "main" } | { kind = client }`, want: []byte{2}},
		{name: "pipeline select", q: `{ status = error } | select(span.retry)`, want: []byte{2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := c.req
			if c.q != "" {
				req.Query = traceql.MustParse(c.q)
			}
			res, err := s.Search(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			for _, m := range res.Traces {
				got = append(got, m.TraceID[15])
				for _, ss := range m.SpanSets {
					if ss.Matched == 0 || len(ss.Spans) == 0 {
						t.Errorf("trace %d: empty spanset", m.TraceID[15])
					}
				}
				if len(m.SpanSets) == 0 {
					t.Errorf("trace %d: no spanset", m.TraceID[15])
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got traces %v, want %v", got, c.want)
			}
		})
	}
	// Result fields.
	res, err := s.Search(context.Background(), SearchRequest{Query: traceql.MustParse(`{ status = error }`)})
	if err != nil || len(res.Traces) != 1 {
		t.Fatal(res, err)
	}
	m := res.Traces[0]
	if m.RootServiceName != "main" || m.RootTraceName != "POST /checkout" || m.Duration != 900*time.Millisecond ||
		len(m.SpanSets) != 1 || m.SpanSets[0].Matched != 1 || m.SpanSets[0].Spans[0].Name != "charge" || m.SpanSets[0].Group != nil {
		t.Errorf("match = %+v", m)
	}
	// by() reports one spanset per group, in the order of their first span.
	res, err = s.Search(context.Background(), SearchRequest{Query: traceql.MustParse(`{ resource.service.name != "inventory" } | by(resource.service.name)`),
		Start: base.Add(2 * sec), End: base.Add(2 * sec), SpansPerSpanSet: 1})
	if err != nil || len(res.Traces) != 1 {
		t.Fatal(res, err)
	}
	var groups []string
	for _, ss := range res.Traces[0].SpanSets {
		groups = append(groups, fmt.Sprintf("%s:%d/%d", ss.Group[0].Value.S, len(ss.Spans), ss.Matched))
	}
	if want := []string{"main:1/2", "payments:1/1"}; !slices.Equal(groups, want) {
		t.Errorf("by(resource.service.name) spansets = %v, want %v", groups, want)
	}
}

func TestSearchHonoursDeadline(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	searchFixture(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Search(ctx, SearchRequest{Query: traceql.MustParse(`{ name = "x" }`)}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestTags(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	searchFixture(t, s)
	ctx := context.Background()
	names, err := s.TagNames(ctx, TagScopeAll, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"http.status_code", "items", "payment.method", "retry"}; !slices.Equal(names[TagScopeSpan], want) {
		t.Errorf("span tags = %v, want %v", names[TagScopeSpan], want)
	}
	if want := []string{"deployment.environment", "service.name"}; !slices.Equal(names[TagScopeResource], want) {
		t.Errorf("resource tags = %v, want %v", names[TagScopeResource], want)
	}
	vals, err := s.TagValues(ctx, TagScopeResource, "service.name", time.Time{}, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vals {
		got = append(got, v.TypeName()+":"+v.Text())
	}
	if want := []string{"string:inventory", "string:main", "string:payments", "string:worker"}; !slices.Equal(got, want) {
		t.Errorf("service.name values = %v, want %v", got, want)
	}
	vals, _ = s.TagValues(ctx, TagScopeSpan, "http.status_code", time.Time{}, time.Time{}, 0)
	if len(vals) != 2 || vals[0].Type != traceql.TypeInt || vals[0].I != 200 || vals[1].I != 500 {
		t.Errorf("http.status_code values = %v", vals)
	}
	vals, _ = s.TagValues(ctx, TagScopeIntrinsic, "name", time.Time{}, time.Time{}, 3)
	if len(vals) != 3 {
		t.Errorf("limit 3 gave %d values", len(vals))
	}
	// Only root spans give rootName and rootServiceName values: not
	// process_payment, charge or the orphan, nor the payments service.
	for _, c := range []struct {
		key  string
		want []string
	}{
		{"rootName", []string{"GET /", "POST /checkout", "check", "consume"}},
		{"rootServiceName", []string{"inventory", "main", "worker"}},
	} {
		vals, err := s.TagValues(ctx, TagScopeIntrinsic, c.key, time.Time{}, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, v := range vals {
			got = append(got, v.Text())
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s values = %v, want %v", c.key, got, c.want)
		}
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	now := base.Add(time.Hour)
	clock := func() time.Time { return now }
	idx := openPinner(t, clock)
	s := openTest(t, dir, Options{Retention: 24 * time.Hour, SizeLimit: -1, Pinner: idx, Now: clock})
	defer s.Close()
	ctx := context.Background()
	for i := byte(1); i <= 4; i++ {
		consume(t, s, makeTraces(spanSpec{trace: i, span: 1, service: "svc", name: "op", start: time.Duration(i) * time.Minute, dur: time.Millisecond}))
	}
	// An exemplar at base points at trace 2.
	err := idx.WriteExemplars(ctx, []exemplars.Record{{
		Series:   labels.FromStrings("__name__", "latency_bucket", "le", "1"),
		Exemplar: exemplar.Exemplar{Labels: labels.FromStrings("trace_id", tid(2).String()), Value: 0.5, Ts: base.UnixMilli(), HasTs: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	has := func() []byte {
		var out []byte
		for i := byte(1); i <= 4; i++ {
			if ok, _ := s.HasTrace(ctx, tid(i)); ok {
				out = append(out, i)
			}
		}
		return out
	}
	steps := []struct {
		at   time.Duration // since base
		want []byte
	}{
		{time.Hour, []byte{1, 2, 3, 4}},                                  // all young
		{24*time.Hour + 2*time.Minute + 30*time.Second, []byte{2, 3, 4}}, // 1 expired, 2 pinned
		{30 * time.Hour, []byte{2}},                                      // only the pinned trace outlives retention
		{48*time.Hour + time.Minute, nil},                                // the exemplar expired: released
	}
	for _, st := range steps {
		now = base.Add(st.at)
		if err := idx.RunRetention(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.RunRetention(ctx); err != nil {
			t.Fatal(err)
		}
		if got := has(); !slices.Equal(got, st.want) {
			t.Errorf("at base+%s: traces %v, want %v", st.at, got, st.want)
		}
	}
	// Search and tag indexes forget deleted traces too.
	res, err := s.Search(ctx, SearchRequest{})
	if err != nil || len(res.Traces) != 0 {
		t.Errorf("search after retention: %v %v", res.Traces, err)
	}
	if names, _ := s.TagNames(ctx, TagScopeAll, time.Time{}, time.Time{}); len(names) != 0 {
		t.Errorf("tag names after retention: %v", names)
	}
}

func TestRetentionBySize(t *testing.T) {
	dir := t.TempDir()
	idx, err := exemplars.Open(t.TempDir(), exemplars.Options{Now: func() time.Time { return base }}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	s := openTest(t, dir, Options{SizeLimit: 1, Pinner: idx})
	defer s.Close()
	ctx := context.Background()
	for i := byte(1); i <= 20; i++ {
		consume(t, s, makeTraces(spanSpec{trace: i, span: 1, service: "svc", name: strings.Repeat("x", 2000), start: time.Duration(i) * time.Second, dur: time.Millisecond}))
	}
	_ = idx.WriteExemplars(ctx, []exemplars.Record{{
		Series:   labels.FromStrings("__name__", "m"),
		Exemplar: exemplar.Exemplar{Labels: labels.FromStrings("trace_id", tid(7).String()), Value: 1, Ts: base.UnixMilli(), HasTs: true},
	}})
	// Each pass deletes the oldest unpinned traces worth the estimated
	// excess; repeated passes must only ever remove from the old end and
	// never the pinned trace.
	for pass := 0; pass < 40; pass++ {
		if err := s.RunRetention(ctx); err != nil {
			t.Fatal(err)
		}
		oldestKept := byte(0)
		for i := byte(1); i <= 20; i++ {
			ok, _ := s.HasTrace(ctx, tid(i))
			switch {
			case i == 7 && !ok:
				t.Fatalf("pass %d: pinned trace deleted", pass)
			case i != 7 && ok && oldestKept == 0:
				oldestKept = i
			case i != 7 && !ok && oldestKept != 0:
				t.Fatalf("pass %d: trace %d deleted before older trace %d", pass, i, oldestKept)
			}
		}
		if oldestKept == 0 {
			return // only the pinned trace is left
		}
	}
	t.Error("size retention never deleted every unpinned trace under a 1-byte limit")
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	searchFixture(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeTraces(context.Background(), makeTraces(spanSpec{trace: 1, span: 1, service: "a", name: "b", dur: 1})); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	s = openTest(t, dir, Options{})
	defer s.Close()
	td, ok, err := s.GetTrace(context.Background(), tid(2))
	if err != nil || !ok || td.SpanCount() != 3 {
		t.Errorf("after reopen: ok=%v err=%v spans=%d", ok, err, td.SpanCount())
	}
	res, _ := s.Search(context.Background(), SearchRequest{})
	if len(res.Traces) != 6 {
		t.Errorf("after reopen: %d traces found, want 6", len(res.Traces))
	}
}

// childIngest runs in a subprocess: it stores one trace per request and
// prints each trace number once ConsumeTraces has acknowledged it, until killed.
func childIngest(dir string) {
	s, err := Open(dir, Options{Now: func() time.Time { return base.Add(time.Hour) }}, nil, nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := 1; ; i++ {
		td := makeTraces(
			spanSpec{trace: byte(i), span: 1, service: "a", name: "root", dur: time.Millisecond},
			spanSpec{trace: byte(i), span: 2, parent: 1, service: "b", name: "child", dur: time.Millisecond},
		)
		rs := td.ResourceSpans()
		for j := range rs.Len() {
			sp := rs.At(j).ScopeSpans().At(0).Spans().At(0)
			id := sp.TraceID()
			id[0], id[1] = byte(i>>8), byte(i>>16)
			sp.SetTraceID(id)
		}
		if _, err := s.ConsumeTraces(context.Background(), td); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("acked", i)
	}
}

func TestKill9LosesNothingAcked(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOOKOUT_TRACESTORE_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	acked := 0
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "acked "); ok {
			acked, _ = strconv.Atoi(n)
			if acked == 300 {
				break
			}
			continue
		}
		t.Fatalf("child: %s", line)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Drain: the child may have acknowledged more before it died.
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			acked, _ = strconv.Atoi(n)
		}
	}
	_ = cmd.Wait()
	s := openTest(t, dir, Options{})
	defer s.Close()
	for i := 1; i <= acked; i++ {
		id := tid(byte(i))
		id[0], id[1] = byte(i>>8), byte(i>>16)
		td, ok, err := s.GetTrace(context.Background(), id)
		if err != nil || !ok || td.SpanCount() != 2 {
			t.Fatalf("acked trace %d after kill -9: ok=%v err=%v spans=%d", i, ok, err, td.SpanCount())
		}
	}
	t.Logf("%d acknowledged traces survived SIGKILL", acked)
}

// TestBlockSummariesSkipMinutes checks that search skips minutes whose
// block summary rules a query out, and still finds everything that matches.
func TestBlockSummariesSkipMinutes(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	// Minute 0: fast "alpha" spans. Minute 5: one slow failing "beta" span.
	for i := byte(1); i <= 10; i++ {
		consume(t, s, makeTraces(spanSpec{trace: i, span: 1, service: "alpha", name: "fast", kind: ptrace.SpanKindServer,
			start: time.Duration(i) * time.Second, dur: 10 * time.Millisecond, attrs: map[string]any{"region": "eu"}}))
	}
	consume(t, s, makeTraces(spanSpec{trace: 20, span: 1, service: "beta", name: "slow", kind: ptrace.SpanKindClient,
		status: ptrace.StatusCodeError, start: 5 * time.Minute, dur: 2 * time.Second}))
	cases := []struct {
		q          string
		traces     int
		maxScanned uint64 // spans decoded
	}{
		{`{ name = "nothing" }`, 0, 0},
		{`{ .region = "us" }`, 0, 0},
		{`{ duration > 1s }`, 1, 1},
		{`{ duration >= 2s }`, 1, 1},
		{`{ duration > 2s }`, 0, 0},
		{`{ status = error }`, 1, 1},
		{`{ kind = server }`, 10, 10},
		{`{ resource.service.name = "beta" }`, 1, 1},
		{`{ .region = "eu" && name = "fast" }`, 10, 10},
		{`{ name = "slow" } || { name = "fast" }`, 11, 11},
		{`{ status = error || name = "fast" }`, 11, 11},
		{`{}`, 11, 11},
	}
	for _, c := range cases {
		res, err := s.Search(context.Background(), SearchRequest{Query: traceql.MustParse(c.q), Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Traces) != c.traces || res.InspectedSpans > c.maxScanned {
			t.Errorf("%s: %d traces (want %d), %d spans decoded (want at most %d)", c.q, len(res.Traces), c.traces, res.InspectedSpans, c.maxScanned)
		}
	}
}
