package tailexemplar

import (
	"runtime"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
)

// View returns a View giving the instruments that name matches (as
// sdkmetric.Instrument.Name does: exactly, or with the wildcards * and ?)
// tail exemplars through [Selector]; nothing else about their streams
// changes. Pass it to sdkmetric.WithView.
func View(name string) sdkmetric.View {
	return sdkmetric.NewView(
		sdkmetric.Instrument{Name: name},
		sdkmetric.Stream{ExemplarReservoirProviderSelector: Selector},
	)
}

// Selector is an sdkmetric.ExemplarReservoirProviderSelector choosing, as
// sdkmetric.DefaultExemplarReservoirProviderSelector does, by aggregation,
// with the same sizes but the tail-keeping reservoirs: for an explicit
// bucket histogram with bounds, the largest measurement per bucket
// ([HistogramReservoirProvider] with the aggregation's bounds); for an
// exponential histogram, the min(20, MaxSize) largest; for everything else,
// the GOMAXPROCS largest ([FixedSizeReservoirProvider]).
func Selector(agg sdkmetric.Aggregation) exemplar.ReservoirProvider {
	switch a := agg.(type) {
	case sdkmetric.AggregationExplicitBucketHistogram:
		if len(a.Boundaries) > 0 {
			return HistogramReservoirProvider(a.Boundaries)
		}
	case sdkmetric.AggregationBase2ExponentialHistogram:
		return FixedSizeReservoirProvider(min(int(a.MaxSize), 20))
	}
	return FixedSizeReservoirProvider(max(runtime.GOMAXPROCS(0), 1))
}

var _ sdkmetric.ExemplarReservoirProviderSelector = Selector
