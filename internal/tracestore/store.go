package tracestore

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/ingest"
	"github.com/lookout-dev/lookout/internal/pebbledb"
)

// Pinner says whether a trace must be kept past retention because something
// (an exemplar within metrics retention) still points at it.
// Implementations must be safe for concurrent use.
type Pinner interface {
	IsPinned(ctx context.Context, traceID pcommon.TraceID) (bool, error)
}

// Options configure a Store. Zero fields take the DefaultOptions value.
type Options struct {
	// Retention is how long a trace is kept after its first span started.
	// Default 7 days.
	Retention time.Duration
	// SizeLimit is the disk space the store may use, in bytes; above it the
	// oldest unpinned traces are deleted. 0 means DefaultOptions' 10 GiB;
	// negative disables the size limit.
	SizeLimit int64
	// RetentionInterval is how often retention runs. Default 1 minute.
	RetentionInterval time.Duration
	// Pinner keeps traces referenced by exemplars. Nil pins nothing.
	Pinner Pinner
	// CacheSize is the store's cache in bytes: three quarters for Pebble's
	// block cache, a quarter for decompressed pages. Default 64 MiB.
	CacheSize int64
	// MemTableSize is Pebble's memtable size in bytes. Default 32 MiB.
	MemTableSize uint64
	// MaxAttributes rejects spans with more span attributes than this.
	// Default 2048.
	MaxAttributes int
	// MaxAttributeDepth rejects spans whose attributes (or their events',
	// links', resource's or scope's) nest maps and arrays deeper than
	// this: the store's protobuf reader stops at 100 message levels (about
	// 32 nested maps), and a span must read back as it was accepted.
	// Default 16.
	MaxAttributeDepth int
	// MaxFutureSkew rejects spans starting further than this in the future.
	// Default 24 hours.
	MaxFutureSkew time.Duration
	// MaxConcurrentWrites bounds requests committing at once; callers beyond
	// it wait until their context ends and then get ErrOverloaded. Default 64.
	MaxConcurrentWrites int
	// Sampling, when not nil, is the exemplar-aware sampling policy
	// (sampling.go). Default nil: every trace is kept.
	Sampling *SamplingPolicy
	// Now is the clock; tests set it. Default time.Now.
	Now func() time.Time
}

// DefaultOptions returns the defaults described on Options.
func DefaultOptions() Options {
	return Options{
		Retention:           7 * 24 * time.Hour,
		SizeLimit:           10 << 30,
		RetentionInterval:   time.Minute,
		CacheSize:           64 << 20,
		MemTableSize:        32 << 20,
		MaxAttributes:       2048,
		MaxAttributeDepth:   16,
		MaxFutureSkew:       24 * time.Hour,
		MaxConcurrentWrites: 64,
		Now:                 time.Now,
	}
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	if o.Retention < 0 {
		return fmt.Errorf("trace retention %s is negative", o.Retention)
	}
	if o.RetentionInterval < 0 {
		return fmt.Errorf("retention interval %s is negative", o.RetentionInterval)
	}
	return nil
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Retention == 0 {
		o.Retention = d.Retention
	}
	if o.SizeLimit == 0 {
		o.SizeLimit = d.SizeLimit
	}
	if o.RetentionInterval == 0 {
		o.RetentionInterval = d.RetentionInterval
	}
	if o.CacheSize == 0 {
		o.CacheSize = d.CacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = d.MemTableSize
	}
	if o.MaxAttributes == 0 {
		o.MaxAttributes = d.MaxAttributes
	}
	if o.MaxAttributeDepth == 0 {
		o.MaxAttributeDepth = d.MaxAttributeDepth
	}
	if o.MaxFutureSkew == 0 {
		o.MaxFutureSkew = d.MaxFutureSkew
	}
	if o.MaxConcurrentWrites == 0 {
		o.MaxConcurrentWrites = d.MaxConcurrentWrites
	}
	if o.Now == nil {
		o.Now = d.Now
	}
	return o
}

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("trace store is closed")

