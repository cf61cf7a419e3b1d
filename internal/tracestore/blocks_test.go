package tracestore

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/traceql"
)

// TestBlockFilterQualifiedNames checks that a minute is ruled out when the
// span name, the status and the duration a filter asks for each occur in
// it but never on one span, and kept whenever one span has them all.
func TestBlockFilterQualifiedNames(t *testing.T) {
	type sp struct {
		name   string
		dur    time.Duration
		status ptrace.StatusCode
	}
	summary := func(spans ...sp) *blockSummary {
		var b blockSummary
		td := ptrace.NewTraces()
		ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
		start := pcommon.NewTimestampFromTime(time.Unix(1_800_000_000, 0))
		for _, s := range spans {
			x := ss.AppendEmpty()
			x.SetName(s.name)
			x.SetStartTimestamp(start)
			x.SetEndTimestamp(start + pcommon.Timestamp(s.dur))
			x.Status().SetCode(s.status)
			b.addSpan(x)
		}
		return &b
	}
	// Every ingredient is there, on different spans.
	apart := summary(
		sp{"validate_cart", 2 * time.Millisecond, ptrace.StatusCodeUnset},
		sp{"payment_provider_api", 7 * time.Second, ptrace.StatusCodeError},
	)
	together := summary(
		sp{"validate_cart", 400 * time.Millisecond, ptrace.StatusCodeError},
		sp{"payment_provider_api", 7 * time.Second, ptrace.StatusCodeOk},
	)
	for _, c := range []struct {
		q                       string
		wantApart, wantTogether bool
	}{
		{`{ name = "validate_cart" && duration > 300ms && status = error }`, false, true},
		{`{ name = "validate_cart" && status = error }`, false, true},
		{`{ name = "validate_cart" && duration >= 1ms }`, true, true},
		{`{ name = "validate_cart" && duration > 1s }`, false, false},
		{`{ name = "payment_provider_api" && duration > 5s }`, true, true},
		{`{ name = "payment_provider_api" && status = ok }`, false, true},
		{`{ name = "validate_cart" } && { status = error }`, true, true}, // two spans may hold them
		{`{ name = "validate_cart" || status = error }`, true, true},
		{`{ duration > 5s && status = error }`, true, true}, // no name: the plain summary decides
		{`{ name = "nothing" }`, false, false},
	} {
		f := newBlockFilter(traceql.MustParse(c.q))
		if got := f.mayMatch(apart); got != c.wantApart {
			t.Errorf("%s on a minute with the parts on different spans: mayMatch = %v, want %v", c.q, got, c.wantApart)
		}
		if got := f.mayMatch(together); got != c.wantTogether {
			t.Errorf("%s on a minute with one span holding them: mayMatch = %v, want %v", c.q, got, c.wantTogether)
		}
	}
}
