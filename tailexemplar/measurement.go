package tailexemplar

import (
	"context"
	"math"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/trace"
)

// measurement is one kept measurement of a reservoir.
type measurement struct {
	attrs []attribute.KeyValue
	time  time.Time
	value exemplar.Value
	span  trace.SpanContext
	// seq is the measurement's place in the order of Offer calls, which
	// breaks ties between equal values (the later one ranks higher).
	seq uint64
	// valid is set once the place holds a measurement.
	valid bool
	// fresh is set while the measurement belongs to the current interval;
	// Collect clears it.
	fresh bool
}

func (m *measurement) store(ctx context.Context, t time.Time, v exemplar.Value, attrs []attribute.KeyValue, seq uint64) {
	m.attrs = attrs
	m.time = t
	m.value = v
	m.span = trace.SpanContextFromContext(ctx)
	m.seq = seq
	m.valid = true
	m.fresh = true
}

// exemplar writes m to dest. The IDs go to new arrays, as the SDK's
// reservoirs do: the exporter reads dest after Collect returns, and a caller
// may still hold the slices of an earlier Collect into the same dest.
func (m *measurement) exemplar(dest *exemplar.Exemplar) {
	dest.FilteredAttributes = m.attrs
	dest.Time = m.time
	dest.Value = m.value
	dest.TraceID, dest.SpanID = nil, nil
	if m.span.HasTraceID() {
		id := m.span.TraceID()
		dest.TraceID = id[:]
	}
	if m.span.HasSpanID() {
		id := m.span.SpanID()
		dest.SpanID = id[:]
	}
}

// atLeast reports whether v ranks at or above w by value. A reservoir serves
// one instrument, so both have its number type; int64 values are compared as
// integers, which float64 would round above 2^53. NaN ranks below every
// number (and at the level of another NaN).
func atLeast(v, w exemplar.Value) bool {
	if v.Type() == exemplar.Int64ValueType && w.Type() == exemplar.Int64ValueType {
		return v.Int64() >= w.Int64()
	}
	a, b := float(v), float(w)
	return a >= b || math.IsNaN(b)
}

// below reports whether m ranks below o: a smaller value, or an equal value
// offered earlier.
func (m *measurement) below(o *measurement) bool {
	if !atLeast(m.value, o.value) {
		return true
	}
	return atLeast(o.value, m.value) && m.seq < o.seq
}

// float returns v as a float64.
func float(v exemplar.Value) float64 {
	if v.Type() == exemplar.Int64ValueType {
		return float64(v.Int64())
	}
	return v.Float64()
}

// known reports whether v holds an int64 or a float64; a reservoir ignores
// a Value of any other type (the SDK never offers one).
func known(v exemplar.Value) bool {
	return v.Type() == exemplar.Int64ValueType || v.Type() == exemplar.Float64ValueType
}
