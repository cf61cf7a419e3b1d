package tempoapi

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/lookout-dev/lookout/internal/traceql"
	"github.com/lookout-dev/lookout/internal/tracestore"
)

// TraceQL metrics limits, Tempo's defaults.
const (
	// defaultMetricsSince is the range when start is not given.
	defaultMetricsSince = time.Hour
	// maxMetricsExemplars caps the exemplars of a query; it is also the
	// default when the request asks for none or 0.
	maxMetricsExemplars = 100
	// maxMetricsIntervals caps (end-start)/step.
	maxMetricsIntervals = 10_000
	// metricsEndCutoff is Tempo's query_end_cutoff.
	metricsEndCutoff = 30 * time.Second
	// maxMetricsWorkers caps the goroutines of one query.
	maxMetricsWorkers = 4
)

// metricsRequest is a parsed TraceQL metrics request.
type metricsRequest struct {
	query      *traceql.MetricsQuery
	start, end time.Time
	step       time.Duration
	instant    bool
	exemplars  int
}

// parseMetricsRequest reads q (or query), start, end, since, step and
// exemplars as Tempo does: times as unix seconds (10 digits or fewer),
// unix nanoseconds (more), fractional seconds or RFC 3339; step as seconds
// or a duration; no step gives about 240 points. Instant requests have one
// step spanning the range.
func (a *api) parseMetricsRequest(r *http.Request, instant bool) (metricsRequest, error) {
	var req metricsRequest
	q := r.URL.Query()
	text := q.Get("q")
	if text == "" {
		text = q.Get("query")
	}
	if strings.TrimSpace(text) == "" {
		return req, badRequest("missing TraceQL metrics query: set q, e.g. q={} | rate()")
	}
	mq, err := traceql.ParseMetrics(text)
	if err != nil {
		return req, badRequest("invalid TraceQL metrics query: %v", err)
	}
	req.query = mq
	now := time.Now()
	req.end = now
	if v := q.Get("end"); v != "" {
		if req.end, err = parseMetricsTime(v); err != nil {
			return req, badRequest("could not parse 'end' parameter: %v", err)
		}
	}
	if v := q.Get("start"); v != "" {
		if req.start, err = parseMetricsTime(v); err != nil {
			return req, badRequest("could not parse 'start' parameter: %v", err)
		}
	} else {
		since := defaultMetricsSince
		if v := q.Get("since"); v != "" {
			d, err := model.ParseDuration(v)
			if err != nil || d <= 0 {
				return req, badRequest("could not parse 'since' parameter: %q is not a duration such as 1h", truncate(v))
			}
			since = time.Duration(d)
		}
		req.start = minTime(req.end, now).Add(-since)
	}
	if !req.end.After(req.start) {
		return req, badRequest("end must be greater than start")
	}
	if a.opts.MaxMetricsDuration > 0 && req.end.Sub(req.start) > a.opts.MaxMetricsDuration {
		return req, badRequest("metrics query time range exceeds the maximum allowed duration of %s", a.opts.MaxMetricsDuration)
	}
	// As Tempo, the freshest metricsEndCutoff is left out: its spans are
	// still arriving, and a step over it would show a false drop.
	cutoff := now.Add(-metricsEndCutoff)
	if instant {
		req.end = minTime(req.end, cutoff)
		if !req.end.After(req.start) {
			return req, badRequest("query window falls entirely within query_end_cutoff")
		}
		req.step, req.instant = req.end.Sub(req.start), true
		return req, nil
	}
	req.step = defaultStep(req.start, req.end)
	if v := q.Get("step"); v != "" {
		if req.step, err = parseStep(v); err != nil {
			return req, err
		}
	}
	if req.step <= 0 || req.end.Sub(req.start)/req.step > maxMetricsIntervals {
		minStep := (req.end.Sub(req.start) + maxMetricsIntervals - 1) / maxMetricsIntervals
		return req, badRequest("step of %s is too small, minimum step for given range is %s", req.step, minStep)
	}
	req.exemplars = maxMetricsExemplars
	if v := q.Get("exemplars"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return req, badRequest("invalid exemplars: %q is not a count", truncate(v))
		}
		if n > 0 {
			req.exemplars = int(min(n, maxMetricsExemplars))
		}
	}
	if n, ok := mq.ExemplarsHint(); ok {
		req.exemplars = min(n, maxMetricsExemplars)
	}
	req.start, req.end = traceql.AlignMetricsRange(req.start, req.end, req.step)
	if req.end.After(cutoff) {
		// Back to the last whole step before the cutoff.
		e := cutoff.UnixNano()
		req.end = time.Unix(0, e-e%req.step.Nanoseconds())
		if !req.end.After(req.start) {
			return req, badRequest("query window falls entirely within query_end_cutoff")
		}
	}
	return req, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// parseMetricsTime reads a time as Tempo's metrics API does.
