// Package telemetry builds one OpenTelemetry TracerProvider and
// MeterProvider per WebStore service, each with its own service.name
// resource, exporting over OTLP as configured by the standard OTEL_*
// environment variables.
//
// Honoured variables: OTEL_EXPORTER_OTLP_ENDPOINT and the _TRACES_/_METRICS_
// variants, OTEL_EXPORTER_OTLP_PROTOCOL (grpc, the default here, or
// http/protobuf) and its per-signal variants, OTEL_EXPORTER_OTLP_HEADERS,
// _INSECURE, _TIMEOUT, _COMPRESSION and _CERTIFICATE (read by the exporters),
// OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME (becomes service.namespace, so
// the four services keep their own service.name), OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG, OTEL_METRICS_EXEMPLAR_FILTER, OTEL_METRIC_EXPORT_INTERVAL
// (default here 10s) and OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER ("none"
// turns a signal off). WEBSTORE_EXEMPLAR_RESERVOIR selects exemplar
// reservoirs through Views: tail (the default) keeps each bucket's largest
// measurement per export interval of webstore.payment.duration and
// webstore.checkout.amount (package tailexemplar); sdk leaves the SDK's
// default; aligned and fixed set webstore.payment.duration's to the SDK's
// aligned-histogram or a fixed-size sample of 4.
// otelhttp's body-size histograms are dropped through Views unless
// WEBSTORE_HTTP_BODY_SIZE_METRICS=true; its duration histograms are kept.
//
// Export failures are logged at most once per interval per service and never
// reach the code that produced the telemetry.
package telemetry
