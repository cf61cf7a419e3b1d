package otlpin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/lookout-dev/lookout/internal/ingest"
)

// rawMessage is an OTLP/gRPC request or response as bytes on the wire:
// requests are admitted by size and then decoded by the handler, which can
// then answer a malformed one InvalidArgument (gRPC answers a codec's
// errors Internal).
type rawMessage struct{ b []byte }

// rawCodec moves rawMessages to and from the wire unchanged.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMessage)
	if !ok {
		return nil, fmt.Errorf("otlpin: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("otlpin: cannot unmarshal into %T", v)
	}
	m.b = data.Materialize() // a copy: gRPC frees data on return
	return nil
}

func (rawCodec) Name() string { return "proto" }

// The OTLP/gRPC services, as opentelemetry-proto defines them, over raw
// messages.
const (
	metricsService = "opentelemetry.proto.collector.metrics.v1.MetricsService"
	tracesService  = "opentelemetry.proto.collector.trace.v1.TraceService"
	metricsExport  = "/" + metricsService + "/Export"
	tracesExport   = "/" + tracesService + "/Export"
)

var (
	metricsServiceDesc = serviceDesc(metricsService, "opentelemetry/proto/collector/metrics/v1/metrics_service.proto", metricsSignal)
	tracesServiceDesc  = serviceDesc(tracesService, "opentelemetry/proto/collector/trace/v1/trace_service.proto", tracesSignal)
)

func serviceDesc(name, file string, sig otlpSignal) grpc.ServiceDesc {
	method := "/" + name + "/Export"
	return grpc.ServiceDesc{
		ServiceName: name,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Export",
			Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
				// tapAdmit admitted the call and reserved its budget.
				res := ctx.Value(reservationKey{}).(*reservation)
				defer res.release()
				in := new(rawMessage)
				if err := dec(in); err != nil {
					return nil, err
				}
				res.resize(int64(len(in.b)))
				h := func(ctx context.Context, req any) (any, error) {
					return srv.(*Receiver).exportGRPC(ctx, sig, req.(*rawMessage))
				}
				if interceptor == nil {
					return h(ctx, in)
				}
				return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, h)
			},
		}},
		Metadata: file,
	}
}

// tapAdmit admits a new OTLP/gRPC call before its message is read: it
// refuses the call while memory is over the limit, and reserves the largest
// message the call may carry from the in-flight budget, as gRPC reads the
// whole message before the handler learns its size. The handler shrinks the
// reservation to the message's size once read, and releases it when done.
func (r *Receiver) tapAdmit(ctx context.Context, info *tap.Info) (context.Context, error) {
	if info.FullMethodName != metricsExport && info.FullMethodName != tracesExport {
		// Not an OTLP Export: gRPC answers Unimplemented without reading it.
		return ctx, nil
	}
	if err := r.admit.acquire(r.opts.MaxRequestBytes); err != nil {
		r.observe(methodSignal(info.FullMethodName), "grpc", 0, ingest.Result{}, err, time.Now())
		return ctx, r.grpcError(err)
	}
	return context.WithValue(ctx, reservationKey{}, &reservation{a: r.admit, n: r.opts.MaxRequestBytes}), nil
}

// reservationKey is the context key of a gRPC call's *reservation.
type reservationKey struct{}

// reservation is the part of the in-flight budget one gRPC call holds.
type reservation struct {
	a *admission
	n int64
}

// resize gives back what the call holds beyond n bytes.
func (res *reservation) resize(n int64) {
	if n < res.n {
		res.a.release(res.n - n)
		res.n = n
	}
}

func (res *reservation) release() {
	res.a.release(res.n)
	res.n = 0
}

func methodSignal(fullMethod string) string {
	if fullMethod == tracesExport {
		return tracesSignal.name
	}
	return metricsSignal.name
}

// exportGRPC is the OTLP/gRPC exchange shared by every signal, once
// tapAdmit admitted the call: decode the message, store it and answer with
// the signal's response, carrying a partial success when items were
// rejected.
func (r *Receiver) exportGRPC(ctx context.Context, sig otlpSignal, in *rawMessage) (*rawMessage, error) {
	signal := sig.name
	start := time.Now()
	n, consume, err := sig.decode(r, contentTypeProto, in.b)
	if err != nil {
		r.m.requests.WithLabelValues(signal, "grpc", "bad_data").Inc()
		return nil, status.Error(codes.InvalidArgument, "decode OTLP "+signal+": "+err.Error())
	}
	res, err := r.consume(ctx, consume)
	r.observe(signal, "grpc", n, res, err, start)
	if err != nil {
		return nil, r.grpcError(err)
	}
	toProto, _ := sig.respond(res)
	b, err := toProto()
	if err != nil {
		return nil, status.Error(codes.Internal, "encode response: "+err.Error())
	}
	return &rawMessage{b: b}, nil
}

// consume runs store under the concurrency limit, unless the client has
// gone: an abandoned request is not stored.
func (r *Receiver) consume(ctx context.Context, store func(context.Context) (ingest.Result, error)) (ingest.Result, error) {
	if err := ctx.Err(); err != nil {
		return ingest.Result{}, err
	}
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
