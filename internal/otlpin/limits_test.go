package otlpin

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/ingest"
)

const badUTF8 = "ok\xff\xfe-end"

// onePoint is a metrics request with one gauge point, shaped by edit.
func onePoint(edit func(rm pmetric.ResourceMetrics, m pmetric.Metric, dp pcommon.Map)) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "svc")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("requests")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetIntValue(1)
	edit(rm, m, dp.Attributes())
	return md
}

func TestCheckMetrics(t *testing.T) {
	l := DefaultLimits()
	for _, tc := range []struct {
		name    string
		md      pmetric.Metrics
		dropped int64
		reason  string
	}{
		{"fine", onePoint(func(pmetric.ResourceMetrics, pmetric.Metric, pcommon.Map) {}), 0, ""},
		{"too many attributes", onePoint(func(_ pmetric.ResourceMetrics, _ pmetric.Metric, a pcommon.Map) {
			for i := range 129 {
				a.PutInt(strings.Repeat("k", i+1), 1)
			}
		}), 1, "a data point has 129 attributes, more than the limit of 128"},
		{"long label value", onePoint(func(_ pmetric.ResourceMetrics, _ pmetric.Metric, a pcommon.Map) {
			a.PutStr("path", strings.Repeat("x", 2049))
		}), 1, `attribute "path"'s value is 2049 bytes, more than the limit of 2048`},
		{"long label name", onePoint(func(_ pmetric.ResourceMetrics, _ pmetric.Metric, a pcommon.Map) {
			a.PutStr(strings.Repeat("n", 1025), "v")
		}), 1, "an attribute name is 1025 bytes, more than the limit of 1024"},
		{"too many resource attributes", onePoint(func(rm pmetric.ResourceMetrics, _ pmetric.Metric, _ pcommon.Map) {
			for i := range 1025 {
				rm.Resource().Attributes().PutInt(strings.Repeat("r", i+1), 1)
			}
		}), 1, "a resource has 1026 attributes, more than the limit of 1024"},
		{"too many bounds", func() pmetric.Metrics {
			md := onePoint(func(pmetric.ResourceMetrics, pmetric.Metric, pcommon.Map) {})
			m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty()
			m.SetName("latency")
			dp := m.SetEmptyHistogram().DataPoints().AppendEmpty()
			bounds := make([]float64, 1_000_000)
			for i := range bounds {
				bounds[i] = float64(i)
			}
			dp.ExplicitBounds().FromRaw(bounds)
			dp.BucketCounts().FromRaw(make([]uint64, len(bounds)+1))
			return md
		}(), 1, "a histogram point has 1000000 bucket bounds, more than the limit of 512"},
		{"invalid UTF-8 is repaired and kept", onePoint(func(_ pmetric.ResourceMetrics, m pmetric.Metric, a pcommon.Map) {
			m.SetName("req" + badUTF8)
			a.PutStr("k"+badUTF8, badUTF8)
			a.PutEmptyMap("nested").PutStr("deep", badUTF8)
		}), 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.md.DataPointCount()
			reason := l.checkMetrics(tc.md)
			dropped := int64(before - tc.md.DataPointCount())
			if dropped != tc.dropped || reason != tc.reason {
				t.Errorf("dropped %d (%q), want %d (%q)", dropped, reason, tc.dropped, tc.reason)
			}
			if s := invalidUTF8(tc.md); s != "" {
				t.Errorf("invalid UTF-8 left: %q", s)
			}
		})
	}
}

