package traceql

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The limits of a metrics evaluation.
const (
	// MaxMetricsPoints bounds the steps of one query, (End-Start)/Step, as
	// Tempo's default query_frontend.metrics.max_intervals does.
	MaxMetricsPoints = 10_000
	// DefaultMaxSeries is MetricsOptions.MaxSeries when it is 0.
	DefaultMaxSeries = 1000
	// MaxQuantileBuckets bounds the histogram buckets quantile_over_time
	// keeps over all its series and steps: 4 bytes each in a step's dense
	// histogram, which holds every bucket between its smallest and largest
	// value, about 20 in the map of a histogram spread wider.
	MaxQuantileBuckets = 4 << 20
	// maxExemplarSlots bounds the exemplar candidates kept per series.
	maxExemplarSlots = 128
	// maxSeriesCap bounds MetricsOptions.MaxSeries (a quantile cell key
	// holds a series number in 28 bits).
	maxSeriesCap = 1 << 24
)

// ErrTooManySeries reports a query whose result has more series than
// MetricsOptions.MaxSeries; Result returns it with the series it kept, a
// partial result. Tempo answers such a query with status PARTIAL and the
// error's text as its message.
var ErrTooManySeries = errors.New("too many series")

// ErrTooManyPoints reports a range of more than MaxMetricsPoints steps; the
// error's text is Tempo's for a step too small (an HTTP 400).
var ErrTooManyPoints = errors.New("too many points")

// limitError is an error with Tempo's text that errors.Is matches to one of
// the sentinel errors above.
type limitError struct {
	msg  string
	kind error
}

func (e *limitError) Error() string { return e.msg }
func (e *limitError) Unwrap() error { return e.kind }

// ErrTooManyBuckets reports a quantile_over_time that needs more than
// MaxQuantileBuckets histogram buckets; its result would be wrong, so Result
// returns no series with it.
var ErrTooManyBuckets = errors.New("too many histogram buckets")

// MetricsOptions say what a metrics evaluation covers.
type MetricsOptions struct {
	// Start, End and Step define the steps, as Tempo's: the start is rounded
	// down and the end up to multiples of Step (since the Unix epoch), and
	// step i covers the span start times in (Start+i·Step, Start+(i+1)·Step]
	// (right-closed), its sample stamped with its end. A server answering
	// Tempo's query_range calls AlignMetricsRange first, as Tempo does.
	Start, End time.Time
	Step       time.Duration
	// Instant makes one step of [Start, End] (both ends included), stamped
	// End, as Tempo's instant queries; Step is ignored. A Step of exactly
	// End-Start means the same, as in Tempo (Drilldown's compare() asks
	// for such a step on query_range).
	Instant bool
	// Exemplars is the most exemplars of the whole result (0: none).
	Exemplars int
	// MaxSeries bounds the series of the result; 0 means DefaultMaxSeries.
	// A series holds 8 bytes per step (16 for avg_over_time), so 1000
	// series of MaxMetricsPoints steps take 80 MB; quantile_over_time keeps
	// its buckets apart (MaxQuantileBuckets).
	MaxSeries int
}

// AlignMetricsRange is Tempo's alignment of a query_range request: start
// rounded down and end up to a multiple of step, then one more step before
// the start, so that refreshing "the last hour" gives stable steps. Like
// Tempo it leaves a request of one step spanning the range (an instant
// query) as it is.
func AlignMetricsRange(start, end time.Time, step time.Duration) (time.Time, time.Time) {
	if step <= 0 || end.Sub(start) == step {
		return start, end
	}
	s, e := alignDown(start.UnixNano(), int64(step)), alignUp(end.UnixNano(), int64(step))
	if s > int64(step) {
		s -= int64(step)
	}
	return time.Unix(0, s), time.Unix(0, e)
}

func alignDown(t, step int64) int64 {
	m := t % step
	if m < 0 {
		m += step
	}
	return t - m
}

func alignUp(t, step int64) int64 {
	d := alignDown(t, step)
	if d == t {
		return t
	}
	return d + step
}

// Observation is one matched span, as the trace store hands it to Observe.
// The caller may reuse it and its slices after Observe returns.
type Observation struct {
	StartUnixNano uint64
	// Value is the value of the query's Attr for the span, durations in
	// seconds; ignored by rate, count_over_time and compare.
	Value float64
	// HasValue is false when the span lacks Attr, or its value is not a
	// number: the *_over_time functions skip the span.
	HasValue bool
	// Group holds the values of the query's By fields, in order. The span
	// lacks field i when Present[i] is false, or, with Present nil, when
	// Group[i] has type TypeNil (the zero Value).
	Group   []Value
	Present []bool
	TraceID [16]byte
	// SpanID may be zero; then Result asks its resolve function for the
	// span ID of each exemplar it returns, passing Ref back.
	SpanID [8]byte
	Ref    uint64
}

