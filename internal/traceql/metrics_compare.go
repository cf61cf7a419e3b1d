package traceql

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// compare() splits the query's spans into the selection (spans that match
// the compare filter and, when the query gives a window, start in
// (Start, End]) and the baseline (the others), and counts, per step, every
// value of every attribute on each side: the span and resource attributes
// (as span.<key> and resource.<key>) and the intrinsics name, status,
// statusMessage (when not empty) and kind. Its result, as Tempo's:
//
//	{__meta_type="baseline",  <attr>=<value>}  the TopN values of each attribute by count
//	{__meta_type="selection", <attr>=<value>}
//	{__meta_type="baseline_total",  <attr>=nil} every span with the attribute
//	{__meta_type="selection_total", <attr>=nil}
//
// with a sample for every step (0 when empty). Exemplars (Exemplars per
// side, spread over time) go to the *_total series of each attribute their
// span has, their value that series' count in their step. Tempo also
// makes a {__meta_error="__too_many_values__", <attr>=nil} series for an
// attribute with more than TopN values, but it has no samples and Tempo
// drops such series from its answer, so Lookout leaves it out.
//
// Memory: per side and attribute at most compareValueCap(TopN) values are
// counted (the first ones seen; later new values count only in the
// total), and over all at most maxCompareCells counters; beyond those the
// result is partial (ErrTooManySeries).

const maxCompareCells = 4 << 20

func compareValueCap(topN int) int { return min(10_000, max(1000, 10*topN)) }

var compareSideNames = [2]string{"baseline", "selection"}

type compareState struct {
	m            *MetricsEval
	sel          *Filter
	winStart     int64 // the selection's window (winStart, winEnd]; 0: none
	winEnd       int64
	valueCap     int
	cells        int
	sides        [2]compareSide
	attrsOfSpan  []int32
	intrinsicBuf [4]Attr
}

type compareSide struct {
	attrs map[compareKey]int32
	list  []*compareAttr
	slots []compareSlot
}

type compareKey struct {
	scope Scope // ScopeAny for intrinsics
	name  string
}

type compareAttr struct {
	label  string
	values map[Value]*compareValue
	total  []float64
}

type compareValue struct {
	value  Value
	counts []float64
}

type compareSlot struct {
	exemplarSlot
	attrs []int32
}

func newCompareState(m *MetricsEval) *compareState {
	c := &compareState{m: m, valueCap: compareValueCap(m.q.Compare.TopN)}
	c.sel, _ = m.q.Compare.Selection.(*Filter)
	if a := m.q.Compare; !a.Start.IsZero() && !a.End.IsZero() {
		c.winStart, c.winEnd = a.Start.UnixNano(), a.End.UnixNano()
	}
	for i := range c.sides {
		c.sides[i].attrs = make(map[compareKey]int32)
		if m.slots > 0 {
			c.sides[i].slots = make([]compareSlot, m.slots)
		}
	}
	return c
}

func (c *compareState) isSelection(s *Span, info *TraceInfo) bool {
	if c.winStart != 0 {
		st := int64(s.StartUnixNano)
		if st <= c.winStart || st > c.winEnd {
			return false
		}
	}
	return c.sel != nil && (c.sel.Cond == nil || evalCond(c.sel.Cond, s, info) == triTrue)
}

func (c *compareState) observe(traceID [16]byte, s *Span, info *TraceInfo) {
	iv := c.m.interval(s.StartUnixNano)
	if iv < 0 {
		return
	}
	side := 0
	if c.isSelection(s, info) {
		side = 1
	}
	sd := &c.sides[side]
	c.attrsOfSpan = c.attrsOfSpan[:0]
	in := c.intrinsicBuf[:0]
	in = append(in, Attr{"name", StringValue(s.Name)}, Attr{"status", Value{Type: TypeStatus, I: s.StatusCode}}, Attr{"kind", Value{Type: TypeKind, I: s.Kind}})
	if s.StatusMessage != "" {
		in = append(in, Attr{"statusMessage", StringValue(s.StatusMessage)})
	}
	for _, a := range in {
		c.add(sd, iv, ScopeAny, a)
	}
	for _, a := range s.Attrs {
		c.add(sd, iv, ScopeSpan, a)
	}
	for _, a := range s.Resource {
		c.add(sd, iv, ScopeResource, a)
	}
	if len(sd.slots) > 0 {
		slot := &sd.slots[iv*len(sd.slots)/c.m.n]
		h := traceHash(traceID)
		if !slot.set || h > slot.hash {
			slot.exemplarSlot = exemplarSlot{set: true, hash: h, value: math.NaN(), start: s.StartUnixNano, traceID: traceID, spanID: s.SpanID}
			slot.attrs = append(slot.attrs[:0], c.attrsOfSpan...)
		}
	}
}

