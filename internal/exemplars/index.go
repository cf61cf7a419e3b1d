package exemplars

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/lookout-dev/lookout/internal/pebbleslog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// TraceChecker says whether a trace was received. The trace store implements it.
type TraceChecker interface {
	HasTrace(ctx context.Context, traceID pcommon.TraceID) (bool, error)
}

// Options configure an Index. Zero fields take the DefaultOptions value.
type Options struct {
	// Retention is how long exemplars are kept; set it to the metrics
	// retention. Default 15 days.
	Retention time.Duration
	// RetentionInterval is how often expired exemplars are deleted. Default 5 minutes.
	RetentionInterval time.Duration
	// Traces, when set (here or later with SetTraces), is asked whether each exemplar's trace arrived, once
	// DanglingGrace has passed since the exemplar was written.
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
	// exemplars, and Lookout re-indexes the exemplars the TSDB replays at
	// start (internal/app). Without it a write survives a process crash
	// once Pebble has written its WAL, as Prometheus's WAL does.
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

// Key layout (one-byte table prefix):
//
//	s | series(8)                                  → series labels
//	e | series(8) | ts(8) | value(8) | lhash(8)     → exemplar labels, value, hasTs
//	t | traceID(16) | ts(8) | series(8) | value(8) | lhash(8) → reverse link
//	o | ts(8) | series(8) | value(8) | lhash(8) | traceID(0 or 16) → expiry order
//
// ts, value and lhash are encoded so byte order is Prometheus's exemplar
// order within a series: timestamp, then value, then label hash.
const (
	pSeries   = 's'
	pExemplar = 'e'
	pTrace    = 't'
	pOrder    = 'o'
)

// Index is the durable exemplar index. It is safe for concurrent use.
type Index struct {
	opts   Options
	logger *slog.Logger
	db     *pebble.DB

	mu     sync.RWMutex
	series map[uint64]labels.Labels

	traces atomic.Pointer[TraceChecker] // Options.Traces or SetTraces

	pendMu   sync.Mutex
	pending  []pendingCheck
	dangling map[pcommon.TraceID]int64 // trace → newest exemplar ts (ms) pointing at it

	closed    atomic.Bool
	closeOnce sync.Once
	stop      chan struct{}
	wg        sync.WaitGroup

	m indexMetrics
}

type pendingCheck struct {
	traceID pcommon.TraceID
	due     time.Time
	ts      int64
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
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open exemplar index: %w", err)
	}
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref() // the DB holds its own reference
	po := &pebble.Options{Logger: pebbleslog.Logger{L: logger}, Cache: cache, MemTableSize: 16 << 20}
	// Keys are mostly hashes and timestamps that compress poorly; the
	// first levels skip compression, which took a tenth of indexing CPU.
	po.Levels[0].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
	po.Levels[1].Compression = po.Levels[0].Compression
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("open exemplar index in %s: %w", dir, err)
	}
	x := &Index{
		opts:     opts,
		logger:   logger,
		db:       db,
		series:   map[uint64]labels.Labels{},
		dangling: map[pcommon.TraceID]int64{},
		stop:     make(chan struct{}),
	}
	if opts.Traces != nil {
		x.SetTraces(opts.Traces)
	}
	if err := x.loadSeries(); err != nil {
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
	if reg != nil {
		for _, c := range []prometheus.Collector{x.m.written, x.m.danglingTotal, x.m.dangling, x.m.skipped, x.m.expired, x.m.collisions} {
			if err := reg.Register(c); err != nil {
				_ = db.Close()
				return nil, fmt.Errorf("register exemplar index metrics: %w", err)
			}
		}
	}
	x.wg.Add(2)
	go x.loop(opts.RetentionInterval, func(ctx context.Context) {
		if err := x.RunRetention(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("exemplar retention failed", "err", err)
		}
	})
	go x.loop(opts.CheckInterval, x.CheckDangling)
	return x, nil
}