// group is the value of by() field i, the zero Value when absent.
func (o *Observation) group(i int) Value {
	if i >= len(o.Group) || o.Present != nil && (i >= len(o.Present) || !o.Present[i]) {
		return Value{}
	}
	return o.Group[i]
}

// Label is one label of a metrics series. Its Value renders in Tempo's
// JSON as AnyValue: strings, durations (Duration.String), status and kind
// names and nil (the text "nil") as stringValue, ints as intValue, floats
// as doubleValue, bools as boolValue.
type Label struct {
	Key   string
	Value Value
}

// MetricSeries is one series of a result.
type MetricSeries struct {
	// Labels name the series, in Tempo's order: the by() fields in the
	// query's order (spans lacking a field have no label for it; when they
	// lack all, the first field is labelled nil), then p (quantile) or
	// __bucket (histogram). Without by() the series of rate, count, sum,
	// min, max and avg is {__name__="<function>"}.
	Labels []Label
	// Samples are in time order. Empty steps have a sample of 0 for rate,
	// count_over_time, histogram_over_time, quantile_over_time and
	// compare, and none for sum, min, max and avg, as in Tempo.
	Samples   []MetricSample
	Exemplars []MetricExemplar
}

// MetricSample is one value of a series.
type MetricSample struct {
	TimestampMs int64
	Value       float64
}

// MetricExemplar is a span that contributed to a series. Value is the
// span's value of the query's field (seconds for durations), or for rate,
// count_over_time, histogram_over_time and compare the series' value in
// the exemplar's step, as Tempo reports them. TimestampMs is the span's
// start.
type MetricExemplar struct {
	TraceID     [16]byte
	SpanID      [8]byte
	Value       float64
	TimestampMs int64
}

// MetricsEval evaluates one metrics query over a stream of matched spans:
// Observe (or ObserveSpan) once per span, then Result. It is not safe for
// concurrent use. Its memory is bounded by MaxSeries series of
// (End-Start)/Step points, MaxQuantileBuckets buckets and
// Exemplars-dependent candidates per series.
type MetricsEval struct {
	q         *MetricsQuery
	start     int64 // ns; steps are (start+i·step, start+(i+1)·step]
	end       int64
	step      int64
	instant   bool
	n         int     // steps
	stepSecs  float64 // for rate
	maxSeries int
	maxGroups int // internal series allowed (groups, or group×bucket for histogram)
	exemplars int
	slots     int // exemplar slots per series

	index  map[string]int32
	series []*evalSeries
	key    []byte

	buckets   int // quantile: buckets of all the series' histograms
	truncated bool
	overflow  bool // quantile buckets over MaxQuantileBuckets

	cmp     *compareState
	scratch Observation
}

// evalSeries is the state of one internal series.
type evalSeries struct {
	group  []Value // by() values, nil type for absent
	bucket float64 // histogram_over_time's bucket
	vals   []float64
	counts []float64      // avg_over_time's counts
	hists  []quantileHist // quantile_over_time's, per step
	slots  []exemplarSlot
}

// exemplarSlot holds the best exemplar candidate of one stretch of time:
// the largest value (the slow tail) for functions of a value, else the
// largest hash of the trace ID (a uniform sample).
type exemplarSlot struct {
	set     bool
	hash    uint64
	value   float64
	start   uint64
	traceID [16]byte
	spanID  [8]byte
	ref     uint64
}

