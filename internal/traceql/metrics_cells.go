package traceql

import (
	"math"
	"slices"
)

// quantileHist is quantile_over_time's histogram of one series in one
// step: counts per bucket code, dense over the codes from lo on. A step's
// values mostly span a few powers of two, so the array stays short, and
// counting a value is an index, not a hash lookup. Values spread wider
// than maxDenseBuckets codes move the histogram to a map of the non-empty
// buckets.
type quantileHist struct {
	lo     int32
	counts []uint32
	sparse map[int32]uint32
}

// maxDenseBuckets bounds a dense histogram: 256 codes are 16 powers of
// two, five orders of magnitude.
const maxDenseBuckets = 256

// add adds c to code's count and returns how many buckets the histogram
// grew by (0 when it had code's).
func (h *quantileHist) add(code int32, c uint32) int {
	if h.sparse != nil {
		_, had := h.sparse[code]
		h.sparse[code] += c
		if had {
			return 0
		}
		return 1
	}
	n := int32(len(h.counts))
	switch {
	case n == 0:
		h.lo, h.counts = code, append(h.counts, c)
		return 1
	case code >= h.lo && code < h.lo+n:
		h.counts[code-h.lo] += c
		return 0
	case max(code, h.lo+n-1)-min(code, h.lo) >= maxDenseBuckets:
		// Too wide: a map of the non-empty buckets.
		h.sparse = make(map[int32]uint32)
		for j, x := range h.counts {
			if x > 0 {
				h.sparse[h.lo+int32(j)] = x
			}
		}
		grown := len(h.sparse) - len(h.counts) + 1
		h.counts = nil
		h.sparse[code] = c
		return grown
	case code < h.lo:
		// Grow downwards with room for more, as upwards append does.
		grow := min(max(h.lo-code, n/2), maxDenseBuckets-n)
		counts := make([]uint32, int(grow+n))
		copy(counts[grow:], h.counts)
		h.lo, h.counts = h.lo-grow, counts
		h.counts[code-h.lo] += c
		return int(grow)
	}
	grow := code - h.lo - n + 1
	h.counts = append(h.counts, make([]uint32, grow)...)
	h.counts[code-h.lo] += c
	return int(grow)
}

// each calls f for every non-empty bucket, in code order.
func (h *quantileHist) each(f func(code int32, c uint32) bool) {
	if h.sparse == nil {
		for j, c := range h.counts {
			if c > 0 && !f(h.lo+int32(j), c) {
				return
			}
		}
		return
	}
	codes := make([]int32, 0, len(h.sparse))
	for code := range h.sparse {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	for _, code := range codes {
		if !f(code, h.sparse[code]) {
			return
		}
	}
}

// quantiles fills vals with the value at rank ⌈q·n⌉ (at least 1) for each
// of qs; it returns false, leaving vals alone, when the histogram is empty.
func (h *quantileHist) quantiles(qs []float64, vals []float64) bool {
	var total uint64
	h.each(func(_ int32, c uint32) bool { total += uint64(c); return true })
	if total == 0 {
		return false
	}
	for qi, p := range qs {
		rank := uint64(max(1, math.Ceil(p*float64(total))))
		var cum uint64
		h.each(func(code int32, c uint32) bool {
			if cum += uint64(c); cum >= rank {
				vals[qi] = quantileValue(uint32(code))
				return false
			}
			return true
		})
	}
	return true
}

// size is the buckets the histogram holds.
func (h *quantileHist) size() int {
	if h.sparse != nil {
		return len(h.sparse)
	}
	return len(h.counts)
}

// quantileBounds[j] is 2^((j-16)/16), j = 0…16: the upper bounds of the
// sixteen buckets of a power of two, as fractions of it.
var quantileBounds = func() (b [quantileSubBuckets + 1]float64) {
	for j := range b {
		b[j] = math.Exp2(float64(j-quantileSubBuckets) / quantileSubBuckets)
	}
	return b
}()

// quantileK is ⌈16·log2 a⌉ for a finite a > 0, from a's binary exponent
// and a search of its mantissa among the bucket bounds: no logarithm.
func quantileK(a float64) int {
	frac, exp := math.Frexp(a) // a = frac·2^exp, frac in [0.5, 1)
	j, _ := slices.BinarySearch(quantileBounds[:], frac)
	return exp*quantileSubBuckets + j - quantileSubBuckets
}