func (x *Index) loop(every time.Duration, f func(context.Context)) {
	defer x.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-x.stop:
			return
		case <-t.C:
			f(ctx)
		}
	}
}

// SetTraces sets (or replaces) the trace checker used for dangling
// detection. It exists because the trace store takes the index as its
// Pinner, so one of the two must be connected after both are open.
func (x *Index) SetTraces(t TraceChecker) {
	if t == nil {
		x.traces.Store(nil)
		return
	}
	x.traces.Store(&t)
}

func (x *Index) traceChecker() TraceChecker {
	if p := x.traces.Load(); p != nil {
		return *p
	}
	return nil
}

// Close stops background work and closes the database.
func (x *Index) Close() error {
	var err error
	x.closeOnce.Do(func() {
		close(x.stop)
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
		x.series[binary.BigEndian.Uint64(it.Key()[1:])] = ls
	}
	return it.Error()
}

// TraceIDOf returns the trace an exemplar points at, from its trace_id (or
// traceID) label in hex; ok is false when there is none or it is invalid.
func TraceIDOf(ls labels.Labels) (pcommon.TraceID, bool) {
	v := ls.Get("trace_id")
	if v == "" {
		v = ls.Get("traceID")
	}
	return ParseTraceID(v)
}

// ParseTraceID parses a hex trace ID in any case, with or without leading
// zeros, of up to 32 digits (8- and 16-byte IDs are both accepted).
func ParseTraceID(s string) (pcommon.TraceID, bool) {
	var id pcommon.TraceID
	if s == "" || len(s) > 32 {
		return id, false
	}
	if len(s)%2 == 1 {
		s = "0" + s
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return id, false
	}
	copy(id[16-len(b):], b)
	return id, !id.IsEmpty()
}

func orderedTs(ts int64) uint64    { return uint64(ts) ^ (1 << 63) }
func tsFromOrdered(u uint64) int64 { return int64(u ^ (1 << 63)) }

func orderedFloat(f float64) uint64 {
	b := math.Float64bits(f)
	if b&(1<<63) != 0 {
		return ^b
	}
	return b | (1 << 63)
}

func floatFromOrdered(u uint64) float64 {
	if u&(1<<63) != 0 {
		return math.Float64frombits(u &^ (1 << 63))
	}
	return math.Float64frombits(^u)
}

// exemplarSuffix is ts | value | lhash, the order within a series.
func exemplarSuffix(b []byte, e exemplar.Exemplar) []byte {
	b = binary.BigEndian.AppendUint64(b, orderedTs(e.Ts))
	b = binary.BigEndian.AppendUint64(b, orderedFloat(e.Value))
	return binary.BigEndian.AppendUint64(b, e.Labels.Hash())
}

// WriteExemplars indexes recs (see Options.SyncWrites for durability).
// Re-writing an exemplar already stored is a no-op.
func (x *Index) WriteExemplars(_ context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed.Load() {
		return ErrClosed
	}
	b := x.db.NewBatch()
	defer b.Close()
	var newSeries map[uint64]labels.Labels
	due := x.opts.Now().Add(x.opts.DanglingGrace)
	var checks []pendingCheck
	var scratch []byte
	for _, r := range recs {
		h := labels.StableHash(r.Series)
		known, ok := x.series[h]
		if !ok {
			known, ok = newSeries[h]
		}
		if ok && !labels.Equal(known, r.Series) {
			x.m.collisions.Inc()
			continue
		}
		if !ok {
			if newSeries == nil {
				newSeries = map[uint64]labels.Labels{}
			}
			newSeries[h] = r.Series.Copy()
			_ = b.Set(binary.BigEndian.AppendUint64([]byte{pSeries}, h), encodeLabels(nil, r.Series), nil)
		}
		// Batch.Set copies key and value, so one scratch buffer serves
		// every key of every record.
		scratch = exemplarSuffix(binary.BigEndian.AppendUint64(append(scratch[:0], pExemplar), h), r.Exemplar)
		ekey := scratch
		suffix := ekey[1:] // series(8) | ts(8) | value(8) | lhash(8)
		valStart := len(scratch)
		scratch = encodeExemplarTo(scratch, r.Exemplar)
		_ = b.Set(ekey, scratch[valStart:], nil)
		tid, hasTrace := TraceIDOf(r.Exemplar.Labels)
		okStart := len(scratch)
		scratch = append(scratch, pOrder)
		scratch = binary.BigEndian.AppendUint64(scratch, orderedTs(r.Exemplar.Ts))
		scratch = binary.BigEndian.AppendUint64(scratch, h)
		scratch = append(scratch, suffix[16:]...)
		if hasTrace {
			scratch = append(scratch, tid[:]...)
			tkStart := len(scratch)
			scratch = append(scratch, pTrace)
			scratch = append(scratch, tid[:]...)
			scratch = binary.BigEndian.AppendUint64(scratch, orderedTs(r.Exemplar.Ts))
			scratch = binary.BigEndian.AppendUint64(scratch, h)
			scratch = append(scratch, suffix[16:]...)
			_ = b.Set(scratch[tkStart:], nil, nil)
			checks = append(checks, pendingCheck{traceID: tid, due: due, ts: r.Exemplar.Ts})
			_ = b.Set(scratch[okStart:tkStart], nil, nil)
		} else {
			_ = b.Set(scratch[okStart:], nil, nil)
		}
	}
	wo := pebble.NoSync
	if x.opts.SyncWrites {
		wo = pebble.Sync
	}
	if err := b.Commit(wo); err != nil {
		return fmt.Errorf("write exemplars: %w", err)
	}
	x.m.written.Add(float64(len(recs)))
	if len(newSeries) > 0 {
		x.mu.RUnlock()
		x.mu.Lock()
		for h, ls := range newSeries {
			x.series[h] = ls
		}
		x.mu.Unlock()
		x.mu.RLock()
	}
	if x.traceChecker() != nil && len(checks) > 0 {
		x.pendMu.Lock()
		room := x.opts.MaxPending - len(x.pending)
		if room < len(checks) {
			x.m.skipped.Add(float64(len(checks) - max(room, 0)))
			checks = checks[:max(room, 0)]
		}
		x.pending = append(x.pending, checks...)
		x.pendMu.Unlock()
	}
	return nil
}

func encodeExemplar(e exemplar.Exemplar) []byte { return encodeExemplarTo(nil, e) }

// encodeExemplarTo appends the stored value of e to b.
func encodeExemplarTo(b []byte, e exemplar.Exemplar) []byte {
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(e.Value))
	if e.HasTs {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return encodeLabels(b, e.Labels)
}

func decodeExemplar(suffix, v []byte) (exemplar.Exemplar, error) {
	sb := labels.NewScratchBuilder(4)
	return decodeExemplarWith(&sb, suffix, v)
}

// decodeExemplarWith decodes with a reused builder; label strings alias v
// until the builder copies them into the result.
func decodeExemplarWith(sb *labels.ScratchBuilder, suffix, v []byte) (exemplar.Exemplar, error) {
	if len(v) < 9 || len(suffix) < 8 {
		return exemplar.Exemplar{}, errCorrupt
	}
	ls, err := decodeLabelsWith(sb, v[9:], aliasLabels)
	if err != nil {
		return exemplar.Exemplar{}, err
	}
	return exemplar.Exemplar{
		Labels: ls,
		Value:  math.Float64frombits(binary.BigEndian.Uint64(v)),
		Ts:     tsFromOrdered(binary.BigEndian.Uint64(suffix)),
		HasTs:  v[8] == 1,
	}, nil
}

var errCorrupt = errors.New("exemplar index: corrupt record")

func encodeLabels(b []byte, ls labels.Labels) []byte {
	b = binary.AppendUvarint(b, uint64(ls.Len()))
	ls.Range(func(l labels.Label) {
		b = binary.AppendUvarint(b, uint64(len(l.Name)))
		b = append(b, l.Name...)
		b = binary.AppendUvarint(b, uint64(len(l.Value)))
		b = append(b, l.Value...)
	})
	return b
}

func decodeLabels(b []byte) (labels.Labels, error) {
	sb := labels.NewScratchBuilder(8)
	return decodeLabelsWith(&sb, b, false)
}

// decodeLabelsWith decodes labels into sb. With alias, the names and values
// passed to sb point into b; sb.Labels copies them, so the result does not
// alias b.
func decodeLabelsWith(sb *labels.ScratchBuilder, b []byte, alias bool) (labels.Labels, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return labels.EmptyLabels(), errCorrupt
	}
	b = b[k:]
	sb.Reset()
	str := func() (string, bool) {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return "", false
		}
		raw := b[k : k+int(l)]
		b = b[k+int(l):]
		if alias && len(raw) > 0 {
			return unsafe.String(&raw[0], len(raw)), true
		}
		return string(raw), true
	}
	for range n {
		name, ok1 := str()
		value, ok2 := str()
		if !ok1 || !ok2 {
			return labels.EmptyLabels(), errCorrupt
		}
		sb.Add(name, value)
	}
	sb.Sort()
	return sb.Labels(), nil
}