// NewMetricsEval prepares the evaluation of q over o's range. It refuses a
// range of more than MaxMetricsPoints steps with an error wrapping
// ErrTooManyPoints that says the smallest step allowed.
func NewMetricsEval(q *MetricsQuery, o MetricsOptions) (*MetricsEval, error) {
	if q == nil {
		return nil, errors.New("metrics query is nil")
	}
	start, end := o.Start.UnixNano(), o.End.UnixNano()
	if end <= start {
		return nil, errors.New("end must be greater than start")
	}
	m := &MetricsEval{q: q, instant: o.Instant, exemplars: max(o.Exemplars, 0), maxSeries: o.MaxSeries}
	if m.maxSeries <= 0 {
		m.maxSeries = DefaultMaxSeries
	}
	m.maxSeries = min(m.maxSeries, maxSeriesCap)
	if o.Instant || end-start == int64(o.Step) {
		// One step spanning the range is an instant query, as Tempo
		// takes a request without its instant flag.
		m.instant = true
		m.start, m.end, m.step, m.n = start, end, end-start, 1
	} else {
		if o.Step <= 0 {
			return nil, errors.New("step must be positive")
		}
		if (end-start)/int64(o.Step) > MaxMetricsPoints {
			return nil, &limitError{kind: ErrTooManyPoints, msg: fmt.Sprintf("step of %s is too small, minimum step for given range is %s",
				o.Step, time.Duration((end-start)/MaxMetricsPoints))}
		}
		m.step = int64(o.Step)
		m.start, m.end = alignDown(start, m.step), alignUp(end, m.step)
		m.n = int((m.end - m.start) / m.step)
	}
	m.stepSecs = float64(m.step) / 1e9
	m.maxGroups = m.maxSeries
	if q.Func == MetricsQuantileOverTime {
		m.maxGroups = max(1, m.maxSeries/max(1, len(q.Quantiles)))
	}
	if m.exemplars > 0 {
		m.slots = min(m.exemplars, m.n, maxExemplarSlots)
	}
	m.index = make(map[string]int32)
	m.scratch.Group = make([]Value, len(q.By))
	if q.Func == MetricsCompare {
		m.cmp = newCompareState(m)
	}
	return m, nil
}

// Range returns the span start times the evaluation counts: those in
// (start, end], or [start, end] for an instant query. A trace store can
// skip spans outside it.
func (m *MetricsEval) Range() (start, end time.Time) {
	return time.Unix(0, m.start), time.Unix(0, m.end)
}

// interval returns the step of a span starting at t, or -1 outside the range.
func (m *MetricsEval) interval(t uint64) int {
	if t > math.MaxInt64 {
		return -1
	}
	ts := int64(t)
	if m.instant {
		if ts < m.start || ts > m.end {
			return -1
		}
		return 0
	}
	if ts <= m.start || ts > m.end {
		return -1
	}
	return int((ts - m.start - 1) / m.step)
}

// timestampMs is the sample time of step i: its end.
func (m *MetricsEval) timestampMs(i int) int64 {
	if m.instant {
		return m.end / 1e6
	}
	return (m.start + int64(i+1)*m.step) / 1e6
}

// Observe counts one matched span. It does not allocate for a span of an
// existing series. A compare() query ignores it: use ObserveSpan.
func (m *MetricsEval) Observe(o *Observation) {
	if m.cmp != nil {
		return
	}
	iv := m.interval(o.StartUnixNano)
	if iv < 0 {
		return
	}
	q := m.q
	v := o.Value
	if q.Func.takesField() {
		if !o.HasValue || v != v {
			return
		}
		if (q.Func == MetricsQuantileOverTime || q.Func == MetricsHistogramOverTime) && math.IsInf(v, 0) {
			return
		}
	}
	key := m.key[:0]
	for i := range q.By {
		key = appendValueKey(key, o.group(i))
	}
	var bucket float64
	if q.Func == MetricsHistogramOverTime {
		var ok bool
		if bucket, ok = m.histogramBucket(v); !ok {
			m.key = key
			return
		}
		key = binary.LittleEndian.AppendUint64(key, math.Float64bits(bucket))
	}
	m.key = key
	si, ok := m.index[string(key)]
	if !ok {
		if si = m.newSeries(o, bucket); si < 0 {
			return
		}
	}
	s := m.series[si]
	switch q.Func {
	case MetricsRate, MetricsCountOverTime, MetricsHistogramOverTime:
		s.vals[iv]++
	case MetricsSumOverTime, MetricsMinOverTime, MetricsMaxOverTime:
		s.vals[iv] = combine(q.Func, s.vals[iv], v)
	case MetricsAvgOverTime:
		s.vals[iv] += v
		s.counts[iv]++
	case MetricsQuantileOverTime:
		m.addQuantile(&s.hists[iv], int32(quantileCode(v)), 1)
	}
	if m.slots > 0 {
		m.offerExemplar(s.slots, iv, o.StartUnixNano, v, q.Func.takesField() && q.Func != MetricsHistogramOverTime, o.TraceID, o.SpanID, o.Ref)
	}
}

