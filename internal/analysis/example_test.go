package analysis_test

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/analysis"
)

// A checkout whose payment provider call took 7.6 s: the summary names the
// span that dominates the critical path.
func ExampleSummarize() {
	start := time.Date(2026, 11, 24, 14, 23, 0, 0, time.UTC)
	td := ptrace.NewTraces()
	add := func(service, name string, id, parent byte, from, to time.Duration) {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", service)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{1})
		sp.SetSpanID(pcommon.SpanID{id})
		if parent != 0 {
			sp.SetParentSpanID(pcommon.SpanID{parent})
		}
		sp.SetName(name)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(from)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(to)))
	}
	ms := time.Millisecond
	add("main-service", "POST /checkout", 1, 0, 0, 7700*ms)
	add("main-service", "check_inventory", 2, 1, 5*ms, 40*ms)
	add("main-service", "process_payment", 3, 1, 40*ms, 7680*ms)
	add("payments-service", "payment_provider_api", 4, 3, 50*ms, 7650*ms)

	fmt.Println(analysis.Summarize([]ptrace.Traces{td}))
	// Output: payment_provider_api 7.6 s in 1 of 1
}
