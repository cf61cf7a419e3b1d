package metricstore

import (
	"encoding/hex"
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// The stream cache lets a data point whose series the TSDB already has skip
// Prometheus's translator. The translator builds each sample's labels
// (sanitizing names, promoting resource attributes, sorting) and the TSDB
// then finds the series by hashing them: half of the CPU of ingestion. A
// data point stream (resource, scope, metric, point attributes) maps to the
// same series every time, so the first time a stream's points arrive they
// go through the translator, which is watched: its appends, in order, teach
// the cache the stream's series references and labels. From then on the
// samples are appended by reference with the values the translator would
// have produced (TestStreamCacheMatchesTranslator checks this for every
// kind of point it takes). What it does not take — exponential histograms,
// summaries, delta temporality, exemplars with filtered attributes, unusual
// bucket layouts — still goes through the translator. A resource's
// target_info, whose labels the translator makes from the resource alone,
// is learned once per resource and written here from the earliest and
// latest timestamps of all of the resource's points, as the translator
// does.

// streamKey is a 128-bit hash of what a stream's labels depend on.
type streamKey struct{ a, b uint64 }

// streamEntry is what the translator appended for one stream.
type streamEntry struct {
	opts storage.AOptions // metric family and metadata; no exemplars
	// series, in the translator's order: for a number point the sample;
	// for a histogram [_sum if hasSum], _count, one _bucket per bound, +Inf.
	series []cachedSeries
	bounds []float64
	hasSum bool
	used   atomic.Int64 // unix seconds of last use
}

type cachedSeries struct {
	ref atomic.Uint64
	ls  labels.Labels
}

// resourceEntry is a resource's target_info, learned from the translator.
type resourceEntry struct {
	target cachedSeries // empty labels: the resource has no target_info
	opts   storage.AOptions
	used   atomic.Int64
}

// streamCache is safe for concurrent use; lookups take no lock.
type streamCache struct {
	seedA, seedB maphash.Seed
	streams      sync.Map // streamKey → *streamEntry
	resources    sync.Map // streamKey → *resourceEntry
	size         atomic.Int64
	max          int64
	lastSweep    atomic.Int64
	now          func() time.Time
}

// streamIdle is how long an unused entry is kept: longer than the TSDB
// keeps an idle series in its head, after which its reference is stale.
const streamIdle = 4 * time.Hour

func newStreamCache(maxEntries int64) *streamCache {
	return &streamCache{seedA: maphash.MakeSeed(), seedB: maphash.MakeSeed(), max: maxEntries, now: time.Now}
}

// sweep forgets entries idle for streamIdle, at most every ten minutes, and
// everything when the cache is over its size.
func (c *streamCache) sweep() {
	now := c.now().Unix()
	last := c.lastSweep.Load()
	if now-last < 600 && c.size.Load() <= c.max || !c.lastSweep.CompareAndSwap(last, now) {
		return
	}
	cutoff := now - int64(streamIdle/time.Second)
	all := c.size.Load() > c.max
	for _, m := range []*sync.Map{&c.streams, &c.resources} {
		m.Range(func(k, v any) bool {
			var used int64
			switch e := v.(type) {
			case *streamEntry:
				used = e.used.Load()
			case *resourceEntry:
				used = e.used.Load()
			}
			if all || used < cutoff {
				if _, ok := m.LoadAndDelete(k); ok {
					c.size.Add(-1)
				}
			}
			return true
		})
	}
}

func (c *streamCache) store(m *sync.Map, k streamKey, v any) {
	if _, loaded := m.Swap(k, v); !loaded {
		c.size.Add(1)
	}
}

// hasher computes streamKeys; not safe for concurrent use.
type hasher struct{ a, b maphash.Hash }

func (c *streamCache) newHasher() *hasher {
	h := &hasher{}
	h.a.SetSeed(c.seedA)
	h.b.SetSeed(c.seedB)
	return h
}

func (h *hasher) start(parent streamKey) {
	h.a.Reset()
	h.b.Reset()
	h.u64(parent.a)
	h.u64(parent.b)
}

func (h *hasher) sum() streamKey { return streamKey{h.a.Sum64(), h.b.Sum64()} }

func (h *hasher) u64(v uint64) {
	var b [8]byte
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	_, _ = h.a.Write(b[:])
	_, _ = h.b.Write(b[:])
}

func (h *hasher) str(s string) {
	h.u64(uint64(len(s)))
	_, _ = h.a.WriteString(s)
	_, _ = h.b.WriteString(s)
}

func (h *hasher) attrs(m pcommon.Map) {
	h.u64(uint64(m.Len()))
	m.Range(func(k string, v pcommon.Value) bool {
		h.str(k)
		h.u64(uint64(v.Type()))
		switch v.Type() {
		case pcommon.ValueTypeStr:
			h.str(v.Str())
		case pcommon.ValueTypeInt:
			h.u64(uint64(v.Int()))
		case pcommon.ValueTypeDouble:
			h.u64(math.Float64bits(v.Double()))
		case pcommon.ValueTypeBool:
			if v.Bool() {
				h.u64(1)
			} else {
				h.u64(0)
			}
		default:
			h.str(v.AsString())
		}
		return true
	})
}

func (h *hasher) resource(rm pmetric.ResourceMetrics) streamKey {
	h.start(streamKey{})
	h.str(rm.SchemaUrl())
	h.attrs(rm.Resource().Attributes())
	return h.sum()
}

func (h *hasher) scope(parent streamKey, sm pmetric.ScopeMetrics) streamKey {
	h.start(parent)
	h.str(sm.SchemaUrl())
	h.str(sm.Scope().Name())
	h.str(sm.Scope().Version())
	h.attrs(sm.Scope().Attributes())
	return h.sum()
}

func (h *hasher) metric(parent streamKey, m pmetric.Metric) streamKey {
	h.start(parent)
	h.str(m.Name())
	h.str(m.Unit())
	h.str(m.Description())
	h.u64(uint64(m.Type()))
	if m.Type() == pmetric.MetricTypeSum && m.Sum().IsMonotonic() {
		h.u64(1)
	}
	h.attrs(m.Metadata())
	return h.sum()
}

func (h *hasher) point(parent streamKey, attrs pcommon.Map) streamKey {
	h.start(parent)
	h.attrs(attrs)
	return h.sum()
}

// point kinds the cache takes.
const (
	kindNumber = iota
	kindHistogram
)

// plannedPoint is one data point of a cached metric, in the translator's
// order.
type plannedPoint struct {
	key   streamKey
	kind  int
	entry *streamEntry // nil until learned
	num   pmetric.NumberDataPoint
	hist  pmetric.HistogramDataPoint
	gauge bool
	ref   metricRef // the metric it belongs to
}

// metricRef locates a metric in a resource.
type metricRef struct{ scope, metric int }

// resourcePlan says how a resource's points are appended.
type resourcePlan struct {
	key streamKey
	res *resourceEntry // nil until learned
	// points are those the cache knows, appended by reference;
	// learnPoints those it takes but has not learned yet, which the
	// translator appends while the cache learns; residual are the metrics
	// it does not take, which the translator appends.
	points, learnPoints []plannedPoint
	residual            []metricRef
	// earliest and latest are over every point of the resource, as the
	// translator computes them for target_info.
	earliest, latest pcommon.Timestamp
}

// plan sorts rm's metrics into those the cache takes and the others, and
// looks up the points of the first.
func (c *streamCache) plan(h *hasher, rm pmetric.ResourceMetrics, p *resourcePlan) {
	*p = resourcePlan{points: p.points[:0], learnPoints: p.learnPoints[:0],
		residual: p.residual[:0],
		earliest: pcommon.Timestamp(math.MaxUint64)}
	p.key = h.resource(rm)
	if v, ok := c.resources.Load(p.key); ok {
		p.res = v.(*resourceEntry)
	}
	sms := rm.ScopeMetrics()
	for i := range sms.Len() {
		sm := sms.At(i)
		sk := h.scope(p.key, sm)
		ms := sm.Metrics()
		for j := range ms.Len() {
			m := ms.At(j)
			p.earliest, p.latest = timeRange(m, p.earliest, p.latest)
			before := len(p.points)
			ref := metricRef{i, j}
			if !c.planMetric(h, sk, m, p) {
				p.points = p.points[:before]
				p.residual = append(p.residual, ref)
				continue
			}
			// Points not known yet move to learnPoints.
			kept := before
			for _, pp := range p.points[before:] {
				pp.ref = ref
				if pp.entry == nil {
					p.learnPoints = append(p.learnPoints, pp)
					continue
				}
				p.points[kept] = pp
				kept++
			}
			p.points = p.points[:kept]
		}
	}
}

// planMetric adds m's points to p and reports whether the cache takes m.
func (c *streamCache) planMetric(h *hasher, sk streamKey, m pmetric.Metric, p *resourcePlan) bool {
	mk := h.metric(sk, m)
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return c.planNumbers(h, mk, m.Gauge().DataPoints(), true, p)
	case pmetric.MetricTypeSum:
		if m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
			return false
		}
		return c.planNumbers(h, mk, m.Sum().DataPoints(), false, p)
	case pmetric.MetricTypeHistogram:
		if m.Histogram().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
			return false
		}
		dps := m.Histogram().DataPoints()
		for k := range dps.Len() {
			dp := dps.At(k)
			if !histogramShapeOK(dp) || !exemplarsOK(dp.Exemplars()) {
				return false
			}
			pp := plannedPoint{key: h.point(mk, dp.Attributes()), kind: kindHistogram, hist: dp}
			if v, ok := c.streams.Load(pp.key); ok {
				e := v.(*streamEntry)
				if e.hasSum == dp.HasSum() && boundsEqual(e.bounds, dp.ExplicitBounds()) {
					pp.entry = e
				}
			}
			p.points = append(p.points, pp)
		}
		return dps.Len() > 0
	}
	return false
}

