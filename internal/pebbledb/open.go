package pebbledb

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Open creates dir if needed and opens the Pebble database in it with po,
// whose Logger it sets to log through logger (nil: discard). store names the database in
// errors ("trace store", "exemplar index"). A block cache in po.Cache stays
// the caller's to release: Pebble takes a reference of its own.
func Open(dir, store string, po *pebble.Options, logger *slog.Logger) (*pebble.DB, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open %s: %w", store, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	po.Logger = pebbleLogger{l: logger}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("open %s in %s: %w", store, dir, err)
	}
	return db, nil
}

// Register registers the metrics of store with reg; a nil reg registers
// nothing (tests, benchmarks). It stops at the first collector reg refuses.
func Register(reg prometheus.Registerer, store string, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register %s metrics: %w", store, err)
		}
	}
	return nil
}
