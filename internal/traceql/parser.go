package traceql

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrUnsupported marks valid TraceQL that Lookout does not implement.
var ErrUnsupported = errors.New("unsupported TraceQL")

// ParseError describes why a query was rejected. Its message follows
// Tempo's style: "parse error at line 1, col N: ...".
type ParseError struct {
	Pos int // 1-based column
	Msg string
	Err error // ErrUnsupported for unimplemented constructs, else nil
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("parse error at line 1, col %d: %s", e.Pos, e.Msg)
}

func (e *ParseError) Unwrap() error { return e.Err }

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 128

// MaxSpansetOps bounds the spanset operators (&&, ||, >>, >, <<, <, ~) in
// one query: each one is a pass over the trace, and a long left-associative
// chain (`{} >> {} >> …`) would escape the nesting limit.
const MaxSpansetOps = 128

type parser struct {
	toks    []token
	i       int
	depth   int
	ops     int
	conds   int
	metrics bool // parsing a metrics query (ParseMetrics), for the errors' wording
}

// MaxConditionOps bounds the && and || operators in one query's filters,
// for the same reason.
const MaxConditionOps = 1024

// spansetOp counts one more spanset operator, refusing more than
// MaxSpansetOps.
func (p *parser) spansetOp(t token, op SpansetOperator, l, r Expr) (Expr, error) {
	p.ops++
	if p.ops > MaxSpansetOps {
		return nil, p.errAt(t, "query has more than %d spanset operators", MaxSpansetOps)
	}
	return &SpansetOp{Op: op, L: l, R: r}, nil
}

// Parse parses a TraceQL query. An empty query is `{}`. A trailing
// with(…) clause of query hints is accepted and dropped; ParseWithHints
// returns it.
func Parse(q string) (Expr, error) {
	e, _, err := ParseWithHints(q)
	return e, err
}

// ParseWithHints parses a TraceQL query like Parse and also returns the
// hints of its trailing with(…) clause (nil when it has none).
func ParseWithHints(q string) (Expr, Hints, error) {
	if strings.TrimSpace(q) == "" {
		return &Filter{}, nil, nil
	}
	toks, err := lex(q)
	if err != nil {
		return nil, nil, &ParseError{Pos: 1, Msg: err.Error()}
	}
	p := &parser{toks: toks}
	e, err := p.spansetOr()
	if err != nil {
		return nil, nil, err
	}
	if t := p.peek(); t.kind == tOther && t.text == "|" {
		if e, err = p.pipeline(e); err != nil {
			return nil, nil, err
		}
	}
	h, err := p.trailingHints()
	if err != nil {
		return nil, nil, err
	}
	if t := p.peek(); t.kind != tEOF && h != nil {
		return nil, nil, p.errAt(t, "syntax error: unexpected %s after with(…), which must end the query", t)
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, nil, p.unexpected(t, "after a complete spanset expression")
	}
	return e, h, nil
}

