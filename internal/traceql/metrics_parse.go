package traceql

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// MetricsFunc names a TraceQL metrics function.
type MetricsFunc int

// The metrics functions.
const (
	MetricsRate              MetricsFunc = iota // rate(): matching spans per second
	MetricsCountOverTime                        // count_over_time(): matching spans per step
	MetricsSumOverTime                          // sum_over_time(field)
	MetricsMinOverTime                          // min_over_time(field)
	MetricsMaxOverTime                          // max_over_time(field)
	MetricsAvgOverTime                          // avg_over_time(field)
	MetricsQuantileOverTime                     // quantile_over_time(field, q, …)
	MetricsHistogramOverTime                    // histogram_over_time(field)
	MetricsCompare                              // compare({ selection }, topN, start, end)
)

var metricsFuncText = [...]string{
	"rate", "count_over_time", "sum_over_time", "min_over_time", "max_over_time",
	"avg_over_time", "quantile_over_time", "histogram_over_time", "compare",
}

func (f MetricsFunc) String() string { return metricsFuncText[f] }

// metricsFuncByName maps the names of the metrics functions, compare
// included, to their MetricsFunc.
var metricsFuncByName = func() map[string]MetricsFunc {
	m := make(map[string]MetricsFunc, len(metricsFuncText))
	for i, s := range metricsFuncText {
		m[s] = MetricsFunc(i)
	}
	return m
}()

// takesField reports whether the function aggregates the values of a field.
func (f MetricsFunc) takesField() bool {
	return f != MetricsRate && f != MetricsCountOverTime && f != MetricsCompare
}

// The limits of a metrics query, as Tempo's.
const (
	// MaxMetricsGroupBy bounds the fields of a metrics function's by();
	// quantile_over_time and histogram_over_time take one fewer, as the
	// bucket uses a label.
	MaxMetricsGroupBy = 5
	// MaxCompareTopN bounds compare()'s number of values per attribute.
	MaxCompareTopN = 1000
	// DefaultCompareTopN is compare()'s number of values per attribute
	// when the query does not give one.
	DefaultCompareTopN = 10
)

// MetricsQuery is `<spanset expression> | <metrics function>(…) [by(…)]
// [| topk(n) | bottomk(n)] [with(…)]`.
type MetricsQuery struct {
	// Spans is the spanset part; it may be a *Pipeline (filters, by(),
	// select(), aggregate comparisons before the metrics stage).
	Spans Expr
	Func  MetricsFunc
	// Attr is the field of sum/min/max/avg/quantile/histogram_over_time
	// (the duration intrinsic, span.foo, …); zero for rate, count and compare.
	Attr Field
	// Quantiles are quantile_over_time's q arguments, each in [0, 1], in
	// the query's order.
	Quantiles []float64
	// By are the fields of the function's by(), in the query's order.
	By []Field
	// Compare holds compare()'s arguments; nil for the other functions.
	Compare *CompareArgs
	// TopK and BottomK are the second stage `| topk(n)` or `| bottomk(n)`;
	// 0 is none. At most one of them is set.
	TopK, BottomK int
	// Hints are the query's with(…) hints (see Hints), by name. Lookout
	// reads only "exemplars" (see ExemplarsHint) and ignores the others
	// (sample, span_sample, trace_sample, most_recent, …): it does not
	// sample, so an answer is always exact.
	Hints Hints
}

// CompareArgs are the arguments of compare(): spans that match Selection
// (and, when Start and End are set, start in (Start, End]) are the
// selection, the other spans of the query the baseline.
type CompareArgs struct {
	Selection Expr // a *Filter
	TopN      int  // values per attribute to report; DefaultCompareTopN if the query omits it
	// Start and End bound the selection in time; both zero means the
	// whole range of the query.
	Start, End time.Time
}

// ExemplarsHint returns the number of exemplars the query asks for with
// `with(exemplars=N)` (negative counts as 0) or `with(exemplars=false)` (0);
// ok is false when it does not ask, and then the request's parameter, or the
// server's default, applies. Tempo gives the hint precedence over the
// request's exemplars parameter in the same way.
func (q *MetricsQuery) ExemplarsHint() (n int, ok bool) {
	h, ok := q.Hints["exemplars"]
	switch {
	case !ok:
	case h.Type == TypeInt:
		return int(max(0, min(h.I, math.MaxInt32))), true
	case h.Type == TypeBool && !h.B:
		return 0, true
	}
	return 0, false
}

