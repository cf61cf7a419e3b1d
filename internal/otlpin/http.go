package otlpin

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-dev/lookout/internal/ingest"
)

const (
	contentTypeProto = "application/x-protobuf"
	contentTypeJSON  = "application/json"
)

// errTooLarge marks a body over MaxRequestBytes once decompressed.
var errTooLarge = errors.New("request body too large")

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Handler returns the OTLP/HTTP handler: POST /v1/metrics and /v1/traces.
func (r *Receiver) Handler() http.Handler {
	mux := http.NewServeMux()
	for path, sig := range map[string]otlpSignal{"/v1/metrics": metricsSignal, "/v1/traces": tracesSignal} {
		mux.HandleFunc(path, func(w http.ResponseWriter, req *http.Request) { r.serveSignal(w, req, sig) })
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		writeStatus(w, contentTypeOf(req), http.StatusNotFound, codes.NotFound,
			fmt.Sprintf("unknown path %q: OTLP/HTTP serves /v1/metrics and /v1/traces", req.URL.Path))
	})
	return mux
}

// contentTypeOf returns the request's OTLP encoding, for error bodies.
func contentTypeOf(req *http.Request) string {
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if mt == contentTypeJSON {
		return contentTypeJSON
	}
	return contentTypeProto
}

// readRequest checks method and content type and reads the body,
// decompressing gzip and enforcing the size limit while it reads, and
// admitting its bytes against the receiver's memory budget before they are
// read. It writes the error response itself and returns ok=false on
// failure; on success the caller releases held bytes of the budget once the
// request is done.
func (r *Receiver) readRequest(w http.ResponseWriter, req *http.Request, buf *bytes.Buffer) (ct string, held int64, ok bool) {
	ct = contentTypeOf(req)
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeStatus(w, ct, http.StatusMethodNotAllowed, codes.Unimplemented, req.Method+" not allowed: OTLP/HTTP takes POST")
		return ct, 0, false
	}
	mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || (mt != contentTypeProto && mt != contentTypeJSON) {
		writeStatus(w, ct, http.StatusUnsupportedMediaType, codes.InvalidArgument,
			fmt.Sprintf("unsupported content type %q: send %s or %s", req.Header.Get("Content-Type"), contentTypeProto, contentTypeJSON))
		return ct, 0, false
	}
	encoding := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding")))
	identity := encoding == "" || encoding == "identity"
	if identity && req.ContentLength > r.opts.MaxRequestBytes {
		// Refused before a byte of it is read.
		writeStatus(w, ct, http.StatusRequestEntityTooLarge, codes.InvalidArgument,
			fmt.Sprintf("%v: Content-Length %d is over %d bytes", errTooLarge, req.ContentLength, r.opts.MaxRequestBytes))
		return ct, 0, false
	}
	// Reserve what the body will take: its length when it is sent as is,
	// else a first chunk, more being reserved as it decompresses.
	reserve := int64(admitChunk)
	if identity && req.ContentLength > 0 {
		reserve = req.ContentLength
	}
	if err := r.admit.acquire(reserve); err != nil {
		r.writeSinkError(w, ct, err)
		return ct, 0, false
	}
	if identity && req.ContentLength > 0 {
		buf.Grow(int(reserve) + 1)
	}
	body := &admittedReader{a: r.admit, held: reserve}
	if err := readBody(buf, req.Body, encoding, r.opts.MaxRequestBytes, body); err != nil {
		r.admit.release(body.held)
		switch {
		case errors.Is(err, errTooLarge):
			writeStatus(w, ct, http.StatusRequestEntityTooLarge, codes.InvalidArgument, err.Error())
		case errors.Is(err, ingest.ErrOverloaded):
			r.writeSinkError(w, ct, err)
		default:
			writeStatus(w, ct, http.StatusBadRequest, codes.InvalidArgument, err.Error())
		}
		return ct, 0, false
	}
	return ct, body.held, true
}

// admitChunk is how much of the memory budget a body whose decompressed
// size is not known yet reserves at a time.
const admitChunk = 1 << 20

// admittedReader reserves budget for the (decompressed) bytes read through
// it beyond those already held, failing the read when the budget is spent.
type admittedReader struct {
	r          io.Reader
	a          *admission
	held, read int64
}

func (ar *admittedReader) Read(p []byte) (int, error) {
	n, err := ar.r.Read(p)
	ar.read += int64(n)
	for ar.read > ar.held {
		if aerr := ar.a.acquire(admitChunk); aerr != nil {
			return n, aerr
		}
		ar.held += admitChunk
	}
	return n, err
}

// readBody copies body into buf through ar (nil: no admission), decoding
// the content encoding, and fails as soon as more than limit decompressed
// bytes arrive.
func readBody(buf *bytes.Buffer, body io.Reader, encoding string, limit int64, ar *admittedReader) error {
	var src io.Reader
	switch encoding {
	case "", "identity":
		src = body
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return fmt.Errorf("bad gzip body: %w", err)
		}
		defer zr.Close()
		src = zr
	default:
		return fmt.Errorf("unsupported content encoding %q: send gzip or no encoding", encoding)
	}
	if ar != nil {
		ar.r = src
		src = ar
	}
	n, err := buf.ReadFrom(io.LimitReader(src, limit+1))
	if err != nil {
		if errors.Is(err, ingest.ErrOverloaded) {
			return err
		}
		return fmt.Errorf("read body: %w", err)
	}
	if n > limit {
		return fmt.Errorf("%w: over %d bytes decompressed", errTooLarge, limit)
	}
	return nil
}

