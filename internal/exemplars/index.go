package exemplars

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/lookout-dev/lookout/internal/pebbledb"
	"github.com/lookout-dev/lookout/internal/traceid"
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
	// exemplars; SetWALMark (synced) records how much of that WAL the index
	// durably holds, and the metric store re-indexes the rest at start
	// (metricstore.Store.RecoverExemplars).
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
//	s | series(8)                                         → series labels
//	e | hour(4) | series(8) | ts(8) | value(8) | lhash(8)  → exemplar labels, value, hasTs
//	t | day(4) | traceID(16) | series(8) | ts(8)           → (empty) reverse link
//	m | name                                              → metadata (the WAL mark)
//
// ts, value and lhash are encoded so byte order is Prometheus's exemplar
// order within a series: timestamp, then value, then label hash. Leading
// time buckets (the hour or day of ts) keep new keys together, so Pebble's
// compactions rewrite only recent data, and let retention drop whole
// buckets with range deletions instead of a key per exemplar. Reads filter
// by the exact cutoff, so retention is exact to the millisecond.
const (
	pSeries   = 's'
	pExemplar = 'e'
	pTrace    = 't'
	pMeta     = 'm'

	hourMs = int64(time.Hour / time.Millisecond)
	dayMs  = 24 * hourMs

	eKeyLen = 1 + 4 + 8 + 8 + 8 + 8
	tKeyLen = 1 + 4 + 16 + 8 + 8
)

// bucketOf is the ordered index of the width-wide bucket holding ts.
func bucketOf(ts, width int64) uint32 {
	b := ts / width
	if ts < 0 && ts%width != 0 {
		b--
	}
	b = min(max(b, math.MinInt32), math.MaxInt32)
	return uint32(int32(b)) ^ (1 << 31)
}

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
	due     int64 // unix ms
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

// walMarkKey holds the metrics TSDB WAL segment from which exemplars may
// be missing here (metricstore.ExemplarMarker).
var walMarkKey = []byte{pMeta, 'w', 'a', 'l'}

// WALMark returns the first segment of the metrics TSDB's WAL that may hold
// exemplars this index has not durably written; ok is false when no mark
// was ever set (a new index, or one written before marks existed).
func (x *Index) WALMark() (seg int, ok bool, err error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed.Load() {
		return 0, false, ErrClosed
	}
	v, closer, err := x.db.Get(walMarkKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, fmt.Errorf("exemplar index: WAL mark of %d bytes", len(v))
	}
	return int(binary.BigEndian.Uint64(v)), true, nil
}

// SetWALMark records that every exemplar in the metrics TSDB's WAL
// segments before seg has been written. The write is synced, and with it
// every write before it.
func (x *Index) SetWALMark(seg int) error {
	if seg < 0 {
		return fmt.Errorf("exemplar index: negative WAL mark %d", seg)
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed.Load() {
		return ErrClosed
	}
	return x.db.Set(walMarkKey, binary.BigEndian.AppendUint64(nil, uint64(seg)), pebble.Sync)
}

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
		stop:     make(chan struct{}),
	}
	if opts.Traces != nil {
		x.SetTraces(opts.Traces)
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
		e := &seriesEntry{ls: ls}
		e.newest.Store(x.opts.Now().UnixMilli())
		x.series[binary.BigEndian.Uint64(it.Key()[1:])] = e
	}
	return it.Error()
}

