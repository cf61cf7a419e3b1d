package remote

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/analysis"
	"github.com/lookout-dev/lookout/internal/traceid"
)

var (
	_ analysis.TraceGetter = (*Tempo)(nil)
	_ analysis.TraceFinder = (*Tempo)(nil)
)

// Tempo reads traces from a Tempo-compatible HTTP API (Grafana Tempo,
// Lookout). It is safe for concurrent use.
type Tempo struct {
	base   *url.URL
	client *http.Client
	// Answer bounds: MaxTraceBytes and MaxSearchBytes; tests lower them.
	maxTrace, maxSearch int64
}

// NewTempo returns a client of the Tempo HTTP API at baseURL (e.g.
// http://localhost:3200, or http://localhost:3000/tempo with a path
// prefix). client carries transport settings such as TLS, authentication
// or an X-Scope-OrgID header; nil uses client_golang's default transport
// (as NewPrometheus does). Answers are bounded to MaxTraceBytes and
// MaxSearchBytes.
func NewTempo(baseURL string, client *http.Client) (*Tempo, error) {
	u, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, fmt.Errorf("tempo: %w", err)
	}
	return &Tempo{base: u, client: orDefault(client), maxTrace: MaxTraceBytes, maxSearch: MaxSearchBytes}, nil
}

// GetTrace fetches GET /api/traces/{id} as protobuf. found is false when
// Tempo answers 404 or a trace without spans. Tempo's Trace message
// (repeated ResourceSpans batches = 1) has OTLP TracesData's wire format;
// an answer in Tempo's JSON (from a proxy that converts) is read too, its
// IDs in hex or base64.
func (t *Tempo) GetTrace(ctx context.Context, id pcommon.TraceID) (ptrace.Traces, bool, error) {
	if id.IsEmpty() {
		return ptrace.Traces{}, false, fmt.Errorf("get trace from %s: the trace ID is all zeros", t.base.Redacted())
	}
	hexID := hex.EncodeToString(id[:])
	op := fmt.Sprintf("get trace %s from %s", hexID, t.base.Redacted())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base.JoinPath("api", "traces", hexID).String(), nil)
	if err != nil {
		return ptrace.Traces{}, false, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Accept", "application/protobuf")
	resp, err := t.client.Do(req)
	if err != nil {
		return ptrace.Traces{}, false, fmt.Errorf("%s: %w", op, err)
	}
	defer drainClose(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		return ptrace.Traces{}, false, nil
	}
	if resp.StatusCode/100 != 2 {
		return ptrace.Traces{}, false, &StatusError{Op: op, StatusCode: resp.StatusCode, Body: bodyPrefix(resp.Body)}
	}
	body, err := readBounded(resp.Body, t.maxTrace)
	if err != nil {
		return ptrace.Traces{}, false, fmt.Errorf("%s: read answer: %w", op, err)
	}
	td, err := decodeTrace(resp.Header.Get("Content-Type"), body)
	if err != nil {
		return ptrace.Traces{}, false, fmt.Errorf("%s: %w", op, err)
	}
	if td.SpanCount() == 0 {
		return ptrace.Traces{}, false, nil
	}
	return td, true, nil
}

// decodeTrace decodes a trace-by-ID answer by its Content-Type: protobuf
// (what we asked for; also assumed when none is given) or Tempo's JSON.
func decodeTrace(contentType string, body []byte) (ptrace.Traces, error) {
	media := ""
	if contentType != "" {
		var err error
		if media, _, err = mime.ParseMediaType(contentType); err != nil {
			return ptrace.Traces{}, fmt.Errorf("answer has an invalid Content-Type %q", contentType)
		}
	}
	switch media {
	case "", "application/protobuf", "application/x-protobuf", "application/octet-stream":
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(body)
		if err != nil {
			return ptrace.Traces{}, fmt.Errorf("decode protobuf trace: %w", err)
		}
		return td, nil
	case "application/json":
		td, err := decodeTraceJSON(body)
		if err != nil {
			return ptrace.Traces{}, fmt.Errorf("decode JSON trace: %w", err)
		}
		return td, nil
	}
	return ptrace.Traces{}, fmt.Errorf("answer is %s, not a trace (is the URL a Tempo API?): %s", media, quotable(body))
}

// FindTraces runs GET /api/search with the TraceQL query, the window in
// unix seconds (start rounded down, end up, so the window is never
// narrowed), minDuration (left out when 0) and limit (left out when not
// positive: the server's default). It returns the trace IDs in the
// server's order (newest first for Tempo), without duplicates, at most
// q.Limit of them.
func (t *Tempo) FindTraces(ctx context.Context, q analysis.TraceQuery) ([]pcommon.TraceID, error) {
	op := fmt.Sprintf("search %q on %s", q.TraceQL, t.base.Redacted())
	params := url.Values{}
	if q.TraceQL != "" {
		params.Set("q", q.TraceQL)
	}
	if !q.Start.IsZero() {
		params.Set("start", strconv.FormatInt(q.Start.Unix(), 10))
	}
	if !q.End.IsZero() {
		end := q.End.Unix()
		if q.End.After(time.Unix(end, 0)) {
			end++
		}
		params.Set("end", strconv.FormatInt(end, 10))
	}
	if q.MinDuration > 0 {
		params.Set("minDuration", q.MinDuration.String())
	}
	if q.Limit > 0 {
		params.Set("limit", strconv.Itoa(q.Limit))
	}
	u := t.base.JoinPath("api", "search")
	u.RawQuery = params.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer drainClose(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, &StatusError{Op: op, StatusCode: resp.StatusCode, Body: bodyPrefix(resp.Body)}
	}
	body, err := readBounded(resp.Body, t.maxSearch)
	if err != nil {
		return nil, fmt.Errorf("%s: read answer: %w", op, err)
	}
	ids, err := decodeSearch(body, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return ids, nil
}

// searchAnswer is the part of Tempo's search answer we read.
type searchAnswer struct {
	Traces []struct {
		TraceID string `json:"traceID"`
	} `json:"traces"`
}

// decodeSearch returns the trace IDs of a search answer in order, without
// duplicates, at most limit of them when limit is positive. Tempo leaves
// out leading zeros, so IDs shorter than 32 digits are left-padded; an
// invalid ID means the answer is not Tempo's and fails the whole answer.
func decodeSearch(body []byte, limit int) ([]pcommon.TraceID, error) {
	var ans searchAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("decode search answer (is the URL a Tempo API?): %w: %s", err, quotable(body))
	}
	n := len(ans.Traces)
	if limit > 0 {
		n = min(n, limit)
	}
	ids := make([]pcommon.TraceID, 0, n)
	seen := make(map[pcommon.TraceID]struct{}, n)
	for _, tr := range ans.Traces {
		if len(ids) == n {
			break
		}
		id, err := traceid.Parse(tr.TraceID)
		if err != nil {
			return nil, fmt.Errorf("search answer has an invalid trace ID %q: want up to 32 hex digits, not all zeros", quotable([]byte(tr.TraceID)))
		}
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		ids = append(ids, id)
	}
	return ids, nil
}
