package app

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/lookout-dev/lookout/internal/analysis"
	"github.com/lookout-dev/lookout/internal/traceql"
	"github.com/lookout-dev/lookout/internal/tracestore"
)

// storeFinder is the analysis engine's TraceFinder over Lookout's own trace
// store: the same TraceQL search the Tempo API's /api/search runs.
type storeFinder struct{ store *tracestore.Store }

var _ analysis.TraceFinder = storeFinder{}

func (f storeFinder) FindTraces(ctx context.Context, q analysis.TraceQuery) ([]pcommon.TraceID, error) {
	expr, err := traceql.Parse(q.TraceQL)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", q.TraceQL, err)
	}
	res, err := f.store.Search(ctx, tracestore.SearchRequest{
		Query: expr, Start: q.Start, End: q.End, MinDuration: q.MinDuration, Limit: q.Limit, SpansPerSpanSet: 1,
	})
	if err != nil {
		return nil, err
	}
	ids := make([]pcommon.TraceID, len(res.Traces))
	for i, t := range res.Traces {
		ids[i] = t.TraceID
	}
	return ids, nil
}