func TestCheckTraces(t *testing.T) {
	l := DefaultLimits()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", badUTF8)
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName(strings.Repeat("é", 40_000)) // 80,000 bytes
	sp.Attributes().PutStr("big", strings.Repeat("a", 100_000))
	sp.Attributes().PutStr("bad"+badUTF8, "v")
	sp.Events().AppendEmpty().Attributes().PutStr("e", badUTF8)
	sp.Status().SetMessage(badUTF8)
	over := td.ResourceSpans().AppendEmpty()
	for i := range 1025 {
		over.Resource().Attributes().PutInt(strings.Repeat("r", i+1), 1)
	}
	over.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("dropped")

	before := td.SpanCount()
	cut, reason := l.checkTraces(td)
	dropped := before - td.SpanCount()
	if dropped != 1 || reason != "a resource has 1025 attributes, more than the limit of 1024" {
		t.Errorf("dropped %d (%q)", dropped, reason)
	}
	if cut != 2 {
		t.Errorf("cut %d strings, want 2 (the name and one attribute)", cut)
	}
	if td.SpanCount() != 1 {
		t.Fatalf("%d spans left", td.SpanCount())
	}
	got := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	if n := len(got.Name()); n > 64<<10 || !utf8.ValidString(got.Name()) {
		t.Errorf("name cut to %d bytes, valid %v", n, utf8.ValidString(got.Name()))
	}
	if v, _ := got.Attributes().Get("big"); len(v.Str()) != 64<<10 {
		t.Errorf("attribute cut to %d bytes", len(v.Str()))
	}
	if _, ok := got.Attributes().Get("badok\uFFFD-end"); !ok {
		t.Errorf("key not repaired")
	}
	if s := invalidUTF8Traces(td); s != "" {
		t.Errorf("invalid UTF-8 left: %q", s)
	}
}

// TestEventAttributes: a span whose 100 events carry 1,000 attributes each
// is refused; a span with a few events is kept.
func TestEventAttributes(t *testing.T) {
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	heavy := spans.AppendEmpty()
	heavy.SetName("heavy")
	for range 100 {
		e := heavy.Events().AppendEmpty()
		for j := range 1000 {
			e.Attributes().PutInt(strings.Repeat("k", j%40+1)+string(rune('a'+j%26))+string(rune('a'+j/26%26)), 1)
		}
	}
	light := spans.AppendEmpty()
	light.SetName("light")
	light.Events().AppendEmpty().Attributes().PutStr("exception.type", "E")
	light.Links().AppendEmpty().Attributes().PutStr("k", "v")
	_, reason := DefaultLimits().checkTraces(td)
	dropped := 2 - td.SpanCount()
	if dropped != 1 || !strings.HasPrefix(reason, "a span's events and links carry ") || !strings.HasSuffix(reason, "more than the limit of 2048") {
		t.Errorf("dropped %d (%q)", dropped, reason)
	}
	if td.SpanCount() != 1 || spans.At(0).Name() != "light" {
		t.Errorf("%d spans left", td.SpanCount())
	}
}

// TestLimitsPartialSuccess: a point over a limit is answered as a partial
// success naming the limit; the rest is stored.
func TestLimitsPartialSuccess(t *testing.T) {
	s := &sink{}
	r, err := New(DefaultOptions(), s, s, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	md := onePoint(func(_ pmetric.ResourceMetrics, m pmetric.Metric, _ pcommon.Map) {
		dp := m.Gauge().DataPoints().AppendEmpty()
		dp.Attributes().PutStr("path", strings.Repeat("x", 5000))
	})
	_, consume := r.metricsConsumer(md)
	res, err := consume(context.Background())
	if err != nil || res.Rejected != 1 || !strings.Contains(res.Message, "1 data points over an ingest limit: attribute \"path\"'s value is 5000 bytes, more than the limit of 2048") {
		t.Errorf("got %+v, %v", res, err)
	}
	if s.points != 1 {
		t.Errorf("stored %d points, want 1", s.points)
	}
	// A sink's own partial success is kept beside it.
	s.res = ingest.Result{Rejected: 2, Message: "two out of order"}
	_, consume = r.metricsConsumer(onePoint(func(_ pmetric.ResourceMetrics, _ pmetric.Metric, a pcommon.Map) {
		a.PutStr(strings.Repeat("n", 2000), "v")
	}))
	if res, _ := consume(context.Background()); res.Rejected != 3 || !strings.HasSuffix(res.Message, "; two out of order") {
		t.Errorf("got %+v", res)
	}
}

// invalidUTF8 returns the first string of md that is not valid UTF-8.
func invalidUTF8(md pmetric.Metrics) string {
	b, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(md)
	if err != nil || !utf8.Valid(b) {
		return string(b)
	}
	return ""
}

func invalidUTF8Traces(td ptrace.Traces) string {
	b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil || !utf8.Valid(b) {
		return string(b)
	}
	return ""
}
