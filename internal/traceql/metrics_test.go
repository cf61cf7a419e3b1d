package traceql

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseMetricsGood(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{} | rate()`, `{ } | rate()`},
		{`{ status = error } | rate() by (resource.service.name)`, `{ status = error } | rate() by (resource.service.name)`},
		{`{} | count_over_time() by(name, span.http.method)`, `{ } | count_over_time() by (name, span.http.method)`},
		{`{} | sum_over_time(span.http.response.size)`, `{ } | sum_over_time(span.http.response.size)`},
		{`{} | min_over_time(duration) by (kind)`, `{ } | min_over_time(duration) by (kind)`},
		{`{} | max_over_time(.n)`, `{ } | max_over_time(.n)`},
		{`{} | avg_over_time(traceDuration) by (rootServiceName)`, `{ } | avg_over_time(traceDuration) by (rootServiceName)`},
		{`{} | quantile_over_time(duration, .99, .9, .5)`, `{ } | quantile_over_time(duration, 0.99, 0.9, 0.5)`},
		{`{} | quantile_over_time(span:duration, 0, 1, 0.25) by (span.x)`, `{ } | quantile_over_time(duration, 0, 1, 0.25) by (span.x)`},
		{`{} | histogram_over_time(duration) by (resource.service.name)`, `{ } | histogram_over_time(duration) by (resource.service.name)`},
		{`{ } | compare({ status = error })`, `{ } | compare({ status = error }, 10)`},
		{`{ } | compare({ status = error }, 25)`, `{ } | compare({ status = error }, 25)`},
		{`{ } | compare({ .a = 1 }, 5, 1713000000000000000, 1713000600000000000)`, `{ } | compare({ .a = 1 }, 5, 1713000000000000000, 1713000600000000000)`},
		{`{ } | compare({ .a = 1 }, 5, 0, 0)`, `{ } | compare({ .a = 1 }, 5)`},
		{`{} | rate() by (name) | topk(5)`, `{ } | rate() by (name) | topk(5)`},
		{`{} | count_over_time() | bottomk(1)`, `{ } | count_over_time() | bottomk(1)`},
		{`{} | rate() with(sample=true)`, `{ } | rate() with(sample=true)`},
		{`{} | rate() by (name) | topk(3) with(exemplars=5, span_sample=0.1, x="y")`, `{ } | rate() by (name) | topk(3) with(exemplars=5, span_sample=0.1, x="y")`},
		{`{} | rate() with(a=1) with(b=2s)`, `{ } | rate() with(b=2s)`}, // the last with() clause wins, as in Tempo
		{`{ .a = 1 } >> { .b = 2 } | rate()`, `({ .a = 1 } >> { .b = 2 }) | rate()`},
		{`{ .a = 1 } | by(name) | count() > 2 | { status = error } | rate() by (name)`, `{ .a = 1 } | by(name) | count() > 2 | { status = error } | rate() by (name)`},
		{`{} | select(span.x) | avg_over_time(span.x)`, `{ } | select(span.x) | avg_over_time(span.x)`},
		{`{ duration > 1m30s } | rate()`, `{ duration > 1m30s } | rate()`},
		// Grafana Traces Drilldown's queries, whitespace as it sends them.
		{`{nestedSetParent<0 && true} | rate()  with(sample=true)`, `{ (nestedSetParent < 0 && true) } | rate() with(sample=true)`},
		{`{nestedSetParent<0 && true} | histogram_over_time(duration) with(sample=true)`, `{ (nestedSetParent < 0 && true) } | histogram_over_time(duration) with(sample=true)`},
		{`{nestedSetParent<0 && true} | quantile_over_time(duration, 0.9) `, `{ (nestedSetParent < 0 && true) } | quantile_over_time(duration, 0.9)`},
		{`{nestedSetParent<0 && true && status=error && resource.service.name != nil} | rate() by(resource.service.name)`, `{ (((nestedSetParent < 0 && true) && status = error) && resource.service.name != nil) } | rate() by (resource.service.name)`},
		{`{nestedSetParent<0 && true} | compare({duration >= 134ms && duration <= 537ms}, 10, 1700000600000000000, 1700000900000000000)`, `{ (nestedSetParent < 0 && true) } | compare({ (duration >= 134ms && duration <= 537ms) }, 10, 1700000600000000000, 1700000900000000000)`},
		{`{true && true} | rate()  with(sample=true)`, `{ (true && true) } | rate() with(sample=true)`},
	}
	for _, c := range cases {
		q, err := ParseMetrics(c.in)
		if err != nil {
			t.Errorf("ParseMetrics(%q): %v", c.in, err)
			continue
		}
		if got := q.String(); got != c.want {
			t.Errorf("ParseMetrics(%q) = %s, want %s", c.in, got, c.want)
		}
		q2, err := ParseMetrics(q.String())
		if err != nil || q2.String() != q.String() {
			t.Errorf("ParseMetrics(%q) (the rendering of %q) = %v, %v", q.String(), c.in, q2, err)
		}
	}
}

// TestParseMetricsFields checks the parsed structure, not only its rendering.
func TestParseMetricsFields(t *testing.T) {
	q, err := ParseMetrics(`{ .a = 1 } | by(name) | quantile_over_time(duration, .5, .95) by (resource.service.name, span.x) | topk(4)`)
	if err != nil {
		t.Fatal(err)
	}
	if q.Func != MetricsQuantileOverTime || q.Attr != (Field{Intrinsic: IntrinsicDuration}) ||
		!slices.Equal(q.Quantiles, []float64{.5, .95}) || q.TopK != 4 || q.BottomK != 0 || q.Compare != nil {
		t.Errorf("parsed %+v", q)
	}
	if want := []Field{{Scope: ScopeResource, Name: "service.name"}, {Scope: ScopeSpan, Name: "x"}}; !slices.Equal(q.By, want) {
		t.Errorf("By = %v, want %v", q.By, want)
	}
	if p, ok := q.Spans.(*Pipeline); !ok || len(p.Stages) != 1 || p.Input.String() != `{ .a = 1 }` {
		t.Errorf("Spans = %#v", q.Spans)
	}

	q, err = ParseMetrics(`{} | rate()`)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := q.Spans.(*Filter); !ok || q.Attr != (Field{}) || q.By != nil {
		t.Errorf("rate: %+v", q)
	}

	q, err = ParseMetrics(`{} | compare({ status = error }, 7, 1000000000, 2000000000)`)
	if err != nil {
		t.Fatal(err)
	}
	c := q.Compare
	if c == nil || c.TopN != 7 || !c.Start.Equal(time.Unix(1, 0)) || !c.End.Equal(time.Unix(2, 0)) || c.Selection.String() != `{ status = error }` {
		t.Errorf("compare: %+v", c)
	}

	for _, tc := range []struct {
		q    string
		n    int
		isOK bool
	}{
		{`{} | rate()`, 0, false},
		{`{} | rate() with(exemplars=7)`, 7, true},
		{`{} | rate() with(exemplars=-3)`, 0, true},
		{`{} | rate() with(exemplars=false)`, 0, true},
		{`{} | rate() with(exemplars=true)`, 0, false},
		{`{} | rate() with(exemplars=2, exemplars=9)`, 2, true}, // within a clause the first value wins, as in Tempo
	} {
		q, err := ParseMetrics(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := q.ExemplarsHint(); n != tc.n || ok != tc.isOK {
			t.Errorf("%s: ExemplarsHint = %d, %v; want %d, %v", tc.q, n, ok, tc.n, tc.isOK)
		}
	}
}

func TestParseMetricsBad(t *testing.T) {
	cases := []badParse{
		{``, "not a metrics query", false},
		{`{}`, "not a metrics query", false},
		{`{} | count() > 2`, "not a metrics query", false},
		{`{} with(sample=true)`, "not a metrics query", false},
		{`rate()`, "rate() must follow a spanset and |", false},
		{`{} | frobnicate_over_time()`, "unknown pipeline stage \"frobnicate_over_time\"", false},
		{`{} | rate(duration)`, "in rate(), which takes no arguments", false},
		{`{} | count_over_time(.a)`, "in count_over_time(), which takes no arguments", false},
		{`{} | sum_over_time()`, "sum_over_time() needs a numeric field", false},
		{`{} | min_over_time(name)`, "min_over_time() takes a numeric field", false},
		{`{} | max_over_time(1)`, "takes attributes or intrinsics", false},
		{`{} | avg_over_time(duration, .5)`, "avg_over_time() takes one field", false},
		{`{} | histogram_over_time(status)`, "histogram_over_time() takes a numeric field", false},
		{`{} | quantile_over_time()`, "quantile_over_time() needs a numeric field and quantiles", false},
		{`{} | quantile_over_time(duration)`, "needs at least one quantile", false},
		{`{} | quantile_over_time(duration, )`, "expected a quantile between 0 and 1", false},
		{`{} | quantile_over_time(duration, 1.5)`, "quantile 1.5 is outside [0, 1]", false},
		{`{} | quantile_over_time(duration, -0.1)`, "quantile -0.1 is outside [0, 1]", false},
		{`{} | quantile_over_time(duration, "x")`, "expected a quantile", false},
		{`{} | rate() | count()`, "only topk() or bottomk() may follow a metrics function, not count()", false},
		{`{} | rate() | rate()`, "only topk() or bottomk() may follow a metrics function, not rate()", false},
		{`{} | rate() |`, "expected topk() or bottomk() after |", false},
		{`{} | rate() | { }`, "expected topk() or bottomk()", false},
		{`{} | rate() by ()`, "by() needs at least one attribute", false},
		{`{} | rate() by`, "after by, expected (", false},
		{`{} | rate() by (1)`, "by() takes attributes or intrinsics", false},
		{`{} | rate() by (a,b,c)`, "unknown identifier", false},
		{`{} | rate() by (.a, .b, .c, .d, .e, .f)`, "by() with more than 5 fields", true},
		{`{} | histogram_over_time(duration) by (.a, .b, .c, .d, .e)`, "by() with more than 4 fields", true},
		{`{} | compare({ .a = 1 }) by (name)`, "compare() takes no by()", false},
		{`{} | compare()`, "compare() takes a spanset filter first", false},
		{`{} | compare(name)`, "compare() takes a spanset filter first", false},
		{`{} | compare({ .a = 1 } && { .b = 1 })`, "the spanset operator && in compare()'s selection", true},
		{`{} | compare({ .a = 1 }, 0)`, "between 1 and 1000", false},
		{`{} | compare({ .a = 1 }, 1001)`, "between 1 and 1000", false},
		{`{} | compare({ .a = 1 }, 1.5)`, "compare() takes integers", false},
		{`{} | compare({ .a = 1 }, 10, 5)`, "got 2 numbers", false},
		{`{} | compare({ .a = 1 }, 10, 1, 2, 3)`, "got 4 numbers", false},
		{`{} | compare({ .a = 1 }, 10, -1, 5)`, "positive integer unix nanoseconds", false},
		{`{} | compare({ .a = 1 }, 10, 5, 5)`, "end timestamp must be greater", false},
		{`{} | compare({ .a = 1 }, "x")`, "expected an integer", false},
		{`{} | rate() | topk(0)`, "topk() takes a positive integer", false},
		{`{} | rate() | bottomk(-2)`, "bottomk() takes a positive integer", false},
		{`{} | rate() | topk(1.5)`, "topk() takes a positive integer", false},
		{`{} | rate() | topk()`, "in topk(), expected a positive integer", false},
		{`{} | rate() | topk(2) | bottomk(1)`, "a second stage after topk()", true},
		{`{} | topk(2)`, "topk() must follow a metrics function", false},
		{`{} | rate() > 10`, "comparing a metrics result with a value", true},
		{`{} | rate() * 2`, "arithmetic on metrics results", true},
		{`({} | rate()) / ({} | rate())`, "a pipeline | inside parentheses", true},
		{`{} | rate() && {}`, "the operator && after a metrics function", true},
		{`{} | rate() {}`, "after a metrics function", false},
		{`{} | rate() with`, "after with, expected (", false},
		{`{} | rate() with ()`, "expected a hint name", false},
		{`{} | rate() with (sample)`, "after the hint sample, expected =", false},
		{`{} | rate() with(sample=span.x)`, "takes a literal value", false},
		{`{} | rate() with(a=1 b=2)`, "in with(), expected ) or ,", false},
		{`{} | rate() with(a=1) | topk(1)`, "hints come last", false},
		{"{}" + strings.Repeat(" | coalesce()", MaxPipelineStages) + " | rate()", "more than 128 pipeline stages", false},
		{strings.Repeat("(", 500) + "{}" + strings.Repeat(")", 500) + " | rate()", "deeper than", false},
		{`{ name = "x" } | rate() with(a="` + "\xff" + `")`, "UTF-8", false},
	}
	for _, c := range cases {
		_, err := ParseMetrics(c.in)
		if err == nil {
			t.Errorf("ParseMetrics(%q): no error", c.in)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("ParseMetrics(%q) = %T %v, want a *ParseError", c.in, err, err)
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ParseMetrics(%q) = %v, want it to mention %q", c.in, err, c.msg)
		}
		if got := errors.Is(err, ErrUnsupported); got != c.unsupported {
			t.Errorf("ParseMetrics(%q): errors.Is(ErrUnsupported) = %v, want %v", c.in, got, c.unsupported)
		}
		if got, want := errors.Is(err, ErrNotMetricsQuery), strings.Contains(c.msg, "not a metrics query"); got != want {
			t.Errorf("ParseMetrics(%q): errors.Is(ErrNotMetricsQuery) = %v, want %v", c.in, got, want)
		}
	}
	// The search parser keeps refusing metrics queries.
	for _, q := range []string{`{} | rate()`, `{} | compare({ .a = 1 })`, `{} | quantile_over_time(duration, .5)`} {
		if _, err := Parse(q); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "makes a metrics query") && !strings.Contains(err.Error(), "compare") {
			t.Errorf("Parse(%q) = %v, want the metrics stage refused", q, err)
		}
	}
}

func FuzzParseMetrics(f *testing.F) {
	for _, s := range []string{`{} | rate()`, `{ status = error } | count_over_time() by (resource.service.name, name)`,
		`{} | quantile_over_time(duration, .5, 0.99, 1) by (span.x) | topk(3)`, `{} | histogram_over_time(duration)`,
		`{ .a > 1 } | by(name) | avg(duration) > 1ms | sum_over_time(span.n) | bottomk(2) with(sample=true, x="y")`,
		`{} | compare({ status = error }, 20, 1713000000000000000, 1713000600000000000)`,
		`{ duration > 1m30s } >> { kind = client } | min_over_time(traceDuration) with(exemplars=false)`} {
		f.Add(s)
	}
	tr := testTrace()
	f.Fuzz(func(t *testing.T, q string) {
		m, err := ParseMetrics(q)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseMetrics(%q) = %T %v, want a *ParseError", q, err, err)
			}
			return
		}
		s := m.String()
		m2, err := ParseMetrics(s)
		if err != nil {
			t.Fatalf("ParseMetrics(%q) ok, but its rendering %q fails: %v", q, s, err)
		}
		if s2 := m2.String(); s2 != s {
			t.Fatalf("ParseMetrics(%q) renders %q, which renders %q", q, s, s2)
		}
		if _, err := Parse(q); err == nil {
			t.Fatalf("Parse accepts the metrics query %q", q)
		}
		// An accepted query evaluates without panicking.
		for _, o := range []MetricsOptions{
			{Start: time.Unix(0, 0), End: time.Unix(60, 0), Step: 10 * time.Second, Exemplars: 3},
			{Start: time.Unix(0, 0), End: time.Unix(60, 0), Instant: true},
		} {
			ev, err := NewMetricsEval(m, o)
			if err != nil {
				t.Fatalf("NewMetricsEval(%q): %v", q, err)
			}
			for i := range tr.Spans {
				ev.ObserveSpan([16]byte{byte(i)}, &tr.Spans[i], &tr.Info)
			}
			if _, err := ev.Result(nil); err != nil {
				t.Fatalf("Result(%q): %v", q, err)
			}
		}
	})
}

// genSpan is a random span for the differential tests; its trace ID is
// unique, so an exemplar names its span.
type genSpan struct {
	traceID [16]byte
	span    Span
}

func genSpans(rng *rand.Rand, n int, from, to int64) []genSpan {
	svcs := []string{"cart", "checkout", "db", "frontend", "payments"}
	regions := []string{"eu", "us"}
	out := make([]genSpan, n)
	for i := range out {
		g := &out[i]
		binary.BigEndian.PutUint64(g.traceID[:8], rng.Uint64())
		binary.BigEndian.PutUint64(g.traceID[8:], uint64(i))
		binary.BigEndian.PutUint64(g.span.SpanID[:], uint64(i+1))
		start := from + rng.Int64N(to-from)
		if rng.IntN(50) == 0 { // exactly on a step boundary now and then
			start -= start % int64(time.Second)
		}
		dur := int64(math.Exp(rng.Float64()*math.Log(1e10)) + 0.5) // 1ns … 10s, log-uniform
		g.span.StartUnixNano, g.span.EndUnixNano = uint64(start), uint64(start+dur)
		g.span.Name = "op" + strconv.Itoa(rng.IntN(3))
		g.span.Kind = int64(1 + rng.IntN(3))
		if rng.IntN(5) > 0 {
			g.span.Attrs = append(g.span.Attrs, Attr{"svc", StringValue(svcs[rng.IntN(len(svcs))])})
		}
		if rng.IntN(3) > 0 {
			g.span.Attrs = append(g.span.Attrs, Attr{"code", IntValue(int64(200 + 100*rng.IntN(4)))})
		}
		switch rng.IntN(6) {
		case 0: // no size
		case 1:
			g.span.Attrs = append(g.span.Attrs, Attr{"size", FloatValue(0)})
		case 2:
			g.span.Attrs = append(g.span.Attrs, Attr{"size", FloatValue(-rng.ExpFloat64() * 100)})
		case 3:
			g.span.Attrs = append(g.span.Attrs, Attr{"size", StringValue("big")})
		default:
			g.span.Attrs = append(g.span.Attrs, Attr{"size", IntValue(rng.Int64N(1 << 20))})
		}
		if rng.IntN(4) > 0 {
			g.span.Resource = []Attr{{"region", StringValue(regions[rng.IntN(2)])}}
		}
	}
	return out
}

// refAttr is the test's own lookup of a field on a generated span.
func refAttr(f Field, s *Span) (Value, bool) {
	switch f.Intrinsic {
	case IntrinsicDuration:
		return Value{Type: TypeDuration, I: int64(s.EndUnixNano - s.StartUnixNano)}, true
	case IntrinsicName:
		return StringValue(s.Name), true
	case IntrinsicKind:
		return Value{Type: TypeKind, I: s.Kind}, true
	}
	if f.Scope != ScopeResource {
		for _, a := range s.Attrs {
			if a.Key == f.Name {
				return a.Value, true
			}
		}
	}
	if f.Scope != ScopeSpan {
		for _, a := range s.Resource {
			if a.Key == f.Name {
				return a.Value, true
			}
		}
	}
	return Value{}, false
}

// refNumber is the test's own conversion of a value to what the functions
// aggregate: seconds for durations, ints and floats as they are.
func refNumber(v Value) (float64, bool) {
	switch v.Type {
	case TypeDuration:
		return float64(v.I) / 1e9, true
	case TypeInt:
		return float64(v.I), true
	case TypeFloat:
		return v.F, true
	}
	return 0, false
}

// labelsText renders a series' labels for comparing results.
func labelsText(ls []Label) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.Key + "=" + l.Value.String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// refSeries is the brute-force result of one series.
type refSeries struct {
	labels  []Label
	samples map[int64]float64 // timestamp ms → value; NaN for quantile means "check the values"
	values  map[int64][]float64
}

// refMetrics evaluates q over spans the plain way: the step of every span,
// then the values of every (group, step) in a list.
func refMetrics(q *MetricsQuery, spans []genSpan, start, end, step int64) map[string]*refSeries {
	start -= ((start % step) + step) % step
	if r := ((end % step) + step) % step; r != 0 {
		end += step - r
	}
	n := (end - start) / step
	type cell struct {
		labels []Label
		values map[int64][]float64 // step index → values (count-only functions: zeros)
	}
	groups := map[string]*cell{}
	var order []string
	for i := range spans {
		s := &spans[i].span
		t := int64(s.StartUnixNano)
		if t <= start || t > end {
			continue
		}
		idx := (t-start+step-1)/step - 1
		v := 0.0
		if q.Func.takesField() {
			val, ok := refAttr(q.Attr, s)
			if !ok {
				continue
			}
			if v, ok = refNumber(val); !ok {
				continue
			}
		}
		var labels []Label
		for _, f := range q.By {
			if val, ok := refAttr(f, s); ok {
				labels = append(labels, Label{f.String(), val})
			}
		}
		if len(labels) == 0 && len(q.By) > 0 {
			labels = []Label{{q.By[0].String(), Value{}}}
		}
		if len(q.By) == 0 && q.Func != MetricsQuantileOverTime && q.Func != MetricsHistogramOverTime {
			labels = []Label{{"__name__", StringValue(q.Func.String())}}
		}
		if q.Func == MetricsHistogramOverTime {
			ns := int64(v)
			if isDurationField(q.Attr) {
				ns = int64(math.Round(v * 1e9))
			}
			if v < 2 && !isDurationField(q.Attr) || ns < 2 {
				continue
			}
			b := int64(1)
			for b < ns || float64(b) < v && !isDurationField(q.Attr) {
				b *= 2
			}
			bv := float64(b)
			if isDurationField(q.Attr) {
				bv /= 1e9
			}
			labels = append(labels, Label{"__bucket", FloatValue(bv)})
		}
		key := labelsText(labels)
		g := groups[key]
		if g == nil {
			g = &cell{labels: labels, values: map[int64][]float64{}}
			groups[key] = g
			order = append(order, key)
		}
		g.values[idx] = append(g.values[idx], v)
	}
	out := map[string]*refSeries{}
	for _, key := range order {
		g := groups[key]
		add := func(labels []Label) *refSeries {
			r := &refSeries{labels: labels, samples: map[int64]float64{}, values: map[int64][]float64{}}
			out[labelsText(labels)] = r
			return r
		}
		if q.Func == MetricsQuantileOverTime {
			for _, p := range q.Quantiles {
				r := add(append(slices.Clip(g.labels), Label{"p", FloatValue(p)}))
				for i := range n {
					ts := (start + (i+1)*step) / 1e6
					vs := slices.Clone(g.values[i])
					slices.Sort(vs)
					r.values[ts] = vs
					if len(vs) == 0 {
						r.samples[ts] = 0
						continue
					}
					rank := max(1, int(math.Ceil(p*float64(len(vs)))))
					r.samples[ts] = vs[rank-1]
				}
			}
			continue
		}
		r := add(g.labels)
		for i := range n {
			ts := (start + (i+1)*step) / 1e6
			vs := g.values[i]
			switch q.Func {
			case MetricsRate:
				r.samples[ts] = float64(len(vs)) / (float64(step) / 1e9)
			case MetricsCountOverTime, MetricsHistogramOverTime:
				r.samples[ts] = float64(len(vs))
			case MetricsSumOverTime, MetricsAvgOverTime:
				if len(vs) > 0 {
					sum := 0.0
					for _, v := range vs {
						sum += v
					}
					if q.Func == MetricsAvgOverTime {
						sum /= float64(len(vs))
					}
					r.samples[ts] = sum
				}
			case MetricsMinOverTime:
				if len(vs) > 0 {
					r.samples[ts] = slices.Min(vs)
				}
			case MetricsMaxOverTime:
				if len(vs) > 0 {
					r.samples[ts] = slices.Max(vs)
				}
			}
		}
	}
	return out
}

// TestMetricsMatchesBruteForce feeds random spans to MetricsEval and
// compares every series and sample with refMetrics: exactly, except
// quantiles, which must be within QuantileRelativeError of the true
// quantile.
func TestMetricsMatchesBruteForce(t *testing.T) {
	queries := []string{
		`{} | rate()`,
		`{} | rate() by (span.svc)`,
		`{} | count_over_time() by (span.svc, resource.region)`,
		`{} | count_over_time() by (span.code)`,
		`{} | sum_over_time(span.size) by (name)`,
		`{} | sum_over_time(duration)`,
		`{} | min_over_time(duration) by (span.svc)`,
		`{} | max_over_time(span.size) by (.region, kind)`,
		`{} | avg_over_time(duration) by (span.code)`,
		`{} | avg_over_time(.size)`,
		`{} | quantile_over_time(duration, 0, .5, .9, .99, 1) by (span.svc)`,
		`{} | quantile_over_time(span.size, .25, .75)`,
		`{} | histogram_over_time(duration) by (resource.region)`,
		`{} | histogram_over_time(span.size)`,
	}
	steps := []time.Duration{time.Second, 7 * time.Second, time.Minute, 90 * time.Minute}
	for seed := range 8 {
		rng := rand.New(rand.NewPCG(uint64(seed), 77))
		base := int64(1_700_000_000)*1e9 + rng.Int64N(1e12)
		length := int64(time.Duration(1+rng.IntN(120)) * time.Minute)
		spans := genSpans(rng, 200+rng.IntN(3000), base-length/4, base+length+length/4)
		step := steps[seed%len(steps)]
		for qi, qs := range queries {
			q, err := ParseMetrics(qs)
			if err != nil {
				t.Fatal(err)
			}
			m, err := NewMetricsEval(q, MetricsOptions{Start: time.Unix(0, base), End: time.Unix(0, base+length), Step: step, Exemplars: 10})
			if err != nil {
				t.Fatalf("%s: %v", qs, err)
			}
			obs := Observation{Group: make([]Value, len(q.By))}
			if seed%4 == 1 { // absence said by Present, with stale values in Group
				obs.Present = make([]bool, len(q.By))
			}
			for i := range spans {
				g := &spans[i]
				if (seed+qi)%2 == 0 {
					m.ObserveSpan(g.traceID, &g.span, nil)
					continue
				}
				obs.StartUnixNano, obs.TraceID, obs.Ref = g.span.StartUnixNano, g.traceID, uint64(i)
				obs.Value, obs.HasValue = 0, false
				if v, ok := refAttr(q.Attr, &g.span); ok && q.Func.takesField() {
					obs.Value, obs.HasValue = refNumber(v)
				}
				for j, f := range q.By {
					v, ok := refAttr(f, &g.span)
					if obs.Present != nil {
						obs.Present[j] = ok
						if !ok {
							v = StringValue("stale")
						}
					}
					obs.Group[j] = v
				}
				m.Observe(&obs)
			}
			resolve := func(_ [16]byte, ref uint64) ([8]byte, bool) { return spans[ref].span.SpanID, true }
			got, err := m.Result(resolve)
			if err != nil {
				t.Fatalf("%s: %v", qs, err)
			}
			want := refMetrics(q, spans, base, base+length, int64(step))
			where := fmt.Sprintf("seed %d, %s, step %s", seed, qs, step)
			checkAgainstRef(t, where, q, got, want, spans)
		}
	}
}

func checkAgainstRef(t *testing.T, where string, q *MetricsQuery, got []MetricSeries, want map[string]*refSeries, spans []genSpan) {
	t.Helper()
	if len(got) != len(want) {
		var names []string
		for _, s := range got {
			names = append(names, labelsText(s.Labels))
		}
		t.Fatalf("%s: %d series %v, want %d", where, len(got), names, len(want))
	}
	byTrace := map[[16]byte]*Span{}
	for i := range spans {
		byTrace[spans[i].traceID] = &spans[i].span
	}
	exemplars := 0
	for i, s := range got {
		if i > 0 && len(got[i-1].Labels) > len(s.Labels) {
			t.Errorf("%s: series %d has fewer labels than the one before", where, i)
		}
		key := labelsText(s.Labels)
		w := want[key]
		if w == nil {
			t.Fatalf("%s: unexpected series %s", where, key)
		}
		if len(s.Samples) != len(w.samples) {
			t.Fatalf("%s: %s has %d samples, want %d", where, key, len(s.Samples), len(w.samples))
		}
		for j, smp := range s.Samples {
			if j > 0 && smp.TimestampMs <= s.Samples[j-1].TimestampMs {
				t.Fatalf("%s: %s: samples out of order", where, key)
			}
			wv, ok := w.samples[smp.TimestampMs]
			if !ok {
				t.Fatalf("%s: %s: unexpected sample at %d", where, key, smp.TimestampMs)
			}
			if q.Func == MetricsQuantileOverTime {
				if math.Abs(smp.Value-wv) > QuantileRelativeError*math.Abs(wv)+1e-12 {
					t.Errorf("%s: %s at %d = %v, want %v within %.4f%% (values %v)", where, key, smp.TimestampMs, smp.Value, wv, 100*QuantileRelativeError, w.values[smp.TimestampMs])
				}
			} else if smp.Value != wv {
				t.Errorf("%s: %s at %d = %v, want %v", where, key, smp.TimestampMs, smp.Value, wv)
			}
		}
		// Every exemplar is a span of the series, in the step it is stamped
		// with, and carries the value Tempo reports.
		for _, e := range s.Exemplars {
			exemplars++
			sp := byTrace[e.TraceID]
			if sp == nil || sp.SpanID != e.SpanID || e.TimestampMs != int64(sp.StartUnixNano/1e6) {
				t.Fatalf("%s: %s: exemplar %+v is not a matched span", where, key, e)
			}
			for _, f := range q.By {
				v, ok := refAttr(f, sp)
				l := findLabel(s.Labels, f.String())
				if ok && (l == nil || l.Value != v) || !ok && l != nil && l.Value.Type != TypeNil {
					t.Fatalf("%s: %s: exemplar %+v has %s = %v", where, key, e, f, v)
				}
			}
			if q.Func.takesField() && q.Func != MetricsHistogramOverTime {
				v, _ := refAttr(q.Attr, sp)
				if x, _ := refNumber(v); x != e.Value {
					t.Errorf("%s: %s: exemplar value %v, want the span's %v", where, key, e.Value, x)
				}
			} else {
				var sampleAt float64 = math.NaN()
				for _, smp := range s.Samples {
					if smp.TimestampMs*1e6 >= int64(sp.StartUnixNano) && sampleAt != sampleAt {
						sampleAt = smp.Value
					}
				}
				if e.Value != sampleAt {
					t.Errorf("%s: %s: exemplar value %v, want its step's %v", where, key, e.Value, sampleAt)
				}
			}
		}
	}
	if exemplars > 10 || exemplars == 0 {
		t.Errorf("%s: %d exemplars, want 1…10", where, exemplars)
	}
}

func findLabel(ls []Label, key string) *Label {
	for i := range ls {
		if ls[i].Key == key {
			return &ls[i]
		}
	}
	return nil
}

// evalSpans runs query qs over spans with o and returns its result.
func evalSpans(t testing.TB, qs string, o MetricsOptions, spans []genSpan) ([]MetricSeries, error) {
	t.Helper()
	q, err := ParseMetrics(qs)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMetricsEval(q, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range spans {
		m.ObserveSpan(spans[i].traceID, &spans[i].span, nil)
	}
	return m.Result(nil)
}

// TestMetricsTopK: in every step, topk(k) keeps the k largest samples of
// the full result (bottomk the smallest), ties to the series sorting first.
func TestMetricsTopK(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base := int64(1_700_000_000) * 1e9
	spans := genSpans(rng, 3000, base, base+int64(10*time.Minute))
	o := MetricsOptions{Start: time.Unix(0, base), End: time.Unix(0, base+int64(10*time.Minute)), Step: time.Minute}
	full, err := evalSpans(t, `{} | count_over_time() by (span.svc, span.code)`, o, spans)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{1, 2, 5} {
		for _, top := range []bool{true, false} {
			stage := fmt.Sprintf("topk(%d)", k)
			if !top {
				stage = fmt.Sprintf("bottomk(%d)", k)
			}
			got, err := evalSpans(t, `{} | count_over_time() by (span.svc, span.code) | `+stage, o, spans)
			if err != nil {
				t.Fatal(err)
			}
			// The reference: per timestamp, the full result's series ranked.
			want := map[string]map[int64]float64{}
			byTS := map[int64][]int{}
			for si, s := range full {
				for _, smp := range s.Samples {
					byTS[smp.TimestampMs] = append(byTS[smp.TimestampMs], si)
				}
			}
			for ts, idx := range byTS {
				val := func(si int) float64 {
					for _, smp := range full[si].Samples {
						if smp.TimestampMs == ts {
							return smp.Value
						}
					}
					panic("no sample")
				}
				sort.SliceStable(idx, func(a, b int) bool {
					va, vb := val(idx[a]), val(idx[b])
					if va != vb {
						return va > vb == top
					}
					return idx[a] < idx[b]
				})
				for _, si := range idx[:min(k, len(idx))] {
					key := labelsText(full[si].Labels)
					if want[key] == nil {
						want[key] = map[int64]float64{}
					}
					want[key][ts] = val(si)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%s: %d series, want %d", stage, len(got), len(want))
			}
			for _, s := range got {
				w := want[labelsText(s.Labels)]
				if len(s.Samples) != len(w) {
					t.Fatalf("%s: %s has %d samples, want %d", stage, labelsText(s.Labels), len(s.Samples), len(w))
				}
				for _, smp := range s.Samples {
					if wv, ok := w[smp.TimestampMs]; !ok || wv != smp.Value {
						t.Errorf("%s: %s at %d = %v, want %v (kept %v)", stage, labelsText(s.Labels), smp.TimestampMs, smp.Value, wv, ok)
					}
				}
			}
		}
	}
}

// span builds a generated span starting at start (ns) lasting dur.
func span(id int, start int64, dur time.Duration, name string, attrs ...Attr) genSpan {
	var g genSpan
	binary.BigEndian.PutUint64(g.traceID[8:], uint64(id))
	g.traceID[0] = byte(id * 37)
	binary.BigEndian.PutUint64(g.span.SpanID[:], uint64(id))
	g.span.Name, g.span.StartUnixNano, g.span.EndUnixNano = name, uint64(start), uint64(start+int64(dur))
	g.span.Attrs = attrs
	return g
}

func TestMetricsInstantAndAlignment(t *testing.T) {
	sec := int64(time.Second)
	s, e := AlignMetricsRange(time.Unix(1000, 0), time.Unix(4600, 0), time.Minute)
	if s.Unix() != 900 || e.Unix() != 4620 {
		t.Errorf("AlignMetricsRange(1000s, 4600s, 1m) = %d, %d; want 900, 4620", s.Unix(), e.Unix())
	}
	// Steps are right-closed and stamped with their end: a span at 960s
	// counts in the step stamped 960000, one at 960.001s in the next.
	spans := []genSpan{span(1, 960*sec, time.Millisecond, "a"), span(2, 960*sec+1e6, time.Millisecond, "a"), span(3, 900*sec, time.Millisecond, "a"), span(4, 4620*sec, time.Millisecond, "a")}
	got, err := evalSpans(t, `{} | count_over_time()`, MetricsOptions{Start: s, End: e, Step: time.Minute}, spans)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Samples) != 62 {
		t.Fatalf("got %+v", got)
	}
	smp := got[0].Samples
	if smp[0] != (MetricSample{960000, 1}) || smp[1] != (MetricSample{1020000, 1}) || smp[61] != (MetricSample{4620000, 1}) || smp[2].Value != 0 {
		t.Errorf("samples %v … %v", smp[:3], smp[61])
	}
	// A step spanning the whole range is an instant query, left unaligned.
	if s, e := AlignMetricsRange(time.Unix(1000, 0), time.Unix(4600, 0), time.Hour); s.Unix() != 1000 || e.Unix() != 4600 {
		t.Errorf("AlignMetricsRange(1000s, 4600s, 1h) = %d, %d; want it unchanged", s.Unix(), e.Unix())
	}
	got, err = evalSpans(t, `{} | count_over_time()`, MetricsOptions{Start: time.Unix(900, 0), End: time.Unix(4620, 0), Step: 3720 * time.Second}, spans)
	if err != nil || len(got) != 1 || len(got[0].Samples) != 1 || got[0].Samples[0] != (MetricSample{4620000, 4}) {
		t.Errorf("one step over the range: %+v, %v; want the 4 spans in [900s, 4620s] at 4620s", got, err)
	}
	// An unaligned range is widened to whole steps.
	m, err := NewMetricsEval(&MetricsQuery{Spans: &Filter{}, Func: MetricsRate}, MetricsOptions{Start: time.Unix(1001, 0), End: time.Unix(1059, 0), Step: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if s, e := m.Range(); s.Unix() != 990 || e.Unix() != 1080 {
		t.Errorf("Range = %d, %d; want 990, 1080", s.Unix(), e.Unix())
	}

	// An instant query is one step of [start, end], both ends included.
	spans = []genSpan{span(1, 100*sec, time.Second, "a"), span(2, 160*sec, 2*time.Second, "a"), span(3, 130*sec, 4*time.Second, "b"), span(4, 99*sec, time.Second, "a"), span(5, 161*sec, time.Second, "a")}
	o := MetricsOptions{Start: time.Unix(100, 0), End: time.Unix(160, 0), Instant: true}
	for _, c := range []struct {
		q    string
		want []InstantSeries
	}{
		{`{} | rate()`, []InstantSeries{{[]Label{{"__name__", StringValue("rate")}}, 3.0 / 60}}},
		{`{} | count_over_time() by (name)`, []InstantSeries{{[]Label{{"name", StringValue("a")}}, 2}, {[]Label{{"name", StringValue("b")}}, 1}}},
		{`{} | max_over_time(duration)`, []InstantSeries{{[]Label{{"__name__", StringValue("max_over_time")}}, 4}}},
		{`{ name = "nope" } | max_over_time(duration)`, []InstantSeries{}},
	} {
		q, err := ParseMetrics(c.q)
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewMetricsEval(q, o)
		if err != nil {
			t.Fatal(err)
		}
		for i := range spans {
			if ok, _ := Eval(context.Background(), q.Spans, &Trace{Spans: []Span{spans[i].span}}); len(ok) > 0 {
				m.ObserveSpan(spans[i].traceID, &spans[i].span, nil)
			}
		}
		res, err := m.Result(nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := InstantResult(res); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: instant = %v, want %v", c.q, got, c.want)
		}
		if len(res) > 0 && res[0].Samples[0].TimestampMs != 160000 {
			t.Errorf("%s: instant sample at %d, want the end", c.q, res[0].Samples[0].TimestampMs)
		}
	}
}

func TestMetricsLabelsAndOrder(t *testing.T) {
	sec := int64(time.Second)
	spans := []genSpan{
		span(1, 10*sec, 3*time.Millisecond, "a", Attr{"x", IntValue(1)}),
		span(2, 11*sec, 100*time.Millisecond, "b", Attr{"x", IntValue(2)}, Attr{"y", StringValue("q")}),
		span(3, 12*sec, 1500*time.Millisecond, "b"),
		span(4, 13*sec, 20*time.Millisecond, "c", Attr{"y", StringValue("r")}),
		span(5, 14*sec, 10*time.Second, "d", Attr{"x", IntValue(2)}, Attr{"y", StringValue("q")}),
	}
	o := MetricsOptions{Start: time.Unix(0, 0), End: time.Unix(60, 0), Step: time.Minute}
	for _, c := range []struct{ q, want string }{
		{`{} | rate()`, `{__name__="rate"}`},
		{`{} | avg_over_time(duration)`, `{__name__="avg_over_time"}`},
		{`{} | count_over_time() by (span.x, span.y)`, `{span.x=1} {span.x="nil"} {span.y="r"} {span.x=2, span.y="q"}`},
		{`{} | quantile_over_time(duration, .5, .9)`, `{p=0.5} {p=0.9}`},
		{`{} | quantile_over_time(duration, .9) by (name)`, `{name="a", p=0.9} {name="b", p=0.9} {name="c", p=0.9} {name="d", p=0.9}`},
		// Tempo sorts label values as protobuf text, so buckets sort as text.
		{`{} | histogram_over_time(duration)`, `{__bucket=0.004194304} {__bucket=0.033554432} {__bucket=0.134217728} {__bucket=17.179869184} {__bucket=2.147483648}`},
		{`{} | histogram_over_time(duration) by (name)`, `{name="a", __bucket=0.004194304} {name="b", __bucket=0.134217728} {name="b", __bucket=2.147483648} {name="c", __bucket=0.033554432} {name="d", __bucket=17.179869184}`},
	} {
		got, err := evalSpans(t, c.q, o, spans)
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, s := range got {
			ls := make([]string, len(s.Labels))
			for i, l := range s.Labels {
				v := l.Value.String()
				if l.Value.Type == TypeNil {
					v = `"nil"`
				}
				ls[i] = l.Key + "=" + v
			}
			parts = append(parts, "{"+strings.Join(ls, ", ")+"}")
		}
		if g := strings.Join(parts, " "); g != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.q, g, c.want)
		}
	}
}

func TestMetricsValuesEdgeCases(t *testing.T) {
	if g := math.Exp2(1.0 / 16); math.Abs(QuantileRelativeError-(g-1)/(g+1)) > 1e-15 {
		t.Errorf("QuantileRelativeError = %v, want %v", QuantileRelativeError, (g-1)/(g+1))
	}
	q, err := ParseMetrics(`{} | quantile_over_time(span.v, 0, .5, 1)`)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMetricsEval(q, MetricsOptions{Start: time.Unix(0, 0), End: time.Unix(60, 0), Step: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), -5, 0, 3, math.Inf(-1), 1e-300} {
		m.Observe(&Observation{StartUnixNano: uint64(time.Second), Value: v, HasValue: true})
	}
	m.Observe(&Observation{StartUnixNano: uint64(time.Second), Value: 7}) // no value: skipped
	got, err := m.Result(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{-5, 0, 3} // NaN and ±Inf are left out; quantiles of -5, 0, 1e-300, 3
	if len(got) != 3 {
		t.Fatalf("got %+v", got)
	}
	for i, s := range got {
		if v := s.Samples[0].Value; math.Abs(v-want[i]) > QuantileRelativeError*math.Abs(want[i]) {
			t.Errorf("p=%v: %v, want %v", s.Labels[0].Value.F, v, want[i])
		}
	}
	q, _ = ParseMetrics(`{} | min_over_time(span.v)`)
	m, _ = NewMetricsEval(q, MetricsOptions{Start: time.Unix(0, 0), End: time.Unix(60, 0), Step: time.Minute})
	for _, v := range []float64{math.NaN(), 4, math.Inf(-1)} {
		m.Observe(&Observation{StartUnixNano: uint64(time.Second), Value: v, HasValue: true})
	}
	if got, _ := m.Result(nil); len(got) != 1 || !math.IsInf(got[0].Samples[0].Value, -1) {
		t.Errorf("min over NaN, 4, -Inf = %+v, want -Inf", got)
	}
}

func TestMetricsLimits(t *testing.T) {
	q, _ := ParseMetrics(`{} | count_over_time() by (span.code)`)
	if _, err := NewMetricsEval(q, MetricsOptions{Start: time.Unix(0, 0), End: time.Unix(10001, 0), Step: time.Second}); !errors.Is(err, ErrTooManyPoints) || err.Error() != "step of 1s is too small, minimum step for given range is 1.0001s" {
		t.Errorf("10001 points: %v", err)
	}
	if _, err := NewMetricsEval(q, MetricsOptions{Start: time.Unix(0, 0), End: time.Unix(10000, 0), Step: time.Second}); err != nil {
		t.Errorf("10000 points: %v", err)
	}
	for _, o := range []MetricsOptions{{Start: time.Unix(5, 0), End: time.Unix(5, 0), Step: time.Second}, {Start: time.Unix(0, 0), End: time.Unix(5, 0)}} {
		if _, err := NewMetricsEval(q, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	spans := genSpans(rng, 500, int64(time.Second), int64(time.Minute))
	o := MetricsOptions{Start: time.Unix(0, 0), End: time.Unix(60, 0), Step: 10 * time.Second, MaxSeries: 3}
	got, err := evalSpans(t, `{} | count_over_time() by (span.code)`, o, spans) // 5 series: 4 codes and none
	if !errors.Is(err, ErrTooManySeries) || len(got) != 3 || !strings.HasPrefix(err.Error(), "Response exceeds maximum series limit of 3, a partial response") {
		t.Errorf("MaxSeries 3 of 5: %d series, %v", len(got), err)
	}
	got, err = evalSpans(t, `{} | quantile_over_time(duration, .1, .2) by (span.code)`, o, spans) // 10 series
	if !errors.Is(err, ErrTooManySeries) || len(got) != 2 {
		t.Errorf("MaxSeries 3 of 10 quantile series: %d series, %v", len(got), err)
	}
	o.MaxSeries = 5
	if got, err = evalSpans(t, `{} | count_over_time() by (span.code)`, o, spans); err != nil || len(got) != 5 {
		t.Errorf("MaxSeries 5 of 5: %d series, %v", len(got), err)
	}
}

// TestMetricsExemplarSpread: the budget reaches every series before any
// series gets a second exemplar, and a series' exemplars spread over time.
func TestMetricsExemplarSpread(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	base := int64(1_699_999_980) * 1e9 // a whole minute
	spans := genSpans(rng, 5000, base, base+int64(time.Hour))
	o := MetricsOptions{Start: time.Unix(0, base), End: time.Unix(0, base+int64(time.Hour)), Step: time.Minute, Exemplars: 7}
	got, _ := evalSpans(t, `{} | rate() by (span.svc, resource.region)`, o, spans) // 18 series
	n := 0
	for _, s := range got {
		if len(s.Exemplars) > 1 {
			t.Errorf("%s has %d exemplars while others may have none", labelsText(s.Labels), len(s.Exemplars))
		}
		n += len(s.Exemplars)
	}
	if n != 7 {
		t.Errorf("%d exemplars, want 7", n)
	}
	o.Exemplars = 12
	got, _ = evalSpans(t, `{} | max_over_time(duration)`, o, spans)
	ex := got[0].Exemplars
	if len(ex) != 12 {
		t.Fatalf("%d exemplars, want 12", len(ex))
	}
	// One per 5-minute stretch, each the slowest span of its stretch.
	for i, e := range ex {
		lo, hi := base+int64(i)*int64(5*time.Minute), base+int64(i+1)*int64(5*time.Minute)
		slowest := 0.0
		for j := range spans {
			if st := int64(spans[j].span.StartUnixNano); st > lo && st <= hi {
				slowest = max(slowest, float64(spans[j].span.Duration())/1e9)
			}
		}
		if e.Value != slowest {
			t.Errorf("exemplar %d = %v, want the slowest of its stretch, %v", i, e.Value, slowest)
		}
	}
}

func TestMetricsCompare(t *testing.T) {
	sec := int64(time.Second)
	res := []Attr{{"service.name", StringValue("shop")}}
	mk := func(id int, at int64, name string, status int64, attrs ...Attr) genSpan {
		g := span(id, at*sec, time.Millisecond, name, attrs...)
		g.span.StatusCode, g.span.Kind, g.span.Resource = status, KindServer, res
		return g
	}
	spans := []genSpan{
		mk(1, 5, "GET", StatusError, Attr{"code", IntValue(500)}),
		mk(2, 6, "GET", StatusOK, Attr{"code", IntValue(200)}),
		mk(3, 15, "POST", StatusError, Attr{"code", IntValue(500)}, Attr{"d", Value{Type: TypeDuration, I: 5}}),
		mk(4, 16, "PUT", StatusOK),
		mk(5, 17, "GET", StatusOK, Attr{"code", IntValue(200)}),
		mk(6, 18, "DELETE", StatusOK, Attr{"code", IntValue(404)}),
	}
	o := MetricsOptions{Start: time.Unix(0, 0), End: time.Unix(20, 0), Step: 10 * time.Second, Exemplars: 2}
	got, err := evalSpans(t, `{} | compare({ status = error }, 2)`, o, spans)
	if err != nil {
		t.Fatal(err)
	}
	text := func(ss []MetricSeries) string {
		var b strings.Builder
		for _, s := range ss {
			b.WriteString(labelsText(s.Labels))
			for _, smp := range s.Samples {
				fmt.Fprintf(&b, " %d:%g", smp.TimestampMs/1000, smp.Value)
			}
			b.WriteString("\n")
		}
		return b.String()
	}
	want := `{__meta_type="baseline", kind=server} 10:1 20:3
{__meta_type="baseline", name="DELETE"} 10:0 20:1
{__meta_type="baseline", name="GET"} 10:1 20:1
{__meta_type="baseline", resource.service.name="shop"} 10:1 20:3
{__meta_type="baseline", span.code=200} 10:1 20:1
{__meta_type="baseline", span.code=404} 10:0 20:1
{__meta_type="baseline", status=ok} 10:1 20:3
{__meta_type="baseline_total", kind=nil} 10:1 20:3
{__meta_type="baseline_total", name=nil} 10:1 20:3
{__meta_type="baseline_total", resource.service.name=nil} 10:1 20:3
{__meta_type="baseline_total", span.code=nil} 10:1 20:2
{__meta_type="baseline_total", status=nil} 10:1 20:3
{__meta_type="selection", kind=server} 10:1 20:1
{__meta_type="selection", name="GET"} 10:1 20:0
{__meta_type="selection", name="POST"} 10:0 20:1
{__meta_type="selection", resource.service.name="shop"} 10:1 20:1
{__meta_type="selection", span.code=500} 10:1 20:1
{__meta_type="selection", status=error} 10:1 20:1
{__meta_type="selection_total", kind=nil} 10:1 20:1
{__meta_type="selection_total", name=nil} 10:1 20:1
{__meta_type="selection_total", resource.service.name=nil} 10:1 20:1
{__meta_type="selection_total", span.code=nil} 10:1 20:1
{__meta_type="selection_total", status=nil} 10:1 20:1
`
	if g := text(got); g != want {
		t.Errorf("compare:\n%s\nwant\n%s", g, want)
	}
	// Exemplars: two per side, on the totals of the attributes their span has.
	perSide := map[string]map[[16]byte]bool{}
	for _, s := range got {
		typ := s.Labels[0].Value.S
		for _, e := range s.Exemplars {
			if !strings.HasSuffix(typ, "_total") {
				t.Errorf("exemplar on %s", labelsText(s.Labels))
			}
			if perSide[typ] == nil {
				perSide[typ] = map[[16]byte]bool{}
			}
			perSide[typ][e.TraceID] = true
			if step := (e.TimestampMs*1e6 - 1) / int64(10*time.Second); e.Value != s.Samples[step].Value {
				t.Errorf("exemplar value %v on %s", e.Value, labelsText(s.Labels))
			}
		}
	}
	if len(perSide["baseline_total"]) != 2 || len(perSide["selection_total"]) != 2 {
		t.Errorf("exemplars per side: %v", perSide)
	}

	// A window: only spans in (10s, 20s] can be the selection.
	got, err = evalSpans(t, `{} | compare({ status = error }, 1, 10000000000, 20000000000)`, o, spans)
	if err != nil {
		t.Fatal(err)
	}
	g := text(got)
	for _, line := range []string{
		`{__meta_type="selection", name="POST"} 10:0 20:1`,
		`{__meta_type="baseline", status=ok} 10:1 20:3`, // the top 1 of status: ok (4) over error (1)
		`{__meta_type="baseline_total", status=nil} 10:2 20:3`,
	} {
		if !strings.Contains(g, line+"\n") {
			t.Errorf("windowed compare lacks %s:\n%s", line, g)
		}
	}
	if strings.Contains(g, `status=error} 10:1`) {
		t.Errorf("windowed compare counts the error at 5s as selection:\n%s", g)
	}
}

// BenchmarkMetricsEvalObserve measures Observe for series that exist: the
// hot path must not allocate.
func BenchmarkMetricsEvalObserve(b *testing.B) {
	for _, qs := range []string{
		`{} | rate() by (resource.service.name)`,
		`{} | quantile_over_time(duration, .5, .95, .99) by (resource.service.name)`,
	} {
		b.Run(qs[strings.Index(qs, "| ")+2:strings.Index(qs, "(")], func(b *testing.B) {
			q, err := ParseMetrics(qs)
			if err != nil {
				b.Fatal(err)
			}
			base := int64(1_700_000_000) * 1e9
			m, err := NewMetricsEval(q, MetricsOptions{Start: time.Unix(0, base), End: time.Unix(0, base+int64(time.Hour)), Step: 15 * time.Second, Exemplars: 100})
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			const n = 1 << 16
			obs := make([]Observation, n)
			svcs := []string{"cart", "checkout", "db", "frontend", "payments", "search", "auth", "ads"}
			for i := range obs {
				obs[i] = Observation{
					StartUnixNano: uint64(base + rng.Int64N(int64(time.Hour))),
					Value:         math.Exp(rng.Float64()*math.Log(1e7)) / 1e6, // 1µs … 10s
					HasValue:      true,
					Group:         []Value{StringValue(svcs[rng.IntN(len(svcs))])},
				}
				obs[i].TraceID[0], obs[i].TraceID[15] = byte(i), byte(i>>8)
			}
			for i := range obs { // warm up: create the series and their buckets
				m.Observe(&obs[i])
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				m.Observe(&obs[i&(n-1)])
			}
		})
	}
}

// TestMetricsMerge: spans observed by several evaluations, split at random,
// then merged give exactly the result of one evaluation observing them all,
// exemplars included.
func TestMetricsMerge(t *testing.T) {
	queries := []string{
		`{} | rate() by (span.svc)`,
		`{} | count_over_time() by (span.code)`,
		`{} | sum_over_time(span.size) by (name)`,
		`{} | min_over_time(duration) by (span.svc)`,
		`{} | max_over_time(span.size) by (.region, kind)`,
		`{} | avg_over_time(duration) by (span.code)`,
		`{} | quantile_over_time(duration, .5, .9, .99) by (span.svc)`,
		`{} | histogram_over_time(duration) by (resource.region)`,
		`{} | rate() by (span.svc) | topk(2)`,
	}
	for seed := range 4 {
		rng := rand.New(rand.NewPCG(uint64(seed), 91))
		base := int64(1_700_000_000)*1e9 + rng.Int64N(1e12)
		length := int64(time.Duration(1+rng.IntN(60)) * time.Minute)
		spans := genSpans(rng, 500+rng.IntN(2000), base-length/4, base+length+length/4)
		for _, qs := range queries {
			q, err := ParseMetrics(qs)
			if err != nil {
				t.Fatal(err)
			}
			o := MetricsOptions{Start: time.Unix(0, base), End: time.Unix(0, base+length), Step: 13 * time.Second, Exemplars: 20, MaxSeries: 1 + seed*40}
			whole, err := NewMetricsEval(q, o)
			if err != nil {
				t.Fatal(err)
			}
			parts := make([]*MetricsEval, 1+rng.IntN(3))
			for i := range parts {
				if parts[i], err = NewMetricsEval(q, o); err != nil {
					t.Fatal(err)
				}
			}
			for i := range spans {
				whole.ObserveSpan(spans[i].traceID, &spans[i].span, nil)
				parts[rng.IntN(len(parts))].ObserveSpan(spans[i].traceID, &spans[i].span, nil)
			}
			for _, p := range parts[1:] {
				if err := parts[0].Merge(p); err != nil {
					t.Fatal(err)
				}
			}
			want, wantErr := whole.Result(nil)
			got, gotErr := parts[0].Result(nil)
			if (wantErr == nil) != (gotErr == nil) {
				t.Fatalf("seed %d %s: merged error %v, whole %v", seed, qs, gotErr, wantErr)
			}
			if wantErr != nil {
				continue // a partial result keeps the series seen first, which the split changes
			}
			if !sameSeries(got, want) {
				t.Errorf("seed %d %s: merged result differs from the whole one:\n got %v\nwant %v", seed, qs, got, want)
			}
		}
	}
	q, _ := ParseMetrics(`{} | compare({ status = error })`)
	a, _ := NewMetricsEval(q, MetricsOptions{Start: time.Unix(0, 0), End: time.Unix(60, 0), Step: time.Minute})
	b, _ := NewMetricsEval(q, MetricsOptions{Start: time.Unix(0, 0), End: time.Unix(60, 0), Step: time.Minute})
	if a.Merge(b) == nil {
		t.Error("compare() evaluations merged")
	}
}

// sameSeries compares two results, values within 1e-9 of each other
// relatively: sums added in another order may differ in their last bits.
func sameSeries(a, b []MetricSeries) bool {
	close := func(x, y float64) bool {
		return x == y || math.Abs(x-y) <= 1e-9*math.Max(math.Abs(x), math.Abs(y))
	}
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !reflect.DeepEqual(x.Labels, y.Labels) || len(x.Samples) != len(y.Samples) || len(x.Exemplars) != len(y.Exemplars) {
			return false
		}
		for j := range x.Samples {
			if x.Samples[j].TimestampMs != y.Samples[j].TimestampMs || !close(x.Samples[j].Value, y.Samples[j].Value) {
				return false
			}
		}
		for j := range x.Exemplars {
			ex, ey := x.Exemplars[j], y.Exemplars[j]
			if ex.TraceID != ey.TraceID || ex.SpanID != ey.SpanID || ex.TimestampMs != ey.TimestampMs || !close(ex.Value, ey.Value) {
				return false
			}
		}
	}
	return true
}
