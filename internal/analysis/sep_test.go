package analysis

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSeparation checks the merge-based separation against the pairwise
// definition on random samples with ties.
func TestSeparation(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 500 {
		xs := make([]float64, rng.IntN(30))
		ys := make([]float64, rng.IntN(30))
		for j := range xs {
			xs[j] = float64(rng.IntN(8))
		}
		for j := range ys {
			ys[j] = float64(rng.IntN(8))
		}
		slices.Sort(xs)
		slices.Sort(ys)
		want := 0.0
		if len(xs) > 0 && len(ys) > 0 {
			var s float64
			for _, x := range xs {
				for _, y := range ys {
					switch {
					case x > y:
						s += 2
					case x == y:
						s++
					}
				}
			}
			want = s/float64(len(xs)*len(ys)) - 1
		}
		if got := separation(xs, ys); got-want > 1e-12 || want-got > 1e-12 {
			t.Fatalf("case %d: separation(%v, %v) = %v, want %v", i, xs, ys, got, want)
		}
	}
}
