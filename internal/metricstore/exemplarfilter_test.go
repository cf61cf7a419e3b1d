package metricstore

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

func TestExemplarFilterCheck(t *testing.T) {
	newest := exemplarOrder{ts: 100, value: 2, lhash: 50}
	for _, c := range []struct {
		name string
		k    exemplarOrder
		none bool
		want verdict
	}{
		{name: "first of its series", k: exemplarOrder{ts: 1}, none: true, want: fresh},
		{name: "equal to the newest", k: newest, want: duplicate},
		{name: "later", k: exemplarOrder{ts: 101, value: 0, lhash: 0}, want: fresh},
		{name: "earlier", k: exemplarOrder{ts: 99, value: 9, lhash: 99}, want: outOfOrder},
		{name: "same time, higher value", k: exemplarOrder{ts: 100, value: 3}, want: fresh},
		{name: "same time, lower value", k: exemplarOrder{ts: 100, value: 1, lhash: 99}, want: outOfOrder},
		{name: "same time and value, higher label hash", k: exemplarOrder{ts: 100, value: 2, lhash: 51}, want: fresh},
		{name: "same time and value, lower label hash", k: exemplarOrder{ts: 100, value: 2, lhash: 49}, want: outOfOrder},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := check(c.k, newest, !c.none); got != c.want {
				t.Errorf("check(%+v) = %d, want %d", c.k, got, c.want)
			}
		})
	}
}

// TestExemplarFilterMatchesPrometheus feeds one random stream of exemplars,
// with repeats and disorder, to the filter and to Prometheus's own exemplar
// storage (large enough to remember every series), and requires the same
// exemplars to be kept.
func TestExemplarFilterMatchesPrometheus(t *testing.T) {
	prom, err := tsdb.NewCircularExemplarStorage(100_000, tsdb.NewExemplarMetrics(prometheus.NewRegistry()), 0)
	if err != nil {
		t.Fatal(err)
	}
	f := newExemplarFilter(1 << 20)
	rng := rand.New(rand.NewPCG(3, 4))
	series := make([]labels.Labels, 5)
	for i := range series {
		series[i] = labels.FromStrings("__name__", "m_bucket", "le", fmt.Sprint(i))
	}
	kept := map[int][]exemplar.Exemplar{}
	var keys []exemplarKey
	var stream []exemplar.Exemplar
	for range 3000 {
		s := rng.IntN(len(series))
		e := exemplar.Exemplar{
			Labels: labels.FromStrings("trace_id", fmt.Sprintf("%032x", rng.IntN(4))),
			Value:  float64(rng.IntN(3)),
			Ts:     int64(rng.IntN(300)),
			HasTs:  true,
		}
		if err := prom.AddExemplar(series[s], e); err != nil && err != storage.ErrOutOfOrderExemplar {
			t.Fatal(err)
		}
		keys = append(keys, exemplarKey{storage.SeriesRef(s), exemplarOrder{e.Ts, e.Value, e.Labels.Hash()}})
		stream = append(stream, e)
	}
	// The filter takes the stream in batches, as commits hand it over.
	for lo := 0; lo < len(keys); lo += 7 {
		hi := min(lo+7, len(keys))
		idx, _ := f.filter(keys[lo:hi])
		for _, i := range idx {
			s := int(keys[lo+i].ref)
			kept[s] = append(kept[s], stream[lo+i])
		}
	}
	q, err := prom.ExemplarQuerier(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for s, ls := range series {
		res, err := q.Select(0, 1000, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "le", ls.Get("le"))})
		if err != nil {
			t.Fatal(err)
		}
		var want []exemplar.Exemplar
		if len(res) == 1 {
			want = res[0].Exemplars
		}
		if len(want) == 0 || len(want) != len(kept[s]) {
			t.Fatalf("series %d: kept %d exemplars, Prometheus %d", s, len(kept[s]), len(want))
		}
		for i := range want {
			if !want[i].Equals(kept[s][i]) {
				t.Errorf("series %d exemplar %d: kept %v, Prometheus %v", s, i, kept[s][i], want[i])
			}
		}
	}
}

// TestExemplarFilterForgets: series without an exemplar for filterForget
// are forgotten at the next sweep; others are kept.
func TestExemplarFilterForgets(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f := newExemplarFilter(1 << 20)
	f.now = func() time.Time { return now }
	at := func(d time.Duration) exemplarOrder { return exemplarOrder{ts: now.Add(d).UnixMilli(), value: 1} }
	f.filter([]exemplarKey{{1, at(-2 * filterForget)}, {2, at(-time.Minute)}})
	if len(f.newest) != 2 {
		t.Fatalf("%d series remembered before any sweep is due, want 2", len(f.newest))
	}
	now = now.Add(filterSweep)
	f.filter(nil)
	if _, ok := f.newest[1]; ok || len(f.newest) != 1 {
		t.Errorf("after the sweep: %v, want only series 2", f.newest)
	}
	// A forgotten series starts over: its old exemplar is fresh again.
	if fresh, _ := f.filter([]exemplarKey{{1, at(-2*filterForget - filterSweep)}}); len(fresh) != 1 {
		t.Errorf("a forgotten series' exemplar was not fresh")
	}
}
