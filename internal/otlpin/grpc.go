package otlpin

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/lookout-dev/lookout/internal/ingest"
)

type metricsGRPC struct {
	pmetricotlp.UnimplementedGRPCServer
	r *Receiver
}

// Export implements pmetricotlp.GRPCServer.
func (s *metricsGRPC) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	r := s.r
	start := time.Now()
	md := req.Metrics()
	n := int64(md.DataPointCount())
	resp := pmetricotlp.NewExportResponse()
	res, err := r.consume(ctx, func(ctx context.Context) (ingest.Result, error) { return r.metrics.ConsumeMetrics(ctx, md) })
	r.observe("metrics", "grpc", n, res, err, start)
	if err != nil {
		return resp, r.grpcError(err)
	}
	if res.Rejected > 0 {
		resp.PartialSuccess().SetRejectedDataPoints(res.Rejected)
		resp.PartialSuccess().SetErrorMessage(res.Message)
	}
	return resp, nil
}

type tracesGRPC struct {
	ptraceotlp.UnimplementedGRPCServer
	r *Receiver
}

// Export implements ptraceotlp.GRPCServer.
func (s *tracesGRPC) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	r := s.r
	start := time.Now()
	td := req.Traces()
	n := int64(td.SpanCount())
	resp := ptraceotlp.NewExportResponse()
	res, err := r.consume(ctx, func(ctx context.Context) (ingest.Result, error) { return r.traces.ConsumeTraces(ctx, td) })
	r.observe("traces", "grpc", n, res, err, start)
	if err != nil {
		return resp, r.grpcError(err)
	}
	if res.Rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(res.Rejected)
		resp.PartialSuccess().SetErrorMessage(res.Message)
	}
	return resp, nil
}

// consume runs store under the concurrency limit.
func (r *Receiver) consume(ctx context.Context, store func(context.Context) (ingest.Result, error)) (ingest.Result, error) {
	if !r.acquire() {
		return ingest.Result{}, errTooManyRequests
	}
	defer r.release()
	return store(ctx)
}

var errTooManyRequests = errors.Join(ingest.ErrOverloaded, errors.New("too many concurrent export requests"))

func (r *Receiver) grpcError(err error) error {
	switch {
	case errors.Is(err, ingest.ErrBadData):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ingest.ErrOverloaded):
		st := status.New(codes.ResourceExhausted, err.Error())
		if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(r.opts.RetryAfter)}); derr == nil {
			st = d
		}
		return st.Err()
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

// observe records one request's outcome in the receiver's metrics.
func (r *Receiver) observe(signal, transport string, items int64, res ingest.Result, err error, start time.Time) {
	r.m.latency.WithLabelValues(signal, transport).Observe(time.Since(start).Seconds())
	var code string
	switch {
	case err == nil:
		code = "ok"
		// A sink reports at most items rejected; clamp anyway, as a
		// counter that went down would panic.
		r.m.items.WithLabelValues(signal, transport).Add(float64(max(items-res.Rejected, 0)))
		if res.Rejected > 0 {
			code = "partial"
			r.m.rejected.WithLabelValues(signal, transport).Add(float64(res.Rejected))
		}
	case errors.Is(err, ingest.ErrBadData):
		code = "bad_data"
		r.m.rejected.WithLabelValues(signal, transport).Add(float64(items))
	case errors.Is(err, ingest.ErrOverloaded):
		code = "overloaded"
		r.m.rejected.WithLabelValues(signal, transport).Add(float64(items))
	default:
		code = "error"
		r.m.rejected.WithLabelValues(signal, transport).Add(float64(items))
		r.logger.Warn("storing OTLP data failed", "signal", signal, "transport", transport, "err", err)
	}
	r.m.requests.WithLabelValues(signal, transport, code).Inc()
}
