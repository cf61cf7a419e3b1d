package remote

import (
	"encoding/hex"

	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/lookout-dev/lookout/internal/analysis"
)

// parseTraceID parses a trace ID as Tempo writes it: hex in any case, up to
// 32 digits, leading zeros optional (left-padded), not all zeros: the
// analysis engine's parser, so remote and embedded sources agree.
func parseTraceID(s string) (pcommon.TraceID, bool) {
	return analysis.ParseTraceID(s)
}

// parseSpanID parses a span ID the same way: hex in any case, up to 16
// digits, left-padded, not all zeros.
func parseSpanID(s string) (pcommon.SpanID, bool) {
	var id pcommon.SpanID
	if s == "" || len(s) > 2*len(id) {
		return id, false
	}
	if len(s)%2 == 1 {
		s = "0" + s
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return id, false
	}
	copy(id[len(id)-len(b):], b)
	return id, !id.IsEmpty()
}

// traceIDFromLabels returns the trace ID of an exemplar from the first of
// its trace ID labels that parses.
func traceIDFromLabels(ls model.LabelSet) (pcommon.TraceID, bool) {
	for _, name := range traceIDLabels {
		if id, ok := parseTraceID(string(ls[name])); ok {
			return id, true
		}
	}
	return pcommon.TraceID{}, false
}

// spanIDFromLabels returns the span ID of an exemplar, or the zero ID.
func spanIDFromLabels(ls model.LabelSet) pcommon.SpanID {
	for _, name := range spanIDLabels {
		if id, ok := parseSpanID(string(ls[name])); ok {
			return id
		}
	}
	return pcommon.SpanID{}
}
