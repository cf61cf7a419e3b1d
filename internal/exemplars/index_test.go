package exemplars_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/goleak"

	"github.com/lookout-dev/lookout/internal/exemplars"
	"github.com/lookout-dev/lookout/internal/traceid"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var base = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func openIndex(t *testing.T, dir string, opts exemplars.Options) *exemplars.Index {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return base }
	}
	x, err := exemplars.Open(dir, opts, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func traceHex(n int) string { return fmt.Sprintf("%032x", 0xabc000+n) }

// normalize renders results as strings so DeepEqual ignores label storage details.
func normalize(rs []exemplar.QueryResult) []string {
	out := []string{}
	for _, r := range rs {
		s := r.SeriesLabels.String()
		for _, e := range r.Exemplars {
			s += fmt.Sprintf(" [%s %g %d %v]", e.Labels, e.Value, e.Ts, e.HasTs)
		}
		out = append(out, s)
	}
	return out
}

func first(rs []exemplar.QueryResult) string {
	if len(rs) == 0 {
		return "none"
	}
	return normalize(rs[:1])[0]
}

func rec(series string, trace string, ts int64, v float64) exemplars.Record {
	return exemplars.Record{
		Series:   labels.FromStrings("__name__", series),
		Exemplar: exemplar.Exemplar{Labels: labels.FromStrings("trace_id", trace), Value: v, Ts: ts, HasTs: true},
	}
}

// parseID parses a hex trace ID the tests wrote.
func parseID(s string) (pcommon.TraceID, error) { return traceid.Parse(s) }