// offerExemplar keeps the span in its slot if it beats the slot's candidate.
func (m *MetricsEval) offerExemplar(slots []exemplarSlot, iv int, start uint64, v float64, byValue bool, traceID [16]byte, spanID [8]byte, ref uint64) {
	sl := &slots[iv*len(slots)/m.n]
	h := traceHash(traceID)
	if sl.set {
		if byValue && v != sl.value {
			if v < sl.value {
				return
			}
		} else if h <= sl.hash {
			return
		}
	}
	*sl = exemplarSlot{set: true, hash: h, value: v, start: start, traceID: traceID, spanID: spanID, ref: ref}
}

// traceHash mixes a trace ID into a well-spread 64-bit value (splitmix64's
// finaliser), so that "largest hash" is a uniform choice of traces.
func traceHash(id [16]byte) uint64 {
	x := binary.LittleEndian.Uint64(id[:8]) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(id[8:]), 31)
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// newSeries adds the series of m.key, or returns -1 (and marks the result
// truncated) when the series limit is reached.
func (m *MetricsEval) newSeries(o *Observation, bucket float64) int32 {
	if len(m.series) >= m.maxGroups {
		m.truncated = true
		return -1
	}
	s := &evalSeries{group: make([]Value, len(m.q.By)), bucket: bucket, vals: make([]float64, m.n)}
	for i := range s.group {
		s.group[i] = o.group(i)
		s.group[i].S = strings.Clone(s.group[i].S) // the caller may reuse its bytes
	}
	switch m.q.Func {
	case MetricsSumOverTime, MetricsMinOverTime, MetricsMaxOverTime:
		for i := range s.vals {
			s.vals[i] = math.NaN()
		}
	case MetricsAvgOverTime:
		s.counts = make([]float64, m.n)
	case MetricsQuantileOverTime:
		s.vals, s.hists = nil, make([]quantileHist, m.n)
	}
	if m.slots > 0 {
		s.slots = make([]exemplarSlot, m.slots)
	}
	si := int32(len(m.series))
	m.series = append(m.series, s)
	m.index[string(m.key)] = si
	return si
}

// appendValueKey appends an unambiguous encoding of a typed value to b.
func appendValueKey(b []byte, v Value) []byte {
	b = append(b, byte(v.Type))
	switch v.Type {
	case TypeNil:
	case TypeString:
		b = binary.AppendUvarint(b, uint64(len(v.S)))
		b = append(b, v.S...)
	case TypeFloat:
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.F))
	case TypeBool:
		if v.B {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	default:
		b = binary.LittleEndian.AppendUint64(b, uint64(v.I))
	}
	return b
}

// histogramBucket is Tempo's power-of-two bucket of v: for a duration the
// least power of two nanoseconds ≥ v, in seconds; else the least power of
// two ≥ v. Values below 2 (nanoseconds for durations) have none.
func (m *MetricsEval) histogramBucket(v float64) (float64, bool) {
	if isDurationField(m.q.Attr) {
		ns := math.Round(v * 1e9)
		if !(ns >= 2) || ns > 1<<62 {
			return 0, false
		}
		return float64(uint64(1)<<(64-bits.LeadingZeros64(uint64(ns)-1))) / 1e9, true
	}
	if !(v >= 2) {
		return 0, false
	}
	frac, exp := math.Frexp(v) // v = frac·2^exp, frac in [0.5, 1)
	if frac == 0.5 {
		return v, true
	}
	return math.Ldexp(1, exp), true
}

func isDurationField(f Field) bool {
	return f.Intrinsic == IntrinsicDuration || f.Intrinsic == IntrinsicTraceDuration
}

// The quantile histogram: bucket k holds the magnitudes in
// (γ^(k-1), γ^k] with γ = 2^(1/16), and reports 2γ^k/(1+γ), which is within
// a factor (γ-1)/(γ+1) ≈ 2.17% of every value of the bucket (interpolating
// within the bucket could be off by γ-1 ≈ 4.4%). Negative values mirror the
// positive buckets; zero has its own. A code orders like its values.
const (
	quantileSubBuckets = 16
	quantileKOffset    = 17200   // -k of the smallest subnormal is 17184
	quantileZeroCode   = 1 << 17 // codes fit in 18 bits
)

// QuantileRelativeError bounds the relative error of a quantile_over_time
// value against the true quantile (the ⌈q·n⌉-th smallest value of its step).
// It is (γ-1)/(γ+1) for γ = 2^(1/16).
const QuantileRelativeError = 0.02165746232622625

