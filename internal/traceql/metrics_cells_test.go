package traceql

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestQuantileK compares the logarithm-free bucket index with ⌈16·log2 a⌉
// over values across the float range; only values within a rounding error
// of a bucket bound may land in the neighbouring bucket.
func TestQuantileK(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200_000 {
		a := math.Exp2(rng.Float64()*120 - 60)
		if i%10 == 0 {
			a = float64(1 + rng.IntN(1e6)) // integers, as counts and sizes are
		}
		want := math.Log2(a) * quantileSubBuckets
		got := quantileK(a)
		if got != int(math.Ceil(want)) && math.Abs(want-math.Round(want)) > 1e-9 {
			t.Fatalf("quantileK(%g) = %d, want %d", a, got, int(math.Ceil(want)))
		}
	}
	for _, c := range []struct {
		a    float64
		want int
	}{{1, 0}, {2, 16}, {0.5, -16}, {1.0001, 1}, {math.SmallestNonzeroFloat64, -1074 * 16}} {
		if got := quantileK(c.a); got != c.want {
			t.Errorf("quantileK(%g) = %d, want %d", c.a, got, c.want)
		}
	}
}

// TestQuantileHist checks a step's histogram against counts kept in a map,
// codes arriving in random order (growing it down and up).
func TestQuantileHist(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 50 {
		var h quantileHist
		want := map[int32]uint32{}
		buckets := 0
		for range 1 + rng.IntN(500) {
			code := int32(rng.IntN(400)) - 200 // wider than a dense histogram
			if round%2 == 0 {
				code /= 4 // dense
			}
			c := uint32(1 + rng.IntN(3))
			buckets += h.add(code, c)
			want[code] += c
		}
		if buckets != h.size() {
			t.Fatalf("add reported %d buckets, the histogram has %d", buckets, h.size())
		}
		h.each(func(code int32, c uint32) bool {
			if want[code] != c {
				t.Fatalf("code %d: %d, want %d", code, c, want[code])
			}
			return true
		})
		total := uint32(0)
		for _, c := range want {
			total += c
		}
		var sum uint32
		h.each(func(_ int32, c uint32) bool { sum += c; return true })
		if sum != total {
			t.Fatalf("histogram holds %d values, want %d", sum, total)
		}
	}
}