func (q *MetricsQuery) String() string {
	var b strings.Builder
	b.WriteString(q.Spans.String())
	b.WriteString(" | ")
	b.WriteString(q.Func.String())
	b.WriteByte('(')
	switch {
	case q.Func == MetricsCompare:
		c := q.Compare
		b.WriteString(c.Selection.String())
		b.WriteString(", ")
		b.WriteString(strconv.Itoa(c.TopN))
		if !c.Start.IsZero() || !c.End.IsZero() {
			b.WriteString(", ")
			b.WriteString(strconv.FormatInt(c.Start.UnixNano(), 10))
			b.WriteString(", ")
			b.WriteString(strconv.FormatInt(c.End.UnixNano(), 10))
		}
	case q.Func.takesField():
		b.WriteString(q.Attr.String())
		for _, f := range q.Quantiles {
			b.WriteString(", ")
			b.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
		}
	}
	b.WriteByte(')')
	if len(q.By) > 0 {
		b.WriteString(" by (")
		b.WriteString(fieldList(q.By))
		b.WriteByte(')')
	}
	if q.TopK > 0 {
		b.WriteString(" | topk(" + strconv.Itoa(q.TopK) + ")")
	}
	if q.BottomK > 0 {
		b.WriteString(" | bottomk(" + strconv.Itoa(q.BottomK) + ")")
	}
	if len(q.Hints) > 0 {
		b.WriteString(" " + q.Hints.String())
	}
	return b.String()
}

// ErrNotMetricsQuery marks ParseMetrics' refusal of a query without a
// metrics function (a search query).
var ErrNotMetricsQuery = errors.New("not a metrics query")

// ParseMetrics parses a TraceQL metrics query. Its errors are *ParseError
// in Parse's style, wrapping ErrUnsupported for valid TraceQL that Lookout
// does not implement (metrics arithmetic, comparing a metrics result with a
// value, chains of second stages); a query without a metrics function is an
// error that starts "not a metrics query". The limits of Parse apply.
func ParseMetrics(q string) (*MetricsQuery, error) {
	toks, err := lex(q)
	if err != nil {
		return nil, &ParseError{Pos: 1, Msg: err.Error()}
	}
	p := &parser{toks: toks, metrics: true}
	if p.peek().kind == tEOF {
		return nil, notMetrics(p.peek(), "the query is empty; a metrics query is a spanset followed by a metrics function, as in { } | rate()")
	}
	head, err := p.spansetOr()
	if err != nil {
		return nil, err
	}
	var stages []Stage
	for isPipe(p.peek()) {
		t := p.next()
		if len(stages) >= MaxPipelineStages {
			return nil, p.errAt(t, "query has more than %d pipeline stages", MaxPipelineStages)
		}
		if n := p.peek(); n.kind == tIdent {
			if fn, ok := metricsFuncByName[n.text]; ok {
				p.next()
				var spans Expr = head
				if len(stages) > 0 {
					spans = &Pipeline{Input: head, Stages: stages}
				}
				return p.metricsQuery(spans, n, fn)
			}
			if n.text == "topk" || n.text == "bottomk" {
				return nil, p.errAt(n, "syntax error: %s() must follow a metrics function, as in { } | rate() by (name) | %s(5)", n.text, n.text)
			}
		}
		s, err := p.stage()
		if err != nil {
			return nil, err
		}
		stages = append(stages, s)
	}
	t := p.peek()
	if t.kind == tIdent && t.text == "with" {
		return nil, notMetrics(t, "with(…) hints follow a metrics function here, as in { } | rate() with (exemplars=10)")
	}
	if t.kind != tEOF {
		return nil, p.unexpected(t, "after a spanset expression")
	}
	return nil, notMetrics(t, "it has no metrics function; add one such as | rate() or | count_over_time()")
}

func notMetrics(t token, why string) error {
	return &ParseError{Pos: t.pos + 1, Msg: "not a metrics query: " + why, Err: ErrNotMetricsQuery}
}

