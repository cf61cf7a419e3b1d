package tempoapi

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/prometheus/model/exemplar"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/buildinfo"
	"github.com/lookout-dev/lookout/internal/traceid"
	"github.com/lookout-dev/lookout/internal/traceql"
	"github.com/lookout-dev/lookout/internal/tracestore"
)

// TraceStore is what the API reads; *tracestore.Store implements it.
type TraceStore interface {
	GetTrace(ctx context.Context, traceID pcommon.TraceID) (ptrace.Traces, bool, error)
	HasTrace(ctx context.Context, traceID pcommon.TraceID) (bool, error)
	Search(ctx context.Context, req tracestore.SearchRequest) (tracestore.SearchResult, error)
	TagNames(ctx context.Context, scope tracestore.TagScope, start, end time.Time) (map[tracestore.TagScope][]string, error)
	TagValues(ctx context.Context, scope tracestore.TagScope, key string, start, end time.Time, limit int) ([]traceql.Value, error)
	ObserveSpans(ctx context.Context, q tracestore.SpanQuery, obs ...tracestore.Observer) (*tracestore.SpanScan, error)
}

// ExemplarIndex is the reverse link from traces to exemplars; *exemplars.Index implements it.
type ExemplarIndex interface {
	ByTrace(ctx context.Context, traceID pcommon.TraceID) ([]exemplar.QueryResult, error)
}

var _ TraceStore = (*tracestore.Store)(nil)

// Options configure the handler.
type Options struct {
	// Traces is the trace store. Required.
	Traces TraceStore
	// Exemplars serves /api/lookout/exemplars; nil answers it with no series.
	Exemplars ExemplarIndex
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Registerer receives the handler's request metrics; nil registers none.
	Registerer prometheus.Registerer
	// Gatherer is served on /metrics; nil serves 404 there.
	Gatherer prometheus.Gatherer
	// QueryTimeout bounds each search and tag request. Default 30s.
	QueryTimeout time.Duration
	// MaxLimit caps the search limit parameter. Default 1000.
	MaxLimit int
	// DefaultLimit is the search limit when none is given. Default 20.
	DefaultLimit int
	// MaxSearchDuration rejects searches whose end-start exceeds it. 0 means no limit.
	MaxSearchDuration time.Duration
	// MaxMetricsDuration rejects TraceQL metrics queries whose range
	// exceeds it. Default 24h, Tempo's.
	MaxMetricsDuration time.Duration
	// MaxTagValues caps tag-value answers. Default 1000.
	MaxTagValues int
	// PathPrefix is prepended to every route, e.g. "/tempo". Default "".
	PathPrefix string
	// Version is reported by /api/status/buildinfo. Default TempoVersion:
	// clients such as Grafana's Tempo data source parse it as the Tempo
	// version whose API they talk to. Lookout's own build is the revision.
	Version string
	// Ready, when set, gates /ready; nil means always ready.
	Ready func() bool
}

