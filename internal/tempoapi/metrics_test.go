package tempoapi

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/traceql"
	"github.com/lookout-dev/lookout/internal/tracestore"
)

// genSpan is a generated span as the brute-force reference sees it.
type genSpan struct {
	service string
	start   time.Time
	dur     time.Duration
	err     bool
}

// TestMetricsDifferential stores random spans and checks rate(),
// count_over_time() and quantile_over_time() answers of
// /api/metrics/query_range against the same computed by brute force over
// every span with Tempo's steps: start aligned down and one step more, end
// aligned up, each step right-closed and stamped with its end. Counts are
// exact; quantiles are within traceql.QuantileRelativeError of the true
// one (the value at rank ⌈q·n⌉).
func TestMetricsDifferential(t *testing.T) {
	now := base.Add(time.Hour)
	store, err := tracestore.Open(t.TempDir(), tracestore.Options{Now: func() time.Time { return now }, RetentionInterval: time.Hour}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rng := rand.New(rand.NewPCG(3, 5))
	services := []string{"a", "b", "c"}
	var spans []genSpan
	for r := range 40 {
		td := ptrace.NewTraces()
		for tr := range 25 {
			svc := services[rng.IntN(len(services))]
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", svc)
			ss := rs.ScopeSpans().AppendEmpty()
			start := base.Add(time.Duration(rng.Int64N(int64(40 * time.Minute))))
			for k := range 1 + rng.IntN(3) {
				g := genSpan{service: svc, start: start.Add(time.Duration(k) * time.Duration(rng.Int64N(int64(2*time.Second)))),
					dur: time.Duration(math.Exp(rng.Float64()*12)) * time.Microsecond, err: rng.IntN(5) == 0}
				// Some spans start exactly on a step boundary.
				if rng.IntN(20) == 0 {
					g.start = g.start.Truncate(time.Minute)
				}
				sp := ss.Spans().AppendEmpty()
				sp.SetTraceID(pcommon.TraceID{byte(r), byte(tr), 15: 1})
				sp.SetSpanID(pcommon.SpanID{byte(r), byte(tr), byte(k), 7: 1})
				if k > 0 {
					sp.SetParentSpanID(pcommon.SpanID{byte(r), byte(tr), 0, 7: 1})
				}
				sp.SetName("op")
				sp.SetStartTimestamp(pcommon.NewTimestampFromTime(g.start))
				sp.SetEndTimestamp(pcommon.NewTimestampFromTime(g.start.Add(g.dur)))
				if g.err {
					sp.Status().SetCode(ptrace.StatusCodeError)
				}
				spans = append(spans, g)
			}
		}
		if _, err := store.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
	}
	h := NewHandler(Options{Traces: store})
	for _, c := range []struct {
		q        string
		step     time.Duration
		from, to time.Duration // relative to base
	}{
		{`{ } | rate() by (resource.service.name)`, time.Minute, 0, 45 * time.Minute},
		{`{ status = error } | count_over_time() by (resource.service.name)`, 37 * time.Second, 5 * time.Minute, 25 * time.Minute},
		{`{ } | quantile_over_time(duration, .5, .9, .99) by (resource.service.name)`, 5 * time.Minute, 0, 45 * time.Minute},
		{`{ status != error } | quantile_over_time(duration, .75)`, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute},
	} {
		mq, err := traceql.ParseMetrics(c.q)
		if err != nil {
			t.Fatal(err)
		}
		from, to := base.Add(c.from), base.Add(c.to)
		v := url.Values{"q": {c.q}, "start": {strconv.FormatInt(from.Unix(), 10)}, "end": {strconv.FormatInt(to.Unix(), 10)}, "step": {c.step.String()}}
		code, body := serve(h, "/api/metrics/query_range?"+v.Encode())
		if code != 200 {
			t.Fatalf("%s: %d %s", c.q, code, body)
		}
		got := parseRange(t, body)
		want := bruteMetrics(spans, mq, from, to, c.step)
		if len(got) != len(want) {
			t.Errorf("%s: series %v, want %v", c.q, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
		for name, w := range want {
			g := got[name]
			if len(g) != len(w) {
				t.Errorf("%s %s: %d samples, want %d", c.q, name, len(g), len(w))
				continue
			}
			for ts, wv := range w {
				gv, ok := g[ts]
				tol := 1e-9
				if mq.Func == traceql.MetricsQuantileOverTime {
					tol = traceql.QuantileRelativeError*math.Abs(wv) + 1e-9
				}
				if !ok || math.Abs(gv-wv) > tol {
					t.Errorf("%s %s at %d: %v, want %v", c.q, name, ts, gv, wv)
				}
			}
		}
	}
}

func serve(h http.Handler, path string) (int, []byte) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.Bytes()
}

// parseRange reads a query_range answer as series name → timestamp (ms) → value.
func parseRange(t *testing.T, body []byte) map[string]map[int64]float64 {
	t.Helper()
	var resp struct {
		Series []struct {
			Labels []struct {
				Key   string         `json:"key"`
				Value map[string]any `json:"value"`
			} `json:"labels"`
			Samples []struct {
				TimestampMs string  `json:"timestampMs"`
				Value       float64 `json:"value"`
			} `json:"samples"`
		} `json:"series"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[int64]float64{}
	for _, s := range resp.Series {
		name := ""
		for _, l := range s.Labels {
			for _, v := range l.Value {
				name += fmt.Sprintf("%s=%v,", l.Key, v)
			}
		}
		m := map[int64]float64{}
		for _, p := range s.Samples {
			ts, err := strconv.ParseInt(p.TimestampMs, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			m[ts] = p.Value // an absent value is 0, as jsonpb leaves zeros out
		}
		out[name] = m
	}
	return out
}

// bruteMetrics computes the expected series, named as parseRange names them.
func bruteMetrics(spans []genSpan, q *traceql.MetricsQuery, from, to time.Time, step time.Duration) map[string]map[int64]float64 {
	st := int64(step)
	s := from.UnixNano() - from.UnixNano()%st - st
	e := to.UnixNano()
	if r := e % st; r != 0 {
		e += st - r
	}
	n := int((e - s) / st)
	matches := func(g genSpan) bool {
		cond := q.Spans.String()
		switch cond {
		case "{ status = error }":
			return g.err
		case "{ status != error }":
			return !g.err
		}
		return true
	}
	values := map[string][][]float64{} // group → step → durations
	for _, g := range spans {
		ts := g.start.UnixNano()
		if ts <= s || ts > e || !matches(g) {
			continue
		}
		group := ""
		if len(q.By) > 0 {
			group = "resource.service.name=" + g.service + ","
		}
		if values[group] == nil {
			values[group] = make([][]float64, n)
		}
		i := int((ts - s - 1) / st)
		values[group][i] = append(values[group][i], g.dur.Seconds())
	}
	out := map[string]map[int64]float64{}
	for group, steps := range values {
		stamp := func(i int) int64 { return (s + int64(i+1)*st) / 1e6 }
		switch q.Func {
		case traceql.MetricsRate, traceql.MetricsCountOverTime:
			name := group
			if name == "" {
				name = "__name__=" + q.Func.String() + ","
			}
			m := map[int64]float64{}
			for i, v := range steps {
				m[stamp(i)] = float64(len(v))
				if q.Func == traceql.MetricsRate {
					m[stamp(i)] /= step.Seconds()
				}
			}
			out[name] = m
		case traceql.MetricsQuantileOverTime:
			for _, p := range q.Quantiles {
				m := map[int64]float64{}
				for i, v := range steps {
					m[stamp(i)] = 0
					if len(v) > 0 {
						slices.Sort(v)
						m[stamp(i)] = v[int(math.Ceil(p*float64(len(v))))-1]
					}
				}
				out[group+"p="+strconv.FormatFloat(p, 'g', -1, 64)+","] = m
			}
		}
	}
	return out
}

// FuzzMetricsRequest sends arbitrary query_range and query parameters: the
// answer is a 200 with JSON or a 400, never another status, a panic or a
// hang (steps are bounded before anything is allocated).
func FuzzMetricsRequest(f *testing.F) {
	fx := newFixture(f, Options{})
	for _, c := range [][5]string{
		{`{ } | rate() by (resource.service.name)`, "1795521540", "1795521720", "1m", "10"},
		{`{ status = error } | quantile_over_time(duration, .5, .99)`, "1795521540.5", "2026-11-24T12:03:00Z", "15", ""},
		{`{ } | compare({ kind = server }, 3)`, "1795521540000000000", "1795521720000000000", "", "0"},
		{`{ } | histogram_over_time(duration) with (exemplars=3)`, "", "", "1s", "1000"},
		{`{ } | rate()`, "0", "99999999999999999999", "0.001", "-1"},
		{`{ } | count_over_time() | topk(1)`, "1795521540", "1795521720", "1h", "x"},
	} {
		f.Add(c[0], c[1], c[2], c[3], c[4])
	}
	f.Fuzz(func(t *testing.T, q, start, end, step, exemplars string) {
		v := url.Values{"q": {q}, "start": {start}, "end": {end}, "step": {step}, "exemplars": {exemplars}}
		for _, path := range []string{"/api/metrics/query_range?", "/api/metrics/query?"} {
			code, body := serve(fx.h, path+v.Encode())
			if code != 200 && code != 400 {
				t.Fatalf("%s%s: %d %s", path, v.Encode(), code, body)
			}
			if code == 200 && !json.Valid(body) {
				t.Fatalf("%s%s: invalid JSON %s", path, v.Encode(), body)
			}
		}
	})
}

// TestMetricsEndCutoff: a range ending now stops at the last whole step
// before the freshest 30 s, as Tempo's query_end_cutoff does, so no step
// shows spans that are still arriving as a drop.
func TestMetricsEndCutoff(t *testing.T) {
	store, err := tracestore.Open(t.TempDir(), tracestore.DefaultOptions(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "a")
	for i := range 3 {
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{1, 15: byte(i)})
		sp.SetSpanID(pcommon.SpanID{1, 7: byte(i)})
		sp.SetName("op")
		start := now.Add(-time.Duration(60+40*i) * time.Second)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
	}
	if _, err := store.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	h := NewHandler(Options{Traces: store})
	v := url.Values{"q": {`{ } | count_over_time()`}, "start": {strconv.FormatInt(now.Add(-5*time.Minute).Unix(), 10)},
		"end": {strconv.FormatInt(now.Unix(), 10)}, "step": {"20s"}}
	code, body := serve(h, "/api/metrics/query_range?"+v.Encode())
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var total float64
	last := int64(0)
	for _, samples := range parseRange(t, body) {
		for ts, v := range samples {
			total += v
			last = max(last, ts)
		}
	}
	if total != 3 {
		t.Errorf("counted %v spans, want 3", total)
	}
	if limit := now.Add(-30 * time.Second).UnixMilli(); last > limit || last < limit-20_000 {
		t.Errorf("last step ends at %d, want the last whole 20 s step before %d", last, limit)
	}
	v.Set("start", strconv.FormatInt(now.Add(-10*time.Second).Unix(), 10))
	if code, body := serve(h, "/api/metrics/query?"+v.Encode()); code != 400 {
		t.Errorf("an instant query within the cutoff: %d %s", code, body)
	}
}
