package tracestore

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/lookout-dev/lookout/internal/exemplars"
)

func TestParseSamplingPolicy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want SamplingPolicy
	}{
		{"share=10%", SamplingPolicy{Share: 0.1, Window: 2 * time.Minute}},
		{"share=0.25,window=5m", SamplingPolicy{Share: 0.25, Window: 5 * time.Minute}},
		{" share = 1 , window = 30s ", SamplingPolicy{Share: 1, Window: 30 * time.Second}},
		{"share=0", SamplingPolicy{Share: 0, Window: 2 * time.Minute}},
		{"window=1m,share=100%", SamplingPolicy{Share: 1, Window: time.Minute}},
	} {
		got, err := ParseSamplingPolicy(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSamplingPolicy(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if again, err := ParseSamplingPolicy(got.String()); err != nil || again != got {
			t.Errorf("%q: String() %q reads back as %+v, %v", tc.in, got.String(), again, err)
		}
	}
	for _, in := range []string{"", "share", "share=", "share=1.5", "share=-0.1", "share=150%", "share=NaN", "share=abc",
		"window=2m", "share=0.1,window=0", "share=0.1,window=-1m", "share=0.1,window=soon", "share=0.1,rate=3"} {
		if _, err := ParseSamplingPolicy(in); err == nil {
			t.Errorf("ParseSamplingPolicy(%q) accepted", in)
		}
	}
}

// TestShareAgreesWithTraceIDRatioBased: the share keeps exactly the trace
// IDs OpenTelemetry's TraceIDRatioBased sampler keeps at the same ratio, so
// a trace's services, and an app's head sampler, agree with Lookout.
func TestShareAgreesWithTraceIDRatioBased(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, share := range []float64{0, 0.01, 0.1, 0.5, 0.999, 1} {
		p := SamplingPolicy{Share: share}
		sdk := trace.TraceIDRatioBased(share)
		kept := 0
		for range 20000 {
			var id pcommon.TraceID
			for i := range id {
				id[i] = byte(r.Uint32())
			}
			want := sdk.ShouldSample(trace.SamplingParameters{TraceID: oteltrace.TraceID(id)}).Decision == trace.RecordAndSample
			if got := p.keepsShare(id); got != want {
				t.Fatalf("share %v, trace %s: kept %v, TraceIDRatioBased %v", share, id, got, want)
			}
			if want {
				kept++
			}
		}
		if got := float64(kept) / 20000; got < share-0.02 || got > share+0.02 {
			t.Errorf("share %v kept %.3f of random traces", share, got)
		}
	}
}

// sampledID is a trace ID whose lower 8 bytes put it outside any share
// below 0.99 (high) or inside any share above 0.01 (low).
func sampledID(n byte, high bool) pcommon.TraceID {
	id := pcommon.TraceID{0x5a, 1: n}
	if high {
		id[8] = 0xff
	}
	id[15] = n
	return id
}

func withTraceID(td ptrace.Traces, id pcommon.TraceID) ptrace.Traces {
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				sp.SetTraceID(id)
			}
		}
	}
	return td
}

