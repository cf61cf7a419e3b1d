package traceql

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Spanset is one spanset of a trace's result: indexes (ascending) into
// Trace.Spans and, after by(), the values that name its group.
type Spanset struct {
	Spans []int
	Group []GroupValue
}

// GroupValue is the value of one by() field shared by a spanset's spans;
// Present is false for the group of spans that lack the field.
type GroupValue struct {
	Field   Field
	Value   Value
	Present bool
}

// EvalSpansets returns the spansets e produces for tr; none means the trace
// does not match. A query without a pipeline produces at most one spanset,
// the spans Eval returns. Like Eval it stops with ctx's error, and it
// computes tr's nested sets when e refers to them, in its conditions or in
// the fields its stages read (select(), by()).
func EvalSpansets(ctx context.Context, e Expr, tr *Trace) ([]Spanset, error) {
	prepare(e, tr)
	return evalSpansets(ctx, e, tr)
}

func evalSpansets(ctx context.Context, e Expr, tr *Trace) ([]Spanset, error) {
	p, ok := e.(*Pipeline)
	if !ok {
		spans, err := eval(ctx, e, tr)
		if err != nil || len(spans) == 0 {
			return nil, err
		}
		return []Spanset{{Spans: spans}}, nil
	}
	spans, err := eval(ctx, p.Input, tr)
	if err != nil || len(spans) == 0 {
		return nil, err
	}
	sets := []Spanset{{Spans: spans}}
	for _, st := range p.Stages {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if sets = applyStage(st, sets, tr); len(sets) == 0 {
			return nil, nil
		}
	}
	return sets, nil
}

// SpansetExpr is the spanset expression at the head of e: a pipeline's
// input, else e itself. Every span of e's result is in its result, so a
// pre-filter valid for it is valid for e.
func SpansetExpr(e Expr) Expr {
	if p, ok := e.(*Pipeline); ok {
		return p.Input
	}
	return e
}

// SelectedFields lists the fields of e's select() stages, without
// duplicates, in order of appearance.
func SelectedFields(e Expr) []Field {
	p, ok := e.(*Pipeline)
	if !ok {
		return nil
	}
	var out []Field
	for _, st := range p.Stages {
		if s, ok := st.(*Select); ok {
			for _, f := range s.Fields {
				if !slices.Contains(out, f) {
					out = append(out, f)
				}
			}
		}
	}
	return out
}

func applyStage(st Stage, sets []Spanset, tr *Trace) []Spanset {
	switch st := st.(type) {
	case *Filter:
		var out []Spanset
		for _, set := range sets {
			var kept []int
			for _, i := range set.Spans {
				if st.Cond == nil || evalCond(st.Cond, &tr.Spans[i], &tr.Info) == triTrue {
					kept = append(kept, i)
				}
			}
			if len(kept) > 0 {
				out = append(out, Spanset{Spans: kept, Group: set.Group})
			}
		}
		return out
	case *AggregateFilter:
		var out []Spanset
		for _, set := range sets {
			if st.holds(set, tr) {
				out = append(out, set)
			}
		}
		return out
	case *GroupBy:
		var out []Spanset
		for _, set := range sets {
			out = append(out, st.split(set, tr)...)
		}
		return out
	case *Coalesce:
		var all []int
		for _, set := range sets {
			all = append(all, set.Spans...)
		}
		slices.Sort(all)
		return []Spanset{{Spans: slices.Compact(all)}}
	}
	return sets // select() changes what is reported, not the spansets
}

// split groups set's spans by the values of g's fields, the groups in the
// order of their first span.
func (g *GroupBy) split(set Spanset, tr *Trace) []Spanset {
	var out []Spanset
	index := map[string]int{}
	var key strings.Builder
	vals := make([]GroupValue, len(g.Fields))
	for _, i := range set.Spans {
		key.Reset()
		for j, f := range g.Fields {
			v, ok := FieldValue(f, &tr.Spans[i], &tr.Info)
			vals[j] = GroupValue{Field: f, Value: v, Present: ok}
			writeGroupKey(&key, v, ok)
		}
		n, seen := index[key.String()]
		if !seen {
			n = len(out)
			index[key.String()] = n
			out = append(out, Spanset{Group: append(slices.Clip(set.Group), vals...)})
		}
		out[n].Spans = append(out[n].Spans, i)
	}
	return out
}

// writeGroupKey appends an unambiguous encoding of a typed value (or its
// absence) to b.
func writeGroupKey(b *strings.Builder, v Value, present bool) {
	if !present {
		b.WriteString("-;")
		return
	}
	b.WriteString(strconv.Itoa(int(v.Type)))
	b.WriteByte(':')
	switch v.Type {
	case TypeString:
		b.WriteString(strconv.Itoa(len(v.S)))
		b.WriteByte(':')
		b.WriteString(v.S)
	case TypeFloat:
		b.WriteString(strconv.FormatUint(math.Float64bits(v.F), 16))
	case TypeBool:
		b.WriteString(strconv.FormatBool(v.B))
	default:
		b.WriteString(strconv.FormatInt(v.I, 10))
	}
	b.WriteByte(';')
}

// numeric returns v as a number when it is an int, a float or a duration.
func numeric(v Value) (float64, bool) {
	switch v.Type {
	case TypeInt, TypeDuration:
		return float64(v.I), true
	case TypeFloat:
		return v.F, true
	}
	return 0, false
}

// Aggregate computes the aggregate over set; ok is false when no span of
// the set has a numeric value of the field (count always has a value).
func (a *AggregateFilter) Aggregate(set Spanset, tr *Trace) (float64, bool) {
	if a.Func == AggCount {
		return float64(len(set.Spans)), true
	}
	var x float64
	n := 0
	for _, i := range set.Spans {
		v, ok := FieldValue(a.Field, &tr.Spans[i], &tr.Info)
		f, num := numeric(v)
		if !ok || !num {
			continue
		}
		switch {
		case a.Func == AggMin && (n == 0 || f < x), a.Func == AggMax && (n == 0 || f > x):
			x = f
		case a.Func == AggSum || a.Func == AggAvg:
			x += f
		}
		n++
	}
	if n == 0 {
		return 0, false
	}
	if a.Func == AggAvg {
		x /= float64(n)
	}
	return x, true
}

func (a *AggregateFilter) holds(set Spanset, tr *Trace) bool {
	x, ok := a.Aggregate(set, tr)
	if !ok {
		return false
	}
	lit, _ := numeric(a.Value)
	switch a.Op {
	case CmpEq:
		return x == lit
	case CmpNeq:
		return x != lit
	case CmpGt:
		return x > lit
	case CmpGte:
		return x >= lit
	case CmpLt:
		return x < lit
	case CmpLte:
		return x <= lit
	}
	return false
}
