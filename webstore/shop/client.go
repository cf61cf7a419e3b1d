package shop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/lookout-dev/lookout/webstore/telemetry"
)

// serviceClient calls one peer service over HTTP with client spans and
// trace-context propagation.
type serviceClient struct {
	url  string
	http *http.Client
	// base is the transport under otelhttp's, which does not pass
	// CloseIdleConnections on.
	base *http.Transport
}

type spanNameKey struct{}

// newServiceClient returns a client for the peer at base. Each call's client
// span is named by the name passed to call, and carries peer.service.
func newServiceClient(base, peer string, tel *telemetry.Providers, timeout time.Duration) *serviceClient {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	c := &serviceClient{url: base, base: transport, http: &http.Client{Timeout: timeout, Transport: transport}}
	if tel.Disabled {
		return c
	}
	c.http.Transport = otelhttp.NewTransport(transport,
		otelhttp.WithTracerProvider(tel.TracerProvider),
		otelhttp.WithMeterProvider(tel.MeterProvider),
		otelhttp.WithPropagators(tel.Propagator),
		otelhttp.WithSpanOptions(trace.WithAttributes(attribute.String("peer.service", peer))),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if n, ok := r.Context().Value(spanNameKey{}).(string); ok {
				return n
			}
			return r.Method
		}),
	)
	return c
}

// remoteError is a non-2xx answer from a peer service.
type remoteError struct {
	Status  int
	Message string
}

func (e *remoteError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
}

// call sends in (if not nil) as JSON and decodes a 2xx answer into out (if
// not nil). A non-2xx answer is returned as a *remoteError.
func (c *serviceClient) call(ctx context.Context, spanName, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	ctx = context.WithValue(ctx, spanNameKey{}, spanName)
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var eb errorBody
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = http.StatusText(resp.StatusCode)
		}
		return &remoteError{Status: resp.StatusCode, Message: eb.Error}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// remoteStatus returns the peer's HTTP status in err, or 0.
func remoteStatus(err error) int {
	var re *remoteError
	if errors.As(err, &re) {
		return re.Status
	}
	return 0
}