func quantileCode(v float64) uint32 {
	if v == 0 {
		return quantileZeroCode
	}
	k := quantileK(math.Abs(v))
	if v > 0 {
		return uint32(quantileZeroCode + 1 + k + quantileKOffset)
	}
	return uint32(quantileZeroCode - 1 - k - quantileKOffset)
}

func quantileValue(code uint32) float64 {
	if code == quantileZeroCode {
		return 0
	}
	sign := 1.0
	k := int(code) - quantileZeroCode - 1 - quantileKOffset
	if code < quantileZeroCode {
		sign = -1
		k = quantileZeroCode - 1 - quantileKOffset - int(code)
	}
	gamma := math.Exp2(1.0 / quantileSubBuckets)
	return sign * 2 * math.Exp2(float64(k)/quantileSubBuckets) / (1 + gamma)
}

// Result returns the series, sorted as Tempo sorts them (by number of
// labels, then label by label by key and value), after topk/bottomk. With
// ErrTooManySeries it returns a partial result: the series it kept, at
// most MaxSeries. resolve, when not nil, gives the span ID of an exemplar
// observed without one (from its Ref); an exemplar it cannot resolve keeps
// a zero span ID.
func (m *MetricsEval) Result(resolve func(traceID [16]byte, ref uint64) ([8]byte, bool)) ([]MetricSeries, error) {
	if m.overflow {
		return nil, fmt.Errorf("%w: quantile_over_time needs more than %d histogram buckets; use a longer step, a shorter range or fewer series",
			ErrTooManyBuckets, MaxQuantileBuckets)
	}
	var out []MetricSeries
	if m.cmp != nil {
		out = m.cmp.result(resolve)
	} else {
		out = m.seriesResult(resolve)
	}
	if m.q.TopK > 0 || m.q.BottomK > 0 {
		out = m.secondStage(out)
	}
	sortSeries(out)
	if len(out) > m.maxSeries {
		out = out[:m.maxSeries]
		m.truncated = true
	}
	if m.truncated {
		return out, &limitError{kind: ErrTooManySeries, msg: fmt.Sprintf("Response exceeds maximum series limit of %d, a partial response is returned. Warning: the accuracy of each individual value is not guaranteed.", m.maxSeries)}
	}
	return out, nil
}

// seriesResult builds the output of the functions other than compare.
func (m *MetricsEval) seriesResult(resolve func([16]byte, uint64) ([8]byte, bool)) []MetricSeries {
	q := m.q
	picked := m.pickExemplars(resolve)
	var quantiles [][][]float64 // series → step → value per quantile
	if q.Func == MetricsQuantileOverTime {
		quantiles = m.quantileValues()
	}
	var out []MetricSeries
	for si, s := range m.series {
		labels := m.groupLabels(s.group)
		switch q.Func {
		case MetricsQuantileOverTime:
			first := len(out)
			for qi, p := range q.Quantiles {
				ms := MetricSeries{Labels: append(slices.Clip(labels), Label{Key: "p", Value: FloatValue(p)})}
				ms.Samples = make([]MetricSample, m.n)
				for i := range m.n {
					v := 0.0
					if quantiles[si][i] != nil {
						v = quantiles[si][i][qi]
					}
					ms.Samples[i] = MetricSample{TimestampMs: m.timestampMs(i), Value: v}
				}
				out = append(out, ms)
			}
			// An exemplar goes to the quantile whose value in its step is
			// closest to the exemplar's, as Tempo assigns them.
			for _, e := range picked[si] {
				iv := m.exemplarInterval(e.start)
				best, bestDiff := 0, math.Inf(1)
				for qi := range q.Quantiles {
					if d := math.Abs(out[first+qi].Samples[iv].Value - e.Value); d < bestDiff {
						best, bestDiff = qi, d
					}
				}
				out[first+best].Exemplars = append(out[first+best].Exemplars, e.MetricExemplar)
			}
			continue
		case MetricsHistogramOverTime:
			labels = append(labels, Label{Key: "__bucket", Value: FloatValue(s.bucket)})
		}
		if len(q.By) == 0 && q.Func != MetricsHistogramOverTime {
			labels = []Label{{Key: "__name__", Value: StringValue(q.Func.String())}}
		}
		ms := MetricSeries{Labels: labels}
		values := make([]float64, m.n) // NaN: no sample
		for i := range m.n {
			v := s.vals[i]
			switch q.Func {
			case MetricsRate:
				v /= m.stepSecs
			case MetricsAvgOverTime:
				v = math.NaN()
				if s.counts[i] > 0 {
					v = s.vals[i] / s.counts[i]
				}
			}
			values[i] = v
			if v == v {
				ms.Samples = append(ms.Samples, MetricSample{TimestampMs: m.timestampMs(i), Value: v})
			}
		}
		if len(ms.Samples) == 0 {
			continue
		}
		valueIsSample := !q.Func.takesField() || q.Func == MetricsHistogramOverTime
		for _, e := range picked[si] {
			if valueIsSample {
				e.Value = values[m.exemplarInterval(e.start)]
			}
			ms.Exemplars = append(ms.Exemplars, e.MetricExemplar)
		}
		out = append(out, ms)
	}
	return out
}

