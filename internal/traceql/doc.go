// Package traceql parses and evaluates the subset of Grafana Tempo's TraceQL
// that Lookout supports: spanset filters with field conditions, attribute
// scopes, intrinsics, and the spanset operators &&, ||, >> and >.
//
// Parse turns a query into an Expr with a hand-written lexer and
// recursive-descent parser; anything outside the subset is rejected with an
// error naming the construct. Eval runs an Expr over one Trace. Possible is
// a conservative pre-filter the trace store uses to skip traces cheaply.
package traceql