// boundsEqual compares without AsRaw, which copies.
func boundsEqual(want []float64, got pcommon.Float64Slice) bool {
	if got.Len() != len(want) {
		return false
	}
	for i, w := range want {
		if got.At(i) != w {
			return false
		}
	}
	return true
}

// planNumbers adds gauge or sum points to p, reporting whether the cache
// takes them.
func (c *streamCache) planNumbers(h *hasher, mk streamKey, dps pmetric.NumberDataPointSlice, gauge bool, p *resourcePlan) bool {
	for k := range dps.Len() {
		dp := dps.At(k)
		if dp.ValueType() == pmetric.NumberDataPointValueTypeEmpty || (!gauge && !exemplarsOK(dp.Exemplars())) {
			return false
		}
		pp := plannedPoint{key: h.point(mk, dp.Attributes()), kind: kindNumber, num: dp, gauge: gauge}
		if v, ok := c.streams.Load(pp.key); ok {
			if e := v.(*streamEntry); len(e.series) == 1 {
				pp.entry = e
			}
		}
		p.points = append(p.points, pp)
	}
	return dps.Len() > 0
}

// timeRange widens [lo, hi] to m's point timestamps.
func timeRange(m pmetric.Metric, lo, hi pcommon.Timestamp) (pcommon.Timestamp, pcommon.Timestamp) {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return widen(m.Gauge().DataPoints(), lo, hi)
	case pmetric.MetricTypeSum:
		return widen(m.Sum().DataPoints(), lo, hi)
	case pmetric.MetricTypeHistogram:
		return widen(m.Histogram().DataPoints(), lo, hi)
	case pmetric.MetricTypeExponentialHistogram:
		return widen(m.ExponentialHistogram().DataPoints(), lo, hi)
	case pmetric.MetricTypeSummary:
		return widen(m.Summary().DataPoints(), lo, hi)
	}
	return lo, hi
}