// ExemplarQuerier implements storage.ExemplarQueryable.
func (x *Index) ExemplarQuerier(ctx context.Context) (storage.ExemplarQuerier, error) {
	if x.closed.Load() {
		return nil, ErrClosed
	}
	return &querier{x: x, ctx: ctx}, nil
}

type querier struct {
	x   *Index
	ctx context.Context
}

// Select returns the exemplars in [start, end] (milliseconds, inclusive) of
// the series matching any of the matcher sets, with the semantics of
// Prometheus's in-memory exemplar storage: no matcher set selects nothing;
// series are sorted by labels; each series' exemplars are ordered by
// timestamp, then value, then label hash; series without exemplars in the
// range are left out.
func (q *querier) Select(start, end int64, matchers ...[]*labels.Matcher) ([]exemplar.QueryResult, error) {
	x := q.x
	ret := make([]exemplar.QueryResult, 0)
	var sels []selectedSeries
	x.mu.RLock()
	for h, ls := range x.series {
		if matchesSomeMatcherSet(ls, matchers) {
			sels = append(sels, selectedSeries{h, ls})
		}
	}
	x.mu.RUnlock()
	if len(sels) == 0 || start > end {
		return ret, nil
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed.Load() {
		return nil, ErrClosed
	}
	// Large selections are read by two goroutines, each over half the
	// series; the result is sorted afterwards, so the split is invisible.
	parts := 1
	if len(sels) >= 16 {
		parts = 2
	}
	results := make([][]exemplar.QueryResult, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			chunk := sels[p*len(sels)/parts : (p+1)*len(sels)/parts]
			results[p], errs[p] = q.selectSeries(chunk, start, end)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, r := range results {
		ret = append(ret, r...)
	}
	slices.SortFunc(ret, func(a, b exemplar.QueryResult) int {
		return labels.Compare(a.SeriesLabels, b.SeriesLabels)
	})
	return ret, nil
}

type selectedSeries struct {
	h  uint64
	ls labels.Labels
}

// selectSeries reads the exemplars in [start, end] of each series.
func (q *querier) selectSeries(sels []selectedSeries, start, end int64) ([]exemplar.QueryResult, error) {
	it, err := q.x.db.NewIterWithContext(q.ctx, &pebble.IterOptions{LowerBound: []byte{pExemplar}, UpperBound: []byte{pExemplar + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var ret []exemplar.QueryResult
	sb := labels.NewScratchBuilder(4)
	for _, s := range sels {
		lo := binary.BigEndian.AppendUint64([]byte{pExemplar}, s.h)
		lo = binary.BigEndian.AppendUint64(lo, orderedTs(start))
		hi := binary.BigEndian.AppendUint64([]byte{pExemplar}, s.h)
		hi = binary.BigEndian.AppendUint64(hi, orderedTs(end))
		hi = append(hi, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		var se exemplar.QueryResult
		for ok := it.SeekGE(lo); ok && bytes.Compare(it.Key(), hi) < 0; ok = it.Next() {
			e, err := decodeExemplarWith(&sb, it.Key()[9:], it.Value())
			if err != nil {
				return nil, err
			}
			se.Exemplars = append(se.Exemplars, e)
		}
		if err := it.Error(); err != nil {
			return nil, err
		}
		if len(se.Exemplars) > 0 {
			se.SeriesLabels = s.ls
			ret = append(ret, se)
		}
		if err := q.ctx.Err(); err != nil {
			return nil, err
		}
	}
	return ret, nil
}

func matchesSomeMatcherSet(lbls labels.Labels, matchers [][]*labels.Matcher) bool {
Outer:
	for _, ms := range matchers {
		for _, m := range ms {
			if !m.Matches(lbls.Get(m.Name)) {
				continue Outer
			}
		}
		return true
	}
	return false
}

// ByTrace returns the series and exemplars (within retention) that point at
// the trace, in Select's order.
func (x *Index) ByTrace(ctx context.Context, traceID pcommon.TraceID) ([]exemplar.QueryResult, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed.Load() {
		return nil, ErrClosed
	}
	prefix := append([]byte{pTrace}, traceID[:]...)
	it, err := x.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	bySeries := map[uint64]*exemplar.QueryResult{}
	var order []uint64
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 49 {
			continue
		}
		ts := k[17:25]
		h := binary.BigEndian.Uint64(k[25:33])
		ekey := make([]byte, 0, 33)
		ekey = append(ekey, pExemplar)
		ekey = append(ekey, k[25:33]...)
		ekey = append(ekey, ts...)
		ekey = append(ekey, k[33:49]...)
		v, closer, err := x.db.Get(ekey)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		e, err := decodeExemplar(ekey[9:], v)
		_ = closer.Close()
		if err != nil {
			return nil, err
		}
		r := bySeries[h]
		if r == nil {
			ls, ok := x.series[h]
			if !ok {
				continue
			}
			r = &exemplar.QueryResult{SeriesLabels: ls}
			bySeries[h] = r
			order = append(order, h)
		}
		r.Exemplars = append(r.Exemplars, e)
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	out := make([]exemplar.QueryResult, 0, len(order))
	for _, h := range order {
		r := bySeries[h]
		slices.SortFunc(r.Exemplars, func(a, b exemplar.Exemplar) int {
			return strings.Compare(string(exemplarSuffix(nil, a)), string(exemplarSuffix(nil, b)))
		})
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b exemplar.QueryResult) int { return labels.Compare(a.SeriesLabels, b.SeriesLabels) })
	return out, nil
}

// IsPinned reports whether an exemplar within retention points at the
// trace; the trace store keeps such traces past its own retention.
func (x *Index) IsPinned(ctx context.Context, traceID pcommon.TraceID) (bool, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed.Load() {
		return false, ErrClosed
	}
	cutoff := x.opts.Now().Add(-x.opts.Retention).UnixMilli()
	lo := append([]byte{pTrace}, traceID[:]...)
	hi := prefixEnd(lo)
	lo = binary.BigEndian.AppendUint64(lo, orderedTs(cutoff))
	it, err := x.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return false, err
	}
	defer it.Close()
	return it.First(), it.Error()
}

// Dangling reports whether the trace was found missing after its grace
// period (and has not arrived since).
func (x *Index) Dangling(traceID pcommon.TraceID) bool {
	x.pendMu.Lock()
	defer x.pendMu.Unlock()
	_, ok := x.dangling[traceID]
	return ok
}

// CheckDangling runs the due trace-arrival checks and re-checks traces
// already known to be dangling. It runs every CheckInterval; tests call it
// directly.
func (x *Index) CheckDangling(ctx context.Context) {
	traces := x.traceChecker()
	if traces == nil {
		return
	}
	now := x.opts.Now()
	x.pendMu.Lock()
	i := 0
	for i < len(x.pending) && !x.pending[i].due.After(now) {
		i++
	}
	due := slices.Clone(x.pending[:i])
	x.pending = slices.Delete(x.pending, 0, i)
	recheck := make([]pcommon.TraceID, 0, min(len(x.dangling), 1000))
	cutoff := now.Add(-x.opts.Retention).UnixMilli()
	for tid, ts := range x.dangling {
		if ts < cutoff {
			delete(x.dangling, tid) // its exemplars expired
			continue
		}
		if len(recheck) < cap(recheck) {
			recheck = append(recheck, tid)
		}
	}
	x.pendMu.Unlock()

	found := map[pcommon.TraceID]bool{}
	has := func(tid pcommon.TraceID) (bool, bool) {
		if v, ok := found[tid]; ok {
			return v, true
		}
		ok, err := traces.HasTrace(ctx, tid)
		if err != nil {
			return false, false
		}
		found[tid] = ok
		return ok, true
	}
	var newlyDangling []pendingCheck
	for _, c := range due {
		if ok, known := has(c.traceID); known && !ok {
			newlyDangling = append(newlyDangling, c)
		}
	}
	var arrived []pcommon.TraceID
	for _, tid := range recheck {
		if ok, known := has(tid); known && ok {
			arrived = append(arrived, tid)
		}
	}
	x.pendMu.Lock()
	for _, c := range newlyDangling {
		x.m.danglingTotal.Inc()
		if c.ts > x.dangling[c.traceID] {
			x.dangling[c.traceID] = c.ts
		}
	}
	for _, tid := range arrived {
		delete(x.dangling, tid)
	}
	x.pendMu.Unlock()
}

// RunRetention deletes exemplars older than the retention. It runs every
// RetentionInterval; tests call it directly.
func (x *Index) RunRetention(ctx context.Context) error {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed.Load() {
		return ErrClosed
	}
	cutoff := x.opts.Now().Add(-x.opts.Retention).UnixMilli()
	hi := binary.BigEndian.AppendUint64([]byte{pOrder}, orderedTs(cutoff))
	it, err := x.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{pOrder}, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	b := x.db.NewBatch()
	defer func() { b.Close() }()
	touched := map[uint64]struct{}{}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 33 && len(k) != 49 {
			continue
		}
		ts, h, rest := k[1:9], k[9:17], k[17:33]
		ekey := append(append(append([]byte{pExemplar}, h...), ts...), rest...)
		_ = b.Delete(ekey, nil)
		if len(k) == 49 {
			tkey := append(append(append(append([]byte{pTrace}, k[33:49]...), ts...), h...), rest...)
			_ = b.Delete(tkey, nil)
		}
		_ = b.Delete(k, nil)
		touched[binary.BigEndian.Uint64(h)] = struct{}{}
		n++
		if b.Count() > 4096 {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Close()
			b = x.db.NewBatch()
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	x.m.expired.Add(float64(n))
	x.mu.RUnlock()
	// Forget series left without exemplars, holding the write lock so no
	// concurrent write adds an exemplar to a series being forgotten.
	x.mu.Lock()
	err = x.forgetEmptySeries(touched)
	x.mu.Unlock()
	x.mu.RLock()
	return err
}

func (x *Index) forgetEmptySeries(touched map[uint64]struct{}) error {
	if x.closed.Load() {
		return ErrClosed
	}
	b := x.db.NewBatch()
	defer b.Close()
	var gone []uint64
	for h := range touched {
		p := binary.BigEndian.AppendUint64([]byte{pExemplar}, h)
		it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
		if err != nil {
			return err
		}
		if !it.First() {
			gone = append(gone, h)
			_ = b.Delete(binary.BigEndian.AppendUint64([]byte{pSeries}, h), nil)
		}
		_ = it.Close()
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	for _, h := range gone {
		delete(x.series, h)
	}
	return nil
}

func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}
