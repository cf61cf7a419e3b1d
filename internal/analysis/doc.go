// Package analysis goes from a metric spike to its cause: it compares the
// traces that make up a spike with normal traces of the same operations.
//
// Compare takes spike, baseline and (optionally) "rest" traces and returns
// scored findings: operations whose self time grew (separation of per-trace
// self time × the share of the extra duration it explains), operations only
// the spike has, attribute values over-represented among spike traces,
// numeric attributes whose distribution moved, and operations where errors
// start more often; and a one-line verdict such as "payment_provider_api
// self time 80 ms → 7.4 s in 30 of 30 slow traces".
//
// Analyzer picks those traces for a PromQL expression and a time window:
// the exemplars above a threshold, widened with stored traces of the same
// root operations, against the same operations in a baseline window. It
// reads only through ExemplarSource, TraceGetter and TraceFinder, which
// Lookout's stores and a remote Prometheus and Tempo (package remote) both
// satisfy. Its Handler serves /api/lookout/analyze; the alerting package
// uses it for alert evidence. docs/analysis.md describes the method.
package analysis