// pointSlice is a pdata data point slice (Len and At, without copying).
type pointSlice[P any] interface {
	Len() int
	At(int) P
}

func widen[P interface{ Timestamp() pcommon.Timestamp }](points pointSlice[P], lo, hi pcommon.Timestamp) (pcommon.Timestamp, pcommon.Timestamp) {
	for i := range points.Len() {
		t := points.At(i).Timestamp()
		lo, hi = min(lo, t), max(hi, t)
	}
	return lo, hi
}

// resourceBatch is a new single-resource batch with rm's resource, to
// which metrics are added under copies of their scopes, in rm's order.
type resourceBatch struct {
	rm    pmetric.ResourceMetrics
	md    pmetric.Metrics
	scope int
	ms    pmetric.MetricSlice
}

func newResourceBatch(rm pmetric.ResourceMetrics) *resourceBatch {
	b := &resourceBatch{rm: rm, md: pmetric.NewMetrics(), scope: -1}
	dst := b.md.ResourceMetrics().AppendEmpty()
	dst.SetSchemaUrl(rm.SchemaUrl())
	rm.Resource().CopyTo(dst.Resource())
	return b
}

// metric appends an empty metric under the copy of rm's scope i.
func (b *resourceBatch) metric(i int) pmetric.Metric {
	if i != b.scope {
		sm := b.rm.ScopeMetrics().At(i)
		d := b.md.ResourceMetrics().At(0).ScopeMetrics().AppendEmpty()
		d.SetSchemaUrl(sm.SchemaUrl())
		sm.Scope().CopyTo(d.Scope())
		b.ms, b.scope = d.Metrics(), i
	}
	return b.ms.AppendEmpty()
}