// Store is the durable trace store. All methods are safe for concurrent use.
type Store struct {
	opts   Options
	logger *slog.Logger
	dir    string
	db     *pebble.DB
	cache  *pebble.Cache
	seq    atomic.Uint64
	sem    chan struct{}
	tags   tagCache
	// sampler is the sampling pass's state; nil without a policy.
	sampler *sampler
	// pages compresses OTLP protobuf rows into pages (pages.go); dirty
	// notes the minutes whose pages hold deleted traces, recent when each
	// minute last took rows; pageMu serialises the passes that rewrite
	// pages.
	pages     *pageCodec
	pageCache *pageCache
	dirty     dirtyPages
	// cutBefore is the time before which the last cut pass moved rows
	// into pages (but for the minutes still busy then and rows written
	// since): a chunk older than it is looked for in pages first.
	cutBefore atomic.Uint64
	recent    recentWrites
	pageMu    sync.Mutex

	// searchRows makes Search read search records only, never column
	// blocks; tests compare the two.
	searchRows bool

	retMu     sync.Mutex // serialises retention passes with each other and Close
	closeOnce sync.Once
	closed    atomic.Bool
	stop      chan struct{}
	done      chan struct{}

	m metrics
}

var _ ingest.TracesSink = (*Store)(nil)

type metrics struct {
	spansStored   prometheus.Counter
	spansRejected prometheus.Counter
	undecodable   prometheus.Counter
	tracesDeleted *prometheus.CounterVec
	pinnedKept    prometheus.Counter
	retentionRuns prometheus.Counter
	// rowsPaged counts OTLP protobuf rows cut into pages; pageEntriesDropped
	// the deleted traces' entries dropped from pages.
	rowsPaged          prometheus.Counter
	pageEntriesDropped prometheus.Counter
	// blocksMerged counts the minutes whose column blocks were merged.
	blocksMerged prometheus.Counter
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	codec, err := newPageCodec()
	if err != nil {
		return nil, err
	}
	cache := pebble.NewCache(opts.CacheSize - opts.CacheSize/4)
	db, err := pebbledb.Open(dir, "trace store", pebbleOptions(opts, cache), logger)
	if err != nil {
		cache.Unref()
		codec.close()
		return nil, err
	}
	s := &Store{
		opts:      opts,
		logger:    logger,
		dir:       dir,
		db:        db,
		cache:     cache,
		pages:     codec,
		pageCache: newPageCache(int(opts.CacheSize / 4)),
		sem:       make(chan struct{}, opts.MaxConcurrentWrites),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	// Sequence numbers only need to be unique per trace; starting from the
	// clock keeps them increasing across restarts.
	s.seq.Store(uint64(time.Now().UnixNano()))
	if err := errors.Join(s.loadCutBefore(), s.markNewStore()); err != nil {
		_ = db.Close()
		cache.Unref()
		codec.close()
		return nil, err
	}
	s.m = metrics{
		spansStored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_tracestore_spans_stored_total", Help: "Spans durably stored.",
		}),
		spansRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_tracestore_spans_rejected_total", Help: "Spans rejected as invalid.",
		}),
		undecodable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_tracestore_undecodable_chunks_total",
			Help: "Stored span chunks that failed to decode and were skipped on read (data written before a limit existed, or damaged).",
		}),
		tracesDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_tracestore_traces_deleted_total", Help: "Traces deleted by retention, by reason (age or size).",
		}, []string{"reason"}),
		pinnedKept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_tracestore_pinned_kept_total", Help: "Times retention kept a trace past its limit because an exemplar pins it.",
		}),
		retentionRuns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_tracestore_retention_runs_total", Help: "Retention passes run.",
		}),
		rowsPaged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_tracestore_rows_paged_total", Help: "Stored span chunks moved from their own records into compressed pages.",
		}),
		blocksMerged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_tracestore_column_minutes_merged_total", Help: "Minutes whose column blocks were merged into fewer, larger ones when their spans were cut into pages.",
		}),
		pageEntriesDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_tracestore_page_entries_dropped_total", Help: "Span chunks of deleted traces dropped from compressed pages.",
		}),
	}
	if opts.Sampling != nil {
		if s.sampler, err = newSampler(db, *opts.Sampling, opts.Now()); err != nil {
			_ = db.Close()
			cache.Unref()
			return nil, err
		}
	}
	diskUsage := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lookout_tracestore_disk_bytes", Help: "Disk space used by the trace store.",
	}, func() float64 { return float64(db.Metrics().DiskSpaceUsage()) })
	cs := []prometheus.Collector{s.m.spansStored, s.m.spansRejected, s.m.undecodable, s.m.tracesDeleted, s.m.pinnedKept, s.m.retentionRuns, s.m.rowsPaged, s.m.pageEntriesDropped, s.m.blocksMerged, diskUsage}
	if s.sampler != nil {
		cs = append(cs, s.sampler.collectors()...)
	}
	if err := pebbledb.Register(reg, "trace store", cs...); err != nil {
		_ = db.Close()
		cache.Unref()
		return nil, err
	}
	go s.retentionLoop()
	return s, nil
}

