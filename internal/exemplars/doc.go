// Package exemplars is Lookout's durable exemplar index: every exemplar the
// metrics side accepts, kept for the whole metrics retention, queryable with
// the exact semantics of Prometheus's exemplar storage (it implements
// storage.ExemplarQueryable), linked both ways to traces (ByTrace), pinning
// the traces it points at (IsPinned, used by the trace store's retention),
// and counting exemplars whose trace never arrived (dangling).
//
// Storage is a Pebble database with keys ordered so that one series' range
// scan returns exemplars in Prometheus's order.
//
// The files follow the index's activities: options.go (Options), codec.go
// (the key and value layouts), index.go (the Index, Open, Close), write.go
// (WriteExemplars and the WAL mark), query.go (Select), traces.go (ByTrace,
// pinning, dangling checks) and retention.go.
package exemplars
