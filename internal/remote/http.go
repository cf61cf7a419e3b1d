package remote

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/api"
)

// Bounds on what a remote answer may make Lookout read. A trace of a few
// hundred thousand spans fits in the trace bound; the others are generous
// for answers that hold IDs and labels only.
const (
	// MaxTraceBytes bounds a Tempo trace-by-ID answer.
	MaxTraceBytes = 64 << 20
	// MaxSearchBytes bounds a Tempo search answer.
	MaxSearchBytes = 16 << 20
	// MaxExemplarBytes bounds a Prometheus query_exemplars answer.
	MaxExemplarBytes = 64 << 20
	// maxErrorBody is how much of an error answer's body is read and
	// quoted in the error.
	maxErrorBody = 512
	// maxErrorRead is how much of an error answer client_golang may read
	// (a Prometheus error is JSON with a message).
	maxErrorRead = 64 << 10
)

// ErrResponseTooLarge is returned (wrapped) when an answer is larger than
// the bound for its kind (MaxTraceBytes, MaxSearchBytes, MaxExemplarBytes).
var ErrResponseTooLarge = errors.New("remote answer too large")

// StatusError is a non-2xx answer from a remote API.
type StatusError struct {
	// Op says what was asked, e.g. "get trace 4bf9… from http://tempo:3200".
	Op string
	// StatusCode is the HTTP status code of the answer.
	StatusCode int
	// Body is the start of the answer's body (its first 512 bytes, made
	// valid UTF-8, surrounding space trimmed).
	Body string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// parseBaseURL checks that s is an absolute http(s) URL and returns it
// without a trailing slash, so API paths can be joined to it (a path prefix
// such as Lookout's /tempo is kept).
func parseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid URL %q: want an absolute http:// or https:// URL such as http://localhost:9090", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("invalid URL %q: a base URL has no query or fragment", u.Redacted())
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// orDefault returns c, or when it is nil a client on client_golang's
// default transport (dial and TLS timeouts, proxy from the environment) and
// without an overall timeout: contexts bound requests.
func orDefault(c *http.Client) *http.Client {
	if c == nil {
		return &http.Client{Transport: api.DefaultRoundTripper}
	}
	return c
}

// boundedClient returns a copy of orDefault(c) whose answers' bodies fail
// with ErrResponseTooLarge after limit bytes, for clients such as
// client_golang's that read whole bodies themselves. c is not modified.
func boundedClient(c *http.Client, limit int64) *http.Client {
	out := *orDefault(c)
	next := out.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	out.Transport = boundedTransport{next: next, limit: limit}
	return &out
}

// boundedTransport wraps every successful answer's body in a boundedBody.
type boundedTransport struct {
	next  http.RoundTripper
	limit int64
}

func (t boundedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	if resp.StatusCode/100 != 2 {
		// An error answer is read for its message only: cut it short
		// quietly, so the status still reaches the caller.
		resp.Body = truncatedBody{Reader: io.LimitReader(resp.Body, maxErrorRead), Closer: resp.Body}
		return resp, nil
	}
	resp.Body = &boundedBody{rc: resp.Body, left: t.limit, limit: t.limit}
	return resp, nil
}

type truncatedBody struct {
	io.Reader
	io.Closer
}

// boundedBody reads at most limit bytes of rc and then fails with
// ErrResponseTooLarge if more follow; an answer of exactly limit bytes reads
// to io.EOF.
type boundedBody struct {
	rc          io.ReadCloser
	left, limit int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.left <= 0 {
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, b.limit)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }

// readBounded reads all of r, failing with ErrResponseTooLarge beyond limit
// bytes.
func readBounded(r io.ReadCloser, limit int64) ([]byte, error) {
	return io.ReadAll(&boundedBody{rc: r, left: limit, limit: limit})
}

// drainClose reads what is left of a small answer (a 404's message, say)
// so the connection can be reused, and closes it.
func drainClose(r io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r, maxErrorRead))
	_ = r.Close()
}

// bodyPrefix reads the start of an error answer's body for a message.
func bodyPrefix(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, maxErrorBody))
	return quotable(b)
}

// quotable makes the start of a body fit for an error message: at most
// maxErrorBody bytes, valid UTF-8, space trimmed.
func quotable(b []byte) string {
	if len(b) > maxErrorBody {
		b = b[:maxErrorBody]
	}
	// A rune cut in two at the end becomes U+FFFD.
	return strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
}
