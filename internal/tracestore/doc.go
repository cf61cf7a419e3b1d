// Package tracestore is Lookout's durable span storage: OTLP spans in,
// whole traces by ID and TraceQL search out, with retention by age and size
// that never deletes a trace an exemplar still points at.
//
// Storage is one Pebble database. Each request's spans of one trace become
// an OTLP protobuf record and a compact search record, both keyed by the
// trace's earliest start time, plus operands merged (Pebble merge operator,
// so ingest never reads) into a per-trace summary (root span, time bounds,
// list of records) and a per-minute block summary (longest span, status
// codes, kinds, Bloom filter of names and attribute strings). Each request
// also writes, per minute, a column block: the search fields of its spans
// stored column by column with dictionary-coded strings, each span
// attribute key in a column of its own (see columns.go). Two minutes
// after a minute ends, once it has taken no writes for a minute, the
// background loop moves its OTLP protobuf records into pages, runs of consecutive records compressed together with
// Zstandard (see pages.go), merges its column blocks into a few
// (colmerge.go) and deletes their search records; GetTrace
// reads a record, else its page, and readers of search records make those
// of cut chunks from their protobuf (walk.go, readRecord).
// Writes commit with Pebble's synced WAL, whose group commit batches
// concurrent requests into one fsync: a span is acknowledged only once it
// is durable. WAL files take only the space written to them
// (pebbledb.UnreservedWAL), and the background loop flushes the memtable
// every 30 seconds in which anything was written, and then, when little
// was, truncates the flushed WAL files Pebble keeps for reuse (trimWAL),
// so that a store with little traffic holds little more on disk than its
// compressed sstables.
//
// Search walks the time range newest first in windows of whole minutes that
// start at one minute and grow, two windows in parallel, skipping minutes
// whose block summary rules the query out. In the other minutes it
// evaluates the query's conditions on the column blocks, decoding only the
// columns the query uses and comparing each distinct string once per block,
// to find the trace chunks that may match; it then judges those traces
// exactly with package traceql, from their search records or, when the
// query spans several spans of a trace, the whole trace. Minutes older than
// the retention (which hold only pinned traces) are read from the search
// records instead.
package tracestore
