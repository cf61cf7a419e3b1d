// Package tempoapi serves Grafana Tempo's documented HTTP API (trace by ID
// v1 and v2 in JSON and protobuf, search, tags and tag values, echo,
// buildinfo, ready, metrics) over Lookout's trace store, plus Lookout's
// extensions under /api/lookout/: the exemplars pointing at a trace and
// which of a list of traces were received. Trace and span IDs in JSON are
// lower-case hex, as in OTLP/JSON.
package tempoapi
