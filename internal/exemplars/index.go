package exemplars

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/lookout-dev/lookout/internal/pebbledb"
)

// seriesEntry is a series with exemplars in the index. newest is the
// newest exemplar timestamp written since Open (Open's time for series
// loaded from disk); retention forgets series whose newest has expired.
type seriesEntry struct {
	ls     labels.Labels
	newest atomic.Int64
}

// Index is the durable exemplar index. It is safe for concurrent use.
type Index struct {
	opts   Options
	logger *slog.Logger
	db     *pebble.DB

	bufs sync.Pool // *writeBuf

	mu     sync.RWMutex // held for writing to add or forget series
	series map[uint64]*seriesEntry
	// expiredBelow is the first exemplar hour bucket retention has not
	// deleted yet.
	expiredBelow uint32

	pendMu   sync.Mutex
	pending  []pendingCheck
	dangling map[pcommon.TraceID]int64 // trace → newest exemplar ts (ms) pointing at it

	closed    atomic.Bool
	closeOnce sync.Once
	// stop ends the background work (retention, dangling checks) and
	// cancels a pass in progress.
	stop context.CancelFunc
	wg   sync.WaitGroup

	m indexMetrics
}

type indexMetrics struct {
	written       prometheus.Counter
	danglingTotal prometheus.Counter
	dangling      prometheus.GaugeFunc
	skipped       prometheus.Counter
	expired       prometheus.Counter
	collisions    prometheus.Counter
}

var (
	_ Writer                    = (*Index)(nil)
	_ storage.ExemplarQueryable = (*Index)(nil)
)

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("exemplar index is closed")

// Open opens (creating if needed) the index in dir.
func Open(dir string, opts Options, logger *slog.Logger, reg prometheus.Registerer) (*Index, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref() // the DB holds its own reference
	po := &pebble.Options{Cache: cache, MemTableSize: 8 << 20, L0CompactionThreshold: 8, L0StopWritesThreshold: 32, LBaseMaxBytes: 256 << 20}
	// Keys are mostly hashes and timestamps, values binary IDs: they
	// compress poorly, and compressing them took a tenth of indexing CPU.
	for i := range po.Levels {
		po.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
	}
	db, err := pebbledb.Open(dir, "exemplar index", po, logger)
	if err != nil {
		return nil, err
	}
	x := &Index{
		opts:     opts,
		logger:   logger,
		db:       db,
		series:   map[uint64]*seriesEntry{},
		dangling: map[pcommon.TraceID]int64{},
	}
	if err := x.loadSeries(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := x.restoreChecks(); err != nil {
		_ = db.Close()
		return nil, err
	}
	x.m = indexMetrics{
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_exemplars_written_total", Help: "Exemplars written to the exemplar index.",
		}),
		danglingTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_exemplars_dangling_total", Help: "Exemplars whose trace had not been received when their grace period ended.",
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_exemplars_dangling_checks_skipped_total", Help: "Dangling-trace checks skipped because too many were pending.",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_exemplars_expired_total", Help: "Exemplars deleted by retention.",
		}),
		collisions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_exemplars_series_hash_collisions_total", Help: "Exemplars dropped because their series' hash collided with another series.",
		}),
	}
	x.m.dangling = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lookout_exemplars_dangling", Help: "Traces referenced by exemplars within retention that were never received.",
	}, func() float64 {
		x.pendMu.Lock()
		defer x.pendMu.Unlock()
		return float64(len(x.dangling))
	})
	if err := pebbledb.Register(reg, "exemplar index", x.m.written, x.m.danglingTotal, x.m.dangling, x.m.skipped, x.m.expired, x.m.collisions); err != nil {
		_ = db.Close()
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	x.stop = stop
	x.wg.Add(2)
	go x.loop(ctx, opts.RetentionInterval, func(ctx context.Context) {
		if err := x.RunRetention(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("exemplar retention failed", "err", err)
		}
	})
	go x.loop(ctx, opts.CheckInterval, x.CheckDangling)
	return x, nil
}

// loop runs f every interval until ctx ends.
func (x *Index) loop(ctx context.Context, every time.Duration, f func(context.Context)) {
	defer x.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(ctx)
		}
	}
}

// Close stops background work and closes the database.
func (x *Index) Close() error {
	var err error
	x.closeOnce.Do(func() {
		x.stop()
		x.wg.Wait()
		x.mu.Lock()
		x.closed.Store(true)
		x.mu.Unlock()
		err = x.db.Close()
	})
	return err
}

func (x *Index) loadSeries() error {
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pSeries}, UpperBound: []byte{pSeries + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if len(it.Key()) != 9 {
			continue
		}
		ls, err := decodeLabels(it.Value())
		if err != nil {
			return fmt.Errorf("exemplar index: series %x: %w", it.Key(), err)
		}
		e := &seriesEntry{ls: ls}
		e.newest.Store(x.opts.Now().UnixMilli())
		x.series[binary.BigEndian.Uint64(it.Key()[1:])] = e
	}
	return it.Error()
}

// cutoff is the oldest timestamp (ms) within retention.
func (x *Index) cutoff() int64 { return x.opts.Now().Add(-x.opts.Retention).UnixMilli() }
