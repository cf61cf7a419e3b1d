package analysis

import (
	"slices"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Selectors returns the matcher sets of expr's series selectors, where the
// exemplars of what expr is about live. Selectors with an offset look at a
// baseline, not at the spike; they are used only when every selector has
// one. A _sum or _count selector also selects its histogram's _bucket
// series. When one selector selects a subset of another's series (an error
// ratio's numerator), only the narrower one is kept.
func Selectors(expr parser.Expr) [][]*labels.Matcher {
	var current, offset [][]*labels.Matcher
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if n, ok := node.(*parser.VectorSelector); ok {
			sets := withBucket(n.LabelMatchers)
			if n.OriginalOffset != 0 || n.Timestamp != nil || n.StartOrEnd != 0 {
				offset = append(offset, sets...)
			} else {
				current = append(current, sets...)
			}
		}
		return nil
	})
	if len(current) == 0 {
		current = offset
	}
	return mostSpecific(current)
}

// LongestRange returns the longest range selector in expr that looks at
// the present (ranges with an offset look at a baseline), or 0.
func LongestRange(expr parser.Expr) time.Duration {
	var window time.Duration
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if n, ok := node.(*parser.MatrixSelector); ok {
			if vs, ok := n.VectorSelector.(*parser.VectorSelector); ok && (vs.OriginalOffset != 0 || vs.Timestamp != nil) {
				return nil
			}
			window = max(window, n.Range)
		}
		return nil
	})
	return window
}

// mostSpecific drops a selector when another one selects a subset of its
// series (same matchers and more). Duplicates are dropped too.
func mostSpecific(sets [][]*labels.Matcher) [][]*labels.Matcher {
	keys := make([]map[string]bool, len(sets))
	for i, s := range sets {
		keys[i] = map[string]bool{}
		for _, m := range s {
			keys[i][m.String()] = true
		}
	}
	contains := func(a, b map[string]bool) bool { // a ⊇ b
		for k := range b {
			if !a[k] {
				return false
			}
		}
		return true
	}
	var out [][]*labels.Matcher
	for i := range sets {
		drop := false
		for j := range sets {
			if i == j || !contains(keys[j], keys[i]) {
				continue
			}
			// j selects a subset of i's series (or the same, then keep the first).
			if len(keys[j]) > len(keys[i]) || j < i {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, sets[i])
		}
	}
	return out
}

func withBucket(ms []*labels.Matcher) [][]*labels.Matcher {
	out := [][]*labels.Matcher{ms}
	for i, m := range ms {
		if m.Name != labels.MetricName || m.Type != labels.MatchEqual {
			continue
		}
		for _, suffix := range []string{"_count", "_sum"} {
			if base, ok := strings.CutSuffix(m.Value, suffix); ok {
				b := slices.Clone(ms)
				b[i] = labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, base+"_bucket")
				out = append(out, b)
			}
		}
	}
	return out
}

// renderSelector writes matchers as a PromQL selector, {a="b",…}.
func renderSelector(ms []*labels.Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// metricName is the metric the selectors are about (the first equality
// matcher on __name__), without a histogram suffix.
func metricName(sels [][]*labels.Matcher) string {
	for _, s := range sels {
		for _, m := range s {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if base, ok := strings.CutSuffix(m.Value, suffix); ok {
						return base
					}
				}
				return m.Value
			}
		}
	}
	return ""
}

// durationScale says whether metric measures time, by its name, and how
// many of its units make a second: Prometheus's unit suffixes, OpenTelemetry
// names such as http_server_request_duration (seconds), and the older HTTP
// conventions' http_server_duration and http_client_duration, which are in
// milliseconds.
func durationScale(metric string) (float64, bool) {
	m := strings.ToLower(metric)
	switch {
	case strings.HasSuffix(m, "_milliseconds") || strings.HasSuffix(m, "_ms") ||
		m == "http_server_duration" || m == "http_client_duration" ||
		strings.HasPrefix(m, "http_server_duration_") || strings.HasPrefix(m, "http_client_duration_"):
		return 1000, true
	case strings.HasSuffix(m, "_microseconds") || strings.HasSuffix(m, "_us"):
		return 1e6, true
	case strings.HasSuffix(m, "_seconds") || strings.Contains(m, "duration") || strings.Contains(m, "latency"):
		return 1, true
	}
	return 0, false
}

// thresholdOf returns the number a comparison in expr holds a value in the
// metric's unit against: `histogram_quantile(…) > 5`, or a selector or
// rate-free aggregation compared with a number. Comparisons of ratios,
// rates and counts are not in the metric's unit and give nil.
func thresholdOf(expr parser.Expr) *float64 {
	var out *float64
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		b, ok := node.(*parser.BinaryExpr)
		if !ok || out != nil || !b.Op.IsComparisonOperator() {
			return nil
		}
		side, num := b.LHS, b.RHS
		if _, ok := unwrap(side).(*parser.NumberLiteral); ok {
			side, num = b.RHS, b.LHS
		}
		n, ok := unwrap(num).(*parser.NumberLiteral)
		if !ok || !inUnit(side) {
			return nil
		}
		v := n.Val
		out = &v
		return nil
	})
	return out
}

func unwrap(e parser.Expr) parser.Expr {
	for {
		p, ok := e.(*parser.ParenExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

// inUnit reports whether e's values are in the histogram's own unit.
func inUnit(e parser.Expr) bool {
	switch n := unwrap(e).(type) {
	case *parser.Call:
		return n.Func.Name == "histogram_quantile"
	case *parser.AggregateExpr:
		return (n.Op == parser.MAX || n.Op == parser.MIN) && inUnit(n.Expr)
	}
	return false
}

// parserFor parses a PromQL expression with the options Analyze uses.
func parserFor(q string) (parser.Expr, error) {
	return parser.NewParser(parser.Options{}).ParseExpr(q)
}
