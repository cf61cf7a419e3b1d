package traceql

import (
	"context"
	"slices"
	"strings"
)

// Attr is one attribute of a span or resource.
type Attr struct {
	Key   string
	Value Value
}

// Span is the view of a span the evaluator needs.
type Span struct {
	SpanID        [8]byte
	ParentSpanID  [8]byte
	Name          string
	StatusCode    int64
	StatusMessage string
	Kind          int64
	StartUnixNano uint64
	EndUnixNano   uint64
	Attrs         []Attr
	Resource      []Attr // may be shared between the spans of one resource
	// Events are the span's events; nil when the storage read did not
	// load them (see NeedsEvents).
	Events []Event
	// The span's nested-set numbers (see ComputeNestedSets); zero until
	// computed.
	NestedSetLeft, NestedSetRight, NestedSetParent int64
}

// Duration is the span's duration in nanoseconds (0 if the end precedes the start).
func (s *Span) Duration() int64 {
	if s.EndUnixNano < s.StartUnixNano {
		return 0
	}
	return int64(s.EndUnixNano - s.StartUnixNano)
}

// ServiceName is the resource's service.name, or "" when absent.
func (s *Span) ServiceName() string {
	for _, a := range s.Resource {
		if a.Key == "service.name" && a.Value.Type == TypeString {
			return a.Value.S
		}
	}
	return ""
}

// TraceInfo holds the trace-level intrinsics.
type TraceInfo struct {
	TraceID         [16]byte // for trace:id; zero when the caller does not know it
	RootName        string
	RootServiceName string
	StartUnixNano   uint64
	EndUnixNano     uint64
}

// Duration is the trace's duration: last end minus first start, in nanoseconds.
func (t TraceInfo) Duration() int64 {
	if t.EndUnixNano < t.StartUnixNano {
		return 0
	}
	return int64(t.EndUnixNano - t.StartUnixNano)
}

// Trace is every stored span of one trace.
type Trace struct {
	Info  TraceInfo
	Spans []Span
}

// RootSpanNotReceived is the root name Tempo reports when a trace's root span is missing.
const RootSpanNotReceived = "<root span not yet received>"

// ComputeInfo fills Info from the spans: the root is the span without a
// parent (the earliest if several), start and end the extremes.
func (t *Trace) ComputeInfo() {
	info := TraceInfo{RootName: RootSpanNotReceived}
	root := -1
	for i := range t.Spans {
		s := &t.Spans[i]
		if i == 0 || s.StartUnixNano < info.StartUnixNano {
			info.StartUnixNano = s.StartUnixNano
		}
		if s.EndUnixNano > info.EndUnixNano {
			info.EndUnixNano = s.EndUnixNano
		}
		if s.ParentSpanID == ([8]byte{}) && (root < 0 || s.StartUnixNano < t.Spans[root].StartUnixNano) {
			root = i
		}
	}
	if root >= 0 {
		info.RootName = t.Spans[root].Name
		info.RootServiceName = t.Spans[root].ServiceName()
	}
	t.Info = info
}

type tri int8

const (
	triFalse tri = iota
	triTrue
	triUnknown
)

