package promapi

import (
	"bytes"
	"context"
	"log/slog"
	"time"

	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/stats"
	v1 "github.com/prometheus/prometheus/web/api/v1"
)

// codec is Prometheus's JSON codec plus Lookout's two extensions, each on
// when its option is set:
//
//   - exemplars (Options.QueryExemplars): each series of an instant-vector
//     /api/v1/query result also carries "exemplars", the exemplars of that
//     series within the lookback window before the evaluation time, in the
//     shape of /api/v1/query_exemplars;
//   - alerts (Options.AlertExtension): the alerts of /api/v1/alerts and
//     /api/v1/rules answers carry what the extension adds (alertjson.go).
//
// Clients that don't know the fields ignore them; every other response is
// encoded as v1.JSONCodec encodes it.
type codec struct {
	eq       storage.ExemplarQueryable // nil: no exemplars extension
	lookback time.Duration
	logger   *slog.Logger
	alerts   jsoniter.API // nil: no alerts extension
}

func (codec) ContentType() v1.MIMEType { return v1.JSONCodec{}.ContentType() }

func (codec) CanEncode(*v1.Response) bool { return true }

func (c codec) Encode(resp *v1.Response) ([]byte, error) {
	if b, ok := encodeExemplarAnswer(resp); ok {
		return b, nil
	}
	switch data := resp.Data.(type) {
	case *v1.QueryData:
		if c.eq != nil {
			return c.encodeQuery(resp, data)
		}
	case *v1.AlertDiscovery, *v1.RuleDiscovery:
		if c.alerts != nil {
			return c.alerts.Marshal(resp)
		}
	}
	return v1.JSONCodec{}.Encode(resp)
}

// encodeQuery encodes a query answer with the exemplars of its series.
func (c codec) encodeQuery(resp *v1.Response, qd *v1.QueryData) ([]byte, error) {
	vec, ok := qd.Result.(promql.Vector)
	if !ok || len(vec) == 0 {
		return v1.JSONCodec{}.Encode(resp)
	}
	ex := c.lookup(vec)
	if len(ex) == 0 {
		return v1.JSONCodec{}.Encode(resp)
	}
	// Series carrying exemplars come first (each group keeps Prometheus's
	// order), so the seed guide's `jq '.data.result[0].exemplars'` shows
	// some even when the first buckets of a histogram have none. An instant
	// vector's order carries no meaning, so clients are unaffected.
	out := make([]sampleWithExemplars, 0, len(vec))
	for i := range vec {
		if len(ex[i]) > 0 {
			out = append(out, sampleWithExemplars{Sample: vec[i], Exemplars: ex[i]})
		}
	}
	for i := range vec {
		if len(ex[i]) == 0 {
			out = append(out, sampleWithExemplars{Sample: vec[i]})
		}
	}
	r := *resp
	r.Data = queryDataWithExemplars{ResultType: qd.ResultType, Result: out, Stats: qd.Stats, Cost: qd.Cost}
	return v1.JSONCodec{}.Encode(&r)
}

// lookup returns, per sample index, the exemplars of that series in
// [t-lookback, t], with one exemplar query per metric name.
func (c codec) lookup(vec promql.Vector) map[int][]exemplar.Exemplar {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q, err := c.eq.ExemplarQuerier(ctx)
	if err != nil {
		c.logger.Debug("exemplar querier", "err", err)
		return nil
	}
	mint, maxt := vec[0].T, vec[0].T
	for _, s := range vec {
		mint, maxt = min(mint, s.T), max(maxt, s.T)
	}
	mint -= c.lookback.Milliseconds()

	// Only series with a metric name are stored series; results of
	// functions and aggregations have none and get no exemplars (ask
	// /api/v1/query_exemplars with the query instead).
	byName := map[string][]int{}
	for i, s := range vec {
		if name := s.Metric.Get(labels.MetricName); name != "" {
			byName[name] = append(byName[name], i)
		}
	}
	res := map[int][]exemplar.Exemplar{}
	for name, idx := range byName {
		m := labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name)
		results, err := q.Select(mint, maxt, []*labels.Matcher{m})
		if err != nil {
			c.logger.Debug("exemplar select", "err", err)
			continue
		}
		bySeries := make(map[uint64][]exemplar.Exemplar, len(results))
		for _, r := range results {
			bySeries[r.SeriesLabels.Hash()] = r.Exemplars
		}
		for _, i := range idx {
			if e := inWindow(bySeries[vec[i].Metric.Hash()], vec[i].T-c.lookback.Milliseconds(), vec[i].T); len(e) > 0 {
				res[i] = e
			}
		}
	}
	return res
}

func inWindow(es []exemplar.Exemplar, mint, maxt int64) []exemplar.Exemplar {
	var out []exemplar.Exemplar
	for _, e := range es {
		if e.Ts >= mint && e.Ts <= maxt {
			out = append(out, e)
		}
	}
	return out
}

type queryDataWithExemplars struct {
	ResultType parser.ValueType        `json:"resultType"`
	Result     []sampleWithExemplars   `json:"result"`
	Stats      stats.QueryStats        `json:"stats,omitempty"`
	Cost       *v1.QueryCostComparison `json:"cost,omitempty"`
}

type sampleWithExemplars struct {
	Sample    promql.Sample
	Exemplars []exemplar.Exemplar
}

// MarshalJSON writes Prometheus's encoding of the sample with an
// "exemplars" member appended when there are any.
func (s sampleWithExemplars) MarshalJSON() ([]byte, error) {
	json := jsoniter.ConfigCompatibleWithStandardLibrary
	b, err := json.Marshal(s.Sample)
	if err != nil || len(s.Exemplars) == 0 {
		return b, err
	}
	eb, err := json.Marshal(s.Exemplars)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, " \n")
	if len(b) == 0 || b[len(b)-1] != '}' {
		return b, nil
	}
	out := make([]byte, 0, len(b)+len(eb)+16)
	out = append(out, b[:len(b)-1]...)
	out = append(out, `,"exemplars":`...)
	out = append(out, eb...)
	out = append(out, '}')
	return out, nil
}
