package exemplars_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/lookout-dev/lookout/internal/exemplars"
)

// Example opens an index, writes one exemplar of a histogram bucket as the
// metric store hands it over, and reads it back by series, as
// /api/v1/query_exemplars does, and by trace, as the trace view does.
func Example() {
	dir, err := os.MkdirTemp("", "exemplars-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	x, err := exemplars.Open(dir, exemplars.DefaultOptions(), nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer x.Close()

	ctx := context.Background()
	now := time.Now().UnixMilli()
	ex := exemplar.Exemplar{
		Labels: labels.FromStrings("trace_id", "0af7651916cd43dd8448eb211c80319c", "span_id", "b7ad6b7169203331"),
		Value:  0.42,
		Ts:     now,
		HasTs:  true,
	}
	series := labels.FromStrings("__name__", "http_server_request_duration_seconds_bucket", "le", "0.5", "job", "checkout")
	if err := x.WriteExemplars(ctx, []exemplars.Record{{Series: series, Exemplar: ex}}); err != nil {
		log.Fatal(err)
	}

	q, err := x.ExemplarQuerier(ctx)
	if err != nil {
		log.Fatal(err)
	}
	bySeries, err := q.Select(now-time.Hour.Milliseconds(), now, []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchEqual, "job", "checkout"),
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range bySeries {
		for _, e := range r.Exemplars {
			fmt.Println(r.SeriesLabels, e.Value, e.Labels.Get("trace_id"))
		}
	}

	traceID, _ := exemplars.TraceIDOf(ex.Labels)
	byTrace, err := x.ByTrace(ctx, traceID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(byTrace), "series point at the trace")
	// Output:
	// {__name__="http_server_request_duration_seconds_bucket", job="checkout", le="0.5"} 0.42 0af7651916cd43dd8448eb211c80319c
	// 1 series point at the trace
}