// restoreChecks schedules again the dangling checks that lived only in
// memory: those of the exemplars written in the last two grace periods
// before the index was opened, due a grace period after each exemplar.
func (x *Index) restoreChecks() error {
	now := x.opts.Now().UnixMilli()
	from := now - 2*x.opts.DanglingGrace.Milliseconds()
	lo := binary.BigEndian.AppendUint32([]byte{pExemplar}, bucketOf(from, hourMs))
	hi := prefixEnd(binary.BigEndian.AppendUint32([]byte{pExemplar}, bucketOf(now, hourMs)))
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	var dec exemplarDecoder
	var checks []pendingCheck
	for ok := it.First(); ok && len(checks) < x.opts.MaxPending; ok = it.Next() {
		k := it.Key()
		if len(k) != eKeyLen {
			continue
		}
		ts := tsFromOrdered(binary.BigEndian.Uint64(k[13:]))
		if ts < from || ts > now {
			continue
		}
		e, err := decodeExemplarWith(&dec, k[13:], it.Value())
		if err != nil {
			return fmt.Errorf("exemplar index: exemplar %x: %w", k, err)
		}
		if tid, ok := storedTraceID(it.Value(), e.Labels); ok {
			checks = append(checks, pendingCheck{traceID: tid, due: ts + x.opts.DanglingGrace.Milliseconds(), ts: ts})
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	slices.SortFunc(checks, func(a, b pendingCheck) int { return cmp.Compare(a.due, b.due) })
	x.pending = checks
	return nil
}

// TraceIDOf returns the trace an exemplar points at, from its trace_id (or
// traceID) label in hex; ok is false when there is none or it is invalid.
func TraceIDOf(ls labels.Labels) (pcommon.TraceID, bool) {
	return traceid.FromLabels(ls.Get)
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

// keep returns labels the index may hold on to. Under the default
// stringlabels build they are an immutable string already; other builds
// may reuse the caller's slice, so they are copied.
func keep(ls labels.Labels) labels.Labels {
	if aliasLabels {
		return ls
	}
	return ls.Copy()
}

// kv locates one key and its value in a write's scratch buffer.
type kv struct{ k0, k1, v1 int }

// writeBuf is a write's scratch space, reused through Index.bufs: a batch
// of 2,000 exemplars needs about 400 KB, which allocated anew each time
// left the heap holding idle spans.
type writeBuf struct {
	scratch []byte
	kvs     []kv
	checks  []pendingCheck
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
	var newSeries map[uint64]*seriesEntry
	due := x.opts.Now().Add(x.opts.DanglingGrace).UnixMilli()
	checking := x.traceChecker() != nil
	// Keys and values go to one scratch buffer and are applied in key
	// order: Pebble's memtable inserts are cheaper when neighbouring keys
	// arrive together.
	buf, _ := x.bufs.Get().(*writeBuf)
	if buf == nil {
		buf = &writeBuf{}
	}
	defer x.bufs.Put(buf)
	scratch, kvs, checks := buf.scratch[:0], buf.kvs[:0], buf.checks[:0]
	defer func() { buf.scratch, buf.kvs, buf.checks = scratch[:0], kvs[:0], checks[:0] }()
	for _, r := range recs {
		h := labels.StableHash(r.Series)
		known, ok := x.series[h]
		if !ok {
			known, ok = newSeries[h]
		}
		if ok && !labels.Equal(known.ls, r.Series) {
			x.m.collisions.Inc()
			continue
		}
		if !ok {
			if newSeries == nil {
				newSeries = map[uint64]*seriesEntry{}
			}
			known = &seriesEntry{ls: keep(r.Series)}
			newSeries[h] = known
			k0 := len(scratch)
			scratch = binary.BigEndian.AppendUint64(append(scratch, pSeries), h)
			k1 := len(scratch)
			scratch = encodeLabels(scratch, r.Series, false)
			kvs = append(kvs, kv{k0, k1, len(scratch)})
		}
		ts := r.Exemplar.Ts
		for {
			n := known.newest.Load()
			if ts <= n || known.newest.CompareAndSwap(n, ts) {
				break
			}
		}
		k0 := len(scratch)
		scratch = binary.BigEndian.AppendUint32(append(scratch, pExemplar), bucketOf(ts, hourMs))
		scratch = binary.BigEndian.AppendUint64(scratch, h)
		scratch = exemplarSuffix(scratch, r.Exemplar)
		k1 := len(scratch)
		scratch = encodeExemplarTo(scratch, r.Exemplar)
		kvs = append(kvs, kv{k0, k1, len(scratch)})
		if tid, ok := storedTraceID(scratch[k1:], r.Exemplar.Labels); ok {
			k0 := len(scratch)
			scratch = binary.BigEndian.AppendUint32(append(scratch, pTrace), bucketOf(ts, dayMs))
			scratch = append(scratch, tid[:]...)
			scratch = binary.BigEndian.AppendUint64(scratch, h)
			scratch = binary.BigEndian.AppendUint64(scratch, orderedTs(ts))
			kvs = append(kvs, kv{k0, len(scratch), len(scratch)})
			if checking {
				checks = append(checks, pendingCheck{traceID: tid, due: due, ts: ts})
			}
		}
	}
	slices.SortFunc(kvs, func(a, b kv) int { return bytes.Compare(scratch[a.k0:a.k1], scratch[b.k0:b.k1]) })
	b := x.db.NewBatch()
	defer b.Close()
	for _, e := range kvs {
		_ = b.Set(scratch[e.k0:e.k1], scratch[e.k1:e.v1], nil)
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
		for h, e := range newSeries {
			if old, ok := x.series[h]; ok {
				// A concurrent write added it first: keep the newer time.
				old.newest.Store(max(old.newest.Load(), e.newest.Load()))
				continue
			}
			x.series[h] = e
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
		if n := len(x.pending) + len(checks); n > cap(x.pending) {
			// Grow as append would, but never past MaxPending.
			grown := make([]pendingCheck, len(x.pending), min(max(2*cap(x.pending), n), x.opts.MaxPending))
			copy(grown, x.pending)
			x.pending = grown
		}
		x.pending = append(x.pending, checks...)
		x.pendMu.Unlock()
	}
	return nil
}

// A stored exemplar is value(8) | flags(1) | [ids(24)] | labels. With
// flagIDs, its trace_id and span_id labels, canonical lower-case hex of 32
// and 16 digits as Prometheus's OTLP translation writes them, are the 24
// bytes they spell rather than among the labels: less than half the bytes
// for Pebble to write, flush and compact.
const (
	flagHasTs = 1 << iota
	flagIDs
)

// encodeExemplarTo appends the stored value of e to b.
func encodeExemplarTo(b []byte, e exemplar.Exemplar) []byte {
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(e.Value))
	var flags byte
	if e.HasTs {
		flags |= flagHasTs
	}
	var ids [24]byte
	if !hexBytes(ids[:16], e.Labels.Get("trace_id")) || !hexBytes(ids[16:], e.Labels.Get("span_id")) {
		return encodeLabels(append(b, flags), e.Labels, false)
	}
	b = append(append(b, flags|flagIDs), ids[:]...)
	return encodeLabels(b, e.Labels, true)
}

// storedTraceID is the trace that an exemplar with labels ls, stored as v,
// points at: the bytes v holds when it holds the IDs as bytes, else parsed
// from ls.
func storedTraceID(v []byte, ls labels.Labels) (pcommon.TraceID, bool) {
	if v[8]&flagIDs == 0 {
		return TraceIDOf(ls)
	}
	tid := pcommon.TraceID(v[9:25])
	return tid, !tid.IsEmpty()
}

// lowerHex maps a lower-case hex digit to its value, anything else to 0xff.
var lowerHex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	return t
}()

// hexBytes fills dst with the bytes s spells if s is exactly 2*len(dst)
// lower-case hex digits, and reports whether it is.
func hexBytes(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	var bad byte
	for i := range dst {
		hi, lo := lowerHex[s[2*i]], lowerHex[s[2*i+1]]
		bad |= hi | lo
		dst[i] = hi<<4 | lo&0x0f
	}
	return bad&0xf0 == 0
}

// exemplarDecoder is the reusable scratch space of one reader of exemplars.
type exemplarDecoder struct {
	sb labels.ScratchBuilder
	// hx holds trace and span IDs in hex until sb.Labels copies them.
	hx [48]byte
}

// decodeExemplarWith decodes with a reused decoder; label strings alias v
// or d.hx until the builder copies them into the result.
func decodeExemplarWith(d *exemplarDecoder, suffix, v []byte) (exemplar.Exemplar, error) {
	if len(v) < 9 || len(suffix) < 8 {
		return exemplar.Exemplar{}, errCorrupt
	}
	flags, rest := v[8], v[9:]
	d.sb.Reset()
	if flags&flagIDs != 0 {
		if len(rest) < 24 {
			return exemplar.Exemplar{}, errCorrupt
		}
		hex.Encode(d.hx[:], rest[:24])
		rest = rest[24:]
		if aliasLabels {
			d.sb.Add("trace_id", unsafe.String(&d.hx[0], 32))
			d.sb.Add("span_id", unsafe.String(&d.hx[32], 16))
		} else {
			d.sb.Add("trace_id", string(d.hx[:32]))
			d.sb.Add("span_id", string(d.hx[32:]))
		}
	}
	if err := addLabels(&d.sb, rest, aliasLabels); err != nil {
		return exemplar.Exemplar{}, err
	}
	d.sb.Sort()
	return exemplar.Exemplar{
		Labels: d.sb.Labels(),
		Value:  math.Float64frombits(binary.BigEndian.Uint64(v)),
		Ts:     tsFromOrdered(binary.BigEndian.Uint64(suffix)),
		HasTs:  flags&flagHasTs != 0,
	}, nil
}

var errCorrupt = errors.New("exemplar index: corrupt record")

// encodeLabels appends ls to b; withoutIDs leaves out trace_id and span_id.
func encodeLabels(b []byte, ls labels.Labels, withoutIDs bool) []byte {
	n := ls.Len()
	if withoutIDs {
		n -= 2
	}
	b = binary.AppendUvarint(b, uint64(n))
	ls.Range(func(l labels.Label) {
		if withoutIDs && (l.Name == "trace_id" || l.Name == "span_id") {
			return
		}
		b = binary.AppendUvarint(b, uint64(len(l.Name)))
		b = append(b, l.Name...)
		b = binary.AppendUvarint(b, uint64(len(l.Value)))
		b = append(b, l.Value...)
	})
	return b
}

func decodeLabels(b []byte) (labels.Labels, error) {
	sb := labels.NewScratchBuilder(8)
	if err := addLabels(&sb, b, false); err != nil {
		return labels.EmptyLabels(), err
	}
	sb.Sort()
	return sb.Labels(), nil
}

// addLabels adds the labels encoded in b to sb. With alias, the names and
// values passed to sb point into b; sb.Labels copies them, so its result
// does not alias b.
func addLabels(sb *labels.ScratchBuilder, b []byte, alias bool) error {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return errCorrupt
	}
	b = b[k:]
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
			return errCorrupt
		}
		sb.Add(name, value)
	}
	return nil
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
	start = max(start, x.cutoff())
	var sels []selectedSeries
	x.mu.RLock()
	for h, e := range x.series {
		if matchesSomeMatcherSet(e.ls, matchers) {
			sels = append(sels, selectedSeries{h, e.ls})
		}
	}
	x.mu.RUnlock()
	if len(sels) == 0 || start > end {
		return ret, nil
	}
	// Series are read in key order, so that consecutive seeks land near
	// each other.
	slices.SortFunc(sels, func(a, b selectedSeries) int { return cmp.Compare(a.h, b.h) })
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
		wg.Go(func() {
			chunk := sels[p*len(sels)/parts : (p+1)*len(sels)/parts]
			results[p], errs[p] = q.selectSeries(chunk, start, end)
		})
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