// subset moves the given metrics of rm into a new single-resource batch
// with rm's resource and the metrics' scopes. rm is left without them.
func subset(rm pmetric.ResourceMetrics, refs []metricRef) pmetric.Metrics {
	b := newResourceBatch(rm)
	for _, r := range refs {
		rm.ScopeMetrics().At(r.scope).Metrics().At(r.metric).MoveTo(b.metric(r.scope))
	}
	return b.md
}

// learningBatch copies the points in p.learnPoints, with their metrics
// (name, unit, description, type, temporality) and scopes, into a new
// single-resource batch with rm's resource, in the same order.
func learningBatch(rm pmetric.ResourceMetrics, p *resourcePlan) pmetric.Metrics {
	b := newResourceBatch(rm)
	last := metricRef{-1, -1}
	var m pmetric.Metric
	for _, pp := range p.learnPoints {
		if pp.ref != last {
			src := rm.ScopeMetrics().At(pp.ref.scope).Metrics().At(pp.ref.metric)
			m = b.metric(pp.ref.scope)
			m.SetName(src.Name())
			m.SetUnit(src.Unit())
			m.SetDescription(src.Description())
			src.Metadata().CopyTo(m.Metadata())
			switch src.Type() {
			case pmetric.MetricTypeGauge:
				m.SetEmptyGauge()
			case pmetric.MetricTypeSum:
				sum := m.SetEmptySum()
				sum.SetAggregationTemporality(src.Sum().AggregationTemporality())
				sum.SetIsMonotonic(src.Sum().IsMonotonic())
			case pmetric.MetricTypeHistogram:
				m.SetEmptyHistogram().SetAggregationTemporality(src.Histogram().AggregationTemporality())
			}
			last = pp.ref
		}
		switch pp.kind {
		case kindNumber:
			if pp.gauge {
				pp.num.CopyTo(m.Gauge().DataPoints().AppendEmpty())
			} else {
				pp.num.CopyTo(m.Sum().DataPoints().AppendEmpty())
			}
		case kindHistogram:
			pp.hist.CopyTo(m.Histogram().DataPoints().AppendEmpty())
		}
	}
	return b.md
}

// histogramShapeOK: one count per bucket and finite, increasing bounds, the
// layout the translator turns into one _bucket series per bound.
func histogramShapeOK(dp pmetric.HistogramDataPoint) bool {
	bounds := dp.ExplicitBounds()
	if dp.BucketCounts().Len() != bounds.Len()+1 {
		return false
	}
	for i := range bounds.Len() {
		b := bounds.At(i)
		if math.IsInf(b, 0) || math.IsNaN(b) || (i > 0 && b <= bounds.At(i-1)) {
			return false
		}
	}
	return true
}

// exemplarsOK: exemplars the cache converts exactly as the translator does.
func exemplarsOK(es pmetric.ExemplarSlice) bool {
	for i := range es.Len() {
		e := es.At(i)
		if e.FilteredAttributes().Len() > 0 || e.ValueType() == pmetric.ExemplarValueTypeEmpty {
			return false
		}
	}
	return true
}

// recorded is one append the translator made.
type recorded struct {
	ls   labels.Labels
	ref  storage.SeriesRef
	opts storage.AOptions
	hist bool // a native histogram sample
}

// appends is how many appends the translator makes for pp.
func (pp plannedPoint) appends() int {
	if pp.kind == kindNumber {
		return 1
	}
	n := 2 + pp.hist.ExplicitBounds().Len()
	if pp.hist.HasSum() {
		n++
	}
	return n
}

