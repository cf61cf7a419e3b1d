package promapi

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// Lookout's extension of /api/v1/query_exemplars: three parameters that ask
// for the slow tail. min_value and max_value keep the exemplars whose value
// lies in [min_value, max_value]; limit keeps, per series, the limit
// highest values, listed highest first (ties: the latest first). Without
// them (standard clients send none) the answer is Prometheus's.

// maxExemplarLimit is the largest limit accepted.
const maxExemplarLimit = 100_000

// exemplarFilter is a query_exemplars request's extension parameters.
type exemplarFilter struct {
	min, max float64
	limit    int // 0: no limit
}

type exemplarFilterKey struct{}

// parseExemplarFilter reads the extension parameters from a parsed form;
// nil when none is given.
func parseExemplarFilter(r *http.Request) (*exemplarFilter, error) {
	f := exemplarFilter{min: math.Inf(-1), max: math.Inf(1)}
	given := false
	for _, p := range []struct {
		name string
		into *float64
	}{{"min_value", &f.min}, {"max_value", &f.max}} {
		s := r.Form.Get(p.name)
		if s == "" {
			continue
		}
		given = true
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) {
			return nil, fmt.Errorf("invalid parameter %q: %q is not a number", p.name, s)
		}
		*p.into = v
	}
	if s := r.Form.Get("limit"); s != "" {
		given = true
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxExemplarLimit {
			return nil, fmt.Errorf("invalid parameter \"limit\": %q is not an integer from 0 (no limit) to %d", s, maxExemplarLimit)
		}
		f.limit = n
	}
	if !given {
		return nil, nil
	}
	if f.min > f.max {
		return nil, fmt.Errorf("invalid parameters: min_value %v is greater than max_value %v", f.min, f.max)
	}
	return &f, nil
}

// withExemplarFilter reads the extension parameters of query_exemplars
// requests into their context, for filteringExemplars, and refuses bad
// ones with Prometheus's 400 bad_data answer.
func withExemplarFilter(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query_exemplars" {
			next.ServeHTTP(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			next.ServeHTTP(w, r) // Prometheus answers the bad form itself
			return
		}
		f, err := parseExemplarFilter(r)
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": "bad_data", "error": err.Error()})
			return
		}
		if f != nil {
			r = r.WithContext(context.WithValue(r.Context(), exemplarFilterKey{}, f))
		}
		next.ServeHTTP(w, r)
	})
}

// filteringExemplars applies a request's exemplarFilter, when its context
// carries one, to what the wrapped queryable answers.
type filteringExemplars struct{ storage.ExemplarQueryable }

func (q filteringExemplars) ExemplarQuerier(ctx context.Context) (storage.ExemplarQuerier, error) {
	eq, err := q.ExemplarQueryable.ExemplarQuerier(ctx)
	if err != nil {
		return nil, err
	}
	if f, ok := ctx.Value(exemplarFilterKey{}).(*exemplarFilter); ok {
		return filteringQuerier{ExemplarQuerier: eq, f: *f}, nil
	}
	return eq, nil
}

type filteringQuerier struct {
	storage.ExemplarQuerier
	f exemplarFilter
}

func (q filteringQuerier) Select(start, end int64, matchers ...[]*labels.Matcher) ([]exemplar.QueryResult, error) {
	res, err := q.ExemplarQuerier.Select(start, end, matchers...)
	if err != nil {
		return nil, err
	}
	return q.f.apply(res), nil
}

// apply filters each series' exemplars, highest values first, and leaves
// out series with none left.
func (f exemplarFilter) apply(res []exemplar.QueryResult) []exemplar.QueryResult {
	out := res[:0]
	for _, r := range res {
		es := slices.DeleteFunc(r.Exemplars, func(e exemplar.Exemplar) bool { return e.Value < f.min || e.Value > f.max })
		if len(es) == 0 {
			continue
		}
		slices.SortStableFunc(es, func(a, b exemplar.Exemplar) int {
			return cmp.Or(cmp.Compare(b.Value, a.Value), cmp.Compare(b.Ts, a.Ts))
		})
		if f.limit > 0 && len(es) > f.limit {
			es = es[:f.limit]
		}
		r.Exemplars = es
		out = append(out, r)
	}
	return out
}
