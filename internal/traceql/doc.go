// Package traceql parses and evaluates the subset of Grafana Tempo's TraceQL
// that Lookout supports: spanset filters with field conditions, attribute
// scopes (span., resource., event. and unscoped), intrinsics (including
// the nested-set numbers nestedSetLeft, nestedSetRight and
// nestedSetParent, span:id, span:parentID, trace:id, event:name and
// event:timeSinceStart), the spanset operators &&, ||, >>, >, <<, < and ~
// with their union (&>> …) and negated (!>> …) forms, pipelines of
// spanset filters, aggregate comparisons (count, avg, min, max, sum),
// by(), select() and coalesce(), and a trailing with(…) clause of query
// hints. That covers every search Grafana Traces Drilldown sends.
//
// Parse turns a query into an Expr with a hand-written lexer and
// recursive-descent parser; anything outside the subset is rejected with an
// error naming the construct. ParseWithHints also returns the hints. Eval
// runs an Expr over one Trace and EvalSpansets returns the trace's spansets
// (one per by() group); both compute the trace's nested sets when the
// query refers to them. PossibleInSpans and PossibleForTrace are
// conservative pre-filters the trace store uses to skip traces cheaply,
// and SpanLocal and NeedsEvents tell it when one stored batch of a trace's
// spans decides a query and when spans need their events.
//
// # Metrics queries
//
// ParseMetrics parses a metrics query: a spanset expression (which may be a
// pipeline), then one of rate(), count_over_time(), sum_over_time(f),
// min_over_time(f), max_over_time(f), avg_over_time(f),
// quantile_over_time(f, q…), histogram_over_time(f) with an optional
// by(…), or compare({ filter }, topN, start, end); then optionally
// | topk(n) or | bottomk(n), then optionally with(name=value, …) hints.
// Lookout reads the exemplars hint (MetricsQuery.ExemplarsHint) and
// ignores the others, such as Drilldown's sample=true: it does not sample.
// Metrics arithmetic, comparing a metrics result with a value and chains of
// second stages are refused as ErrUnsupported. Parse keeps refusing metrics
// queries.
//
// MetricsEval computes the answer as a stream: the trace store finds the
// spans the query's Spans expression matches and hands each to Observe (the
// start, the value of the query's field and the by() values) or to
// ObserveSpan (the whole span; compare() needs it); Result then returns the
// series. The semantics are Tempo's: right-closed steps (start, start+step]
// stamped with their end (AlignMetricsRange is Tempo's alignment of a
// query_range request), durations in seconds, the labels __name__, p,
// __bucket and __meta_type as Tempo names series, its empty-step rules and
// its series order. quantile_over_time keeps a sparse log histogram per
// series and step with 16 buckets per power of two, so a value is within
// QuantileRelativeError (2.17%) of the true quantile; histogram_over_time
// uses Tempo's power-of-two buckets. Memory is bounded: at most
// MaxMetricsPoints steps, MaxSeries series (beyond which Result returns a
// partial result with ErrTooManySeries) and MaxQuantileBuckets buckets.
package traceql
