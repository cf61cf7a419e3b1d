package otlpin

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkHTTPMetrics measures the OTLP/HTTP path up to the sink: read,
// gunzip, decode 1000 gauge points, answer.
func BenchmarkHTTPMetrics(b *testing.B) {
	for _, tc := range []struct {
		name string
		gzip bool
	}{{"protobuf", false}, {"protobuf+gzip", true}} {
		b.Run(tc.name, func(b *testing.B) {
			s := &sink{}
			r, err := New(DefaultOptions(), s, s, nil, prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			h := r.Handler()
			body := protoBody(b, 1000)
			if tc.gzip {
				body = gz(body)
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/v1/metrics", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/x-protobuf")
				if tc.gzip {
					req.Header.Set("Content-Encoding", "gzip")
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}
