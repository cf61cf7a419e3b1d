// Package analysis turns the traces behind an alert's exemplars into a
// one-line root-cause summary.
//
// Summarize walks each trace's span tree, computes every span's contribution
// to the trace's critical path (self time that the root actually waited for,
// not time hidden behind a slower sibling), and names the span that dominates
// the most traces, e.g. "payment_provider_api 7.6 s in 5 of 5". When no span
// is slow (the alert is about values, not latency, such as the seed's 500x
// quantity bug), it reports the span attributes the traces share instead, e.g.
// "quantity=500 in 5 of 5", and when most traces failed it names the failing
// span.
package analysis