// otlpSignal is what both transports know of one signal: how a request
// becomes the sink call (with its item count) and how its answer is built.
type otlpSignal struct {
	name    string
	decode  func(r *Receiver, ct string, body []byte) (int64, consumeFunc, error)
	respond func(res ingest.Result) (toProto, toJSON func() ([]byte, error))
}

var (
	metricsSignal = otlpSignal{
		name: "metrics",
		decode: func(r *Receiver, ct string, body []byte) (int64, consumeFunc, error) {
			er := pmetricotlp.NewExportRequest()
			if err := unmarshal(ct, body, er.UnmarshalProto, er.UnmarshalJSON); err != nil {
				return 0, nil, err
			}
			n, consume := r.metricsConsumer(er.Metrics())
			return n, consume, nil
		},
		respond: func(res ingest.Result) (toProto, toJSON func() ([]byte, error)) {
			resp := pmetricotlp.NewExportResponse()
			if res.Rejected > 0 {
				resp.PartialSuccess().SetRejectedDataPoints(res.Rejected)
				resp.PartialSuccess().SetErrorMessage(res.Message)
			}
			return resp.MarshalProto, resp.MarshalJSON
		},
	}
	tracesSignal = otlpSignal{
		name: "traces",
		decode: func(r *Receiver, ct string, body []byte) (int64, consumeFunc, error) {
			er := ptraceotlp.NewExportRequest()
			if err := unmarshal(ct, body, er.UnmarshalProto, er.UnmarshalJSON); err != nil {
				return 0, nil, err
			}
			n, consume := r.tracesConsumer(er.Traces())
			return n, consume, nil
		},
		respond: func(res ingest.Result) (toProto, toJSON func() ([]byte, error)) {
			resp := ptraceotlp.NewExportResponse()
			if res.Rejected > 0 {
				resp.PartialSuccess().SetRejectedSpans(res.Rejected)
				resp.PartialSuccess().SetErrorMessage(res.Message)
			}
			return resp.MarshalProto, resp.MarshalJSON
		},
	}
)

// consumeFunc hands one decoded request to its sink.
type consumeFunc func(ctx context.Context) (ingest.Result, error)

// serveSignal is the OTLP/HTTP exchange shared by every signal: read the
// body within the size limit, decode it, store it, and answer with the
// signal's response, carrying a partial success when items were rejected.
func (r *Receiver) serveSignal(w http.ResponseWriter, req *http.Request, sig otlpSignal) {
	signal := sig.name
	start := time.Now()
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer putBuf(buf)
	ct, held, ok := r.readRequest(w, req, buf)
	if !ok {
		r.m.requests.WithLabelValues(signal, "http", "bad_request").Inc()
		return
	}
	defer r.admit.release(held)
	n, consume, err := sig.decode(r, ct, buf.Bytes())
	if err != nil {
		r.m.requests.WithLabelValues(signal, "http", "bad_data").Inc()
		writeStatus(w, ct, http.StatusBadRequest, codes.InvalidArgument, "decode OTLP "+signal+": "+err.Error())
		return
	}
	res, err := r.consume(req.Context(), consume)
	r.observe(signal, "http", n, res, err, start)
	if err != nil {
		r.writeSinkError(w, ct, err)
		return
	}
	toProto, toJSON := sig.respond(res)
	writeResponse(w, ct, toProto, toJSON)
}

func putBuf(b *bytes.Buffer) {
	// Don't keep huge buffers around.
	if b.Cap() <= 4<<20 {
		bufPool.Put(b)
	}
}

func unmarshal(ct string, b []byte, fromProto, fromJSON func([]byte) error) error {
	if ct == contentTypeJSON {
		return fromJSON(b)
	}
	return fromProto(b)
}

func (r *Receiver) writeSinkError(w http.ResponseWriter, ct string, err error) {
	switch {
	case errors.Is(err, ingest.ErrBadData):
		writeStatus(w, ct, http.StatusBadRequest, codes.InvalidArgument, err.Error())
	case errors.Is(err, ingest.ErrOverloaded):
		w.Header().Set("Retry-After", strconv.Itoa(int((r.opts.RetryAfter+time.Second-1)/time.Second)))
		writeStatus(w, ct, http.StatusTooManyRequests, codes.ResourceExhausted, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeStatus(w, ct, http.StatusServiceUnavailable, codes.Unavailable, err.Error())
	default:
		writeStatus(w, ct, http.StatusInternalServerError, codes.Internal, err.Error())
	}
}

func writeResponse(w http.ResponseWriter, ct string, toProto, toJSON func() ([]byte, error)) {
	var b []byte
	var err error
	if ct == contentTypeJSON {
		b, err = toJSON()
	} else {
		b, err = toProto()
	}
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// writeStatus writes an OTLP error: a google.rpc.Status in the request's
// encoding, as the OTLP/HTTP specification asks.
func writeStatus(w http.ResponseWriter, ct string, httpCode int, code codes.Code, msg string) {
	st := &spb.Status{Code: int32(code), Message: msg}
	var b []byte
	var err error
	if ct == contentTypeJSON {
		b, err = protojson.Marshal(st)
	} else {
		b, err = proto.Marshal(st)
	}
	if err != nil {
		http.Error(w, msg, httpCode)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(httpCode)
	_, _ = w.Write(b)
}
