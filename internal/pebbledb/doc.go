// Package pebbledb opens the Pebble databases of Lookout's two durable
// stores, the trace store (internal/tracestore) and the exemplar index
// (internal/exemplars), one way: the directory created, Pebble's log
// through slog (Logger), errors naming the store, and the store's own
// metrics registered (Register). Each store still chooses its Pebble
// options (cache, memtable, merger, compression); UnreservedWAL is for a
// store whose directory should hold little more than its data.
package pebbledb
