// Package ingest holds the interfaces where telemetry crosses from the OTLP
// receivers to the stores, so neither side imports the other.
package ingest

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// MetricsSink receives decoded OTLP metrics. Implementations must be safe for
// concurrent use: receivers call ConsumeMetrics from many goroutines at once.
// The sink owns md only for the duration of the call.
type MetricsSink interface {
	// ConsumeMetrics stores md. A nil error with Result.Rejected > 0 is an OTLP
	// partial success. Errors wrapping ErrBadData map to HTTP 400 / gRPC
	// InvalidArgument; errors wrapping ErrOverloaded map to HTTP 429 / gRPC
	// ResourceExhausted with retry info; anything else is a 500 / Internal.
	ConsumeMetrics(ctx context.Context, md pmetric.Metrics) (Result, error)
}

// TracesSink receives decoded OTLP traces, with the same concurrency,
// ownership and error rules as MetricsSink.
type TracesSink interface {
	ConsumeTraces(ctx context.Context, td ptrace.Traces) (Result, error)
}

// Result reports what part of a request was not stored.
type Result struct {
	// Rejected counts data points (metrics) or spans (traces) not stored.
	Rejected int64
	// Message explains the rejection to the client; empty when Rejected is 0.
	Message string
}

var (
	// ErrBadData marks a request that can never be accepted as sent.
	ErrBadData = errors.New("bad data")
	// ErrOverloaded marks a request the server cannot take now; the client
	// should retry later.
	ErrOverloaded = errors.New("server overloaded")
)
