package otlpin

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// FuzzHTTPDecode feeds arbitrary bodies, content types and encodings to the
// OTLP/HTTP handler: it must answer with an OTLP status, never panic or hang.
func FuzzHTTPDecode(f *testing.F) {
	f.Add([]byte{}, "application/x-protobuf", false, true)
	f.Add(protoBody(f, 2), "application/x-protobuf", false, true)
	f.Add(gz(protoBody(f, 2)), "application/x-protobuf", true, true)
	f.Add(jsonBody(f, 2), "application/json", false, true)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`), "application/json", false, false)
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00}, "application/x-protobuf", false, false)
	s := &sink{}
	opts := DefaultOptions()
	opts.MaxRequestBytes = 1 << 20
	r, err := New(opts, s, s, nil, prometheus.NewRegistry())
	if err != nil {
		f.Fatal(err)
	}
	h := r.Handler()
	f.Fuzz(func(t *testing.T, body []byte, contentType string, gzipped, metrics bool) {
		path := "/v1/traces"
		if metrics {
			path = "/v1/metrics"
		}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if gzipped {
			req.Header.Set("Content-Encoding", "gzip")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 413, 415:
		default:
			t.Fatalf("unexpected status %d: %s", rec.Code, rec.Body.String())
		}
	})
}
