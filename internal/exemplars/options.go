package exemplars

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// TraceChecker says whether a trace was received. The trace store implements it.
type TraceChecker interface {
	HasTrace(ctx context.Context, traceID pcommon.TraceID) (bool, error)
}

// TraceCheckerFunc is a function as a TraceChecker, e.g. one that reaches a
// trace store opened after the index (the store asks the index which
// traces are pinned, so it opens second).
type TraceCheckerFunc func(ctx context.Context, traceID pcommon.TraceID) (bool, error)

// HasTrace implements TraceChecker.
func (f TraceCheckerFunc) HasTrace(ctx context.Context, traceID pcommon.TraceID) (bool, error) {
	return f(ctx, traceID)
}

// Options configure an Index. Zero fields take the DefaultOptions value.
type Options struct {
	// Retention is how long exemplars are kept; set it to the metrics
	// retention. Default 15 days.
	Retention time.Duration
	// RetentionInterval is how often expired exemplars are deleted. Default 5 minutes.
	RetentionInterval time.Duration
	// Traces, when set, is asked whether each exemplar's trace arrived,
	// once DanglingGrace has passed since the exemplar was written, from
	// the index's own goroutine (first after CheckInterval), with a context
	// that Close cancels. Nil: no dangling checks.
	Traces TraceChecker
	// DanglingGrace is how long a trace has to arrive after its exemplar.
	// Default 2 minutes.
	DanglingGrace time.Duration
	// CheckInterval is how often pending dangling checks run. Default 10 seconds.
	CheckInterval time.Duration
	// MaxPending bounds exemplars awaiting their dangling check; beyond it
	// checks are skipped (and counted). Default 100000.
	MaxPending int
	// CacheSize is Pebble's block cache in bytes. Default 32 MiB, enough to
	// keep about an hour of 100k exemplars in memory for queries.
	CacheSize int64
	// SyncWrites makes every WriteExemplars wait for an fsync of Pebble's
	// WAL. Off by default: exemplars reach the index after the TSDB has
	// logged them in its own WAL, which is the source of truth for recent
	// exemplars; SetWALMark (synced) records how much of that WAL the index
	// durably holds, and the metric store re-indexes the rest when it
	// opens (internal/metricstore/feed.go).
	SyncWrites bool
	// Now is the clock; tests set it. Default time.Now.
	Now func() time.Time
}

// DefaultOptions returns the defaults described on Options.
func DefaultOptions() Options {
	return Options{
		Retention:         15 * 24 * time.Hour,
		RetentionInterval: 5 * time.Minute,
		DanglingGrace:     2 * time.Minute,
		CheckInterval:     10 * time.Second,
		MaxPending:        100_000,
		CacheSize:         32 << 20,
		Now:               time.Now,
	}
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	if o.Retention < 0 || o.RetentionInterval < 0 || o.DanglingGrace < 0 || o.CheckInterval < 0 {
		return errors.New("exemplar index: durations must not be negative")
	}
	return nil
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Retention <= 0 {
		o.Retention = d.Retention
	}
	if o.RetentionInterval <= 0 {
		o.RetentionInterval = d.RetentionInterval
	}
	if o.DanglingGrace <= 0 {
		o.DanglingGrace = d.DanglingGrace
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = d.CheckInterval
	}
	if o.MaxPending <= 0 {
		o.MaxPending = d.MaxPending
	}
	if o.CacheSize <= 0 {
		o.CacheSize = d.CacheSize
	}
	if o.Now == nil {
		o.Now = d.Now
	}
	return o
}