type api struct {
	opts     Options
	build    buildinfo.Info
	logger   *slog.Logger
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHandler returns Tempo's HTTP API (plus Lookout's /api/lookout
// extensions) over the given stores.
func NewHandler(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = 30 * time.Second
	}
	if opts.MaxLimit <= 0 {
		opts.MaxLimit = 1000
	}
	if opts.DefaultLimit <= 0 {
		opts.DefaultLimit = 20
	}
	if opts.MaxTagValues <= 0 {
		opts.MaxTagValues = 1000
	}
	if opts.MaxMetricsDuration <= 0 {
		opts.MaxMetricsDuration = 24 * time.Hour
	}
	if opts.Version == "" {
		opts.Version = TempoVersion
	}
	opts.PathPrefix = strings.TrimSuffix(opts.PathPrefix, "/")
	a := &api{
		opts:   opts,
		build:  buildinfo.Get(),
		logger: opts.Logger,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_tempo_api_requests_total", Help: "Tempo API requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lookout_tempo_api_request_duration_seconds", Help: "Tempo API request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
	}
	if opts.Registerer != nil {
		// A second handler on the same registry (the UI's /tempo/ mount)
		// shares the first one's metrics.
		if err := opts.Registerer.Register(a.requests); err != nil {
			if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
				if c, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
					a.requests = c
				}
			}
		}
		if err := opts.Registerer.Register(a.duration); err != nil {
			if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
				if c, ok := are.ExistingCollector.(*prometheus.HistogramVec); ok {
					a.duration = c
				}
			}
		}
	}
	mux := http.NewServeMux()
	route := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		mux.Handle("GET "+opts.PathPrefix+pattern, a.wrap(pattern, h))
	}
	route("/api/traces/{id}", a.traceByID(traceV1))
	route("/api/v2/traces/{id}", a.traceByID(traceV2))
	route("/api/search", a.search)
	route("/api/metrics/query_range", a.metricsQuery(false))
	route("/api/metrics/query", a.metricsQuery(true))
	route("/api/search/tags", a.tagsV1)
	route("/api/v2/search/tags", a.tagsV2)
	route("/api/search/tag/{tag}/values", a.tagValuesV1)
	route("/api/v2/search/tag/{tag}/values", a.tagValuesV2)
	route("/api/echo", func(w http.ResponseWriter, _ *http.Request) error {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, err := w.Write([]byte("echo"))
		return err
	})
	route("/api/status/buildinfo", a.buildinfo)
	route("/ready", func(w http.ResponseWriter, _ *http.Request) error {
		if opts.Ready != nil && !opts.Ready() {
			return httpError{http.StatusServiceUnavailable, "not ready"}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, err := w.Write([]byte("ready"))
		return err
	})
	if opts.Gatherer != nil {
		mux.Handle("GET "+opts.PathPrefix+"/metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	route("/api/lookout/exemplars", a.exemplarsByTrace)
	route("/api/lookout/traces/found", a.tracesFound)
	return mux
}

// httpError is an error with its HTTP status; its text is the response body.
type httpError struct {
	code int
	msg  string
}

func (e httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// wrap is the one place errors become responses: plain-text bodies with
// Tempo's status codes, invalid trace IDs (traceid.Parse's errors) and
// timeouts as 400s naming what was wrong.
func (a *api) wrap(route string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		err := h(rec, r)
		if err != nil {
			code, msg := http.StatusInternalServerError, err.Error()
			var he httpError
			switch {
			case errors.As(err, &he):
				code, msg = he.code, he.msg
			case errors.Is(err, traceid.ErrInvalid):
				code = http.StatusBadRequest
			case errors.Is(err, context.DeadlineExceeded):
				code, msg = http.StatusBadRequest, fmt.Sprintf("query timed out after %s: narrow the time range or make the query more selective", a.opts.QueryTimeout)
			case errors.Is(err, context.Canceled):
				code, msg = 499, "request canceled"
			default:
				a.logger.Error("tempo api request failed", "route", route, "err", err)
			}
			http.Error(rec, msg, code)
		}
		a.requests.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
		a.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func wantsProto(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/protobuf")
}

// A traceShape is the body of one of Tempo's by-ID endpoints, made from a
// trace marshaled as OTLP TracesData.
type traceShape struct {
	json  func(tracesData []byte) []byte // from OTLP/JSON
	proto func(tracesData []byte) []byte // from OTLP protobuf
}

// traceV1 is GET /api/traces/<id>: TracesData itself, with its
// resourceSpans named "batches" in JSON.
var traceV1 = traceShape{
	json:  func(b []byte) []byte { return renameResourceSpans(b, "batches") },
	proto: func(b []byte) []byte { return b },
}

// traceV2 is GET /api/v2/traces/<id>: a TraceByIDResponse.
var traceV2 = traceShape{
	json: func(b []byte) []byte {
		const head, tail = `{"trace":`, `,"status":"COMPLETE"}`
		out := make([]byte, 0, len(head)+len(b)+len(tail))
		out = append(out, head...)
		out = append(out, b...)
		return append(out, tail...)
	},
	proto: func(b []byte) []byte {
		// TraceByIDResponse{trace = 1}: the Trace message has the same wire
		// format as TracesData. status COMPLETE is the zero value and omitted.
		out := make([]byte, 0, 1+binary.MaxVarintLen64+len(b))
		out = binary.AppendUvarint(append(out, 0x0a), uint64(len(b)))
		return append(out, b...)
	},
}

// traceByID serves a by-ID endpoint: the stored trace in the given shape,
// as protobuf when the Accept header asks for it, else as JSON.
func (a *api) traceByID(shape traceShape) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := traceid.Parse(r.PathValue("id"))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(r.Context(), a.opts.QueryTimeout)
		defer cancel()
		td, ok, err := a.opts.Traces.GetTrace(ctx, id)
		if err != nil {
			return err
		}
		if !ok {
			return httpError{http.StatusNotFound, "trace not found"}
		}
		var b []byte
		ctype, frame := "application/json", shape.json
		if wantsProto(r) {
			ctype, frame = "application/protobuf", shape.proto
			b, err = (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		} else {
			b, err = (&ptrace.JSONMarshaler{}).MarshalTraces(td)
		}
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", ctype)
		_, err = w.Write(frame(b))
		return err
	}
}

// renameResourceSpans turns OTLP/JSON's {"resourceSpans":[...]} into
// {"<name>":[...]} (Tempo's v1 trace shape uses "batches").
func renameResourceSpans(b []byte, name string) []byte {
	const key = `{"resourceSpans":`
	if !strings.HasPrefix(string(b), key) {
		return []byte(`{"` + name + `":[]}`)
	}
	return append([]byte(`{"`+name+`":`), b[len(key):]...)
}

// TempoVersion is the Tempo release whose HTTP API this package answers as
// (by-ID v1 and v2, search with TraceQL, tags v1 and v2, echo):
// /api/status/buildinfo reports it so Grafana's Tempo data source, which
// parses the version, enables what that release has.
const TempoVersion = "2.5.0"

// buildinfo answers as Tempo does; the revision and date are Lookout's build.
func (a *api) buildinfo(w http.ResponseWriter, _ *http.Request) error {
	b := a.build
	return writeJSON(w, map[string]string{
		"version":   a.opts.Version,
		"revision":  b.Revision,
		"branch":    "lookout",
		"buildUser": "",
		"buildDate": b.Date,
		"goVersion": runtime.Version(),
	})
}

// timeRange parses Tempo's start and end parameters (unix seconds).
func (a *api) timeRange(r *http.Request) (time.Time, time.Time, error) {
	var start, end time.Time
	parse := func(name string) (time.Time, error) {
		v := r.URL.Query().Get(name)
		if v == "" {
			return time.Time{}, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 1<<33 {
			return time.Time{}, badRequest("invalid %s: %q is not a unix timestamp in seconds", name, truncate(v))
		}
		return time.Unix(n, 0), nil
	}
	var err error
	if start, err = parse("start"); err != nil {
		return start, end, err
	}
	if end, err = parse("end"); err != nil {
		return start, end, err
	}
	if !start.IsZero() && !end.IsZero() {
		if end.Before(start) {
			return start, end, badRequest("invalid start and end: end (%d) is before start (%d)", end.Unix(), start.Unix())
		}
		if a.opts.MaxSearchDuration > 0 && end.Sub(start) > a.opts.MaxSearchDuration {
			return start, end, badRequest("range specified by start and end exceeds %s. received start=%d end=%d", a.opts.MaxSearchDuration, start.Unix(), end.Unix())
		}
	}
	if !end.IsZero() {
		// end is inclusive to the second.
		end = end.Add(time.Second - 1)
	}
	return start, end, nil
}

func (a *api) exemplarsByTrace(w http.ResponseWriter, r *http.Request) error {
	id, err := traceid.Parse(r.URL.Query().Get("traceID"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.QueryTimeout)
	defer cancel()
	received, err := a.opts.Traces.HasTrace(ctx, id)
	if err != nil {
		return err
	}
	type jsonExemplar struct {
		Labels    map[string]string `json:"labels"`
		Value     string            `json:"value"`
		Timestamp json.Number       `json:"timestamp"`
	}
	type jsonSeries struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []jsonExemplar    `json:"exemplars"`
	}
	series := []jsonSeries{}
	if a.opts.Exemplars != nil {
		res, err := a.opts.Exemplars.ByTrace(ctx, id)
		if err != nil {
			return err
		}
		for _, s := range res {
			js := jsonSeries{SeriesLabels: s.SeriesLabels.Map(), Exemplars: []jsonExemplar{}}
			for _, e := range s.Exemplars {
				js.Exemplars = append(js.Exemplars, jsonExemplar{
					Labels:    e.Labels.Map(),
					Value:     strconv.FormatFloat(e.Value, 'f', -1, 64),
					Timestamp: json.Number(strconv.FormatFloat(float64(e.Ts)/1000, 'f', -1, 64)),
				})
			}
			series = append(series, js)
		}
	}
	return writeJSON(w, map[string]any{
		"traceID":       hex.EncodeToString(id[:]),
		"traceReceived": received,
		"series":        series,
	})
}

// maxFoundIDs bounds /api/lookout/traces/found.
const maxFoundIDs = 1000

func (a *api) tracesFound(w http.ResponseWriter, r *http.Request) error {
	raw := r.URL.Query().Get("ids")
	if raw == "" {
		return badRequest("missing ids: pass ids=<hex>,<hex>,...")
	}
	parts := strings.Split(raw, ",")
	if len(parts) > maxFoundIDs {
		return badRequest("too many ids: %d, the limit is %d", len(parts), maxFoundIDs)
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.QueryTimeout)
	defer cancel()
	found := make(map[string]bool, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		id, err := traceid.Parse(p)
		if err != nil {
			return err
		}
		ok, err := a.opts.Traces.HasTrace(ctx, id)
		if err != nil {
			return err
		}
		found[p] = ok
	}
	return writeJSON(w, map[string]any{"found": found})
}
