package traceql

// MaxPipelineStages bounds the stages of one pipeline: each is a pass over
// the trace's spansets.
const MaxPipelineStages = 128

// metricsFunctions are TraceQL metrics functions: they make a query a
// metrics query, which a trace search cannot answer.
var metricsFunctions = map[string]bool{
	"rate": true, "count_over_time": true, "quantile_over_time": true, "histogram_over_time": true,
	"min_over_time": true, "max_over_time": true, "avg_over_time": true, "sum_over_time": true,
}

var aggregateFuncs = map[string]AggregateFunc{"count": AggCount, "avg": AggAvg, "min": AggMin, "max": AggMax, "sum": AggSum}

func isPipe(t token) bool { return t.kind == tOther && t.text == "|" }

// pipeline parses the stages after a complete spanset expression in.
func (p *parser) pipeline(in Expr) (Expr, error) {
	pl := &Pipeline{Input: in}
	for isPipe(p.peek()) {
		t := p.next()
		if len(pl.Stages) >= MaxPipelineStages {
			return nil, p.errAt(t, "query has more than %d pipeline stages", MaxPipelineStages)
		}
		s, err := p.stage()
		if err != nil {
			return nil, err
		}
		pl.Stages = append(pl.Stages, s)
	}
	switch t := p.peek(); t.kind {
	case tEOF:
		return pl, nil
	case tIdent:
		if isWith(t) {
			return pl, nil // the query's hints, parsed by the caller
		}
		return nil, p.unexpected(t, "after a pipeline stage")
	case tAnd, tOr, tDesc, tGt, tAnc, tLt, tSibling:
		return nil, p.unsupported(t, "the operator "+t.text+" after a pipeline stage (combining pipelines or aggregate comparisons)")
	default:
		return nil, p.unexpected(t, "after a pipeline stage")
	}
}

// stage parses one pipeline stage.
func (p *parser) stage() (Stage, error) {
	t := p.peek()
	switch t.kind {
	case tLBrace:
		e, err := p.spansetPrimary()
		if err != nil {
			return nil, err
		}
		switch n := p.peek(); n.kind {
		case tAnd, tOr, tDesc, tGt, tAnc, tLt, tSibling:
			return nil, p.unsupported(n, "the spanset operator "+n.text+" inside a pipeline stage")
		}
		return e.(*Filter), nil
	case tLParen:
		return nil, p.unsupported(t, "a parenthesised pipeline stage")
	case tEOF:
		return nil, p.errAt(t, "syntax error: unexpected end of query, expected a pipeline stage after |")
	case tOther:
		if isPipe(t) {
			return nil, p.errAt(t, "syntax error: unexpected | where a pipeline stage was expected")
		}
	case tIdent:
		p.next()
		if fn, ok := aggregateFuncs[t.text]; ok {
			return p.aggregate(t, fn)
		}
		switch t.text {
		case "by", "select":
			fields, err := p.fieldList(t)
			if err != nil {
				return nil, err
			}
			if t.text == "by" {
				return &GroupBy{Fields: fields}, nil
			}
			return &Select{Fields: fields}, nil
		case "coalesce":
			if err := p.expect(tLParen, "(", "after coalesce"); err != nil {
				return nil, err
			}
			if err := p.expect(tRParen, ")", "in coalesce(), which takes no arguments"); err != nil {
				return nil, err
			}
			return &Coalesce{}, nil
		case "compare", "topk", "bottomk", "with", "quantile":
			return nil, p.unsupported(t, "the function or keyword "+t.text)
		}
		if metricsFunctions[t.text] {
			return nil, p.metricsInSearch(t)
		}
		return nil, p.errAt(t, "unknown pipeline stage %q: expected a spanset filter { … }, count(), avg(), min(), max(), sum(), by(), select() or coalesce()", t.text)
	}
	return nil, p.unexpected(t, "where a pipeline stage was expected")
}

