package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/lookout-dev/lookout/internal/analysis"
)

var _ analysis.ExemplarSource = (*Prometheus)(nil)

// Prometheus reads exemplars from a Prometheus-compatible HTTP API
// (Prometheus with exemplar storage, Mimir, Lookout). It is safe for
// concurrent use.
type Prometheus struct {
	api  promv1.API
	base string // redacted, for messages
}

// NewPrometheus returns a client of the Prometheus HTTP API at baseURL
// (e.g. http://localhost:9090, or http://mimir/prometheus with a path
// prefix). client carries transport settings such as TLS and
// authentication; nil uses client_golang's default transport. Answers are
// bounded to MaxExemplarBytes; the client is not modified.
func NewPrometheus(baseURL string, client *http.Client) (*Prometheus, error) {
	return newPrometheus(baseURL, client, MaxExemplarBytes)
}

// newPrometheus is NewPrometheus with the answer bound maxBody.
func newPrometheus(baseURL string, client *http.Client, maxBody int64) (*Prometheus, error) {
	u, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	c, err := api.NewClient(api.Config{Address: u.String(), Client: boundedClient(client, maxBody)})
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", u.Redacted(), err)
	}
	return &Prometheus{api: promv1.NewAPI(c), base: u.Redacted()}, nil
}

// QueryExemplars asks /api/v1/query_exemplars for the exemplars of the
// series query selects between start and end, their IDs read by
// analysis.NewExemplar: exemplars without a valid trace ID under one of
// traceid.TraceLabels are left out; the span ID is zero when absent or
// invalid. The exemplars of
// one series share one Series map, which callers must not modify. An error
// the server answered is client_golang's *v1.Error (use errors.As).
func (p *Prometheus) QueryExemplars(ctx context.Context, query string, start, end time.Time) ([]analysis.Exemplar, error) {
	res, err := p.api.QueryExemplars(ctx, query, start, end)
	if err != nil {
		if apiErr, ok := errors.AsType[*promv1.Error](err); ok && apiErr.Detail != "" {
			// A non-API error status (a proxy's 502, say): client_golang
			// keeps the whole body in Detail, which we quote only the
			// start of.
			return nil, fmt.Errorf("query exemplars %q from %s: %w: %s", query, p.base, err, quotable([]byte(apiErr.Detail)))
		}
		return nil, fmt.Errorf("query exemplars %q from %s: %w", query, p.base, err)
	}
	return exemplarsFromAPI(res), nil
}

// exemplarsFromAPI converts a query_exemplars answer, leaving out
// exemplars without a trace ID.
func exemplarsFromAPI(res []promv1.ExemplarQueryResult) []analysis.Exemplar {
	n := 0
	for _, r := range res {
		n += len(r.Exemplars)
	}
	out := make([]analysis.Exemplar, 0, n)
	for _, r := range res {
		var series map[string]string
		for _, e := range r.Exemplars {
			label := func(name string) string { return string(e.Labels[model.LabelName(name)]) }
			ex, ok := analysis.NewExemplar(label, float64(e.Value), e.Timestamp.Time())
			if !ok {
				continue
			}
			if series == nil {
				series = make(map[string]string, len(r.SeriesLabels))
				for k, v := range r.SeriesLabels {
					series[string(k)] = string(v)
				}
			}
			ex.Series = series
			out = append(out, ex)
		}
	}
	return out
}
