package tempoapi

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lookout-dev/lookout/internal/traceql"
	"github.com/lookout-dev/lookout/internal/tracestore"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

type searchResponse struct {
	Traces  []traceJSON   `json:"traces"`
	Metrics searchMetrics `json:"metrics"`
}

type searchMetrics struct {
	InspectedTraces uint64 `json:"inspectedTraces"`
	InspectedBytes  string `json:"inspectedBytes"`
	InspectedSpans  string `json:"inspectedSpans"`
	CompletedJobs   int    `json:"completedJobs"`
	TotalJobs       int    `json:"totalJobs"`
}

type traceJSON struct {
	TraceID           string        `json:"traceID"`
	RootServiceName   string        `json:"rootServiceName"`
	RootTraceName     string        `json:"rootTraceName"`
	StartTimeUnixNano string        `json:"startTimeUnixNano"`
	DurationMs        uint64        `json:"durationMs,omitempty"`
	SpanSets          []spanSetJSON `json:"spanSets"`
	SpanSet           *spanSetJSON  `json:"spanSet,omitempty"`
}

// spanSetJSON is one spanset of a trace. Attributes name its by() group,
// one per grouping field keyed "by(<field>)" as Tempo does; a field the
// group's spans lack has no entry.
type spanSetJSON struct {
	Spans      []spanJSON `json:"spans"`
	Matched    int        `json:"matched"`
	Attributes []attrJSON `json:"attributes,omitempty"`
}

type spanJSON struct {
	SpanID            string     `json:"spanID"`
	Name              string     `json:"name"`
	StartTimeUnixNano string     `json:"startTimeUnixNano"`
	DurationNanos     string     `json:"durationNanos"`
	Attributes        []attrJSON `json:"attributes,omitempty"`
}

type attrJSON struct {
	Key   string         `json:"key"`
	Value map[string]any `json:"value"`
}

