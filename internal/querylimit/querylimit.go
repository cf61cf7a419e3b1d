// Package querylimit refuses PromQL that would cost too much to parse,
// before it reaches Prometheus's parser: its size and its nesting depth
// are checked with one linear scan. Prometheus's parser is recursive and
// allocates per level, so 100,000 nested parentheses took minutes and
// gigabytes to refuse.
package querylimit

import "fmt"

// Limits on one PromQL expression.
const (
	// MaxBytes bounds a query's length. Grafana's largest generated
	// queries are a few KiB.
	MaxBytes = 64 << 10
	// MaxDepth bounds the nesting of parentheses, brackets and braces.
	MaxDepth = 128
)

// CheckPromQL reports a query that is longer than MaxBytes or nests
// deeper than MaxDepth, in words a user can act on; nil otherwise. Quoted
// strings (label values, regular expressions) do not count towards depth.
func CheckPromQL(q string) error {
	if len(q) > MaxBytes {
		return fmt.Errorf("query is %d bytes, longer than the limit of %d", len(q), MaxBytes)
	}
	depth, maxSeen := 0, 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		if quote != 0 {
			switch {
			case c == '\\' && quote != '`':
				i++ // the escaped character
			case c == quote:
				quote = 0
			}
			continue
		}
		switch c {
		case '"', '\'', '`':
			quote = c
		case '(', '[', '{':
			depth++
			maxSeen = max(maxSeen, depth)
		case ')', ']', '}':
			depth--
		case '#': // a comment runs to the end of the line
			for i < len(q) && q[i] != '\n' {
				i++
			}
		}
	}
	if maxSeen > MaxDepth {
		return fmt.Errorf("query nests parentheses, brackets or braces %d deep, more than the limit of %d", maxSeen, MaxDepth)
	}
	return nil
}