// cutoff is the oldest timestamp (ms) within retention.
func (x *Index) cutoff() int64 { return x.opts.Now().Add(-x.opts.Retention).UnixMilli() }

type selectedSeries struct {
	h  uint64
	ls labels.Labels
}

// selectSeries reads the exemplars in [start, end] of each series, hour
// bucket by hour bucket, skipping buckets that hold nothing.
func (q *querier) selectSeries(sels []selectedSeries, start, end int64) ([]exemplar.QueryResult, error) {
	first, last := bucketOf(start, hourMs), bucketOf(end, hourMs)
	lower := binary.BigEndian.AppendUint32([]byte{pExemplar}, first)
	upper := prefixEnd(binary.BigEndian.AppendUint32([]byte{pExemplar}, last))
	it, err := q.x.db.NewIterWithContext(q.ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	found := make([][]exemplar.Exemplar, len(sels))
	var dec exemplarDecoder
	lo := make([]byte, 0, eKeyLen)
	hi := make([]byte, 0, eKeyLen)
	for b := first; ; {
		// Skip to the next bucket that holds anything.
		if !it.SeekGE(binary.BigEndian.AppendUint32(append(lo[:0], pExemplar), b)) {
			break
		}
		b = binary.BigEndian.Uint32(it.Key()[1:5])
		for i, s := range sels {
			lo = binary.BigEndian.AppendUint32(append(lo[:0], pExemplar), b)
			lo = binary.BigEndian.AppendUint64(lo, s.h)
			hi = append(hi[:0], lo...)
			lo = binary.BigEndian.AppendUint64(lo, orderedTs(start))
			hi = binary.BigEndian.AppendUint64(hi, orderedTs(end))
			hi = append(hi, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
			for ok := it.SeekGE(lo); ok && bytes.Compare(it.Key(), hi) < 0; ok = it.Next() {
				e, err := decodeExemplarWith(&dec, it.Key()[13:], it.Value())
				if err != nil {
					return nil, err
				}
				found[i] = append(found[i], e)
			}
			if err := it.Error(); err != nil {
				return nil, err
			}
		}
		if err := q.ctx.Err(); err != nil {
			return nil, err
		}
		if b == last {
			break
		}
		b++
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	var ret []exemplar.QueryResult
	for i, es := range found {
		if len(es) > 0 {
			ret = append(ret, exemplar.QueryResult{SeriesLabels: sels[i].ls, Exemplars: es})
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
	cutoff := x.cutoff()
	bySeries := map[uint64]*exemplar.QueryResult{}
	var order []uint64
	var dec exemplarDecoder
	err := x.traceLinks(ctx, traceID, cutoff, func(h uint64, ts []byte) (bool, error) {
		se, ok := x.series[h]
		if !ok {
			return true, nil
		}
		p := binary.BigEndian.AppendUint32([]byte{pExemplar}, bucketOf(tsFromOrdered(binary.BigEndian.Uint64(ts)), hourMs))
		p = binary.BigEndian.AppendUint64(p, h)
		p = append(p, ts...)
		it, err := x.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
		if err != nil {
			return false, err
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			e, err := decodeExemplarWith(&dec, it.Key()[13:], it.Value())
			if err != nil {
				return false, err
			}
			if id, ok := storedTraceID(it.Value(), e.Labels); !ok || id != traceID {
				continue // another trace's exemplar at the same time
			}
			r := bySeries[h]
			if r == nil {
				r = &exemplar.QueryResult{SeriesLabels: se.ls}
				bySeries[h] = r
				order = append(order, h)
			}
			r.Exemplars = append(r.Exemplars, e)
		}
		return true, it.Error()
	})
	if err != nil {
		return nil, err
	}
	out := make([]exemplar.QueryResult, 0, len(order))
	for _, h := range order {
		r := bySeries[h]
		slices.SortFunc(r.Exemplars, func(a, b exemplar.Exemplar) int {
			return strings.Compare(string(exemplarSuffix(nil, a)), string(exemplarSuffix(nil, b)))
		})
		r.Exemplars = slices.CompactFunc(r.Exemplars, func(a, b exemplar.Exemplar) bool {
			return a.Ts == b.Ts && a.Value == b.Value && labels.Equal(a.Labels, b.Labels)
		})
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b exemplar.QueryResult) int { return labels.Compare(a.SeriesLabels, b.SeriesLabels) })
	return out, nil
}

// traceLinks calls f with the series and ordered timestamp of each reverse
// link of the trace at or after cutoff, until f returns false. It visits
// only the days that hold links, seeking from one to the next.
func (x *Index) traceLinks(ctx context.Context, traceID pcommon.TraceID, cutoff int64, f func(h uint64, ts []byte) (bool, error)) error {
	it, err := x.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{pTrace}, UpperBound: []byte{pTrace + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	key := make([]byte, 0, tKeyLen)
	for day := bucketOf(cutoff, dayMs); ; day++ {
		key = binary.BigEndian.AppendUint32(append(key[:0], pTrace), day)
		key = append(key, traceID[:]...)
		ok := it.SeekGE(key)
		for ; ok; ok = it.Next() {
			k := it.Key()
			if len(k) != tKeyLen || !bytes.Equal(k[5:21], traceID[:]) {
				break
			}
			if tsFromOrdered(binary.BigEndian.Uint64(k[29:37])) < cutoff {
				continue
			}
			more, err := f(binary.BigEndian.Uint64(k[21:29]), k[29:37])
			if err != nil || !more {
				return err
			}
		}
		if !ok {
			return it.Error()
		}
		// The iterator is on the first key after this day's links: go on
		// from its day, or the next if it is still this one.
		next := binary.BigEndian.Uint32(it.Key()[1:5])
		if day == math.MaxUint32 {
			return nil
		}
		if next > day {
			day = next - 1
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// IsPinned reports whether an exemplar within retention points at the
// trace; the trace store keeps such traces past its own retention.
func (x *Index) IsPinned(ctx context.Context, traceID pcommon.TraceID) (bool, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed.Load() {
		return false, ErrClosed
	}
	pinned := false
	err := x.traceLinks(ctx, traceID, x.cutoff(), func(uint64, []byte) (bool, error) {
		pinned = true
		return false, nil
	})
	return pinned, err
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
	for i < len(x.pending) && x.pending[i].due <= now.UnixMilli() {
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

// RunRetention deletes the exemplars of the hours, and the reverse links of
// the days, that ended before the retention cutoff, and forgets series
// without exemplars since the cutoff. (Reads already leave out anything
// older than the cutoff.) It runs every RetentionInterval; tests call it
// directly.
func (x *Index) RunRetention(ctx context.Context) error {
	x.mu.RLock()
	if x.closed.Load() {
		x.mu.RUnlock()
		return ErrClosed
	}
	cutoff := x.cutoff()
	hour := bucketOf(cutoff, hourMs)
	var err error
	if hour > x.expiredBelow {
		// Count what goes, for lookout_exemplars_expired_total.
		lo := binary.BigEndian.AppendUint32([]byte{pExemplar}, x.expiredBelow)
		hi := binary.BigEndian.AppendUint32([]byte{pExemplar}, hour)
		var n int
		n, err = x.count(ctx, lo, hi)
		if err == nil {
			b := x.db.NewBatch()
			_ = b.DeleteRange(lo, hi, nil)
			day := bucketOf(cutoff, dayMs)
			_ = b.DeleteRange([]byte{pTrace}, binary.BigEndian.AppendUint32([]byte{pTrace}, day), nil)
			err = b.Commit(pebble.NoSync)
			b.Close()
		}
		if err == nil {
			x.m.expired.Add(float64(n))
		}
	}
	x.mu.RUnlock()
	if err != nil {
		return err
	}
	// Forget series left without exemplars, holding the write lock so no
	// concurrent write adds an exemplar to a series being forgotten.
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed.Load() {
		return ErrClosed
	}
	x.expiredBelow = max(x.expiredBelow, hour)
	b := x.db.NewBatch()
	defer b.Close()
	var gone []uint64
	for h, e := range x.series {
		if e.newest.Load() < cutoff {
			gone = append(gone, h)
			_ = b.Delete(binary.BigEndian.AppendUint64([]byte{pSeries}, h), nil)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	for _, h := range gone {
		delete(x.series, h)
	}
	return nil
}

// count returns the number of keys in [lo, hi).
func (x *Index) count(ctx context.Context, lo, hi []byte) (int, error) {
	it, err := x.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n, it.Error()
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