func (a *api) search(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	req := tracestore.SearchRequest{Limit: a.opts.DefaultLimit}
	var err error
	if req.Start, req.End, err = a.timeRange(r); err != nil {
		return err
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return badRequest("invalid limit: %q is not a positive integer", truncate(v))
		}
		req.Limit = min(n, a.opts.MaxLimit)
	}
	if v := q.Get("spss"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return badRequest("invalid spss: %q is not a positive integer", truncate(v))
		}
		req.SpansPerSpanSet = min(n, 1000)
	}
	for _, p := range []struct {
		name string
		dst  *time.Duration
	}{{"minDuration", &req.MinDuration}, {"maxDuration", &req.MaxDuration}} {
		if v := q.Get(p.name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return badRequest("invalid %s: %q is not a duration such as 100ms", p.name, truncate(v))
			}
			*p.dst = d
		}
	}
	if req.MinDuration > 0 && req.MaxDuration > 0 && req.MaxDuration < req.MinDuration {
		return badRequest("invalid maxDuration: it is less than minDuration")
	}
	var expr traceql.Expr
	if v := q.Get("q"); strings.TrimSpace(v) != "" {
		expr, err = traceql.Parse(v)
		if err != nil {
			return badRequest("invalid TraceQL query: %v", err)
		}
	}
	if v := q.Get("tags"); v != "" {
		tags, err := parseLogfmt(v)
		if err != nil {
			return badRequest("invalid tags: %v", err)
		}
		f, err := tagsFilter(tags)
		if err != nil {
			return badRequest("invalid tags: %v", err)
		}
		switch e := expr.(type) {
		case nil:
			expr = f
		case *traceql.Pipeline:
			// The tags narrow the pipeline's input, which keeps the
			// spanset expression the store pre-filters on at its head.
			expr = &traceql.Pipeline{Input: &traceql.SpansetOp{Op: traceql.OpAnd, L: e.Input, R: f}, Stages: e.Stages}
		default:
			expr = &traceql.SpansetOp{Op: traceql.OpAnd, L: expr, R: f}
		}
	}
	req.Query = expr
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.QueryTimeout)
	defer cancel()
	res, err := a.opts.Traces.Search(ctx, req)
	if err != nil {
		return err
	}
	// Each span reports the fields the query's conditions refer to, then
	// those select() asks for.
	fields := []traceql.Field{}
	if expr != nil {
		fields = traceql.Fields(expr)
		for _, f := range traceql.SelectedFields(expr) {
			if !slices.Contains(fields, f) {
				fields = append(fields, f)
			}
		}
	}
	out := searchResponse{
		Traces: make([]traceJSON, 0, len(res.Traces)),
		Metrics: searchMetrics{
			InspectedTraces: res.InspectedTraces,
			InspectedBytes:  strconv.FormatUint(res.InspectedBytes, 10),
			InspectedSpans:  strconv.FormatUint(res.InspectedSpans, 10),
			CompletedJobs:   1,
			TotalJobs:       1,
		},
	}
	for _, t := range res.Traces {
		info := traceql.TraceInfo{RootName: t.RootTraceName, RootServiceName: t.RootServiceName, StartUnixNano: t.StartUnixNano, EndUnixNano: t.StartUnixNano + uint64(t.Duration)}
		tj := traceJSON{
			TraceID:           searchTraceID(t.TraceID),
			RootServiceName:   t.RootServiceName,
			RootTraceName:     t.RootTraceName,
			StartTimeUnixNano: strconv.FormatUint(t.StartUnixNano, 10),
			DurationMs:        uint64(t.Duration / time.Millisecond),
			SpanSets:          make([]spanSetJSON, 0, len(t.SpanSets)),
		}
		for _, set := range t.SpanSets {
			ss := spanSetJSON{Spans: make([]spanJSON, 0, len(set.Spans)), Matched: set.Matched}
			for i := range set.Spans {
				ss.Spans = append(ss.Spans, spanToJSON(&set.Spans[i], &info, fields))
			}
			for _, g := range set.Group {
				if g.Present {
					ss.Attributes = append(ss.Attributes, attrJSON{Key: "by(" + g.Field.String() + ")", Value: otlpValue(g.Value)})
				}
			}
			tj.SpanSets = append(tj.SpanSets, ss)
		}
		// Tempo's deprecated spanSet field repeats the first spanset.
		tj.SpanSet = &tj.SpanSets[0]
		out.Traces = append(out.Traces, tj)
	}
	return writeJSON(w, out)
}

// spanToJSON renders a matched span with the attributes the query referred to.
func spanToJSON(s *traceql.Span, info *traceql.TraceInfo, fields []traceql.Field) spanJSON {
	j := spanJSON{
		SpanID:            hex.EncodeToString(s.SpanID[:]),
		Name:              s.Name,
		StartTimeUnixNano: strconv.FormatUint(s.StartUnixNano, 10),
		DurationNanos:     strconv.FormatInt(s.Duration(), 10),
	}
	for _, f := range fields {
		switch f.Intrinsic {
		case traceql.IntrinsicName, traceql.IntrinsicDuration, traceql.IntrinsicTraceDuration,
			traceql.IntrinsicRootName, traceql.IntrinsicRootServiceName, traceql.IntrinsicSpanID, traceql.IntrinsicTraceID:
			continue // reported in their own fields
		}
		v, ok := traceql.FieldValue(f, s, info)
		if !ok {
			continue
		}
		key := f.Name
		if f.Intrinsic != traceql.IntrinsicNone {
			key = f.String()
		}
		j.Attributes = append(j.Attributes, attrJSON{Key: key, Value: otlpValue(v)})
	}
	return j
}

