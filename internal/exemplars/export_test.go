package exemplars

import "go.opentelemetry.io/collector/pdata/pcommon"

// Dangling reports whether the trace was found missing after its grace
// period (and has not arrived since).
func (x *Index) Dangling(traceID pcommon.TraceID) bool {
	x.pendMu.Lock()
	defer x.pendMu.Unlock()
	_, ok := x.dangling[traceID]
	return ok
}
