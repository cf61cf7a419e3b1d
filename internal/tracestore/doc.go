// Package tracestore is Lookout's durable span storage: OTLP spans in,
// whole traces by ID and TraceQL search out, with retention by age and size
// that never deletes a trace an exemplar still points at.
//
// Storage is one Pebble database. Each request's spans of one trace become
// an OTLP protobuf record and a compact search record, both keyed by the
// trace's earliest start time, plus operands merged (Pebble merge operator,
// so ingest never reads) into a per-trace summary (root span, time bounds,
// list of records) and a per-minute block summary (longest span, status
// codes, kinds, Bloom filter of names and attribute strings). Writes commit
// with Pebble's synced WAL, whose group commit batches concurrent requests
// into one fsync: a span is acknowledged only once it is durable.
//
// Search walks the time index newest first in windows that start small and
// grow, two windows in parallel, skipping minutes whose block summary rules
// the query out and records that lack the query's required strings, then
// judges the surviving traces exactly with package traceql.
package tracestore