// learn attributes the translator's appends for the learning metrics of a
// resource (translated without target_info) to their points and remembers
// them. Nothing is learned unless every append matches the point it
// should belong to.
func (c *streamCache) learn(p *resourcePlan, recs []recorded) {
	now := c.now().Unix()
	entries := make([]*streamEntry, len(p.learnPoints))
	i := 0
	for n, pp := range p.learnPoints {
		need := pp.appends()
		if i+need > len(recs) {
			return
		}
		rs := recs[i : i+need]
		i += need
		fam := rs[0].opts.MetricFamilyName
		for _, r := range rs {
			if r.hist || r.opts.MetricFamilyName != fam {
				return
			}
		}
		e := &streamEntry{opts: rs[0].opts}
		switch pp.kind {
		case kindNumber:
			if !named(rs[0], fam, "", "") {
				return
			}
		case kindHistogram:
			e.hasSum = pp.hist.HasSum()
			e.bounds = pp.hist.ExplicitBounds().AsRaw()
			j := 0
			if e.hasSum {
				if !named(rs[j], fam+"_sum", "", "") {
					return
				}
				j++
			}
			if !named(rs[j], fam+"_count", "", "") {
				return
			}
			j++
			for _, b := range e.bounds {
				if !named(rs[j], fam+"_bucket", "le", strconv.FormatFloat(b, 'f', -1, 64)) {
					return
				}
				j++
			}
			if !named(rs[j], fam+"_bucket", "le", "+Inf") {
				return
			}
		}
		e.series = make([]cachedSeries, need)
		for k, r := range rs {
			if r.ref == 0 {
				e = nil // refused: leave the stream to the translator
				break
			}
			e.series[k].ls = r.ls
			e.series[k].ref.Store(uint64(r.ref))
		}
		if e != nil {
			e.used.Store(now)
			entries[n] = e
		}
	}
	if i != len(recs) {
		return
	}
	for n, e := range entries {
		if e != nil {
			c.store(&c.streams, p.learnPoints[n].key, e)
		}
	}
}

// learnResource learns a resource's target_info from the appends of a dry
// translation of the resource with one probe gauge: the probe's sample,
// then target_info's, if the resource has one.
func (c *streamCache) learnResource(p *resourcePlan, recs []recorded) {
	if len(recs) == 0 || len(recs) > 2 {
		return
	}
	res := &resourceEntry{}
	if len(recs) == 2 {
		if recs[1].hist {
			return
		}
		res.target.ls = recs[1].ls
		res.opts = recs[1].opts
	}
	res.used.Store(c.now().Unix())
	c.store(&c.resources, p.key, res)
	p.res = res
}

// probe is a one-gauge batch with rm's resource, for learnResource.
func probe(rm pmetric.ResourceMetrics) pmetric.Metrics {
	md := newResourceBatch(rm).md
	g := md.ResourceMetrics().At(0).ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName("lookout_probe")
	g.SetEmptyGauge().DataPoints().AppendEmpty().SetTimestamp(pcommon.Timestamp(time.Hour))
	return md
}

// named reports whether r's series is called name (and has the extra label).
func named(r recorded, name, extra, extraValue string) bool {
	if r.ls.Get(labels.MetricName) != name {
		return false
	}
	return extra == "" || r.ls.Get(extra) == extraValue
}

// fastAppend appends the points of a resource's cached metrics by series
// reference, as the translator would have.
func (c *streamCache) fastAppend(app storage.AppenderV2, p *resourcePlan, sb *labels.ScratchBuilder) {
	now := c.now().Unix()
	var exs []exemplar.Exemplar
	for _, pp := range p.points {
		e := pp.entry
		touch(&e.used, now)
		opts := e.opts
		switch pp.kind {
		case kindNumber:
			dp := pp.num
			v := dp.DoubleValue()
			if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
				v = float64(dp.IntValue())
			}
			if dp.Flags().NoRecordedValue() {
				v = math.Float64frombits(value.StaleNaN)
			}
			if !pp.gauge {
				exs = convertExemplars(exs[:0], dp.Exemplars(), sb)
				slices.SortFunc(exs, exemplar.Compare)
				opts.Exemplars = exs
			}
			appendCached(app, &e.series[0], ms(dp.StartTimestamp()), ms(dp.Timestamp()), v, opts)
		case kindHistogram:
			dp := pp.hist
			st, t := ms(dp.StartTimestamp()), ms(dp.Timestamp())
			stale := dp.Flags().NoRecordedValue()
			val := func(v float64) float64 {
				if stale {
					return math.Float64frombits(value.StaleNaN)
				}
				return v
			}
			s := e.series
			if e.hasSum {
				appendCached(app, &s[0], st, t, val(dp.Sum()), opts)
				s = s[1:]
			}
			appendCached(app, &s[0], st, t, val(float64(dp.Count())), opts)
			s = s[1:]
			// Exemplars are sorted by value (ConsumeMetrics does it);
			// each goes to the first bucket whose bound is >= its value.
			exs = convertExemplars(exs[:0], dp.Exemplars(), sb)
			next := 0
			var cum uint64
			counts := dp.BucketCounts()
			for i, b := range e.bounds {
				cum += counts.At(i)
				from := next
				for next < len(exs) && !(exs[next].Value > b) {
					next++
				}
				opts.Exemplars = exs[from:next]
				slices.SortFunc(opts.Exemplars, exemplar.Compare)
				appendCached(app, &s[i], st, t, val(float64(cum)), opts)
			}
			opts.Exemplars = exs[next:]
			slices.SortFunc(opts.Exemplars, exemplar.Compare)
			appendCached(app, &s[len(e.bounds)], st, t, val(float64(dp.Count())), opts)
		}
	}
}

