package traceql

import (
	"slices"
	"strings"
)

// Hints are the query hints of a trailing `with(name = value, …)`, as in
// `{ status = error } | select(span.x) with(most_recent=true)`. Values are
// literals: booleans, numbers, durations, strings (and status or kind
// keywords). A query with several with() clauses keeps the last, and
// within one clause the first value of a name, as Tempo reads them.
//
// Hints ask the engine for a way of working, never change what a query
// means, and unknown names are accepted, so a query written for Tempo runs
// unchanged. Lookout's search honours none of them; in particular it
// needs no most_recent=true: it already scans from the newest traces and
// returns them newest first. Metrics queries read sample, exemplars and
// the like from the same clause.
type Hints map[string]Value

// Bool returns the hint name when it is a boolean.
func (h Hints) Bool(name string) (v, ok bool) {
	x, ok := h[name]
	return x.B, ok && x.Type == TypeBool
}

// String renders the hints as a with() clause, names sorted, or "" when
// there are none.
func (h Hints) String() string {
	if len(h) == 0 {
		return ""
	}
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString("with(")
	for i, k := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(h[k].String())
	}
	b.WriteString(")")
	return b.String()
}

// maxHints bounds the hints of one clause.
const maxHints = 64

func isWith(t token) bool { return t.kind == tIdent && t.text == "with" }

// trailingHints parses the with() clauses that may end a query.
func (p *parser) trailingHints() (Hints, error) {
	var h Hints
	for isWith(p.peek()) {
		var err error
		if h, err = p.hints(); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// hints parses one `with(name = literal, …)` clause.
func (p *parser) hints() (Hints, error) {
	with := p.next()
	if err := p.expect(tLParen, "(", "after with"); err != nil {
		return nil, err
	}
	h := Hints{}
	for {
		t := p.next()
		if t.kind != tIdent || !isHintName(t.text) {
			p.i--
			return nil, p.errAt(t, "syntax error: unexpected %s in with(), expected a hint name such as most_recent", t)
		}
		if len(h) >= maxHints {
			return nil, p.errAt(t, "with() has more than %d hints", maxHints)
		}
		if err := p.expect(tEq, "=", "after the hint "+t.text); err != nil {
			return nil, err
		}
		v, err := p.operand()
		if err != nil {
			return nil, err
		}
		if v.isField || v.value.Type == TypeNil {
			return nil, p.errAt(v.tok, "the hint %s takes a literal value such as true, 10, 0.5, 1s or \"x\"", t.text)
		}
		if _, seen := h[t.text]; !seen {
			h[t.text] = v.value
		}
		if n := p.peek(); n.kind == tOther && n.text == "," {
			p.next()
			continue
		}
		if err := p.expect(tRParen, ") or ,", "in "+with.text+"()"); err != nil {
			return nil, err
		}
		return h, nil
	}
}

// isHintName reports whether s is a plain identifier: letters, digits and
// underscores, not starting with a digit.
func isHintName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}
