package promapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/lookout-dev/lookout/internal/metricstore"
)

// FuzzRemoteWrite posts arbitrary bodies, snappy-compressed or not, as
// remote write 1.0 or 2.0 to the receiver writing into a real metric
// store: every answer must be a client error or success, never a panic or
// a server error.
func FuzzRemoteWrite(f *testing.F) {
	s, err := metricstore.Open(f.TempDir(), metricstore.DefaultOptions(), nil, prometheus.NewRegistry())
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	opts := storeOptions(s)
	opts.Appendable = s.WriteAppendable()
	opts.RemoteWrite = true
	api, err := New(opts)
	if err != nil {
		f.Fatal(err)
	}
	defer api.Close()
	h := api.Handler()

	valid, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:    []prompb.Label{{Name: "__name__", Value: "fuzz_total"}, {Name: "job", Value: "f"}},
		Samples:   []prompb.Sample{{Timestamp: 1_700_000_000_000, Value: 1}},
		Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "00ff"}}, Value: 1, Timestamp: 1_700_000_000_000}},
	}}}).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid, true, false)
	f.Add(valid, true, true)
	f.Add([]byte("not a request"), false, false)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, false, true)
	f.Fuzz(func(t *testing.T, body []byte, compress, v2 bool) {
		if compress {
			body = snappy.Encode(nil, body)
		}
		req := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body))
		req.Header.Set("Content-Encoding", "snappy")
		if v2 {
			req.Header.Set("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")
			req.Header.Set("X-Prometheus-Remote-Write-Version", "2.0.0")
		} else {
			req.Header.Set("Content-Type", "application/x-protobuf")
			req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
