// Package remote reads a real Prometheus-compatible API (Prometheus, Mimir,
// Lookout itself) and a Tempo-compatible HTTP API for the spike analysis: its
// Prometheus and Tempo types are the analysis.ExemplarSource,
// analysis.TraceGetter and analysis.TraceFinder used when Lookout runs with
// --prometheus.url and --tempo.url instead of its embedded stores.
//
// Both are thin clients of the documented APIs: Prometheus's
// /api/v1/query_exemplars through client_golang's API client, and Tempo's
// /api/traces/{id} (protobuf, or Tempo's JSON when a proxy answers with it)
// and /api/search. Every answer is read with a size bound, every request
// honours its context, and trace IDs are parsed by traceid.Parse, which reads
// them as Tempo writes them: hex in any case, leading zeros optional.
package remote
