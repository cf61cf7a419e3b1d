package exemplars_test

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/lookout-dev/lookout/internal/exemplars"
)

// BenchmarkSelectHour measures query_exemplars over one hour holding 100k
// exemplars: 2 metrics x 10 buckets x 4 countries x 5 methods = 400 series,
// one exemplar per series every ~14 s. The query selects one metric (200
// series, 50k exemplars), as Grafana does for a histogram panel; p99 is
// reported from per-query latencies. Narrower queries select fewer series.
func BenchmarkSelectHour(b *testing.B) {
	ctx := context.Background()
	x, err := exemplars.Open(b.TempDir(), exemplars.Options{Now: func() time.Time { return base.Add(time.Hour) }}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	var series []labels.Labels
	for _, m := range []string{"webstore_payment_duration_bucket", "http_server_request_duration_seconds_bucket"} {
		for le := range 10 {
			for _, c := range []string{"US", "DE", "FR", "JP"} {
				for p := range 5 {
					series = append(series, labels.FromStrings("__name__", m, "le", fmt.Sprint(le), "country", c, "payment_method", fmt.Sprint(p), "job", "payments-service"))
				}
			}
		}
	}
	const total = 100_000
	per := total / len(series)
	step := time.Hour.Milliseconds() / int64(per)
	var recs []exemplars.Record
	for i := range per {
		for j, s := range series {
			recs = append(recs, exemplars.Record{Series: s, Exemplar: exemplar.Exemplar{
				Labels: labels.FromStrings("trace_id", fmt.Sprintf("%032x", i*len(series)+j+1), "span_id", fmt.Sprintf("%016x", j+1)),
				Value:  float64(j%10) / 10, Ts: base.UnixMilli() + int64(i)*step + int64(j%7), HasTs: true,
			}})
		}
		if len(recs) >= 5000 {
			if err := x.WriteExemplars(ctx, recs); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	if err := x.WriteExemplars(ctx, recs); err != nil {
		b.Fatal(err)
	}
	q, _ := x.ExemplarQuerier(ctx)
	m := func(n, v string) *labels.Matcher { return labels.MustNewMatcher(labels.MatchEqual, n, v) }
	for _, c := range []struct {
		name   string
		ms     []*labels.Matcher
		series int
	}{
		{"one-metric-50k", []*labels.Matcher{m("__name__", "webstore_payment_duration_bucket")}, 200},
		{"metric-country-12k", []*labels.Matcher{m("__name__", "webstore_payment_duration_bucket"), m("country", "US")}, 50},
		{"metric-country-method-2.5k", []*labels.Matcher{m("__name__", "webstore_payment_duration_bucket"), m("country", "US"), m("payment_method", "1")}, 10},
	} {
		b.Run(c.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for range b.N {
				t0 := time.Now()
				res, err := q.Select(base.UnixMilli(), base.Add(time.Hour).UnixMilli(), c.ms)
				if err != nil || len(res) != c.series {
					b.Fatalf("%d series, %v", len(res), err)
				}
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkWriteExemplars measures indexing cost per exemplar: batches of
// 2,000 over 10k series, as the metric store hands them over. Besides wall
// time it reports the process's CPU time per exemplar, which includes
// Pebble's background flushes and compactions.
func BenchmarkWriteExemplars(b *testing.B) {
	ctx := context.Background()
	x, err := exemplars.Open(b.TempDir(), exemplars.Options{}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	series := make([]labels.Labels, 10_000)
	for i := range series {
		series[i] = labels.FromStrings("__name__", "bench_duration_bucket", "le", fmt.Sprint(i%12), "series", fmt.Sprint(i/12), "job", "bench")
	}
	now := time.Now().UnixMilli()
	batches := make([][]exemplars.Record, b.N)
	n := 0
	for i := range batches {
		recs := make([]exemplars.Record, 2000)
		for j := range recs {
			n++
			recs[j] = exemplars.Record{Series: series[n%len(series)], Exemplar: exemplar.Exemplar{
				Labels: labels.FromStrings("trace_id", fmt.Sprintf("%032x", n), "span_id", fmt.Sprintf("%016x", n)),
				Value:  float64(n%100) / 10, Ts: now + int64(i), HasTs: true,
			}}
		}
		batches[i] = recs
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for _, recs := range batches {
		if err := x.WriteExemplars(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/exemplar")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(n), "cpu-ns/exemplar")
}

// cpuTime is the process's user+system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
