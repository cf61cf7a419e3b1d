package traceql

// SpanLocal reports whether e is decided by single spans, on any part of a
// trace: a span matches whatever the trace's other spans are, so storage
// may evaluate e on each stored batch of spans alone and report a batch's
// matches without loading the rest of the trace. That holds for spanset
// filters joined by || whose conditions use
//   - no trace-level intrinsic (traceDuration, rootName, rootServiceName,
//     trace:id),
//   - no nested-set intrinsic, except comparisons of nestedSetParent that
//     whether the span is a root decides (`nestedSetParent < 0`, `= -1`,
//     `!= -1`, `>= 0`, `<= -1`; not `> 0`, since a span whose parent is
//     missing has 0; see rootDecided), which Eval evaluates from the
//     span's parent ID without the trace's nested sets.
//
// A pipeline never is span-local: its stages look at all of a trace's
// matching spans. SpanLocal is about trace structure only; event fields
// are on the span, so a query using them may be span-local, but storage
// that does not keep events with the spans it evaluates must also check
// NeedsEvents.
func SpanLocal(e Expr) bool {
	switch e := e.(type) {
	case *Filter:
		local := true
		walkCompares(e, func(c *Compare) {
			if c.Field.Intrinsic.TraceLevel() || isNestedSet(c.Field.Intrinsic) && !c.byRoot {
				local = false
			}
		})
		return local
	case *SpansetOp:
		return e.Op == OpOr && SpanLocal(e.L) && SpanLocal(e.R)
	}
	return false
}

// NeedsEvents reports whether e reads the spans' events (event.<attr>,
// event:name, event:timeSinceStart) in a condition or a pipeline stage:
// evaluating e, or reporting the fields it selects, needs spans whose
// Events are loaded.
func NeedsEvents(e Expr) bool {
	found := false
	walkFields(e, func(f Field) {
		if isEventField(f) {
			found = true
		}
	})
	return found
}

// needsNestedSets reports whether e refers to a nested-set intrinsic
// anywhere, so that Eval computes the trace's nested sets: for the
// conditions that need them and for the values select(), by() and a
// search's reported fields read. (The comparisons rootDecided covers
// would do without, but their fields are reported too.)
func needsNestedSets(e Expr) bool {
	found := false
	walkFields(e, func(f Field) {
		if isNestedSet(f.Intrinsic) {
			found = true
		}
	})
	return found
}

// walkFields calls f for every field e refers to: in the conditions of its
// filters and in its pipeline stages.
func walkFields(e Expr, f func(Field)) {
	walkCompares(e, func(c *Compare) { f(c.Field) })
	p, ok := e.(*Pipeline)
	if !ok {
		return
	}
	for _, st := range p.Stages {
		switch st := st.(type) {
		case *Select:
			for _, x := range st.Fields {
				f(x)
			}
		case *GroupBy:
			for _, x := range st.Fields {
				f(x)
			}
		case *AggregateFilter:
			if st.Func != AggCount {
				f(st.Field)
			}
		}
	}
}

// OnEvents reports whether f is read from a span's events (event.<attr>,
// event:name, event:timeSinceStart): storage must load them.
func (f Field) OnEvents() bool { return isEventField(f) }

// NestedSet reports whether f is a nested-set intrinsic, whose value needs
// the whole trace's nested sets (Trace.ComputeNestedSets).
func (f Field) NestedSet() bool { return isNestedSet(f.Intrinsic) }

// RootDecided reports whether c compares nestedSetParent in a way that
// whether the span is a root decides (see SpanLocal): storage that records
// only that may evaluate c, as Eval does, with -1 for a root span and any
// value of at least 0 for the others.
func (c *Compare) RootDecided() bool { return c.byRoot }
