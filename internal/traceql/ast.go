package traceql

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Expr is a spanset expression: a filter or an operator over two spansets.
type Expr interface {
	fmt.Stringer
	isExpr()
}

// Filter is a spanset filter `{ cond }`; a nil Cond is `{}` and matches all spans.
type Filter struct {
	Cond Cond
}

// SpansetOp combines two spanset expressions.
type SpansetOp struct {
	Op   SpansetOperator
	L, R Expr
}

// SpansetOperator names an operator between spansets.
type SpansetOperator int

// The supported spanset operators.
const (
	OpAnd        SpansetOperator = iota // &&: both sides match in the trace; result is the union
	OpOr                                // ||: either side matches; result is the union
	OpDescendant                        // >>: right-side spans that descend from a left-side span
	OpChild                             // >: right-side spans whose parent is a left-side span
	OpAncestor                          // <<: right-side spans that are ancestors of a left-side span
	OpParent                            // <: right-side spans that are the parent of a left-side span
	OpSibling                           // ~: right-side spans sharing a parent with a left-side span

	// The union structural operators return the spans of both sides that
	// stand in the relation: &>> the right-side descendants of left-side
	// spans and those left-side ancestors, and so on.
	OpUnionDescendant // &>>
	OpUnionChild      // &>
	OpUnionAncestor   // &<<
	OpUnionParent     // &<
	OpUnionSibling    // &~

	// The negated structural operators return the right-side spans that do
	// not stand in the relation to any left-side span: !>> the right-side
	// spans that descend from no left-side span, and so on.
	OpNotDescendant // !>>
	OpNotChild      // !>
	OpNotAncestor   // !<<
	OpNotParent     // !<
	OpNotSibling    // !~
)

var spansetOpText = [...]string{"&&", "||", ">>", ">", "<<", "<", "~",
	"&>>", "&>", "&<<", "&<", "&~", "!>>", "!>", "!<<", "!<", "!~"}

func (o SpansetOperator) String() string { return spansetOpText[o] }

func (*Filter) isExpr()    {}
func (*SpansetOp) isExpr() {}

func (f *Filter) String() string {
	if f.Cond == nil {
		return "{ }"
	}
	return "{ " + f.Cond.String() + " }"
}

func (o *SpansetOp) String() string {
	return "(" + o.L.String() + " " + o.Op.String() + " " + o.R.String() + ")"
}

// Cond is a condition over one span (and its trace) inside a filter.
type Cond interface {
	fmt.Stringer
	isCond()
}

// Logical is `a && b` or `a || b` inside a filter.
type Logical struct {
	And  bool
	L, R Cond
}

// Compare is `field op literal`. A query written `literal op field` is
// normalised to this form when parsed.
type Compare struct {
	Field Field
	Op    CmpOp
	Value Value
	re    *regexp.Regexp
	// byRoot marks a nestedSetParent comparison that whether the span is a
	// root decides (see rootDecided); set by the parser.
	byRoot bool
}

// BoolLiteral is a bare `true` or `false` inside a filter.
type BoolLiteral bool

func (*Logical) isCond()    {}
func (*Compare) isCond()    {}
func (BoolLiteral) isCond() {}

func (l *Logical) String() string {
	op := "||"
	if l.And {
		op = "&&"
	}
	return "(" + l.L.String() + " " + op + " " + l.R.String() + ")"
}

func (c *Compare) String() string {
	return c.Field.String() + " " + c.Op.String() + " " + c.Value.String()
}

func (b BoolLiteral) String() string { return strconv.FormatBool(bool(b)) }

// CmpOp is a comparison operator.
type CmpOp int

// The comparison operators.
const (
	CmpEq CmpOp = iota
	CmpNeq
	CmpGt
	CmpGte
	CmpLt
	CmpLte
	CmpRe
	CmpNre
)

var cmpText = [...]string{"=", "!=", ">", ">=", "<", "<=", "=~", "!~"}

func (o CmpOp) String() string { return cmpText[o] }

// Scope says where an attribute is looked up.
type Scope int

// The attribute scopes.
const (
	ScopeAny      Scope = iota // .foo: span first, then resource
	ScopeSpan                  // span.foo
	ScopeResource              // resource.foo
	ScopeEvent                 // event.foo: an attribute of one of the span's events
)

// Intrinsic is a built-in span or trace field.
type Intrinsic int

// The supported intrinsics. IntrinsicNone marks an attribute field.
const (
	IntrinsicNone Intrinsic = iota
	IntrinsicName
	IntrinsicStatus
	IntrinsicStatusMessage
	IntrinsicKind
	IntrinsicDuration
	IntrinsicTraceDuration
	IntrinsicRootName
	IntrinsicRootServiceName
	IntrinsicNestedSetLeft   // the span's number on entering it in a depth-first walk of the trace
	IntrinsicNestedSetRight  // the span's number on leaving it
	IntrinsicNestedSetParent // the parent's nestedSetLeft; -1 for a root
	IntrinsicSpanID          // span:id, 16 lowercase hex digits
	IntrinsicParentID        // span:parentID, 16 lowercase hex digits
	IntrinsicTraceID         // trace:id, 32 lowercase hex digits
	IntrinsicEventName       // event:name of one of the span's events
	// IntrinsicEventTimeSinceStart is event:timeSinceStart, an event's time
	// minus its span's start.
	IntrinsicEventTimeSinceStart
)

