package promapi

import (
	"cmp"
	"context"
	"encoding/json"
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
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/lookout-dev/lookout/internal/metricstore"
)

type genExemplar struct {
	series string
	ts     int64 // ms
	value  float64
}

// seedExemplars stores, through OTLP into the real TSDB, one histogram
// point with one exemplar of a random value per series every 15 s.
func seedExemplars(t *testing.T, r *rand.Rand) (http.Handler, []genExemplar) {
	t.Helper()
	s, err := metricstore.Open(t.TempDir(), metricstore.DefaultOptions(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	var gen []genExemplar
	for i := range 40 {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "svc")
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		m := ms.AppendEmpty()
		m.SetName("latency")
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		at := t0.Add(time.Duration(i) * 15 * time.Second)
		for _, country := range []string{"DE", "US"} {
			dp := h.DataPoints().AppendEmpty()
			dp.Attributes().PutStr("country", country)
			dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(-time.Minute)))
			dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
			dp.ExplicitBounds().FromRaw([]float64{1000})
			dp.BucketCounts().FromRaw([]uint64{uint64(i + 1), 0})
			dp.SetCount(uint64(i + 1))
			// A few repeated values make ties.
			v := math.Round(r.Float64()*20) / 2
			e := dp.Exemplars().AppendEmpty()
			e.SetDoubleValue(v)
			e.SetTimestamp(pcommon.NewTimestampFromTime(at.Add(-time.Second)))
			e.SetTraceID(pcommon.TraceID{1, byte(i), country[0]})
			gen = append(gen, genExemplar{series: country, ts: at.Add(-time.Second).UnixMilli(), value: v})
		}
		if _, err := s.ConsumeMetrics(context.Background(), md); err != nil {
			t.Fatal(err)
		}
	}
	api, err := New(storeOptions(s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Close() })
	return api.Handler(), gen
}

// TestQueryExemplarsTail compares the extension parameters' answers with a
// brute-force reference over generated exemplars.
func TestQueryExemplarsTail(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	h, gen := seedExemplars(t, r)
	srv := httptest.NewServer(h)
	defer srv.Close()
	type answer struct {
		Status string `json:"status"`
		Data   []struct {
			SeriesLabels map[string]string `json:"seriesLabels"`
			Exemplars    []struct {
				Value     string  `json:"value"`
				Timestamp float64 `json:"timestamp"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	for c := range 200 {
		params := url.Values{"query": {"latency_bucket"}, "start": {strconv.FormatInt(t0.Add(-time.Minute).Unix(), 10)}, "end": {strconv.FormatInt(t0.Add(time.Hour).Unix(), 10)}}
		lo, hi, limit := math.Inf(-1), math.Inf(1), 0
		if r.IntN(2) == 0 {
			lo = math.Round(r.Float64()*20) / 2
			params.Set("min_value", strconv.FormatFloat(lo, 'f', -1, 64))
		}
		if r.IntN(2) == 0 {
			hi = max(lo, math.Round(r.Float64()*20)/2)
			params.Set("max_value", strconv.FormatFloat(hi, 'f', -1, 64))
		}
		if r.IntN(2) == 0 || len(params) == 3 {
			limit = r.IntN(6)
			params.Set("limit", strconv.Itoa(limit))
		}
		// The reference: per series, values in [lo, hi], highest first,
		// ties latest first, at most limit.
		want := map[string][]genExemplar{}
		for _, g := range gen {
			if g.value >= lo && g.value <= hi {
				want[g.series] = append(want[g.series], g)
			}
		}
		for k, es := range want {
			slices.SortStableFunc(es, func(a, b genExemplar) int { return cmp.Or(cmp.Compare(b.value, a.value), cmp.Compare(b.ts, a.ts)) })
			if limit > 0 && len(es) > limit {
				want[k] = es[:limit]
			}
		}
		resp, err := http.Get(srv.URL + "/api/v1/query_exemplars?" + params.Encode())
		if err != nil {
			t.Fatal(err)
		}
		var got answer
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("case %d %v: %d %v", c, params, resp.StatusCode, err)
		}
		if len(got.Data) != len(want) {
			t.Fatalf("case %d %v: %d series, want %d", c, params, len(got.Data), len(want))
		}
		for _, s := range got.Data {
			w := want[s.SeriesLabels["country"]]
			if len(s.Exemplars) != len(w) {
				t.Fatalf("case %d %v, %s: %d exemplars, want %d", c, params, s.SeriesLabels["country"], len(s.Exemplars), len(w))
			}
			for i, e := range s.Exemplars {
				v, _ := strconv.ParseFloat(e.Value, 64)
				if v != w[i].value || int64(math.Round(e.Timestamp*1000)) != w[i].ts {
					t.Fatalf("case %d %v, %s: exemplar %d is %v at %v, want %v at %d", c, params, s.SeriesLabels["country"], i, v, e.Timestamp, w[i].value, w[i].ts)
				}
			}
		}
	}
}

func TestQueryExemplarsTailBadInput(t *testing.T) {
	h, _ := seedExemplars(t, rand.New(rand.NewPCG(1, 1)))
	for _, bad := range []url.Values{
		{"min_value": {"5"}, "max_value": {"1"}},
		{"min_value": {"abc"}},
		{"max_value": {"NaN"}},
		{"limit": {"-1"}},
		{"limit": {"1e9"}},
		{"limit": {"100001"}},
		{"limit": {"ten"}},
	} {
		bad.Set("query", "latency_bucket")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/query_exemplars?"+bad.Encode(), nil))
		var e struct{ Status, ErrorType, Error string }
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != http.StatusBadRequest || e.Status != "error" || e.ErrorType != "bad_data" || e.Error == "" {
			t.Errorf("%v: %d %s, want 400 bad_data", bad, rec.Code, rec.Body)
		}
	}
}

func FuzzExemplarFilter(f *testing.F) {
	for _, s := range [][3]string{{"", "", ""}, {"1", "2", "3"}, {"5", "1", ""}, {"-Inf", "+Inf", "0"}, {"NaN", "", "-1"}, {"", "", "100001"}} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, lo, hi, limit string) {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/query_exemplars?"+url.Values{"min_value": {lo}, "max_value": {hi}, "limit": {limit}}.Encode(), nil)
		if err := r.ParseForm(); err != nil {
			return
		}
		f, err := parseExemplarFilter(r)
		if err != nil || f == nil {
			return
		}
		if f.min > f.max || math.IsNaN(f.min) || math.IsNaN(f.max) || f.limit < 0 || f.limit > maxExemplarLimit {
			t.Fatalf("accepted %+v from %q %q %q", *f, lo, hi, limit)
		}
	})
}
