// Package otlpin receives OTLP metrics and traces over gRPC (:4317) and
// HTTP (:4318, /v1/metrics and /v1/traces, protobuf or JSON, optionally
// gzip) using the collector's pdata services, and hands the decoded data to
// an ingest.MetricsSink and an ingest.TracesSink. It maps the sinks' errors
// to OTLP's statuses: 400 / InvalidArgument for bad data, a partial success
// for partly refused batches, 429 / ResourceExhausted with retry information
// when overloaded, 413 when a body is over the size limit (checked while
// decompressing), 415 for an unknown content type, 404 for an unknown path.
package otlpin
