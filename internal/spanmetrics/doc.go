// Package spanmetrics derives request, error and duration (RED) metrics from
// the spans Lookout stores, named and labelled as the OpenTelemetry
// Collector's span metrics connector (opentelemetry-collector-contrib
// connector/spanmetricsconnector, v0.165.0; v0.161.0 behaves the same) does
// with its default configuration, so dashboards made for that connector work
// on Lookout unchanged.
//
// A Deriver sits between the OTLP receivers and the trace store as an
// ingest.TracesSink: it hands each request to the store first and counts
// only spans the store kept. Its Run loop hands the cumulative state to an
// ingest.MetricsSink (the metric store) every FlushInterval, as one
// pmetric.Metrics:
//
//	resource      the span's resource attributes, all of them (one ResourceMetrics per distinct resource)
//	scope         name "spanmetricsconnector"
//	metric        traces.span.metrics.calls     Sum, monotonic, cumulative, int
//	metric        traces.span.metrics.duration  Histogram, cumulative, unit "ms", explicit bounds
//	                                            2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000
//	point attrs   service.name, span.name, span.kind (SPAN_KIND_SERVER, ...),
//	              status.code (STATUS_CODE_UNSET, STATUS_CODE_OK, STATUS_CODE_ERROR),
//	              collector.instance.id (Options.InstanceID)
//	overflow      one series per resource and metric whose only attribute is
//	              otel.metric.overflow=true (bool), once CardinalityLimit series exist
//
// As in the connector: spans whose resource has no service.name are not
// counted; a span's duration is end minus start in milliseconds (0 when the
// end precedes the start); bucket bounds are upper-inclusive; a span whose
// tracestate carries an OpenTelemetry sampling threshold (ot=th:...) counts
// as its adjusted count (e.g. 2 for th:8, 50% sampling), rounded
// stochastically; each series' start timestamp is the time its first span
// arrived and stays fixed while the series lives; the first flush of a new
// calls series reports 0 (so that Prometheus's rate sees the first
// increase); every point of a flush has the flush time as its timestamp.
//
// On purpose unlike the connector's defaults: duration points carry
// exemplars (the largest span of each bucket since the last flush, with its
// trace and span ID, timestamped with the flush) so the UI can jump from a
// slow bucket to a trace; the cardinality limit applies to all resources
// together and is on by default; idle series expire; the flush interval is
// 15 s (the connector's is 60 s). docs/spanmetrics.md has the Prometheus names.
package spanmetrics
