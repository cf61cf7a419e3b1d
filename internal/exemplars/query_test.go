package exemplars_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/lookout-dev/lookout/internal/exemplars"
)

// TestSelectMatchesPrometheus feeds the same exemplars to Prometheus's
// in-memory exemplar storage and to the index, then compares Select for
// many ranges and matchers: same series, same order, same exemplars.
func TestSelectMatchesPrometheus(t *testing.T) {
	ctx := context.Background()
	x := openIndex(t, t.TempDir(), exemplars.Options{})
	defer x.Close()
	prom, err := tsdb.NewCircularExemplarStorage(100_000, tsdb.NewExemplarMetrics(prometheus.NewRegistry()), 0)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var series []labels.Labels
	for _, name := range []string{"webstore_payment_duration_bucket", "http_server_duration_bucket", "b_total"} {
		for _, le := range []string{"0.1", "1", "+Inf"} {
			for _, country := range []string{"US", "DE"} {
				series = append(series, labels.FromStrings("__name__", name, "le", le, "country", country, "job", "main-service"))
			}
		}
	}
	var recs []exemplars.Record
	ts := base.UnixMilli()
	for i := range 2000 {
		s := series[rng.IntN(len(series))]
		ts += int64(rng.IntN(3)) // repeated timestamps happen
		e := exemplar.Exemplar{
			Labels: labels.FromStrings("trace_id", traceHex(i), "span_id", fmt.Sprintf("%016x", i)),
			Value:  float64(rng.IntN(5)) / 4,
			Ts:     ts,
			HasTs:  true,
		}
		if err := prom.AddExemplar(s, e); err != nil {
			continue // Prometheus rejects out-of-order or duplicate; skip those for both
		}
		recs = append(recs, exemplars.Record{Series: s, Exemplar: e})
	}
	// Write in chunks, twice: the second write must be a no-op (dedupe).
	for range 2 {
		for i := 0; i < len(recs); i += 100 {
			if err := x.WriteExemplars(ctx, recs[i:min(i+100, len(recs))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	pq, _ := prom.ExemplarQuerier(ctx)
	xq, err := x.ExemplarQuerier(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := func(t labels.MatchType, n, v string) *labels.Matcher { return labels.MustNewMatcher(t, n, v) }
	matcherSets := [][][]*labels.Matcher{
		nil, // no matchers select nothing
		{{m(labels.MatchEqual, "__name__", "webstore_payment_duration_bucket")}},
		{{m(labels.MatchRegexp, "__name__", ".+")}},
		{{m(labels.MatchEqual, "country", "US"), m(labels.MatchNotEqual, "le", "+Inf")}},
		{{m(labels.MatchEqual, "__name__", "b_total")}, {m(labels.MatchEqual, "le", "0.1")}},
		{{m(labels.MatchEqual, "__name__", "nope")}},
	}
	end := ts
	ranges := [][2]int64{{base.UnixMilli(), end}, {base.UnixMilli() + 500, base.UnixMilli() + 900}, {end, end}, {0, base.UnixMilli() - 1}, {end + 1, end + 100}, {end, base.UnixMilli()}}
	compared := 0
	for _, ms := range matcherSets {
		for _, r := range ranges {
			want, err := pq.Select(r[0], r[1], ms...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := xq.Select(r[0], r[1], ms...)
			if err != nil {
				t.Fatal(err)
			}
			compared += len(want)
			if !reflect.DeepEqual(normalize(got), normalize(want)) {
				t.Errorf("Select(%d, %d, %v): got %d series, Prometheus %d; first difference:\n got %v\nwant %v",
					r[0], r[1], ms, len(got), len(want), first(got), first(want))
			}
		}
	}
	if compared < 20 || len(recs) < 1000 {
		t.Errorf("comparison too weak: %d series results over %d exemplars", compared, len(recs))
	}
}