// add counts one attribute value of a span in step iv.
func (c *compareState) add(sd *compareSide, iv int, scope Scope, a Attr) {
	v := a.Value
	if v.Type == TypeDuration || v.Type == TypeNil || (v.Type == TypeFloat && v.F != v.F) {
		return
	}
	id, ok := sd.attrs[compareKey{scope, a.Key}]
	if !ok {
		if c.cells+c.m.n > maxCompareCells {
			c.m.truncated = true
			return
		}
		c.cells += c.m.n
		f := Field{Scope: scope, Name: a.Key}
		if scope == ScopeAny {
			f = Field{Intrinsic: intrinsicNames[a.Key]}
		}
		id = int32(len(sd.list))
		sd.list = append(sd.list, &compareAttr{label: f.String(), values: map[Value]*compareValue{}, total: make([]float64, c.m.n)})
		sd.attrs[compareKey{scope, strings.Clone(a.Key)}] = id
	}
	attr := sd.list[id]
	attr.total[iv]++
	c.attrsOfSpan = append(c.attrsOfSpan, id)
	cv, ok := attr.values[v]
	if !ok {
		if len(attr.values) >= c.valueCap {
			return
		}
		if c.cells+c.m.n > maxCompareCells {
			c.m.truncated = true
			return
		}
		c.cells += c.m.n
		v.S = strings.Clone(v.S)
		cv = &compareValue{value: v, counts: make([]float64, c.m.n)}
		attr.values[v] = cv
	}
	cv.counts[iv]++
}

func (c *compareState) result(resolve func([16]byte, uint64) ([8]byte, bool)) []MetricSeries {
	m := c.m
	samples := func(counts []float64) []MetricSample {
		out := make([]MetricSample, len(counts))
		for i, v := range counts {
			out[i] = MetricSample{TimestampMs: m.timestampMs(i), Value: v}
		}
		return out
	}
	var out []MetricSeries
	for side := range c.sides {
		sd := &c.sides[side]
		typ := Label{Key: "__meta_type", Value: StringValue(compareSideNames[side])}
		totalTyp := Label{Key: "__meta_type", Value: StringValue(compareSideNames[side] + "_total")}
		totals := make([]int, len(sd.list)) // attr id → index in out
		for id, a := range sd.list {
			type ranked struct {
				cv  *compareValue
				sum float64
			}
			var rs []ranked
			for _, cv := range a.values {
				sum := 0.0
				for _, x := range cv.counts {
					sum += x
				}
				rs = append(rs, ranked{cv, sum})
			}
			slices.SortFunc(rs, func(x, y ranked) int {
				if x.sum != y.sum {
					return cmp.Compare(y.sum, x.sum)
				}
				return strings.Compare(labelSortText(x.cv.value), labelSortText(y.cv.value))
			})
			for _, r := range rs[:min(len(rs), m.q.Compare.TopN)] {
				out = append(out, MetricSeries{Labels: []Label{typ, {Key: a.label, Value: r.cv.value}}, Samples: samples(r.cv.counts)})
			}
			totals[id] = len(out)
			out = append(out, MetricSeries{Labels: []Label{totalTyp, {Key: a.label}}, Samples: samples(a.total)})
		}
		if len(sd.slots) == 0 {
			continue
		}
		var filled []*compareSlot
		for i := range sd.slots {
			if sd.slots[i].set {
				filled = append(filled, &sd.slots[i])
			}
		}
		for _, j := range spreadExemplars([][]*compareSlot{filled}, m.exemplars)[0] {
			sl := filled[j]
			e := exemplarOf(&sl.exemplarSlot, resolve)
			iv := m.exemplarInterval(e.start)
			for _, id := range sl.attrs {
				ts := &out[totals[id]]
				e.Value = ts.Samples[iv].Value
				ts.Exemplars = append(ts.Exemplars, e.MetricExemplar)
			}
		}
	}
	return out
}