// expect consumes a token of kind k or explains what was wanted.
func (p *parser) expect(k tokKind, want, where string) error {
	if t := p.next(); t.kind != k {
		p.i--
		return p.unexpected(t, where+", expected "+want)
	}
	return nil
}

// field parses one field argument of the function fn.
func (p *parser) field(fn token) (Field, error) {
	o, err := p.operand()
	if err != nil {
		return Field{}, err
	}
	if !o.isField {
		return Field{}, p.errAt(o.tok, "%s() takes attributes or intrinsics, not the value %s", fn.text, o.value)
	}
	return o.field, nil
}

// fieldList parses `( field, field, … )` after by or select.
func (p *parser) fieldList(fn token) ([]Field, error) {
	if err := p.expect(tLParen, "(", "after "+fn.text); err != nil {
		return nil, err
	}
	if p.peek().kind == tRParen {
		return nil, p.errAt(p.peek(), "%s() needs at least one attribute or intrinsic", fn.text)
	}
	var out []Field
	for {
		f, err := p.field(fn)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
		if t := p.peek(); t.kind == tOther && t.text == "," {
			p.next()
			continue
		}
		if err := p.expect(tRParen, ") or ,", "in "+fn.text+"()"); err != nil {
			return nil, err
		}
		return out, nil
	}
}

// aggregate parses `fn(field) op literal` (count takes no field).
func (p *parser) aggregate(fn token, f AggregateFunc) (Stage, error) {
	a := &AggregateFilter{Func: f}
	if err := p.expect(tLParen, "(", "after "+fn.text); err != nil {
		return nil, err
	}
	if f != AggCount {
		if p.peek().kind == tRParen {
			return nil, p.errAt(p.peek(), "%s() needs a numeric field, such as %s(duration)", fn.text, fn.text)
		}
		field, err := p.field(fn)
		if err != nil {
			return nil, err
		}
		switch field.Intrinsic {
		case IntrinsicNone, IntrinsicDuration, IntrinsicTraceDuration:
		default:
			return nil, p.errAt(fn, "%s() takes a numeric field: duration, traceDuration or an attribute, not %s", fn.text, field)
		}
		a.Field = field
	}
	if err := p.expect(tRParen, ")", "in "+fn.text+"()"); err != nil {
		return nil, err
	}
	opTok := p.next()
	switch opTok.kind {
	case tEq:
		a.Op = CmpEq
	case tNeq:
		a.Op = CmpNeq
	case tGt:
		a.Op = CmpGt
	case tGte:
		a.Op = CmpGte
	case tLt:
		a.Op = CmpLt
	case tLte:
		a.Op = CmpLte
	default:
		p.i--
		if opTok.kind == tOther || opTok.kind == tRe || opTok.kind == tNre {
			return nil, p.unexpected(opTok, "after "+a.Func.String()+"(), expected one of = != > >= < <=")
		}
		return nil, p.errAt(opTok, "syntax error: %s() must be compared with a value, as in %s() > 2", fn.text, fn.text)
	}
	v, err := p.operand()
	if err != nil {
		return nil, err
	}
	if v.isField {
		return nil, p.unsupported(v.tok, "comparing an aggregate with a field")
	}
	a.Value = v.value
	durField := f != AggCount && (a.Field.Intrinsic == IntrinsicDuration || a.Field.Intrinsic == IntrinsicTraceDuration)
	switch {
	case durField && a.Value.Type != TypeDuration:
		return nil, p.errAt(v.tok, "cannot compare %s with %s; expected a duration such as 100ms", a.describe(), a.Value)
	case !durField && a.Value.Type != TypeInt && a.Value.Type != TypeFloat:
		return nil, p.errAt(v.tok, "cannot compare %s with %s; expected a number", a.describe(), a.Value)
	}
	if n := p.peek(); n.kind == tOther && !isPipe(n) {
		return nil, p.unexpected(n, "after an aggregate comparison")
	}
	return a, nil
}

func (a *AggregateFilter) describe() string {
	if a.Func == AggCount {
		return "count()"
	}
	return a.Func.String() + "(" + a.Field.String() + ")"
}
