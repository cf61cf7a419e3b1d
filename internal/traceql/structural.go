package traceql

// structuralOps maps the tokens of the structural operators to them. At
// the spanset level !~ (tNre, a regex operator inside filters) is the
// not-sibling operator, as in Tempo's grammar.
var structuralOps = map[tokKind]SpansetOperator{
	tDesc: OpDescendant, tGt: OpChild, tAnc: OpAncestor, tLt: OpParent, tSibling: OpSibling,
	tUnionDesc: OpUnionDescendant, tUnionChild: OpUnionChild, tUnionAnc: OpUnionAncestor,
	tUnionParent: OpUnionParent, tUnionSibling: OpUnionSibling,
	tNotDesc: OpNotDescendant, tNotChild: OpNotChild, tNotAnc: OpNotAncestor,
	tNotParent: OpNotParent, tNre: OpNotSibling,
}

// Negated reports whether o is one of the negated structural operators
// (!>>, !>, !<<, !<, !~). Their result can be non-empty when the left side
// matches nothing: then no right-side span has the relation.
func (o SpansetOperator) Negated() bool { return o >= OpNotDescendant && o <= OpNotSibling }

// Union reports whether o is one of the union structural operators (&>>,
// &>, &<<, &<, &~).
func (o SpansetOperator) Union() bool { return o >= OpUnionDescendant && o <= OpUnionSibling }

// baseRelation returns the plain structural operator (>>, >, <<, < or ~)
// that o is the union or negation of, or o itself.
func (o SpansetOperator) baseRelation() SpansetOperator {
	switch {
	case o.Union():
		return OpDescendant + (o - OpUnionDescendant)
	case o.Negated():
		return OpDescendant + (o - OpNotDescendant)
	}
	return o
}

// converse returns the relation read from the other side: a span descends
// from another exactly when that one is its ancestor, and so on.
func converse(o SpansetOperator) SpansetOperator {
	switch o {
	case OpDescendant:
		return OpAncestor
	case OpAncestor:
		return OpDescendant
	case OpChild:
		return OpParent
	case OpParent:
		return OpChild
	}
	return o // ~ is symmetric
}

// relate evaluates any structural operator on the spans l and r (ascending
// indexes) of tr, with Tempo's meaning: a plain operator returns the
// right-side spans in the relation to some left-side span, a union
// operator those and the left-side spans in the relation to some
// right-side span, and a negated operator the right-side spans in the
// relation to none. Relations follow parent span IDs, as for >> and the
// other plain operators.
func relate(op SpansetOperator, tr *Trace, l, r []int) []int {
	base := op.baseRelation()
	matched := structural(base, tr, l, r)
	switch {
	case op.Negated():
		return without(r, matched)
	case op.Union():
		if len(matched) == 0 {
			return nil
		}
		return union(matched, structural(converse(base), tr, r, l))
	}
	return matched
}

// without returns the indexes of a (ascending) not in b (ascending).
func without(a, b []int) []int {
	var out []int
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j < len(b) && b[j] == x {
			continue
		}
		out = append(out, x)
	}
	return out
}
