package analysis

import (
	"context"
	"fmt"
	"time"

	"github.com/lookout-dev/lookout/internal/traceid"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The engine reads through three one-method interfaces. Lookout's own stores
// satisfy them (internal/app wires the adapters) and so do the HTTP clients
// of a real Prometheus/Mimir and Tempo (package remote), so the same
// analysis runs when Lookout's UI sits on --prometheus.url and --tempo.url.

// ExemplarSource returns the exemplars of the series a PromQL selector
// selects between start and end, as Prometheus's /api/v1/query_exemplars
// does. Exemplars without a trace ID may be left out.
type ExemplarSource interface {
	QueryExemplars(ctx context.Context, query string, start, end time.Time) ([]Exemplar, error)
}

// TraceGetter returns a trace by ID; found is false when the trace was
// never received (or has been deleted).
type TraceGetter interface {
	GetTrace(ctx context.Context, id pcommon.TraceID) (td ptrace.Traces, found bool, err error)
}

// TraceFinder returns the IDs of up to limit traces matching a TraceQL
// query whose spans start in [start, end] and that last at least
// minDuration (0: any), newest first, as Tempo's /api/search does.
type TraceFinder interface {
	FindTraces(ctx context.Context, q TraceQuery) ([]pcommon.TraceID, error)
}

// TraceQuery is a TraceFinder request.
type TraceQuery struct {
	// TraceQL is a spanset filter such as
	// `{ rootServiceName = "main-service" && rootName = "POST /checkout" }`.
	TraceQL     string
	Start, End  time.Time
	MinDuration time.Duration
	Limit       int
}

// Exemplar is one exemplar of a histogram series.
type Exemplar struct {
	TraceID pcommon.TraceID
	SpanID  pcommon.SpanID
	Value   float64
	Time    time.Time
	// Series are the labels of the series the exemplar belongs to.
	Series map[string]string
}

// StorageExemplars is the ExemplarSource of a Prometheus storage (Lookout's
// exemplar index, a TSDB): it queries the selectors of the query as
// Prometheus's /api/v1/query_exemplars does.
type StorageExemplars struct {
	Queryable storage.ExemplarQueryable
}

var _ ExemplarSource = StorageExemplars{}

// QueryExemplars implements ExemplarSource.
func (s StorageExemplars) QueryExemplars(ctx context.Context, query string, start, end time.Time) ([]Exemplar, error) {
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(query)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid query: %v", ErrBadRequest, err)
	}
	q, err := s.Queryable.ExemplarQuerier(ctx)
	if err != nil {
		return nil, err
	}
	res, err := q.Select(start.UnixMilli(), end.UnixMilli(), parser.ExtractSelectors(expr)...)
	if err != nil {
		return nil, err
	}
	var out []Exemplar
	for _, r := range res {
		series := r.SeriesLabels.Map()
		for _, ex := range r.Exemplars {
			e, ok := NewExemplar(ex.Labels.Get, ex.Value, time.UnixMilli(ex.Ts))
			if !ok {
				continue
			}
			e.Series = series
			out = append(out, e)
		}
	}
	return out, nil
}

// NewExemplar reads an exemplar's trace and span IDs from its labels (see
// traceid.FromLabels); ok is false without a valid trace ID.
func NewExemplar(label func(string) string, value float64, ts time.Time) (Exemplar, bool) {
	id, ok := traceid.FromLabels(label)
	if !ok {
		return Exemplar{}, false
	}
	return Exemplar{TraceID: id, SpanID: traceid.SpanFromLabels(label), Value: value, Time: ts}, true
}
