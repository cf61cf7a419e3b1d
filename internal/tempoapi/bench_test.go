package tempoapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkTraceByID measures the by-ID endpoints, v1 and v2, in JSON and
// protobuf, over a 200-span trace, without the network.
func BenchmarkTraceByID(b *testing.B) {
	f := newFixture(b, Options{})
	const trace = "5b8efff798038103d269b633813fc60c"
	spans := make([]span, 200)
	for i := range spans {
		spans[i] = span{trace: trace, service: "main-service", name: "op", id: byte(i + 1), start: time.Duration(i) * time.Millisecond, dur: time.Millisecond,
			attrs: map[string]any{"http.request.method": "GET", "http.response.status_code": 200}}
		if i > 0 {
			spans[i].parent = 1
		}
	}
	if _, err := f.store.ConsumeTraces(context.Background(), request(spans...)); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, path, accept string }{
		{"v1/json", "/api/traces/", ""},
		{"v1/protobuf", "/api/traces/", "application/protobuf"},
		{"v2/json", "/api/v2/traces/", ""},
		{"v2/protobuf", "/api/v2/traces/", "application/protobuf"},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, c.path+trace, nil)
			if c.accept != "" {
				req.Header.Set("Accept", c.accept)
			}
			for b.Loop() {
				rec := httptest.NewRecorder()
				f.h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
