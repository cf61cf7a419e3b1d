// Package traceql parses and evaluates the subset of Grafana Tempo's TraceQL
// that Lookout supports: spanset filters with field conditions, attribute
// scopes, intrinsics, the spanset operators &&, ||, >>, >, <<, < and ~, and
// pipelines of spanset filters, aggregate comparisons (count, avg, min,
// max, sum), by(), select() and coalesce().
//
// Parse turns a query into an Expr with a hand-written lexer and
// recursive-descent parser; anything outside the subset is rejected with an
// error naming the construct. Eval runs an Expr over one Trace and
// EvalSpansets returns the trace's spansets (one per by() group).
// PossibleInSpans and PossibleForTrace are conservative pre-filters the
// trace store uses to skip traces cheaply.
package traceql