// pebbleOptions returns the trace store's Pebble options: the merge
// operator, the block cache and memtable size of opts, and WAL files that
// take only the space written to them (pebbledb.UnreservedWAL; the
// background loop flushes the memtable so that a WAL file holds at most
// memtableFlushInterval's writes unless ingest fills the memtable first).
// Pebble's defaults stay for the rest: Snappy-compressed 4 KiB blocks, and
// flushed WAL files kept for reuse, which saves CPU on every synced
// commit (trimWAL truncates them when the store is quiet). Larger blocks and Zstandard make the sstables a quarter to a
// half smaller, but every point read then decompresses more, and the
// searches that read search records or whole traces took 20–200% more CPU
// (BENCHMARKS.md, "Trace store at rest").
func pebbleOptions(opts Options, cache *pebble.Cache) *pebble.Options {
	po := &pebble.Options{
		Cache:        cache,
		MemTableSize: opts.MemTableSize,
		Merger:       storeMerger,
	}
	pebbledb.UnreservedWAL(po)
	return po
}

// Close stops retention and closes the database. Calls after Close return ErrClosed.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		<-s.done
		s.retMu.Lock()
		defer s.retMu.Unlock()
		// Wait for in-flight writes.
		for range cap(s.sem) {
			s.sem <- struct{}{}
		}
		err = s.db.Close()
		s.cache.Unref()
		s.pages.close()
	})
	return err
}

// traceGroup collects the spans of one trace within a request.
type traceGroup struct {
	parts []part
	sum   summary
}

type part struct {
	rs, ss int
	spans  []int
}

// accepted is what validate leaves for write: a request's valid spans,
// grouped by trace in the order the traces first appear, and the count of
// the others with the first one's reason.
type accepted struct {
	groups   map[pcommon.TraceID]*traceGroup
	order    []pcommon.TraceID
	total    int64 // spans in the request
	rejected int64
	reason   string
}

func (a *accepted) reject(why string) {
	a.rejected++
	if a.reason == "" {
		a.reason = why
	}
}

// add files span i of scope spans si of resource spans ri under its trace.
func (a *accepted) add(ri, si, i int, sp ptrace.Span, res pcommon.Resource) {
	tid := sp.TraceID()
	g := a.groups[tid]
	if g == nil {
		g = &traceGroup{}
		a.groups[tid] = g
		a.order = append(a.order, tid)
	}
	if n := len(g.parts); n == 0 || g.parts[n-1].rs != ri || g.parts[n-1].ss != si {
		g.parts = append(g.parts, part{rs: ri, ss: si})
	}
	p := &g.parts[len(g.parts)-1]
	p.spans = append(p.spans, i)
	g.sum.merge(spanSummary(sp, res))
}

// ConsumeTraces stores td durably: when it returns without error every
// accepted span is in Pebble's synced WAL. Invalid spans are counted in the
// result (OTLP partial success); a request with no valid span is ErrBadData.
func (s *Store) ConsumeTraces(ctx context.Context, td ptrace.Traces) (ingest.Result, error) {
	if s.closed.Load() {
		return ingest.Result{}, ErrClosed
	}
	now := s.opts.Now()
	acc := s.validate(td, now)
	res := ingest.Result{Rejected: acc.rejected}
	if acc.rejected > 0 {
		res.Message = fmt.Sprintf("%d of %d spans rejected: %s", acc.rejected, acc.total, acc.reason)
		s.m.spansRejected.Add(float64(acc.rejected))
	}
	if len(acc.order) == 0 {
		if acc.rejected > 0 {
			return res, fmt.Errorf("%w: %s", ingest.ErrBadData, res.Message)
		}
		return res, nil
	}

	select {
	case s.sem <- struct{}{}:
	case <-s.stop:
		return ingest.Result{}, ErrClosed
	case <-ctx.Done():
		return ingest.Result{}, fmt.Errorf("%w: trace store busy: %w", ingest.ErrOverloaded, ctx.Err())
	}
	defer func() { <-s.sem }()
	if s.closed.Load() {
		return ingest.Result{}, ErrClosed
	}
	stored, err := s.write(td, &acc, now)
	if err != nil {
		return ingest.Result{}, err
	}
	s.m.spansStored.Add(float64(stored))
	return res, nil
}