func triOf(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

// Eval returns the indexes (ascending) of the spans of tr in the spanset e
// produces. An empty result means the trace does not match. It stops with
// ctx's error when ctx ends (a query timeout), checking between operators
// and within long passes over the trace.
//
// When e refers to a nested-set field Eval first computes tr's nested sets
// (ComputeNestedSets), so tr must then hold the whole trace for their
// values to be right, and must not be read concurrently. Comparisons that
// whether a span is a root decides (`nestedSetParent < 0`, see SpanLocal)
// are right on any part of a trace.
func Eval(ctx context.Context, e Expr, tr *Trace) ([]int, error) {
	prepare(e, tr)
	return eval(ctx, e, tr)
}

// prepare computes what evaluating e on tr needs beyond the spans.
func prepare(e Expr, tr *Trace) {
	if needsNestedSets(e) {
		tr.ComputeNestedSets()
	}
}

func eval(ctx context.Context, e Expr, tr *Trace) ([]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch e := e.(type) {
	case *Filter:
		var out []int
		for i := range tr.Spans {
			if i%checkEvery == checkEvery-1 && ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if e.Cond == nil || evalCond(e.Cond, &tr.Spans[i], &tr.Info) == triTrue {
				out = append(out, i)
			}
		}
		return out, nil
	case *SpansetOp:
		l, err := eval(ctx, e.L, tr)
		if err != nil || (len(l) == 0 && e.Op != OpOr && !e.Op.Negated()) {
			return nil, err
		}
		r, err := eval(ctx, e.R, tr)
		if err != nil {
			return nil, err
		}
		switch e.Op {
		case OpAnd:
			if len(r) == 0 {
				return nil, nil
			}
			return union(l, r), nil
		case OpOr:
			return union(l, r), nil
		default:
			return relate(e.Op, tr, l, r), nil
		}
	case *Pipeline:
		sets, err := evalSpansets(ctx, e, tr)
		if err != nil {
			return nil, err
		}
		var out []int
		for _, set := range sets {
			out = append(out, set.Spans...)
		}
		slices.Sort(out)
		return slices.Compact(out), nil
	}
	return nil, nil
}

// checkEvery is how many spans a pass handles between checks of ctx.
const checkEvery = 4096

func union(a, b []int) []int {
	out := append(append(make([]int, 0, len(a)+len(b)), a...), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

func structural(op SpansetOperator, tr *Trace, l, r []int) []int {
	if len(r) == 0 {
		return nil
	}
	byID := make(map[[8]byte]int, len(tr.Spans))
	for i := range tr.Spans {
		byID[tr.Spans[i].SpanID] = i
	}
	parent := func(i int) int {
		p := tr.Spans[i].ParentSpanID
		if p == ([8]byte{}) {
			return -1
		}
		j, ok := byID[p]
		if !ok || j == i {
			return -1
		}
		return j
	}
	inL := make([]bool, len(tr.Spans))
	for _, i := range l {
		inL[i] = true
	}
	var out []int
	switch op {
	case OpChild:
		for _, i := range r {
			if p := parent(i); p >= 0 && inL[p] {
				out = append(out, i)
			}
		}
	case OpDescendant:
		// underL[i]: some ancestor of i is in L, computed once per span
		// (memoised walk up, so a deep trace costs O(spans), not
		// O(spans × depth)); a corrupt trace with a parent cycle cannot loop.
		const unknown, no, yes = 0, 1, 2
		underL := make([]byte, len(tr.Spans))
		var path []int
		for _, i := range r {
			path = path[:0]
			verdict := byte(no)
			for p, n := parent(i), 0; p >= 0 && n < len(tr.Spans); p, n = parent(p), n+1 {
				if inL[p] || underL[p] == yes {
					verdict = yes
					break
				}
				if underL[p] == no {
					break
				}
				path = append(path, p)
			}
			// Every span on the path shares the verdict (they have the same
			// ancestors above them, and none of them is in L).
			for _, p := range path {
				underL[p] = verdict
			}
			if verdict == yes {
				out = append(out, i)
			}
		}
	case OpParent, OpAncestor:
		marked := make([]bool, len(tr.Spans))
		for _, i := range l {
			for p, n := parent(i), 0; p >= 0 && n < len(tr.Spans); p, n = parent(p), n+1 {
				marked[p] = true
				if op == OpParent {
					break
				}
			}
		}
		for _, i := range r {
			if marked[i] {
				out = append(out, i)
			}
		}
	case OpSibling:
		parents := map[int]int{} // parent index -> number of L children
		for _, i := range l {
			if p := parent(i); p >= 0 {
				parents[p]++
			}
		}
		for _, i := range r {
			p := parent(i)
			if p < 0 {
				continue
			}
			n := parents[p]
			if inL[i] {
				n-- // a span is not its own sibling
			}
			if n > 0 {
				out = append(out, i)
			}
		}
	}
	return out
}

// PossibleInSpans is a conservative pre-filter over some of a trace's spans
// (a stored batch): it is false only if no trace containing these spans can
// match because of them, i.e. no spanset filter of e can match any of the
// spans. Trace-level intrinsics, event fields (a batch's spans may lack
// their events) and nested-set comparisons that need the whole trace count
// as unknown.
func PossibleInSpans(e Expr, spans []Span) bool {
	switch e := e.(type) {
	case *Filter:
		if e.Cond == nil {
			return len(spans) > 0
		}
		for i := range spans {
			if evalCondIn(e.Cond, &spans[i], nil, false) != triFalse {
				return true
			}
		}
		return false
	case *SpansetOp:
		return PossibleInSpans(e.L, spans) || PossibleInSpans(e.R, spans)
	case *Pipeline:
		return PossibleInSpans(e.Input, spans)
	}
	return false
}

// PossibleForTrace is a conservative pre-filter on trace-level intrinsics
// alone: it is false only if the trace cannot match whatever its spans are.
func PossibleForTrace(e Expr, info *TraceInfo) bool {
	switch e := e.(type) {
	case *Filter:
		return e.Cond == nil || evalCond(e.Cond, nil, info) != triFalse
	case *SpansetOp:
		l, r := PossibleForTrace(e.L, info), PossibleForTrace(e.R, info)
		switch {
		case e.Op == OpOr:
			return l || r
		case e.Op.Negated():
			return r // an empty left side keeps every right-side span
		}
		return l && r
	case *Pipeline:
		return PossibleForTrace(e.Input, info)
	}
	return false
}

// NeedsTraceInfo reports whether e refers to trace-level intrinsics.
func NeedsTraceInfo(e Expr) bool {
	found := false
	walkCompares(e, func(c *Compare) {
		if c.Field.Intrinsic.TraceLevel() {
			found = true
		}
	})
	return found
}

// Fields lists the fields e's conditions refer to, without duplicates, in
// order of appearance.
func Fields(e Expr) []Field {
	var out []Field
	walkCompares(e, func(c *Compare) {
		if !slices.Contains(out, c.Field) {
			out = append(out, c.Field)
		}
	})
	return out
}

func walkCompares(e Expr, f func(*Compare)) {
	var walkCond func(Cond)
	walkCond = func(c Cond) {
		switch c := c.(type) {
		case *Logical:
			walkCond(c.L)
			walkCond(c.R)
		case *Compare:
			f(c)
		}
	}
	switch e := e.(type) {
	case *Filter:
		if e.Cond != nil {
			walkCond(e.Cond)
		}
	case *SpansetOp:
		walkCompares(e.L, f)
		walkCompares(e.R, f)
	case *Pipeline:
		walkCompares(e.Input, f)
		for _, st := range e.Stages {
			if fl, ok := st.(*Filter); ok {
				walkCompares(fl, f)
			}
		}
	}
}

// evalCond evaluates c on a span of a whole trace; a nil span makes
// span-level fields unknown and a nil info makes trace-level fields unknown.
func evalCond(c Cond, s *Span, info *TraceInfo) tri { return evalCondIn(c, s, info, true) }

// evalCondIn evaluates c; whole says s belongs to a whole trace, with its
// events and (when the query needs them) nested sets. Without it, event
// fields and nested-set comparisons that need the rest of the trace are
// unknown.
func evalCondIn(c Cond, s *Span, info *TraceInfo, whole bool) tri {
	switch c := c.(type) {
	case BoolLiteral:
		return triOf(bool(c))
	case *Logical:
		l := evalCondIn(c.L, s, info, whole)
		if c.And {
			if l == triFalse {
				return triFalse
			}
			r := evalCondIn(c.R, s, info, whole)
			if r == triFalse {
				return triFalse
			}
			if l == triTrue && r == triTrue {
				return triTrue
			}
			return triUnknown
		}
		if l == triTrue {
			return triTrue
		}
		r := evalCondIn(c.R, s, info, whole)
		if r == triTrue {
			return triTrue
		}
		if l == triFalse && r == triFalse {
			return triFalse
		}
		return triUnknown
	case *Compare:
		if c.Field.Intrinsic.TraceLevel() {
			if info == nil {
				return triUnknown
			}
		} else if s == nil {
			return triUnknown
		}
		switch f := c.Field; {
		case c.byRoot:
			parent := int64(1) // any value a non-root span can have
			if s.isRoot() {
				parent = -1
			}
			return triOf(c.match(IntValue(parent), true))
		case !whole && (isNestedSet(f.Intrinsic) || isEventField(f)):
			return triUnknown
		case isEventField(f):
			return triOf(c.matchEvents(s))
		}
		v, ok := FieldValue(c.Field, s, info)
		return triOf(c.match(v, ok))
	}
	return triFalse
}

// FieldValue returns the value of f for span s in a trace with info; ok is
// false when an attribute is absent.
func FieldValue(f Field, s *Span, info *TraceInfo) (Value, bool) {
	switch f.Intrinsic {
	case IntrinsicName:
		return StringValue(s.Name), true
	case IntrinsicStatus:
		return Value{Type: TypeStatus, I: s.StatusCode}, true
	case IntrinsicStatusMessage:
		return StringValue(s.StatusMessage), true
	case IntrinsicKind:
		return Value{Type: TypeKind, I: s.Kind}, true
	case IntrinsicDuration:
		return Value{Type: TypeDuration, I: s.Duration()}, true
	case IntrinsicTraceDuration:
		return Value{Type: TypeDuration, I: info.Duration()}, true
	case IntrinsicRootName:
		return StringValue(info.RootName), true
	case IntrinsicRootServiceName:
		return StringValue(info.RootServiceName), true
	case IntrinsicNestedSetLeft:
		return IntValue(s.NestedSetLeft), true
	case IntrinsicNestedSetRight:
		return IntValue(s.NestedSetRight), true
	case IntrinsicNestedSetParent:
		return IntValue(s.NestedSetParent), true
	case IntrinsicSpanID:
		return idValue(s.SpanID[:]), true
	case IntrinsicParentID:
		return idValue(s.ParentSpanID[:]), true
	case IntrinsicTraceID:
		return idValue(info.TraceID[:]), true
	case IntrinsicEventName, IntrinsicEventTimeSinceStart:
		return firstEventValue(f, s)
	}
	if f.Scope == ScopeEvent {
		return firstEventValue(f, s)
	}
	if f.Scope != ScopeResource {
		if v, ok := lookup(s.Attrs, f.Name); ok {
			return v, true
		}
	}
	if f.Scope != ScopeSpan {
		if v, ok := lookup(s.Resource, f.Name); ok {
			return v, true
		}
	}
	return Value{}, false
}

func lookup(attrs []Attr, key string) (Value, bool) {
	for i := range attrs {
		if attrs[i].Key == key {
			return attrs[i].Value, true
		}
	}
	return Value{}, false
}

// Match reports whether a field whose value is v (present false: the
// attribute is absent) satisfies the comparison. Storage that evaluates
// conditions column by column calls it once per distinct value.
func (c *Compare) Match(v Value, present bool) bool { return c.match(v, present) }

func (c *Compare) match(v Value, present bool) bool {
	lit := c.Value
	if lit.Type == TypeNil {
		return present == (c.Op == CmpNeq)
	}
	if !present {
		return false
	}
	switch c.Op {
	case CmpRe:
		return v.Type == TypeString && c.re.MatchString(v.S)
	case CmpNre:
		return v.Type == TypeString && !c.re.MatchString(v.S)
	}
	cmp, ok := compareValues(v, lit)
	if !ok {
		return false
	}
	switch c.Op {
	case CmpEq:
		return cmp == 0
	case CmpNeq:
		return cmp != 0
	case CmpGt:
		return cmp > 0
	case CmpGte:
		return cmp >= 0
	case CmpLt:
		return cmp < 0
	case CmpLte:
		return cmp <= 0
	}
	return false
}

// compareValues orders a and b; ok is false when their types don't compare.
func compareValues(a, b Value) (int, bool) {
	num := func(v Value) (float64, bool) {
		switch v.Type {
		case TypeInt:
			return float64(v.I), true
		case TypeFloat:
			return v.F, true
		}
		return 0, false
	}
	switch {
	case a.Type == TypeInt && b.Type == TypeInt,
		a.Type == TypeDuration && b.Type == TypeDuration,
		a.Type == TypeStatus && b.Type == TypeStatus,
		a.Type == TypeKind && b.Type == TypeKind:
		return cmpOrdered(a.I, b.I), true
	case a.Type == TypeString && b.Type == TypeString:
		return strings.Compare(a.S, b.S), true
	case a.Type == TypeBool && b.Type == TypeBool:
		if a.B == b.B {
			return 0, true
		}
		return 1, true
	}
	x, ok1 := num(a)
	y, ok2 := num(b)
	if ok1 && ok2 {
		return cmpOrdered(x, y), true
	}
	return 0, false
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
