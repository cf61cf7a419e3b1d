package querylimit

import (
	"strings"
	"testing"
)

func TestCheckPromQL(t *testing.T) {
	for _, tt := range []struct {
		q    string
		want string // "" means accepted
	}{
		{`histogram_quantile(0.95, sum by (le) (rate(x_bucket{job="a"}[5m]))) > 5`, ""},
		{strings.Repeat("(", MaxDepth) + "1" + strings.Repeat(")", MaxDepth), ""},
		{strings.Repeat("(", MaxDepth+1) + "1" + strings.Repeat(")", MaxDepth+1), "nests"},
		{strings.Repeat("(", 60_000), "nests"},
		{strings.Repeat("(", 100_000), "longer than the limit"},
		{`x{a="` + strings.Repeat("(", 1000) + `"}`, ""}, // inside a string
		{`x{a=~"\"(((("}`, ""},                              // escaped quote
		{"x # " + strings.Repeat("(", 1000) + "\n + y", ""}, // in a comment
		{strings.Repeat("x+", MaxBytes), "longer than the limit"},
	} {
		err := CheckPromQL(tt.q)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%.60q: %v", tt.q, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%.60q: %v, want %q", tt.q, err, tt.want)
		}
	}
}

func FuzzCheckPromQL(f *testing.F) {
	f.Add(`sum(rate(x[5m]))`)
	f.Add(`x{a="\"(("}`)
	f.Fuzz(func(t *testing.T, q string) {
		_ = CheckPromQL(q) // never panics, never hangs
	})
}