// validate sorts td's spans into those the store accepts, grouped by trace,
// and those it rejects: spans without IDs or a start time, ending before
// they start, starting too far past now, or beyond the attribute count and
// nesting limits (a resource's or scope's too-deep attributes reject all
// its spans).
func (s *Store) validate(td ptrace.Traces, now time.Time) accepted {
	acc := accepted{groups: map[pcommon.TraceID]*traceGroup{}}
	maxStart := uint64(now.Add(s.opts.MaxFutureSkew).UnixNano())
	depth := s.opts.MaxAttributeDepth
	for ri, rs := range td.ResourceSpans().All() {
		resTooDeep := tooDeep(rs.Resource().Attributes(), depth)
		for si, ss := range rs.ScopeSpans().All() {
			scopeTooDeep := resTooDeep || tooDeep(ss.Scope().Attributes(), depth)
			for i, sp := range ss.Spans().All() {
				acc.total++
				switch {
				case scopeTooDeep || spanTooDeep(sp, depth):
					acc.reject(fmt.Sprintf("attribute values nested more than %d levels deep", depth))
				case sp.TraceID().IsEmpty():
					acc.reject("span with an empty trace ID")
				case sp.SpanID().IsEmpty():
					acc.reject("span with an empty span ID")
				case sp.StartTimestamp() == 0:
					acc.reject("span without a start time")
				case uint64(sp.StartTimestamp()) > maxStart:
					acc.reject(fmt.Sprintf("span starts more than %s in the future", s.opts.MaxFutureSkew))
				case sp.EndTimestamp() < sp.StartTimestamp():
					acc.reject("span ends before it starts")
				case sp.Attributes().Len() > s.opts.MaxAttributes:
					acc.reject(fmt.Sprintf("span has %d attributes, more than the limit of %d", sp.Attributes().Len(), s.opts.MaxAttributes))
				default:
					acc.add(ri, si, i, sp, rs.Resource())
				}
			}
		}
	}
	return acc
}

// write commits the accepted spans of td in one synced Pebble batch: per
// trace its spans (protobuf), search record, summary and tag values; per
// minute its block summary and column blocks. It returns the number of
// spans stored.
func (s *Store) write(td ptrace.Traces, acc *accepted, now time.Time) (int, error) {
	b := s.db.NewBatch()
	defer b.Close()
	marshaler := ptrace.ProtoMarshaler{}
	hour := uint32(now.Unix() / 3600)
	var rec []byte
	stored := 0
	blocks := map[uint64]*blockSummary{}
	columns := map[uint64]*columnBuilder{}
	defer func() {
		for _, cb := range columns {
			cb.reset()
			columnBuilders.Put(cb)
		}
	}()
	for _, tid := range acc.order {
		g := acc.groups[tid]
		one := td
		if len(acc.order) > 1 || acc.rejected > 0 {
			one = extract(td, g.parts)
		}
		data, err := marshaler.MarshalTraces(one)
		if err != nil {
			return 0, fmt.Errorf("encode spans: %w", err)
		}
		seq := s.seq.Add(1)
		rec = rec[:0]
		minute := g.sum.MinStart / blockWidth
		blk := blocks[minute]
		if blk == nil {
			blk = &blockSummary{}
			blocks[minute] = blk
			columns[minute] = columnBuilders.Get().(*columnBuilder)
		}
		cols := columns[minute]
		cols.addChunk(tid, seq, g.sum.MinStart)
		for _, p := range g.parts {
			rs := td.ResourceSpans().At(p.rs)
			spans := rs.ScopeSpans().At(p.ss).Spans()
			rec = appendResource(rec, rs.Resource())
			blk.addAttrs(rs.Resource().Attributes())
			rec = binary.AppendUvarint(rec, uint64(len(p.spans)))
			for _, i := range p.spans {
				sp := spans.At(i)
				rec = appendSpan(rec, sp)
				blk.addSpan(sp)
				cols.addSpan(p.rs, rs.Resource(), sp)
				stored++
			}
		}
		g.sum.Chunks = []chunkRef{{MinStart: g.sum.MinStart, Seq: seq}}
		if err := errors.Join(
			b.Set(dataKey(g.sum.MinStart, tid, seq), data, nil),
			b.Set(indexKey(g.sum.MinStart, tid, seq), rec, nil),
			b.Merge(summaryKey(tid), g.sum.encode(), nil),
		); err != nil {
			return 0, fmt.Errorf("stage spans: %w", err)
		}
		s.tags.add(b, hour, td, g.parts)
	}
	if err := s.stageMinutes(b, blocks, columns); err != nil {
		return 0, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("commit spans: %w", err)
	}
	s.recent.touch(now.UnixNano(), maps.Keys(blocks))
	return stored, nil
}

