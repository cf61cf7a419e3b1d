package analysis

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// BenchmarkSummarize measures the analysis of one alert's evidence: 10
// checkout traces of 14 spans each.
func BenchmarkSummarize(b *testing.B) {
	var traces []ptrace.Traces
	for i := range 10 {
		traces = append(traces, build(uint64(i+1), checkout(time.Duration(7000+100*i)*ms, 3*ms, 1, "")))
	}
	b.ReportAllocs()
	for b.Loop() {
		if s := Summarize(traces); s.Count != 10 {
			b.Fatal(s.Text)
		}
	}
}
