// Package metricstore stores OTLP metrics in Prometheus's own TSDB.
//
// A Store opens a tsdb.DB (WAL, exemplar storage, retention) under a
// directory, translates OTLP with Prometheus's own OTLP translator
// (storage/remote/otlptranslator/prometheusremotewrite) exactly as
// Prometheus's OTLP receiver does, and implements ingest.MetricsSink. Every
// exemplar the TSDB accepts is also handed, in batches and off the request
// path, to an optional exemplars.Writer by the exemplar feed (feed.go),
// which also re-indexes at Open what a crash kept from the writer and
// answers exemplar queries from the writer's index read-after-write
// (ReadAfterWrite). The store exposes the Queryable, ExemplarQueryable,
// AppendableV2 and admin statistics the Prometheus HTTP API needs; it
// imports no API or receiver package.
package metricstore