// stageMinutes adds to b each minute's block summary and its column blocks.
// They go in the same batch as the spans: search trusts a minute's column
// blocks exactly when it has a summary.
func (s *Store) stageMinutes(b *pebble.Batch, blocks map[uint64]*blockSummary, columns map[uint64]*columnBuilder) error {
	for minute, blk := range blocks {
		if err := b.Merge(blockKey(minute), blk.encode(), nil); err != nil {
			return fmt.Errorf("stage block summary: %w", err)
		}
		if err := stageColumns(b, minute, s.seq.Add(1), columns[minute]); err != nil {
			return err
		}
	}
	return nil
}

// stageColumns adds to b the column block cb as minute's block seq, with
// its attribute columns.
func stageColumns(b *pebble.Batch, minute, seq uint64, cb *columnBuilder) error {
	if err := b.Set(columnKey(minute, seq), cb.encode(), nil); err != nil {
		return fmt.Errorf("stage column block: %w", err)
	}
	var key []byte
	for _, k := range cb.attrKeys {
		key = attrColumnKey(key[:0], minute, seq, k)
		if err := b.Set(key, cb.encodeAttr(k), nil); err != nil {
			return fmt.Errorf("stage attribute column: %w", err)
		}
	}
	return nil
}

// spanTooDeep reports whether sp's attributes, or its events' or links',
// nest deeper than depth.
func spanTooDeep(sp ptrace.Span, depth int) bool {
	if tooDeep(sp.Attributes(), depth) {
		return true
	}
	for _, ev := range sp.Events().All() {
		if tooDeep(ev.Attributes(), depth) {
			return true
		}
	}
	for _, l := range sp.Links().All() {
		if tooDeep(l.Attributes(), depth) {
			return true
		}
	}
	return false
}

// tooDeep reports whether values in m nest maps and arrays more than depth
// levels deep (a map of scalars is one level). It walks with an explicit
// stack, so hostile nesting cannot exhaust the goroutine stack.
func tooDeep(m pcommon.Map, depth int) bool {
	type item struct {
		v     pcommon.Value
		level int
	}
	var stack []item
	for _, v := range m.All() {
		// Flat attributes (the common case) allocate nothing.
		if t := v.Type(); t == pcommon.ValueTypeMap || t == pcommon.ValueTypeSlice {
			stack = append(stack, item{v, 1})
		}
	}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch it.v.Type() {
		case pcommon.ValueTypeMap:
			if it.level > depth {
				return true
			}
			for _, c := range it.v.Map().All() {
				stack = append(stack, item{c, it.level + 1})
			}
		case pcommon.ValueTypeSlice:
			if it.level > depth {
				return true
			}
			for _, c := range it.v.Slice().All() {
				stack = append(stack, item{c, it.level + 1})
			}
		}
	}
	return false
}

func spanSummary(sp ptrace.Span, res pcommon.Resource) *summary {
	s := &summary{MinStart: uint64(sp.StartTimestamp()), MaxEnd: uint64(sp.EndTimestamp()), Spans: 1}
	if sp.Status().Code() == ptrace.StatusCodeError {
		s.Errors = 1
	}
	if sp.ParentSpanID().IsEmpty() {
		s.HasRoot = true
		s.RootStart = s.MinStart
		s.RootEnd = s.MaxEnd
		s.RootName = sp.Name()
		if v, ok := res.Attributes().Get("service.name"); ok {
			s.RootService = v.AsString()
		}
	}
	return s
}