// otlpValue renders a value as OTLP/JSON's AnyValue.
func otlpValue(v traceql.Value) map[string]any {
	switch v.Type {
	case traceql.TypeInt:
		return map[string]any{"intValue": strconv.FormatInt(v.I, 10)}
	case traceql.TypeFloat:
		return map[string]any{"doubleValue": v.F}
	case traceql.TypeBool:
		return map[string]any{"boolValue": v.B}
	case traceql.TypeString:
		return map[string]any{"stringValue": v.S}
	}
	return map[string]any{"stringValue": v.String()}
}

// parseLogfmt parses Tempo's tags parameter: space-separated key=value
// pairs, values optionally double-quoted with backslash escapes.
func parseLogfmt(s string) ([][2]string, error) {
	var out [][2]string
	i := 0
	for {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i >= len(s) {
			return out, nil
		}
		k := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' {
			i++
		}
		key := s[k:i]
		if key == "" {
			return nil, fmt.Errorf("empty key at position %d", k+1)
		}
		if i >= len(s) || s[i] != '=' {
			return nil, fmt.Errorf("key %q has no value: use key=value", truncate(key))
		}
		i++
		var val string
		if i < len(s) && s[i] == '"' {
			var b strings.Builder
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				i++
				if c == '"' {
					closed = true
					break
				}
				b.WriteByte(c)
			}
			if !closed {
				return nil, fmt.Errorf("unterminated quoted value for %q", truncate(key))
			}
			val = b.String()
		} else {
			v := i
			for i < len(s) && s[i] != ' ' {
				i++
			}
			val = s[v:i]
		}
		out = append(out, [2]string{key, val})
		if len(out) > 64 {
			return nil, errors.New("more than 64 tags")
		}
	}
}

// tagsFilter turns legacy tag search into one spanset filter: every tag
// must match the same span. "name" is the span name, "status" the span
// status; other keys are attributes in any scope, compared as text and,
// when the value parses as one, as a number or boolean.
func tagsFilter(tags [][2]string) (traceql.Expr, error) {
	var cond traceql.Cond
	for _, kv := range tags {
		c, err := tagCond(kv[0], kv[1])
		if err != nil {
			return nil, err
		}
		if cond == nil {
			cond = c
		} else {
			cond = &traceql.Logical{And: true, L: cond, R: c}
		}
	}
	return &traceql.Filter{Cond: cond}, nil
}

func tagCond(k, v string) (traceql.Cond, error) {
	parse := func(q string) (traceql.Cond, error) {
		e, err := traceql.Parse("{ " + q + " }")
		if err != nil {
			return nil, err
		}
		return e.(*traceql.Filter).Cond, nil
	}
	switch k {
	case "name":
		return parse("name = " + strconv.Quote(v))
	case "status":
		return parse("status = " + v)
	}
	if strings.ContainsAny(k, " \"") {
		return nil, fmt.Errorf("tag name %q is not valid", truncate(k))
	}
	field := "." + k
	conds := []string{field + " = " + strconv.Quote(v)}
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		conds = append(conds, field+" = "+v)
	} else if _, err := strconv.ParseFloat(v, 64); err == nil {
		conds = append(conds, field+" = "+v)
	} else if v == "true" || v == "false" {
		conds = append(conds, field+" = "+v)
	}
	return parse(strings.Join(conds, " || "))
}