func parseMetricsTime(v string) (time.Time, error) {
	if strings.Contains(v, ".") {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f < 1<<33 {
			return time.UnixMilli(int64(math.Round(f * 1000))), nil
		}
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		if len(v) <= 10 {
			return time.Unix(n, 0), nil
		}
		return time.Unix(0, n), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, errInvalidTime(v)
	}
	return t, nil
}

type errInvalidTime string

func (e errInvalidTime) Error() string {
	return strconv.Quote(truncate(string(e))) + " is not unix seconds, unix nanoseconds or an RFC 3339 time"
}

// parseStep reads a step as seconds ("15", "0.5") or a duration ("15s").
func parseStep(v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f <= 0 || math.IsNaN(f) || f > float64(math.MaxInt64)/1e9 {
			if f < 0 {
				return 0, badRequest("cannot parse %q: step must be positive", truncate(v))
			}
			return 0, nil // 0 is refused as too small, as Tempo does
		}
		return time.Duration(f * 1e9), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, badRequest("cannot parse %q to a valid duration", truncate(v))
	}
	if d < 0 {
		return 0, badRequest("cannot parse %q: step must be positive", truncate(v))
	}
	return d, nil
}

// defaultStep aims at 240 points, rounded down to a granularity as Tempo
// rounds it.
func defaultStep(start, end time.Time) time.Duration {
	base := end.Sub(start) / 240
	if end.Sub(start) < time.Minute {
		return max(base/(50*time.Millisecond)*(50*time.Millisecond), 50*time.Millisecond)
	}
	for _, g := range []time.Duration{time.Hour, 5 * time.Minute, time.Minute, 15 * time.Second, 5 * time.Second, time.Second} {
		if base > g {
			return base / g * g
		}
	}
	return time.Second
}

// evalMetrics runs the query over the trace store. A result cut at the
// series limit comes with the limit's message, for a PARTIAL answer.
func (a *api) evalMetrics(ctx context.Context, req metricsRequest) ([]traceql.MetricSeries, *tracestore.SpanScan, string, error) {
	// One evaluation per core: the store reads parts of the range in
	// parallel, one evaluation each, merged at the end.
	opts := traceql.MetricsOptions{Start: req.start, End: req.end, Step: req.step, Instant: req.instant, Exemplars: req.exemplars}
	parts := 1
	if !req.query.NeedsSpan() {
		parts = min(runtime.GOMAXPROCS(0), maxMetricsWorkers)
	}
	evs := make([]*traceql.MetricsEval, parts)
	obs := make([]tracestore.Observer, parts)
	for i := range evs {
		ev, err := traceql.NewMetricsEval(req.query, opts)
		if err != nil {
			return nil, nil, "", badRequest("%v", err)
		}
		evs[i], obs[i] = ev, ev
	}
	ev := evs[0]
	// Steps are right-closed, (start, end], except an instant query's
	// one step, [start, end].
	sq := tracestore.SpanQuery{Spans: req.query.Spans, Start: req.start.Add(1), End: req.end.Add(1), By: req.query.By}
	if req.instant {
		sq.Start = req.start
	}
	if req.query.Attr != (traceql.Field{}) {
		sq.Value = &req.query.Attr
	}
	if req.query.NeedsSpan() {
		sq.OnSpan = ev.ObserveSpan
	}
	scan, err := a.opts.Traces.ObserveSpans(ctx, sq, obs...)
	if err != nil {
		return nil, nil, "", err
	}
	for _, other := range evs[1:] {
		if err := ev.Merge(other); err != nil {
			return nil, nil, "", err
		}
	}
	var resolveErr error
	series, err := ev.Result(func(_ [16]byte, ref uint64) ([8]byte, bool) {
		id, ok, err := scan.SpanID(ref)
		if err != nil && resolveErr == nil {
			resolveErr = err
		}
		return id, ok
	})
	partial := ""
	if errors.Is(err, traceql.ErrTooManySeries) {
		partial, err = err.Error(), nil
	}
	if err == nil {
		err = resolveErr
	}
	return series, scan, partial, err
}

// metricsQuery answers /api/metrics/query_range, or with instant
// /api/metrics/query.
func (a *api) metricsQuery(instant bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, err := a.parseMetricsRequest(r, instant)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(r.Context(), a.opts.QueryTimeout)
		defer cancel()
		series, scan, partial, err := a.evalMetrics(ctx, req)
		if err != nil {
			return err
		}
		st := metricsStatus{Metrics: metricsJSON(scan), Message: partial}
		if partial != "" {
			st.Status = "PARTIAL"
		}
		if instant {
			out := queryInstantJSON{metricsStatus: st}
			for _, s := range traceql.InstantResult(series) {
				out.Series = append(out.Series, instantSeriesJSON{Labels: labelsJSON(s.Labels), Value: jsonFloat(s.Value)})
			}
			return writeJSON(w, out)
		}
		out := queryRangeJSON{metricsStatus: st}
		for _, s := range series {
			if len(s.Samples) > 0 {
				out.Series = append(out.Series, timeSeriesOf(s))
			}
		}
		return writeJSON(w, out)
	}
}