// extract copies the spans listed in parts into a new Traces.
func extract(td ptrace.Traces, parts []part) ptrace.Traces {
	out := ptrace.NewTraces()
	lastRS := -1
	var ors ptrace.ResourceSpans
	for _, p := range parts {
		rs := td.ResourceSpans().At(p.rs)
		if p.rs != lastRS {
			ors = out.ResourceSpans().AppendEmpty()
			rs.Resource().CopyTo(ors.Resource())
			ors.SetSchemaUrl(rs.SchemaUrl())
			lastRS = p.rs
		}
		ss := rs.ScopeSpans().At(p.ss)
		oss := ors.ScopeSpans().AppendEmpty()
		ss.Scope().CopyTo(oss.Scope())
		oss.SetSchemaUrl(ss.SchemaUrl())
		dst := oss.Spans()
		dst.EnsureCapacity(len(p.spans))
		for _, i := range p.spans {
			ss.Spans().At(i).CopyTo(dst.AppendEmpty())
		}
	}
	return out
}

// GetTrace returns every stored span of the trace, merged from all the
// requests that carried them (spans repeated by client retries appear
// once). ok is false when no span of the trace is stored.
func (s *Store) GetTrace(ctx context.Context, traceID pcommon.TraceID) (ptrace.Traces, bool, error) {
	if s.closed.Load() {
		return ptrace.Traces{}, false, ErrClosed
	}
	sum, ok, err := s.getSummary(traceID)
	if err != nil || !ok {
		return ptrace.Traces{}, false, err
	}
	out := ptrace.NewTraces()
	seen := map[pcommon.SpanID]struct{}{}
	var un ptrace.ProtoUnmarshaler
	found := false
	slices.SortFunc(sum.Chunks, func(a, b chunkRef) int { return cmp.Compare(a.Seq, b.Seq) })
	pages := pageReader{s: s}
	defer pages.close()
	for _, c := range sum.Chunks {
		key := dataKey(c.MinStart, traceID, c.Seq)
		var data []byte
		v, closer, err := s.db.Get(key)
		switch {
		case errors.Is(err, pebble.ErrNotFound):
			// Cut into a page, or being deleted by retention.
			pv, ok, err := pages.get(ctx, key[1:])
			if err != nil && !errors.Is(err, errCorrupt) {
				return ptrace.Traces{}, false, err
			}
			if err != nil {
				s.m.undecodable.Inc()
				s.logger.Warn("skipping a page that does not decode", "trace_id", traceID.String(), "chunk", c.Seq, "err", err)
				continue
			}
			if !ok {
				continue
			}
			data = pv // shared with the page cache: unmarshalling copies
		case err != nil:
			return ptrace.Traces{}, false, err
		default:
			// Copy: decoded values must not alias Pebble's buffer.
			data = append([]byte(nil), v...)
			_ = closer.Close()
		}
		td, err := un.UnmarshalTraces(data)
		if err != nil {
			// One undecodable chunk (written before a limit existed, or
			// damaged) must not make the rest of the trace, or every
			// search that finds it, fail.
			s.m.undecodable.Inc()
			s.logger.Warn("skipping stored spans that do not decode", "trace_id", traceID.String(), "chunk", c.Seq, "err", err)
			continue
		}
		found = true
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				ss.Spans().RemoveIf(func(sp ptrace.Span) bool {
					if _, dup := seen[sp.SpanID()]; dup {
						return true
					}
					seen[sp.SpanID()] = struct{}{}
					return false
				})
			}
		}
		td.ResourceSpans().MoveAndAppendTo(out.ResourceSpans())
		if err := ctx.Err(); err != nil {
			return ptrace.Traces{}, false, err
		}
	}
	return out, found, nil
}

// HasTrace reports whether any span of the trace is stored.
func (s *Store) HasTrace(_ context.Context, traceID pcommon.TraceID) (bool, error) {
	if s.closed.Load() {
		return false, ErrClosed
	}
	_, closer, err := s.db.Get(summaryKey(traceID))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_ = closer.Close()
	return true, nil
}

func (s *Store) getSummary(tid pcommon.TraceID) (summary, bool, error) {
	v, closer, err := s.db.Get(summaryKey(tid))
	if errors.Is(err, pebble.ErrNotFound) {
		return summary{}, false, nil
	}
	if err != nil {
		return summary{}, false, err
	}
	defer closer.Close()
	sum, err := decodeSummary(v)
	return sum, err == nil, err
}