// exemplarInterval is the step of an exemplar's span.
func (m *MetricsEval) exemplarInterval(start uint64) int {
	return max(0, m.interval(start))
}

// groupLabels labels a series by its by() values as Tempo does: absent
// values are left out, and when all are absent the first field is nil.
func (m *MetricsEval) groupLabels(group []Value) []Label {
	var labels []Label
	for i, f := range m.q.By {
		if group[i].Type != TypeNil {
			labels = append(labels, Label{Key: f.String(), Value: group[i]})
		}
	}
	if len(labels) == 0 && len(m.q.By) > 0 {
		labels = []Label{{Key: m.q.By[0].String(), Value: Value{}}}
	}
	return labels
}

// addQuantile counts c values of bucket code in h, within
// MaxQuantileBuckets.
func (m *MetricsEval) addQuantile(h *quantileHist, code int32, c uint32) {
	if m.overflow {
		return
	}
	if m.buckets += h.add(code, c); m.buckets > MaxQuantileBuckets {
		m.overflow = true
	}
}

// quantileValues computes each quantile of each series' non-empty steps
// from their histograms.
func (m *MetricsEval) quantileValues() [][][]float64 {
	out := make([][][]float64, len(m.series))
	for i, s := range m.series {
		out[i] = make([][]float64, m.n)
		for iv := range s.hists {
			vals := make([]float64, len(m.q.Quantiles))
			if s.hists[iv].quantiles(m.q.Quantiles, vals) {
				out[i][iv] = vals
			}
		}
	}
	return out
}

// pickedExemplar is an exemplar with its span's start in nanoseconds.
type pickedExemplar struct {
	MetricExemplar
	start uint64
}

// pickExemplars spreads the Exemplars budget over the series and their
// slots (see spreadExemplars).
func (m *MetricsEval) pickExemplars(resolve func([16]byte, uint64) ([8]byte, bool)) [][]pickedExemplar {
	out := make([][]pickedExemplar, len(m.series))
	if m.slots == 0 {
		return out
	}
	// The budget goes round the series in the order of their keys, not of
	// their first span, so that merged evaluations choose alike.
	order := make([]int, len(m.series))
	keys := make([]string, len(m.series))
	for i, s := range m.series {
		order[i], keys[i] = i, string(m.seriesKey(nil, s))
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
	filled := make([][]*exemplarSlot, len(m.series))
	for k, i := range order {
		s := m.series[i]
		for j := range s.slots {
			if s.slots[j].set {
				filled[k] = append(filled[k], &s.slots[j])
			}
		}
	}
	for k, chosen := range spreadExemplars(filled, m.exemplars) {
		for _, j := range chosen {
			out[order[k]] = append(out[order[k]], exemplarOf(filled[k][j], resolve))
		}
	}
	return out
}

// seriesKey appends to b the key m.index files series s under.
func (m *MetricsEval) seriesKey(b []byte, s *evalSeries) []byte {
	for _, v := range s.group {
		b = appendValueKey(b, v)
	}
	if m.q.Func == MetricsHistogramOverTime {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.bucket))
	}
	return b
}

func exemplarOf(sl *exemplarSlot, resolve func([16]byte, uint64) ([8]byte, bool)) pickedExemplar {
	e := pickedExemplar{start: sl.start, MetricExemplar: MetricExemplar{
		TraceID: sl.traceID, SpanID: sl.spanID, Value: sl.value, TimestampMs: int64(sl.start / 1e6),
	}}
	if e.SpanID == ([8]byte{}) && resolve != nil {
		if id, ok := resolve(sl.traceID, sl.ref); ok {
			e.SpanID = id
		}
	}
	return e
}

