package spanmetrics

import (
	"math/rand/v2"
	"strings"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// adjustedCountCache remembers the last tracestate seen while counting one
// request: the spans of a trace come together and share their tracestate,
// so it is parsed once per run, as the connector's AdjustedCountCache does.
// It lives for one request, whose strings it may keep. The zero value is
// ready to use.
type adjustedCountCache struct {
	tracestate string
	// denominator is 2^56 minus the sampling threshold; 0 means the
	// tracestate carries none and the count is 1.
	denominator uint64
	valid       bool
}

// count returns how many spans a span with this W3C tracestate stands for:
// 1 unless the tracestate carries an OpenTelemetry sampling threshold
// (ot=th:...), then 2^56 / (2^56 - threshold) rounded up or down at random
// so that the sum is unbiased: the connector's
// GetStochasticAdjustedCountWithCache (internal/metrics/adjusted_count.go),
// with the same parser.
func (c *adjustedCountCache) count(tracestate string) uint64 {
	if tracestate == "" {
		return 1
	}
	if !c.valid || tracestate != c.tracestate {
		c.tracestate, c.denominator, c.valid = tracestate, samplingDenominator(tracestate), true
	}
	if c.denominator == 0 {
		return 1
	}
	q, r := sampling.MaxAdjustedCount/c.denominator, sampling.MaxAdjustedCount%c.denominator
	if r != 0 && rand.Uint64N(c.denominator) < r {
		q++
	}
	return q
}

// samplingDenominator returns 2^56 minus the sampling threshold of the
// tracestate, or 0 when it has none (or is malformed).
func samplingDenominator(tracestate string) uint64 {
	if !strings.Contains(tracestate, "ot=") {
		return 0
	}
	ts, err := sampling.NewW3CTraceState(tracestate)
	if err != nil {
		return 0
	}
	th, ok := ts.OTelValue().TValueThreshold()
	if !ok {
		return 0
	}
	return sampling.MaxAdjustedCount - th.Unsigned()
}