// metricsQuery parses what follows the metrics function fn's name, spans
// being the query before it.
func (p *parser) metricsQuery(spans Expr, fnTok token, fn MetricsFunc) (*MetricsQuery, error) {
	q := &MetricsQuery{Spans: spans, Func: fn}
	if err := p.expect(tLParen, "(", "after "+fnTok.text); err != nil {
		return nil, err
	}
	var err error
	switch {
	case fn == MetricsCompare:
		q.Compare, err = p.compareArgs(fnTok)
	case fn.takesField():
		err = p.metricsFieldArgs(fnTok, q)
	default:
		err = p.expect(tRParen, ")", "in "+fnTok.text+"(), which takes no arguments")
	}
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind == tIdent && t.text == "by" {
		p.next()
		if fn == MetricsCompare {
			return nil, p.errAt(t, "syntax error: compare() takes no by(); it compares every attribute")
		}
		if q.By, err = p.fieldList(t); err != nil {
			return nil, err
		}
		limit := MaxMetricsGroupBy
		if fn == MetricsQuantileOverTime || fn == MetricsHistogramOverTime {
			limit-- // the bucket takes one label
		}
		if len(q.By) > limit {
			return nil, p.unsupported(t, "by() with more than "+strconv.Itoa(limit)+" fields after "+fn.String()+"()")
		}
	}
	if err := p.secondStage(q); err != nil {
		return nil, err
	}
	if q.Hints, err = p.trailingHints(); err != nil {
		return nil, err
	}
	switch t := p.peek(); t.kind {
	case tEOF:
		return q, nil
	case tGt, tGte, tLt, tLte, tEq, tNeq:
		return nil, p.unsupported(t, "comparing a metrics result with a value ("+t.text+")")
	case tOther:
		switch t.text {
		case "+", "-", "*", "/", "%", "^":
			return nil, p.unsupported(t, "arithmetic on metrics results ("+t.text+")")
		}
	case tAnd, tOr:
		return nil, p.unsupported(t, "the operator "+t.text+" after a metrics function")
	}
	if t := p.peek(); isPipe(t) && len(q.Hints) > 0 {
		return nil, p.errAt(t, "syntax error: unexpected | after with(…): hints come last")
	}
	return nil, p.unexpected(p.peek(), "after a metrics function")
}

// metricsFieldArgs parses `field [, q, …])` of the functions that take a
// field.
func (p *parser) metricsFieldArgs(fnTok token, q *MetricsQuery) error {
	if p.peek().kind == tRParen {
		if q.Func == MetricsQuantileOverTime {
			return p.errAt(p.peek(), "%s() needs a numeric field and quantiles, such as %s(duration, .5, .99)", fnTok.text, fnTok.text)
		}
		return p.errAt(p.peek(), "%s() needs a numeric field, such as %s(duration)", fnTok.text, fnTok.text)
	}
	f, err := p.field(fnTok)
	if err != nil {
		return err
	}
	switch f.Intrinsic {
	case IntrinsicNone, IntrinsicDuration, IntrinsicTraceDuration:
	default:
		return p.errAt(fnTok, "%s() takes a numeric field: duration, traceDuration or an attribute, not %s", fnTok.text, f)
	}
	q.Attr = f
	if t := p.peek(); isComma(t) && q.Func != MetricsQuantileOverTime {
		return p.errAt(t, "syntax error: %s() takes one field", fnTok.text)
	}
	if q.Func == MetricsQuantileOverTime {
		if t := p.peek(); !isComma(t) {
			return p.errAt(t, "syntax error: %s() needs at least one quantile after the field, as in %s(%s, .99)", fnTok.text, fnTok.text, f)
		}
		for isComma(p.peek()) {
			p.next()
			v, err := p.quantile(fnTok)
			if err != nil {
				return err
			}
			q.Quantiles = append(q.Quantiles, v)
		}
	}
	return p.expect(tRParen, ")", "in "+fnTok.text+"()")
}

func isComma(t token) bool { return t.kind == tOther && t.text == "," }

// quantile parses one of quantile_over_time's q arguments. The lexer reads
// `.99` as an attribute name, so such a token is taken as a number here.
func (p *parser) quantile(fnTok token) (float64, error) {
	t := p.next()
	text := t.text
	switch {
	case t.kind == tNumber:
	case t.kind == tIdent && strings.HasPrefix(text, ".") && len(text) > 1 && text[1] >= '0' && text[1] <= '9':
		text = "0" + text
	default:
		p.i--
		return 0, p.unexpected(t, "in "+fnTok.text+"(), expected a quantile between 0 and 1")
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return 0, p.errAt(t, "invalid quantile %q: expected a number between 0 and 1", t.text)
	}
	if !(v >= 0 && v <= 1) {
		return 0, p.errAt(t, "quantile %s is outside [0, 1]", t.text)
	}
	return v, nil
}