// TestSampling runs the sampling pass on a clock: after the window, traces
// referenced by an exemplar (even one arriving just inside the window),
// with an error, slower than their root operation's p99, or in the share
// stay; the rest go. A trace referenced just after the window is gone and
// counted as late-referenced.
func TestSampling(t *testing.T) {
	now := base
	clock := func() time.Time { return now }
	idx, err := exemplars.Open(t.TempDir(), exemplars.Options{Retention: 48 * time.Hour, Now: clock}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	window := 2 * time.Minute
	s := openTest(t, t.TempDir(), Options{Pinner: idx, Now: clock, Sampling: &SamplingPolicy{Share: 0.1, Window: window}})
	defer s.Close()
	ctx := context.Background()

	const (
		plain       = 1 // dropped
		errored     = 2 // an error on a child span
		pinnedEarly = 3 // an exemplar arrives just inside the window
		pinnedLate  = 4 // an exemplar arrives just after the window
		inShare     = 5 // a low trace ID
		slow        = 6 // its root took far longer than the operation's p99
	)
	ids := map[int]pcommon.TraceID{
		plain: sampledID(plain, true), errored: sampledID(errored, true), pinnedEarly: sampledID(pinnedEarly, true),
		pinnedLate: sampledID(pinnedLate, true), inShare: sampledID(inShare, false), slow: sampledID(slow, true),
	}
	now = base.Add(time.Minute)
	// 200 ordinary requests of the operation the slow trace belongs to,
	// started before it: they make its p99 (and are dropped).
	for i := range 200 {
		id := sampledID(byte(100+i%100), true)
		id[2] = byte(i / 100)
		consume(t, s, withTraceID(makeTraces(spanSpec{span: 1, service: "shop", name: "GET /cart", dur: 10 * time.Millisecond}), id))
	}
	for n, id := range ids {
		sp := []spanSpec{{span: 1, service: "shop", name: "GET /cart", start: time.Second, dur: 10 * time.Millisecond}}
		switch n {
		case errored:
			sp = append(sp, spanSpec{span: 2, parent: 1, service: "db", name: "query", start: time.Second, dur: time.Millisecond, status: ptrace.StatusCodeError})
		case slow:
			sp[0].dur = 3 * time.Second
		}
		consume(t, s, withTraceID(makeTraces(sp...), id))
	}
	pin := func(id pcommon.TraceID) {
		t.Helper()
		err := idx.WriteExemplars(ctx, []exemplars.Record{{
			Series:   labels.FromStrings("__name__", "latency_bucket", "le", "1"),
			Exemplar: exemplar.Exemplar{Labels: labels.FromStrings("trace_id", id.String()), Value: 0.5, Ts: now.UnixMilli(), HasTs: true},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	has := func() []int {
		var out []int
		for n, id := range ids {
			if ok, _ := s.HasTrace(ctx, id); ok {
				out = append(out, n)
			}
		}
		slices.Sort(out)
		return out
	}

	// Inside the window nothing is decided.
	now = base.Add(time.Second + window - time.Second)
	pin(ids[pinnedEarly])
	if err := s.RunSampling(ctx); err != nil {
		t.Fatal(err)
	}
	if got := has(); len(got) != len(ids) {
		t.Fatalf("inside the window: traces %v, want all", got)
	}
	// Just after it, the pass decides.
	now = base.Add(time.Second + window + time.Second)
	if err := s.RunSampling(ctx); err != nil {
		t.Fatal(err)
	}
	want := []int{errored, pinnedEarly, inShare, slow}
	if got := has(); !slices.Equal(got, want) {
		t.Errorf("after the window: traces %v, want %v", got, want)
	}
	for reason, n := range map[string]float64{keptExemplar: 1, keptError: 1, keptShare: 1, keptSlow: 1} {
		if got := testutil.ToFloat64(s.sampler.kept.WithLabelValues(reason)); got != n {
			t.Errorf("kept for %s: %v, want %v", reason, got, n)
		}
	}
	// 200 ordinary + plain + pinnedLate; the first 100 ordinary ones were
	// too few to judge slowness by, but none was slow either.
	if got := testutil.ToFloat64(s.sampler.dropped); got != 202 {
		t.Errorf("dropped %v traces, want 202", got)
	}

	// An exemplar for a dropped trace arrives after the window: counted
	// once the late check runs, a window after the drop.
	pin(ids[pinnedLate])
	now = now.Add(window + time.Second)
	if err := s.RunSampling(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(s.sampler.lateRef); got != 1 {
		t.Errorf("late-referenced traces: %v, want 1", got)
	}
	if ok, _ := s.HasTrace(ctx, ids[pinnedLate]); ok {
		t.Error("the late-referenced trace is back")
	}
	// Search forgets the dropped traces.
	res, err := s.Search(ctx, SearchRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Traces) != len(want) {
		t.Errorf("search after sampling: %d traces, want %d", len(res.Traces), len(want))
	}
}

// encodeSummaryV1 encodes s as summaries were before summaryV2.
func encodeSummaryV1(s *summary, withRootEnd bool) []byte {
	b := binary.BigEndian.AppendUint64(nil, s.MinStart)
	b = binary.BigEndian.AppendUint64(b, s.MaxEnd)
	b = binary.AppendUvarint(b, s.Spans)
	if s.HasRoot {
		b = append(b, 1)
		b = binary.AppendUvarint(b, s.RootStart)
		b = appendString(b, s.RootName)
		b = appendString(b, s.RootService)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Chunks)))
	for _, c := range s.Chunks {
		b = binary.BigEndian.AppendUint64(b, c.MinStart)
		b = binary.BigEndian.AppendUint64(b, c.Seq)
	}
	if !withRootEnd {
		return b
	}
	b = binary.AppendUvarint(b, s.RootEnd)
	return binary.AppendUvarint(b, s.Errors)
}

// TestSummaryReadsOldEncoding: summaries round-trip; those written with
// fixed-width times decode, with RootEnd and Errors zero when written
// before they existed; and summaries of both encodings merge.
func TestSummaryReadsOldEncoding(t *testing.T) {
	s := summary{MinStart: 1_795_000_000_000_000_005, MaxEnd: 1_795_000_000_000_000_009, Spans: 2, HasRoot: true,
		RootStart: 1_795_000_000_000_000_005, RootEnd: 1_795_000_000_000_000_008, RootName: "op", RootService: "svc", Errors: 1,
		Chunks: []chunkRef{{MinStart: 1_795_000_000_000_000_005, Seq: 1}, {MinStart: 1_794_999_999_000_000_000, Seq: 1 << 62}}}
	for _, c := range []struct {
		name string
		b    []byte
		want summary
	}{
		{"current", s.encode(), s},
		{"fixed-width times", encodeSummaryV1(&s, true), s},
		{"before RootEnd and Errors", encodeSummaryV1(&s, false), func() summary { o := s; o.RootEnd, o.Errors = 0, 0; return o }()},
		{"no root", (&summary{MinStart: 7, MaxEnd: 3, Spans: 1}).encode(), summary{MinStart: 7, MaxEnd: 3, Spans: 1}},
	} {
		got, err := decodeSummary(c.b)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
	if n, o := len(s.encode()), len(encodeSummaryV1(&s, true)); n >= o-20 {
		t.Errorf("the summary takes %d bytes, %d before", n, o)
	}
	// A v1 operand merged with a current one.
	m, err := summaryMerger.Merge(nil, encodeSummaryV1(&s, true))
	if err != nil {
		t.Fatal(err)
	}
	later := summary{MinStart: s.MinStart + 100, MaxEnd: s.MaxEnd + 1000, Spans: 1, Chunks: []chunkRef{{MinStart: s.MinStart + 100, Seq: 7}}}
	if err := m.MergeNewer(later.encode()); err != nil {
		t.Fatal(err)
	}
	out, _, err := m.Finish(true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSummary(out)
	if err != nil || got.Spans != 3 || got.MaxEnd != s.MaxEnd+1000 || len(got.Chunks) != 3 || got.RootName != "op" {
		t.Errorf("merged: %+v, %v", got, err)
	}
}

// TestSamplingResumes: a reopened store resumes the sampling pass where it
// stopped; a store that never sampled starts at the provisional window, so
// the traces it held before sampling was turned on stay.
func TestSamplingResumes(t *testing.T) {
	dir := t.TempDir()
	now := base.Add(time.Hour)
	clock := func() time.Time { return now }
	policy := &SamplingPolicy{Share: 0, Window: time.Minute}
	s := openTest(t, dir, Options{Now: clock})
	old := sampledID(1, true)
	consume(t, s, withTraceID(makeTraces(spanSpec{span: 1, service: "svc", name: "op", start: 10 * time.Minute, dur: time.Millisecond}), old))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir, Options{Now: clock, Sampling: policy})
	young := sampledID(2, true)
	consume(t, s, withTraceID(makeTraces(spanSpec{span: 1, service: "svc", name: "op", start: time.Hour, dur: time.Millisecond}), young))
	now = now.Add(2 * time.Minute)
	if err := s.RunSampling(context.Background()); err != nil {
		t.Fatal(err)
	}
	upTo := s.sampler.upTo
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{Now: clock, Sampling: policy})
	defer s.Close()
	if s.sampler.upTo != upTo {
		t.Errorf("reopened at %d, want %d", s.sampler.upTo, upTo)
	}
	ctx := context.Background()
	if ok, _ := s.HasTrace(ctx, old); !ok {
		t.Error("a trace stored before sampling was turned on was dropped")
	}
	if ok, _ := s.HasTrace(ctx, young); ok {
		t.Error("a trace stored with sampling on, outside the share, was kept")
	}
}