// appendTargetInfo writes the resource's target_info, as the translator
// does, at every half lookback from its earliest point to its latest, and
// at the latest. seen deduplicates samples across a request's resources.
func (c *streamCache) appendTargetInfo(app storage.AppenderV2, p *resourcePlan, lookback time.Duration, seen map[targetKey]struct{}) {
	touch(&p.res.used, c.now().Unix())
	earliest, latest := p.earliest, p.latest
	if p.res.target.ls.IsEmpty() || earliest == pcommon.Timestamp(math.MaxUint64) {
		return
	}
	h := p.res.target.ls.Hash()
	add := func(ts int64) {
		k := targetKey{h, ts}
		if _, ok := seen[k]; ok {
			return
		}
		seen[k] = struct{}{}
		appendCached(app, &p.res.target, 0, ts, 1, p.res.opts)
	}
	if lookback <= 0 {
		lookback = 5 * time.Minute // the translator's default
	}
	interval := lookback / 2
	at, end := earliest.AsTime(), latest.AsTime()
	if from := end.Add(-maxTargetInfoSpan); at.Before(from) {
		// Skip ahead on the same grid: a point stamped 1970 in a batch of
		// current points must not make a million samples.
		at = at.Add((from.Sub(at) + interval - 1) / interval * interval)
	}
	for ; at.Before(end); at = at.Add(interval) {
		add(at.UnixMilli())
	}
	add(latest.AsTime().UnixMilli())
}

// maxTargetInfoSpan bounds how far before a resource's latest point its
// target_info samples go (Prometheus's translator has no bound).
const maxTargetInfoSpan = 24 * time.Hour

// touch records a use at now (unix seconds), writing only when the second
// changed: entries are shared by concurrent requests on every core.
func touch(used *atomic.Int64, now int64) {
	if used.Load() != now {
		used.Store(now)
	}
}

type targetKey struct {
	labels uint64
	ts     int64
}

func ms(t pcommon.Timestamp) int64 { return int64(t) / 1_000_000 }

// appendCached appends by reference, remembering the new reference when the
// TSDB had dropped the series and made it again from the labels.
func appendCached(app storage.AppenderV2, s *cachedSeries, st, t int64, v float64, opts storage.AOptions) {
	old := s.ref.Load()
	ref, _ := app.Append(storage.SeriesRef(old), s.ls, st, t, v, nil, nil, opts)
	if ref != 0 && uint64(ref) != old {
		s.ref.CompareAndSwap(old, uint64(ref))
	}
}

// convertExemplars converts exemplars without filtered attributes as
// Prometheus's translator does: trace_id and span_id labels in hex, the
// timestamp in milliseconds.
func convertExemplars(out []exemplar.Exemplar, es pmetric.ExemplarSlice, sb *labels.ScratchBuilder) []exemplar.Exemplar {
	for i := range es.Len() {
		e := es.At(i)
		ts := timestamp.FromTime(e.Timestamp().AsTime())
		x := exemplar.Exemplar{Ts: ts, HasTs: ts != 0}
		if e.ValueType() == pmetric.ExemplarValueTypeInt {
			x.Value = float64(e.IntValue())
		} else {
			x.Value = e.DoubleValue()
		}
		sb.Reset()
		if id := e.TraceID(); !id.IsEmpty() {
			sb.Add("trace_id", hex.EncodeToString(id[:]))
		}
		if id := e.SpanID(); !id.IsEmpty() {
			sb.Add("span_id", hex.EncodeToString(id[:]))
		}
		sb.Sort()
		x.Labels = sb.Labels()
		out = append(out, x)
	}
	return out
}