// compareArgs parses `{ filter } [, topN [, start, end]])`.
func (p *parser) compareArgs(fnTok token) (*CompareArgs, error) {
	c := &CompareArgs{TopN: DefaultCompareTopN}
	t := p.peek()
	if t.kind != tLBrace {
		return nil, p.errAt(t, "syntax error: compare() takes a spanset filter first, as in compare({ status = error })")
	}
	sel, err := p.spansetPrimary()
	if err != nil {
		return nil, err
	}
	switch n := p.peek(); n.kind {
	case tAnd, tOr, tDesc, tGt, tAnc, tLt, tSibling:
		return nil, p.unsupported(n, "the spanset operator "+n.text+" in compare()'s selection (it takes one spanset filter)")
	}
	c.Selection = sel
	var ints []int64
	var toks []token
	for isComma(p.peek()) {
		p.next()
		t := p.next()
		if t.kind != tNumber {
			p.i--
			return nil, p.unexpected(t, "in compare(), expected an integer")
		}
		n, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return nil, p.errAt(t, "compare() takes integers: the number of values and unix nanosecond timestamps, not %s", t.text)
		}
		ints = append(ints, n)
		toks = append(toks, t)
	}
	if err := p.expect(tRParen, ")", "in compare()"); err != nil {
		return nil, err
	}
	switch len(ints) {
	case 0:
	case 1, 3:
		if ints[0] < 1 || ints[0] > MaxCompareTopN {
			return nil, p.errAt(toks[0], "compare()'s number of values must be an integer between 1 and %d", MaxCompareTopN)
		}
		c.TopN = int(ints[0])
		if len(ints) == 1 {
			break
		}
		start, end := ints[1], ints[2]
		if start == 0 && end == 0 {
			break
		}
		if start <= 0 || end <= 0 {
			return nil, p.errAt(toks[1], "compare()'s timestamps must be positive integer unix nanoseconds")
		}
		if end <= start {
			return nil, p.errAt(toks[2], "compare()'s end timestamp must be greater than its start")
		}
		c.Start, c.End = time.Unix(0, start), time.Unix(0, end)
	default:
		return nil, p.errAt(fnTok, "compare() takes a filter, then optionally the number of values, then optionally start and end timestamps; got %d numbers", len(ints))
	}
	return c, nil
}

// secondStage parses an optional `| topk(n)` or `| bottomk(n)`.
func (p *parser) secondStage(q *MetricsQuery) error {
	if !isPipe(p.peek()) {
		return nil
	}
	p.next()
	t := p.next()
	if t.kind != tIdent || (t.text != "topk" && t.text != "bottomk") {
		p.i--
		if t.kind == tEOF {
			return p.errAt(t, "syntax error: unexpected end of query, expected topk() or bottomk() after |")
		}
		_, isMetrics := metricsFuncByName[t.text]
		_, isAgg := aggregateFuncs[t.text]
		if t.kind == tIdent && (isMetrics || isAgg) {
			return p.errAt(t, "syntax error: only topk() or bottomk() may follow a metrics function, not %s()", t.text)
		}
		return p.unexpected(t, "after a metrics function, expected topk() or bottomk()")
	}
	if err := p.expect(tLParen, "(", "after "+t.text); err != nil {
		return err
	}
	nt := p.next()
	n, err := strconv.Atoi(nt.text)
	if nt.kind != tNumber || err != nil {
		p.i--
		if nt.kind == tNumber {
			return p.errAt(nt, "%s() takes a positive integer, not %s", t.text, nt.text)
		}
		return p.unexpected(nt, "in "+t.text+"(), expected a positive integer")
	}
	if n <= 0 {
		return p.errAt(nt, "%s() takes a positive integer, not %s", t.text, nt.text)
	}
	if err := p.expect(tRParen, ")", "in "+t.text+"()"); err != nil {
		return err
	}
	if t.text == "topk" {
		q.TopK = n
	} else {
		q.BottomK = n
	}
	if n := p.peek(); isPipe(n) {
		return p.unsupported(n, "a second stage after "+t.text+"()")
	}
	return nil
}
