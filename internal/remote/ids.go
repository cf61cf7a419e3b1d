package remote

import (
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/lookout-dev/lookout/internal/traceid"
)

// parseTraceID parses a trace ID as Tempo writes it, by traceid.Parse's
// rule, so a remote and the embedded stores agree on which IDs are valid.
func parseTraceID(s string) (pcommon.TraceID, bool) {
	id, err := traceid.Parse(s)
	return id, err == nil
}

// traceIDFromLabels returns the trace ID of an exemplar (traceid.FromLabels).
func traceIDFromLabels(ls model.LabelSet) (pcommon.TraceID, bool) {
	return traceid.FromLabels(func(n string) string { return string(ls[model.LabelName(n)]) })
}

// spanIDFromLabels returns the span ID of an exemplar, or the zero ID.
func spanIDFromLabels(ls model.LabelSet) pcommon.SpanID {
	return traceid.SpanFromLabels(func(n string) string { return string(ls[model.LabelName(n)]) })
}