var intrinsicNames = map[string]Intrinsic{
	"name":               IntrinsicName,
	"status":             IntrinsicStatus,
	"statusMessage":      IntrinsicStatusMessage,
	"kind":               IntrinsicKind,
	"duration":           IntrinsicDuration,
	"traceDuration":      IntrinsicTraceDuration,
	"rootName":           IntrinsicRootName,
	"rootServiceName":    IntrinsicRootServiceName,
	"span:name":          IntrinsicName,
	"span:status":        IntrinsicStatus,
	"span:statusMessage": IntrinsicStatusMessage,
	"span:kind":          IntrinsicKind,
	"span:duration":      IntrinsicDuration,
	"trace:duration":     IntrinsicTraceDuration,
	"trace:rootName":     IntrinsicRootName,
	"trace:rootService":  IntrinsicRootServiceName,

	"nestedSetLeft":        IntrinsicNestedSetLeft,
	"nestedSetRight":       IntrinsicNestedSetRight,
	"nestedSetParent":      IntrinsicNestedSetParent,
	"span:id":              IntrinsicSpanID,
	"span:parentID":        IntrinsicParentID,
	"trace:id":             IntrinsicTraceID,
	"event:name":           IntrinsicEventName,
	"event:timeSinceStart": IntrinsicEventTimeSinceStart,
}

var intrinsicText = map[Intrinsic]string{
	IntrinsicName:            "name",
	IntrinsicStatus:          "status",
	IntrinsicStatusMessage:   "statusMessage",
	IntrinsicKind:            "kind",
	IntrinsicDuration:        "duration",
	IntrinsicTraceDuration:   "traceDuration",
	IntrinsicRootName:        "rootName",
	IntrinsicRootServiceName: "rootServiceName",

	IntrinsicNestedSetLeft:       "nestedSetLeft",
	IntrinsicNestedSetRight:      "nestedSetRight",
	IntrinsicNestedSetParent:     "nestedSetParent",
	IntrinsicSpanID:              "span:id",
	IntrinsicParentID:            "span:parentID",
	IntrinsicTraceID:             "trace:id",
	IntrinsicEventName:           "event:name",
	IntrinsicEventTimeSinceStart: "event:timeSinceStart",
}

// IntrinsicNames lists the intrinsics in the form Tempo's tag API reports them.
func IntrinsicNames() []string {
	return []string{"duration", "kind", "name", "rootName", "rootServiceName", "status", "statusMessage", "traceDuration"}
}

// TraceLevel reports whether the intrinsic describes the whole trace.
func (i Intrinsic) TraceLevel() bool {
	return i == IntrinsicTraceDuration || i == IntrinsicRootName || i == IntrinsicRootServiceName || i == IntrinsicTraceID
}

// Field is an intrinsic or an attribute.
type Field struct {
	Intrinsic Intrinsic
	Scope     Scope
	Name      string // attribute name when Intrinsic is IntrinsicNone
}

func (f Field) String() string {
	if f.Intrinsic != IntrinsicNone {
		return intrinsicText[f.Intrinsic]
	}
	name := f.Name
	if strings.ContainsAny(name, " \t\"") {
		name = strconv.Quote(name)
	}
	switch f.Scope {
	case ScopeSpan:
		return "span." + name
	case ScopeResource:
		return "resource." + name
	case ScopeEvent:
		return "event." + name
	}
	return "." + name
}

// ValueType is the type of a literal or attribute value.
type ValueType int

// The value types.
const (
	TypeNil ValueType = iota
	TypeString
	TypeInt
	TypeFloat
	TypeBool
	TypeDuration
	TypeStatus
	TypeKind
)

// Status values, numbered as in OTLP.
const (
	StatusUnset = 0
	StatusOK    = 1
	StatusError = 2
)

// Kind values, numbered as in OTLP.
const (
	KindUnspecified = 0
	KindInternal    = 1
	KindServer      = 2
	KindClient      = 3
	KindProducer    = 4
	KindConsumer    = 5
)

var statusNames = map[string]int64{"unset": StatusUnset, "ok": StatusOK, "error": StatusError}
var kindNames = map[string]int64{
	"unspecified": KindUnspecified, "internal": KindInternal, "server": KindServer,
	"client": KindClient, "producer": KindProducer, "consumer": KindConsumer,
}

// StatusName returns TraceQL's name of an OTLP status code.
func StatusName(code int64) string {
	for k, v := range statusNames {
		if v == code {
			return k
		}
	}
	return "unset"
}