// spreadExemplars chooses at most budget of the candidates, given per
// series in time order, and returns the chosen indexes per series: the
// budget goes round robin over the series (every series gets one before
// any gets two), and each series' share is spread evenly over its
// candidates, hence over time.
func spreadExemplars[T any](filled [][]T, budget int) [][]int {
	quota := make([]int, len(filled))
	for more := true; more && budget > 0; {
		more = false
		for i := range filled {
			if budget == 0 {
				break
			}
			if quota[i] < len(filled[i]) {
				quota[i]++
				budget--
				more = true
			}
		}
	}
	out := make([][]int, len(filled))
	for i, c := range filled {
		for j := range quota[i] {
			out[i] = append(out[i], (2*j+1)*len(c)/(2*quota[i]))
		}
	}
	return out
}

// secondStage applies topk or bottomk per step, as Tempo does: in each
// step the k series with the largest (smallest) values keep that step's
// sample; a series left with no sample is dropped. Ties go to the series
// that sorts first.
func (m *MetricsEval) secondStage(in []MetricSeries) []MetricSeries {
	k, top := m.q.TopK, true
	if m.q.BottomK > 0 {
		k, top = m.q.BottomK, false
	}
	if len(in) <= k {
		return in
	}
	sortSeries(in)
	type point struct {
		series int
		value  float64
	}
	byTime := map[int64][]point{}
	for si, s := range in {
		for _, smp := range s.Samples {
			if smp.Value == smp.Value {
				byTime[smp.TimestampMs] = append(byTime[smp.TimestampMs], point{si, smp.Value})
			}
		}
	}
	keep := make([]map[int64]bool, len(in))
	for ts, pts := range byTime {
		slices.SortStableFunc(pts, func(a, b point) int {
			if a.value == b.value {
				return a.series - b.series
			}
			if (a.value > b.value) == top {
				return -1
			}
			return 1
		})
		for _, p := range pts[:min(k, len(pts))] {
			if keep[p.series] == nil {
				keep[p.series] = map[int64]bool{}
			}
			keep[p.series][ts] = true
		}
	}
	var out []MetricSeries
	for si, s := range in {
		if keep[si] == nil {
			continue
		}
		var samples []MetricSample
		for _, smp := range s.Samples {
			if keep[si][smp.TimestampMs] {
				samples = append(samples, smp)
			}
		}
		s.Samples = samples
		out = append(out, s)
	}
	return out
}

// sortSeries orders series as Tempo's frontend does: fewer labels first,
// then label by label by key, then by value as protobuf text renders it.
func sortSeries(ss []MetricSeries) {
	slices.SortStableFunc(ss, func(a, b MetricSeries) int {
		if len(a.Labels) != len(b.Labels) {
			return len(a.Labels) - len(b.Labels)
		}
		for i := range a.Labels {
			if c := strings.Compare(a.Labels[i].Key, b.Labels[i].Key); c != 0 {
				return c
			}
			if c := strings.Compare(labelSortText(a.Labels[i].Value), labelSortText(b.Labels[i].Value)); c != 0 {
				return c
			}
		}
		return 0
	})
	for i := range ss {
		slices.SortStableFunc(ss[i].Exemplars, func(a, b MetricExemplar) int {
			return int(max(-1, min(1, a.TimestampMs-b.TimestampMs)))
		})
	}
}

// labelSortText renders a label value as the protobuf text of its AnyValue,
// which is what Tempo's sort compares.
func labelSortText(v Value) string {
	switch v.Type {
	case TypeInt:
		return "int_value:" + strconv.FormatInt(v.I, 10)
	case TypeFloat:
		return "double_value:" + strconv.FormatFloat(v.F, 'g', -1, 64)
	case TypeBool:
		return "bool_value:" + strconv.FormatBool(v.B)
	case TypeString:
		return "string_value:" + strconv.Quote(v.S)
	}
	return "string_value:" + strconv.Quote(v.Text())
}

// InstantSeries is one series of an instant query's result.
type InstantSeries struct {
	Labels []Label
	Value  float64
}

// InstantResult reduces the result of an instant evaluation (one step) to
// one value per series, as Tempo's frontend does: the first sample's value;
// series without samples are left out.
func InstantResult(series []MetricSeries) []InstantSeries {
	out := make([]InstantSeries, 0, len(series))
	for _, s := range series {
		if len(s.Samples) > 0 {
			out = append(out, InstantSeries{Labels: s.Labels, Value: s.Samples[0].Value})
		}
	}
	return out
}