func (a *api) tagsV1(w http.ResponseWriter, r *http.Request) error {
	start, end, err := a.timeRange(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.QueryTimeout)
	defer cancel()
	byScope, err := a.opts.Traces.TagNames(ctx, tracestore.TagScopeAll, start, end)
	if err != nil {
		return err
	}
	var names []string
	for _, ns := range byScope {
		names = append(names, ns...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if names == nil {
		names = []string{}
	}
	return writeJSON(w, map[string]any{"tagNames": names})
}

func (a *api) tagsV2(w http.ResponseWriter, r *http.Request) error {
	start, end, err := a.timeRange(r)
	if err != nil {
		return err
	}
	scope := r.URL.Query().Get("scope")
	switch scope {
	case "", "all", "span", "resource", "intrinsic":
	default:
		return badRequest("invalid scope %q: use span, resource, intrinsic or none", truncate(scope))
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.QueryTimeout)
	defer cancel()
	byScope, err := a.opts.Traces.TagNames(ctx, tracestore.TagScopeAll, start, end)
	if err != nil {
		return err
	}
	type scopeJSON struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	scopes := []scopeJSON{}
	for _, sc := range []tracestore.TagScope{tracestore.TagScopeSpan, tracestore.TagScopeResource} {
		if scope != "" && scope != "all" && scope != string(sc) {
			continue
		}
		tags := byScope[sc]
		if tags == nil {
			tags = []string{}
		}
		scopes = append(scopes, scopeJSON{Name: string(sc), Tags: tags})
	}
	if scope == "" || scope == "all" || scope == "intrinsic" {
		scopes = append(scopes, scopeJSON{Name: "intrinsic", Tags: traceql.IntrinsicNames()})
	}
	return writeJSON(w, map[string]any{"scopes": scopes})
}

type tagValueJSON struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// tagValues resolves a tag as the v2 API names it: span.x, resource.x, .x,
// or an intrinsic.
func (a *api) tagValues(r *http.Request, tag string, v2 bool) ([]tagValueJSON, error) {
	start, end, err := a.timeRange(r)
	if err != nil {
		return nil, err
	}
	if tag == "" {
		return nil, badRequest("missing tag name")
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.QueryTimeout)
	defer cancel()
	keywords := func(names ...string) []tagValueJSON {
		out := make([]tagValueJSON, 0, len(names))
		for _, n := range names {
			out = append(out, tagValueJSON{Type: "keyword", Value: n})
		}
		return out
	}
	scope, key := tracestore.TagScopeAll, tag
	if v2 {
		switch {
		case tag == "status":
			return keywords("error", "ok", "unset"), nil
		case tag == "kind":
			return keywords("client", "consumer", "internal", "producer", "server", "unspecified"), nil
		case tag == "name" || tag == "rootName" || tag == "rootServiceName":
			scope, key = tracestore.TagScopeIntrinsic, tag
		case strings.HasPrefix(tag, "span."):
			scope, key = tracestore.TagScopeSpan, tag[len("span."):]
		case strings.HasPrefix(tag, "resource."):
			scope, key = tracestore.TagScopeResource, tag[len("resource."):]
		case strings.HasPrefix(tag, "."):
			key = tag[1:]
		case slices.Contains(traceql.IntrinsicNames(), tag):
			return []tagValueJSON{}, nil
		default:
			return nil, badRequest("invalid tag %q: use span.<name>, resource.<name>, .<name> or an intrinsic", truncate(tag))
		}
	}
	vals, err := a.opts.Traces.TagValues(ctx, scope, key, start, end, a.opts.MaxTagValues)
	if err != nil {
		return nil, err
	}
	out := make([]tagValueJSON, 0, len(vals))
	for _, v := range vals {
		out = append(out, tagValueJSON{Type: v.TypeName(), Value: v.Text()})
	}
	return out, nil
}

func (a *api) tagValuesV1(w http.ResponseWriter, r *http.Request) error {
	vals, err := a.tagValues(r, r.PathValue("tag"), false)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(vals))
	for _, v := range vals {
		names = append(names, v.Value)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	return writeJSON(w, map[string]any{"tagValues": names})
}

func (a *api) tagValuesV2(w http.ResponseWriter, r *http.Request) error {
	vals, err := a.tagValues(r, r.PathValue("tag"), true)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"tagValues": vals})
}

// searchTraceID writes a trace ID as Tempo's search results do: lower-case
// hex without leading zeros (span IDs keep all 16 digits).
func searchTraceID(id pcommon.TraceID) string {
	return strings.TrimLeft(hex.EncodeToString(id[:]), "0")
}