func timeSeriesOf(s traceql.MetricSeries) timeSeriesJSON {
	ts := timeSeriesJSON{Labels: labelsJSON(s.Labels)}
	for _, p := range s.Samples {
		ts.Samples = append(ts.Samples, sampleJSON{TimestampMs: strconv.FormatInt(p.TimestampMs, 10), Value: jsonFloat(p.Value)})
	}
	for _, e := range s.Exemplars {
		ts.Exemplars = append(ts.Exemplars, exemplarJSON{
			Labels: []kvJSON{
				{Key: "trace:id", Value: anyJSON{StringValue: ptr(hex.EncodeToString(e.TraceID[:]))}},
				{Key: "span:id", Value: anyJSON{StringValue: ptr(hex.EncodeToString(e.SpanID[:]))}},
			},
			Value:       jsonFloat(e.Value),
			TimestampMs: strconv.FormatInt(e.TimestampMs, 10),
		})
	}
	return ts
}

// The response shapes are Tempo's protobuf messages as its HTTP API
// renders them (jsonpb): camelCase names, zero values and empty lists
// left out, 64-bit integers as strings, NaN as "NaN".
type queryRangeJSON struct {
	Series []timeSeriesJSON `json:"series,omitempty"`
	metricsStatus
}

type queryInstantJSON struct {
	Series []instantSeriesJSON `json:"series,omitempty"`
	metricsStatus
}

// metricsStatus ends both answers: what was read, and PARTIAL with its
// message when the series limit cut the answer.
type metricsStatus struct {
	Metrics searchMetricsPB `json:"metrics"`
	Status  string          `json:"status,omitempty"`
	Message string          `json:"message,omitempty"`
}

type timeSeriesJSON struct {
	Labels    []kvJSON       `json:"labels,omitempty"`
	Samples   []sampleJSON   `json:"samples,omitempty"`
	Exemplars []exemplarJSON `json:"exemplars,omitempty"`
}

type instantSeriesJSON struct {
	Labels []kvJSON  `json:"labels,omitempty"`
	Value  jsonFloat `json:"value,omitzero"`
}

type sampleJSON struct {
	TimestampMs string    `json:"timestampMs,omitempty"`
	Value       jsonFloat `json:"value,omitzero"`
}

type exemplarJSON struct {
	Labels      []kvJSON  `json:"labels,omitempty"`
	Value       jsonFloat `json:"value,omitzero"`
	TimestampMs string    `json:"timestampMs,omitempty"`
}

type kvJSON struct {
	Key   string  `json:"key"`
	Value anyJSON `json:"value"`
}

// anyJSON is OTLP's AnyValue: exactly one field set.
type anyJSON struct {
	StringValue *string    `json:"stringValue,omitempty"`
	BoolValue   *bool      `json:"boolValue,omitempty"`
	IntValue    *string    `json:"intValue,omitempty"`
	DoubleValue *jsonFloat `json:"doubleValue,omitempty"`
}

type searchMetricsPB struct {
	InspectedTraces uint64 `json:"inspectedTraces,omitempty"`
	InspectedBytes  string `json:"inspectedBytes,omitempty"`
	InspectedSpans  string `json:"inspectedSpans,omitempty"`
	CompletedJobs   int    `json:"completedJobs,omitempty"`
	TotalJobs       int    `json:"totalJobs,omitempty"`
}

func metricsJSON(scan *tracestore.SpanScan) searchMetricsPB {
	m := searchMetricsPB{CompletedJobs: 1, TotalJobs: 1}
	if scan != nil {
		m.InspectedTraces = scan.InspectedTraces
		if scan.InspectedBytes > 0 {
			m.InspectedBytes = strconv.FormatUint(scan.InspectedBytes, 10)
		}
		if scan.InspectedSpans > 0 {
			m.InspectedSpans = strconv.FormatUint(scan.InspectedSpans, 10)
		}
	}
	return m
}

func ptr[T any](v T) *T { return &v }

// jsonFloat is a double as jsonpb writes it: NaN and infinities as strings.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Infinity"`), nil
	}
	return json.Marshal(v)
}

// labelsJSON renders series labels as Tempo does: strings, ints, floats
// and bools typed; durations, statuses and kinds as their text; nil as
// "nil".
func labelsJSON(ls []traceql.Label) []kvJSON {
	out := make([]kvJSON, 0, len(ls))
	for _, l := range ls {
		var v anyJSON
		switch l.Value.Type {
		case traceql.TypeInt:
			v.IntValue = ptr(strconv.FormatInt(l.Value.I, 10))
		case traceql.TypeFloat:
			v.DoubleValue = ptr(jsonFloat(l.Value.F))
		case traceql.TypeBool:
			v.BoolValue = ptr(l.Value.B)
		default:
			v.StringValue = ptr(l.Value.Text())
		}
		out = append(out, kvJSON{Key: l.Key, Value: v})
	}
	return out
}