// ObserveSpan is Observe for a span the caller holds whole: it takes the
// start, the value of the query's field and the by() values from s, and
// from info the trace-level intrinsics (info may be nil when the query
// uses none). compare() queries must use it, as they look at all of a
// span's attributes and evaluate the selection filter on the span.
func (m *MetricsEval) ObserveSpan(traceID [16]byte, s *Span, info *TraceInfo) {
	if m.cmp != nil {
		m.cmp.observe(traceID, s, info)
		return
	}
	o := &m.scratch
	o.StartUnixNano, o.TraceID, o.SpanID, o.Ref, o.Present = s.StartUnixNano, traceID, s.SpanID, 0, nil
	o.Value, o.HasValue = 0, false
	if m.q.Func.takesField() {
		if v, ok := FieldValue(m.q.Attr, s, traceInfoOrEmpty(info)); ok {
			o.Value, o.HasValue = ObservedValue(v)
		}
	}
	for i, f := range m.q.By {
		v, ok := FieldValue(f, s, traceInfoOrEmpty(info))
		if !ok {
			v = Value{}
		}
		o.Group[i] = v
	}
	m.Observe(o)
}

var emptyTraceInfo TraceInfo

func traceInfoOrEmpty(info *TraceInfo) *TraceInfo {
	if info == nil {
		return &emptyTraceInfo
	}
	return info
}

// ObservedValue is the number a metrics function aggregates for v, as an
// Observation's Value carries it: ints and floats as they are, durations
// in seconds; ok is false for the other types.
func ObservedValue(v Value) (float64, bool) {
	switch v.Type {
	case TypeInt:
		return float64(v.I), true
	case TypeFloat:
		return v.F, true
	case TypeDuration:
		return float64(v.I) / 1e9, true
	}
	return 0, false
}

// NeedsSpan reports whether the evaluation of q needs whole spans
// (ObserveSpan) rather than Observations: compare() does.
func (q *MetricsQuery) NeedsSpan() bool { return q.Func == MetricsCompare }

// Merge adds the observations of o to m, as if m had observed them too: a
// trace store that scans disjoint parts of its spans in parallel feeds one
// MetricsEval per part and merges them before Result. o must evaluate the
// same query with the same options, and is not usable afterwards. compare()
// queries, which observe whole spans, do not merge.
func (m *MetricsEval) Merge(o *MetricsEval) error {
	if m.cmp != nil || o.cmp != nil {
		return errors.New("compare() evaluations do not merge")
	}
	if o.q != m.q || o.start != m.start || o.end != m.end || o.step != m.step || o.slots != m.slots {
		return errors.New("merging evaluations of different queries or ranges")
	}
	m.truncated = m.truncated || o.truncated
	m.overflow = m.overflow || o.overflow
	byValue := m.q.Func.takesField() && m.q.Func != MetricsHistogramOverTime
	for _, os := range o.series {
		key := m.seriesKey(m.key[:0], os)
		m.key = key
		si, ok := m.index[string(key)]
		if !ok {
			if len(m.series) >= m.maxGroups {
				m.truncated = true
				continue
			}
			m.index[string(key)] = int32(len(m.series))
			m.series = append(m.series, os)
			for _, h := range os.hists {
				m.buckets += h.size()
			}
			m.overflow = m.overflow || m.buckets > MaxQuantileBuckets
			continue
		}
		s := m.series[si]
		for iv := range os.hists {
			os.hists[iv].each(func(code int32, c uint32) bool {
				m.addQuantile(&s.hists[iv], code, c)
				return true
			})
		}
		for i, v := range os.vals {
			switch m.q.Func {
			case MetricsSumOverTime, MetricsMinOverTime, MetricsMaxOverTime:
				if v == v { // NaN: the step has no value there
					s.vals[i] = combine(m.q.Func, s.vals[i], v)
				}
			default: // counts, and avg_over_time's sums
				s.vals[i] += v
			}
		}
		for i, c := range os.counts {
			s.counts[i] += c
		}
		for j, sl := range os.slots {
			if sl.set && beats(sl, s.slots[j], byValue) {
				s.slots[j] = sl
			}
		}
	}
	return nil
}

// beats reports whether exemplar candidate a wins slot b, by the rule
// offerExemplar applies.
func beats(a, b exemplarSlot, byValue bool) bool {
	if !b.set {
		return true
	}
	if byValue && a.value != b.value {
		return a.value > b.value
	}
	return a.hash > b.hash
}

// combine folds value v into a step's sum, minimum or maximum c, which is
// NaN while the step has no value.
func combine(f MetricsFunc, c, v float64) float64 {
	switch {
	case c != c:
		return v
	case f == MetricsSumOverTime:
		return c + v
	case f == MetricsMinOverTime:
		return min(c, v)
	}
	return max(c, v)
}