// KindName returns TraceQL's name of an OTLP span kind.
func KindName(kind int64) string {
	for k, v := range kindNames {
		if v == kind {
			return k
		}
	}
	return "unspecified"
}

// Value is a typed value: a literal in a query or an attribute of a span.
// Durations are nanoseconds in I; status and kind codes are in I.
type Value struct {
	Type ValueType
	S    string
	I    int64
	F    float64
	B    bool
}

// StringValue, IntValue, FloatValue and BoolValue build attribute values.
func StringValue(s string) Value { return Value{Type: TypeString, S: s} }

// IntValue returns an int value.
func IntValue(i int64) Value { return Value{Type: TypeInt, I: i} }

// FloatValue returns a float value.
func FloatValue(f float64) Value { return Value{Type: TypeFloat, F: f} }

// BoolValue returns a bool value.
func BoolValue(b bool) Value { return Value{Type: TypeBool, B: b} }

func (v Value) String() string {
	switch v.Type {
	case TypeString:
		return strconv.Quote(v.S)
	case TypeInt:
		return strconv.FormatInt(v.I, 10)
	case TypeFloat:
		return strconv.FormatFloat(v.F, 'g', -1, 64)
	case TypeBool:
		return strconv.FormatBool(v.B)
	case TypeDuration:
		return time.Duration(v.I).String()
	case TypeStatus:
		return StatusName(v.I)
	case TypeKind:
		return KindName(v.I)
	}
	return "nil"
}

// Text renders the value without quotes, as the tag-values API reports it.
func (v Value) Text() string {
	if v.Type == TypeString {
		return v.S
	}
	return v.String()
}

// TypeName is the type name Tempo's v2 tag-values API uses.
func (v Value) TypeName() string {
	switch v.Type {
	case TypeString:
		return "string"
	case TypeInt:
		return "int"
	case TypeFloat:
		return "float"
	case TypeBool:
		return "bool"
	case TypeDuration:
		return "duration"
	case TypeStatus:
		return "keyword"
	case TypeKind:
		return "keyword"
	}
	return "nil"
}

// Pipeline is a spanset expression followed by stages: `{ … } | by(x) |
// count() > 1`. The input produces one spanset per trace; each stage maps
// the trace's spansets to new ones, and the trace matches when at least
// one spanset survives the last stage. Stages only narrow or regroup the
// input's spans, so a trace can match only where Input matches.
type Pipeline struct {
	Input  Expr
	Stages []Stage
}

func (*Pipeline) isExpr() {}

func (p *Pipeline) String() string {
	var b strings.Builder
	b.WriteString(p.Input.String())
	for _, s := range p.Stages {
		b.WriteString(" | ")
		b.WriteString(s.String())
	}
	return b.String()
}

// Stage is one pipeline stage: a spanset filter (*Filter), an aggregate
// comparison (*AggregateFilter), *GroupBy, *Select or *Coalesce.
type Stage interface {
	fmt.Stringer
	isStage()
}

func (*Filter) isStage() {}

// AggregateFunc names an aggregate over a spanset.
type AggregateFunc int

// The aggregates.
const (
	AggCount AggregateFunc = iota
	AggAvg
	AggMin
	AggMax
	AggSum
)

var aggText = [...]string{"count", "avg", "min", "max", "sum"}

func (a AggregateFunc) String() string { return aggText[a] }

// AggregateFilter keeps the spansets whose aggregate satisfies `Func(Field)
// Op Value`. Field is unused for count. Avg, min, max and sum look only at
// the spans where Field has a numeric value (int, float or a duration); a
// spanset with none has no aggregate and is dropped.
type AggregateFilter struct {
	Func  AggregateFunc
	Field Field
	Op    CmpOp
	Value Value // an int, a float or (for duration fields) a duration
}

func (*AggregateFilter) isStage() {}

func (a *AggregateFilter) String() string {
	arg := ""
	if a.Func != AggCount {
		arg = a.Field.String()
	}
	return a.Func.String() + "(" + arg + ") " + a.Op.String() + " " + a.Value.String()
}

// GroupBy splits each spanset into one spanset per distinct combination of
// the fields' values (spans lacking a field form their own group).
type GroupBy struct {
	Fields []Field
}

func (*GroupBy) isStage() {}

func (g *GroupBy) String() string { return "by(" + fieldList(g.Fields) + ")" }

// Select asks for the fields' values to be returned with each span of the
// result; it leaves the spansets unchanged.
type Select struct {
	Fields []Field
}

func (*Select) isStage() {}

func (s *Select) String() string { return "select(" + fieldList(s.Fields) + ")" }

// Coalesce merges a trace's spansets into one.
type Coalesce struct{}

func (*Coalesce) isStage() {}

func (*Coalesce) String() string { return "coalesce()" }

func fieldList(fs []Field) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.String()
	}
	return strings.Join(parts, ", ")
}