// MustParse is Parse for queries known to be valid; it panics otherwise.
func MustParse(q string) Expr {
	e, err := Parse(q)
	if err != nil {
		panic(err)
	}
	return e
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errAt(t token, format string, args ...any) error {
	return &ParseError{Pos: t.pos + 1, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) unsupported(t token, what string) error {
	return &ParseError{Pos: t.pos + 1, Msg: what + " is not supported by Lookout's TraceQL subset", Err: ErrUnsupported}
}

// metricsInSearch refuses a metrics function in a search query.
func (p *parser) metricsInSearch(t token) error {
	return &ParseError{Pos: t.pos + 1, Err: ErrUnsupported,
		Msg: "the metrics function " + t.text + "() makes a metrics query, which a search does not answer: ask the TraceQL metrics API (/api/metrics/query_range)"}
}

// unexpected explains a token that cannot appear where it is, naming
// unsupported TraceQL constructs specifically.
func (p *parser) unexpected(t token, where string) error {
	if t.kind == tOther {
		switch t.text {
		case "|":
			return p.unsupported(t, "a pipeline | inside parentheses or a spanset filter (a pipeline must follow the whole spanset expression)")
		case "!":
			return p.unsupported(t, "the negation operator !")
		case "+", "-", "*", "/", "%", "^":
			return p.unsupported(t, "arithmetic operator "+t.text)
		case ",":
			return p.unsupported(t, "a comma-separated list")
		}
	}
	return p.errAt(t, "syntax error: unexpected %s %s", t, where)
}

func (p *parser) enter(t token) error {
	p.depth++
	if p.depth > maxDepth {
		return p.errAt(t, "query nests deeper than %d levels", maxDepth)
	}
	return nil
}

func (p *parser) spansetOr() (Expr, error) {
	l, err := p.spansetAnd()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tOr {
		t := p.next()
		r, err := p.spansetAnd()
		if err != nil {
			return nil, err
		}
		if l, err = p.spansetOp(t, OpOr, l, r); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (p *parser) spansetAnd() (Expr, error) {
	l, err := p.spansetStructural()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tAnd {
		t := p.next()
		r, err := p.spansetStructural()
		if err != nil {
			return nil, err
		}
		if l, err = p.spansetOp(t, OpAnd, l, r); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (p *parser) spansetStructural() (Expr, error) {
	l, err := p.spansetPrimary()
	if err != nil {
		return nil, err
	}
	for {
		op, ok := structuralOps[p.peek().kind]
		if !ok {
			return l, nil
		}
		t := p.next()
		r, err := p.spansetPrimary()
		if err != nil {
			return nil, err
		}
		if l, err = p.spansetOp(t, op, l, r); err != nil {
			return nil, err
		}
	}
}

func (p *parser) spansetPrimary() (Expr, error) {
	t := p.next()
	switch t.kind {
	case tLBrace:
		if err := p.enter(t); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		if p.peek().kind == tRBrace {
			p.next()
			return &Filter{}, nil
		}
		c, err := p.condOr()
		if err != nil {
			return nil, err
		}
		if e := p.next(); e.kind != tRBrace {
			p.i--
			return nil, p.unexpected(e, "in a spanset filter, expected }")
		}
		return &Filter{Cond: c}, nil
	case tLParen:
		if err := p.enter(t); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		e, err := p.spansetOr()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			p.i--
			return nil, p.unexpected(c, "expected )")
		}
		return e, nil
	case tIdent:
		switch t.text {
		case "count", "avg", "min", "max", "sum", "select", "by", "coalesce":
			return nil, p.errAt(t, "syntax error: %s() is a pipeline stage and must follow a spanset and |, as in { } | %s()", t.text, t.text)
		}
		if p.metrics && (metricsFunctions[t.text] || t.text == "compare" || t.text == "topk" || t.text == "bottomk") {
			return nil, p.errAt(t, "syntax error: %s() must follow a spanset and |, as in { } | rate() | topk(5)", t.text)
		}
		if metricsFunctions[t.text] {
			return nil, p.metricsInSearch(t)
		}
		switch t.text {
		case "compare", "topk", "bottomk", "with":
			return nil, p.unsupported(t, "the function or keyword "+t.text)
		}
	case tEOF:
		return nil, p.errAt(t, "syntax error: unexpected end of query, expected a spanset filter { ... }")
	}
	p.i--
	return nil, p.unexpected(t, "where a spanset filter { ... } was expected")
}

func (p *parser) condOr() (Cond, error) {
	l, err := p.condAnd()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tOr {
		t := p.next()
		r, err := p.condAnd()
		if err != nil {
			return nil, err
		}
		if p.conds++; p.conds > MaxConditionOps {
			return nil, p.errAt(t, "query has more than %d && and || operators in its filters", MaxConditionOps)
		}
		l = &Logical{L: l, R: r}
	}
	return l, nil
}

func (p *parser) condAnd() (Cond, error) {
	l, err := p.condPrimary()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tAnd {
		t := p.next()
		r, err := p.condPrimary()
		if err != nil {
			return nil, err
		}
		if p.conds++; p.conds > MaxConditionOps {
			return nil, p.errAt(t, "query has more than %d && and || operators in its filters", MaxConditionOps)
		}
		l = &Logical{And: true, L: l, R: r}
	}
	return l, nil
}

// operand is either a field or a literal.
type operand struct {
	tok     token
	isField bool
	field   Field
	value   Value
}

func (p *parser) condPrimary() (Cond, error) {
	if t := p.peek(); t.kind == tLParen {
		p.next()
		if err := p.enter(t); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		c, err := p.condOr()
		if err != nil {
			return nil, err
		}
		if e := p.next(); e.kind != tRParen {
			p.i--
			return nil, p.unexpected(e, "expected )")
		}
		return c, nil
	}
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	opTok := p.peek()
	var op CmpOp
	switch opTok.kind {
	case tEq:
		op = CmpEq
	case tNeq:
		op = CmpNeq
	case tGt:
		op = CmpGt
	case tGte:
		op = CmpGte
	case tLt:
		op = CmpLt
	case tLte:
		op = CmpLte
	case tRe:
		op = CmpRe
	case tNre:
		op = CmpNre
	default:
		if !l.isField && l.value.Type == TypeBool {
			return BoolLiteral(l.value.B), nil
		}
		if l.isField {
			if opTok.kind == tOther {
				return nil, p.unexpected(opTok, "after "+l.field.String())
			}
			return nil, p.unsupported(l.tok, "a bare field without a comparison ("+l.field.String()+")")
		}
		return nil, p.unexpected(opTok, "after "+l.value.String()+", expected a comparison operator")
	}
	p.next()
	r, err := p.operand()
	if err != nil {
		return nil, err
	}
	if next := p.peek(); next.kind == tOther {
		return nil, p.unexpected(next, "after a comparison")
	}
	switch {
	case l.isField && r.isField:
		return nil, p.unsupported(r.tok, "comparing two fields")
	case !l.isField && !r.isField:
		return nil, p.unsupported(l.tok, "comparing two literals")
	case !l.isField:
		if op == CmpRe || op == CmpNre {
			return nil, p.errAt(l.tok, "the regular expression must be on the right of %s", op)
		}
		l, r = r, l
		op = flip(op)
	}
	return p.typeCheck(l, op, r, opTok)
}

func flip(op CmpOp) CmpOp {
	switch op {
	case CmpGt:
		return CmpLt
	case CmpGte:
		return CmpLte
	case CmpLt:
		return CmpGt
	case CmpLte:
		return CmpGte
	}
	return op
}

func (p *parser) typeCheck(f operand, op CmpOp, v operand, opTok token) (Cond, error) {
	c := &Compare{Field: f.field, Op: op, Value: v.value}
	ordered := op == CmpGt || op == CmpGte || op == CmpLt || op == CmpLte
	regex := op == CmpRe || op == CmpNre
	bad := func(want string) error {
		return p.errAt(v.tok, "cannot compare %s with %s using %s; %s", f.field, v.value, op, want)
	}
	switch f.field.Intrinsic {
	case IntrinsicName, IntrinsicStatusMessage, IntrinsicRootName, IntrinsicRootServiceName:
		if v.value.Type != TypeString {
			return nil, bad("expected a string")
		}
	case IntrinsicStatus:
		if v.value.Type != TypeStatus || ordered || regex {
			return nil, bad("status takes = or != with ok, error or unset")
		}
	case IntrinsicKind:
		if v.value.Type != TypeKind || ordered || regex {
			return nil, bad("kind takes = or != with server, client, producer, consumer, internal or unspecified")
		}
	case IntrinsicDuration, IntrinsicTraceDuration:
		if v.value.Type != TypeDuration || regex {
			return nil, bad("expected a duration such as 100ms")
		}
	case IntrinsicNestedSetLeft, IntrinsicNestedSetRight, IntrinsicNestedSetParent:
		if !(v.value.Type == TypeInt || v.value.Type == TypeFloat || v.value.Type == TypeNil && !ordered) || regex {
			return nil, bad("expected a number")
		}
		c.byRoot = rootDecided(c)
	case IntrinsicSpanID, IntrinsicParentID, IntrinsicTraceID:
		if ordered || regex || v.value.Type != TypeString && v.value.Type != TypeNil {
			return nil, bad("IDs take = or != with a hex string")
		}
		if v.value.Type == TypeString {
			id, ok := normalizeHexID(v.value.S, idDigits(f.field.Intrinsic))
			if !ok {
				return nil, bad(fmt.Sprintf("expected at most %d hex digits", idDigits(f.field.Intrinsic)))
			}
			c.Value.S = id
		}
	case IntrinsicEventName:
		if v.value.Type != TypeString && !(v.value.Type == TypeNil && !ordered && !regex) {
			return nil, bad("expected a string")
		}
	case IntrinsicEventTimeSinceStart:
		if v.value.Type != TypeDuration && !(v.value.Type == TypeNil && !ordered) || regex {
			return nil, bad("expected a duration such as 100ms")
		}
	default:
		switch v.value.Type {
		case TypeStatus, TypeKind:
			return nil, bad("status and kind literals compare only with the status and kind intrinsics")
		case TypeNil:
			if op != CmpEq && op != CmpNeq {
				return nil, bad("nil takes = or !=")
			}
		case TypeBool:
			if ordered || regex {
				return nil, bad("booleans take = or !=")
			}
		}
	}
	if regex {
		if v.value.Type != TypeString {
			return nil, bad("a regular expression must be a string")
		}
		re, err := regexp.Compile("^(?:" + v.value.S + ")$")
		if err != nil {
			return nil, p.errAt(v.tok, "invalid regular expression %q: %v", v.value.S, err)
		}
		c.re = re
	}
	return c, nil
}

func (p *parser) operand() (operand, error) {
	t := p.next()
	switch t.kind {
	case tString:
		return operand{tok: t, value: StringValue(t.text)}, nil
	case tNumber:
		if i, err := strconv.ParseInt(t.text, 10, 64); err == nil {
			return operand{tok: t, value: IntValue(i)}, nil
		}
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return operand{}, p.errAt(t, "invalid number %q", t.text)
		}
		return operand{tok: t, value: FloatValue(f)}, nil
	case tDuration:
		d, err := parseDuration(t.text)
		if err != nil {
			return operand{}, p.errAt(t, "invalid duration %q: use a number with ns, us, µs, ms, s, m or h", t.text)
		}
		return operand{tok: t, value: Value{Type: TypeDuration, I: int64(d)}}, nil
	case tIdent:
		return p.ident(t)
	case tEOF:
		return operand{}, p.errAt(t, "syntax error: unexpected end of query, expected a field or value")
	}
	p.i--
	return operand{}, p.unexpected(t, "where a field or value was expected")
}

func parseDuration(s string) (time.Duration, error) {
	// time.ParseDuration understands every TraceQL unit except "d".
	if strings.HasSuffix(s, "d") && !strings.HasSuffix(s, "nd") {
		f, err := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64)
		if err != nil {
			return 0, err
		}
		return time.Duration(f * float64(24*time.Hour)), nil
	}
	return time.ParseDuration(s)
}

func (p *parser) ident(t token) (operand, error) {
	s := t.text
	attr := func(scope Scope, name string) (operand, error) {
		if name == "" {
			return operand{}, p.errAt(t, "attribute name missing after %q", s)
		}
		return operand{tok: t, isField: true, field: Field{Scope: scope, Name: name}}, nil
	}
	switch {
	case strings.HasPrefix(s, "."):
		return attr(ScopeAny, s[1:])
	case strings.HasPrefix(s, "span."):
		return attr(ScopeSpan, s[len("span."):])
	case strings.HasPrefix(s, "resource."):
		return attr(ScopeResource, s[len("resource."):])
	case strings.HasPrefix(s, "event."):
		return attr(ScopeEvent, s[len("event."):])
	}
	if in, ok := intrinsicNames[s]; ok {
		return operand{tok: t, isField: true, field: Field{Intrinsic: in}}, nil
	}
	for _, scope := range []string{"link", "instrumentation", "scope"} {
		if strings.HasPrefix(s, scope+".") || strings.HasPrefix(s, scope+":") {
			return operand{}, p.unsupported(t, "the "+scope+" scope ("+s+")")
		}
	}
	if strings.HasPrefix(s, "span:") || strings.HasPrefix(s, "trace:") || strings.HasPrefix(s, "resource:") || strings.HasPrefix(s, "event:") {
		return operand{}, p.unsupported(t, "the intrinsic "+s)
	}
	switch s {
	case "true", "false":
		return operand{tok: t, value: BoolValue(s == "true")}, nil
	case "nil":
		return operand{tok: t, value: Value{Type: TypeNil}}, nil
	case "parent", "childCount", "traceID", "spanID", "id", "instrumentation":
		return operand{}, p.unsupported(t, "the intrinsic "+s)
	}
	if v, ok := statusNames[s]; ok {
		return operand{tok: t, value: Value{Type: TypeStatus, I: v}}, nil
	}
	if v, ok := kindNames[s]; ok {
		return operand{tok: t, value: Value{Type: TypeKind, I: v}}, nil
	}
	return operand{}, p.errAt(t, "unknown identifier %q: attributes need a scope (span., resource. or .)", s)
}
