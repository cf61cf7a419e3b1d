// Package tailexemplar gives the OpenTelemetry Go metrics SDK exemplar
// reservoirs that keep the slow tail: for an explicit bucket histogram, the
// largest measurement of each bucket in each collection interval (ties: the
// latest), and for every other aggregation (sums, gauges, exponential
// histograms) the k largest measurements of each interval.
//
// The SDK's own reservoirs keep, per bucket and interval, a random
// measurement (exemplar.HistogramReservoir) or a uniform random sample
// (exemplar.FixedSizeReservoir), so the slowest request of an interval
// becomes an exemplar only by luck. With this package, the exemplar in each
// bucket is that bucket's worst case, and the top bucket's exemplar is the
// interval's slowest request.
//
// One line gives an instrument tail exemplars:
//
//	sdkmetric.NewMeterProvider(
//		sdkmetric.WithReader(reader),
//		sdkmetric.WithView(tailexemplar.View("webstore.payment.duration")),
//	)
//
// An application that already has a View for the instrument sets
// Stream.ExemplarReservoirProviderSelector to [Selector] in that View's
// Stream instead: two Views matching one instrument make two streams.
//
// # Semantics
//
// Everything except the choice of measurement is the SDK's:
//
//   - Only measurements the MeterProvider's exemplar filter lets through are
//     offered (by default those made inside a sampled span).
//   - A collection ends an interval. With delta temporality the SDK makes a
//     new reservoir for every series in every interval, so a bucket without
//     measurements in an interval has no exemplar. With cumulative
//     temporality the reservoir lives as long as the series: a bucket
//     without measurements in an interval exports its last exemplar again
//     (as the SDK's reservoirs do), and the first measurement of a new
//     interval replaces it whatever its value.
//   - The k largest of a non-bucketed series work the same way: when an
//     interval has fewer than k measurements, the remaining places keep
//     exemplars of earlier intervals (as exemplar.FixedSizeReservoir does),
//     the largest of them.
//   - A measurement's bucket is the SDK's: the first bound at or above it.
//     NaN ranks below every number.
//   - The reservoirs [Selector] picks hold as many exemplars as the SDK's
//     default ones: one per bucket, min(20, MaxSize) for exponential
//     histograms, GOMAXPROCS for the rest.
//
// # Concurrency and cost
//
// The reservoirs are safe for concurrent use: a histogram reservoir locks
// one bucket per Offer, as the SDK's does, and a k-largest reservoir locks
// itself. Like the SDK's built-in reservoirs they tell the SDK so, and the
// SDK then calls them without its own per-series lock. Offer allocates
// nothing; Collect allocates the exemplars' trace and span IDs, as the SDK's
// reservoirs do.
package tailexemplar
