package traceql

// Event is one of a span's events (OTLP span events, such as the
// exception events instrumentation records).
type Event struct {
	Name         string
	TimeUnixNano uint64
	Attrs        []Attr
}

// Event fields follow Tempo's event scope: event.<attr> looks in the
// attributes of the span's events, event:name at their names and
// event:timeSinceStart at their times minus the span's start. A condition
// on an event field holds for a span when it holds for one of its events:
// `event.exception.type = "IOError"` when some event has that attribute
// value, `event:name != "x"` when some event has another name, and, as for
// attributes, `event.x = nil` when no event has x and `event.x != nil`
// when one has. Each comparison looks at the events on its own, so in
// `{ event.a = 1 && event.b = 2 }` the two may hold for different events
// of the span. (Tempo's storage layer asks one event to satisfy all the
// event conditions of a filter joined only by &&; for the exception
// events Grafana queries, whose attributes sit on one event, the two
// agree.)
//
// As a value (select(), by(), the fields a search reports) an event field
// is that of the span's first event that has it, which is the value Tempo
// reports.

// isEventField reports whether f is read from the span's events.
func isEventField(f Field) bool {
	switch f.Intrinsic {
	case IntrinsicEventName, IntrinsicEventTimeSinceStart:
		return true
	case IntrinsicNone:
		return f.Scope == ScopeEvent
	}
	return false
}

// eventValue returns f, an event field, for event e of span s.
func eventValue(f Field, s *Span, e *Event) (Value, bool) {
	switch f.Intrinsic {
	case IntrinsicEventName:
		return StringValue(e.Name), true
	case IntrinsicEventTimeSinceStart:
		return Value{Type: TypeDuration, I: int64(e.TimeUnixNano - s.StartUnixNano)}, true
	}
	return lookup(e.Attrs, f.Name)
}

// firstEventValue returns f, an event field, for the first of s's events
// that has it.
func firstEventValue(f Field, s *Span) (Value, bool) {
	for i := range s.Events {
		if v, ok := eventValue(f, s, &s.Events[i]); ok {
			return v, true
		}
	}
	return Value{}, false
}

// matchEvents reports whether c, a comparison on an event field, holds for
// span s: for one of its events, or for nil, whether any event has the field.
func (c *Compare) matchEvents(s *Span) bool {
	if c.Value.Type == TypeNil {
		_, present := firstEventValue(c.Field, s)
		return c.match(Value{}, present)
	}
	for i := range s.Events {
		if v, ok := eventValue(c.Field, s, &s.Events[i]); ok && c.match(v, true) {
			return true
		}
	}
	return false
}
