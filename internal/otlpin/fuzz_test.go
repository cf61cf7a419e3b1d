package otlpin

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/ingest"
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
	badMetrics, err := pmetricotlp.NewExportRequestFromMetrics(onePoint(func(_ pmetric.ResourceMetrics, m pmetric.Metric, a pcommon.Map) {
		m.SetName("m" + badUTF8)
		a.PutStr("k"+badUTF8, badUTF8)
	})).MarshalProto()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(badMetrics, "application/x-protobuf", false, true)
	s := &checkingSink{}
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
		if bad := s.bad.Swap(nil); bad != nil {
			t.Fatalf("the sink got invalid UTF-8 or data over a limit: %s", *bad)
		}
	})
}

// checkingSink records what the receiver should never hand a store: invalid
// UTF-8, or a data point over the attribute limits.
type checkingSink struct{ bad atomic.Pointer[string] }

func (c *checkingSink) ConsumeMetrics(_ context.Context, md pmetric.Metrics) (ingest.Result, error) {
	if s := invalidUTF8(md); s != "" {
		c.bad.Store(&s)
	}
	l := DefaultLimits()
	for _, rm := range md.ResourceMetrics().All() {
		if rm.Resource().Attributes().Len() > l.MaxResourceAttributes {
			msg := "resource over the attribute limit"
			c.bad.Store(&msg)
		}
	}
	return ingest.Result{}, nil
}

func (c *checkingSink) ConsumeTraces(_ context.Context, td ptrace.Traces) (ingest.Result, error) {
	if s := invalidUTF8Traces(td); s != "" {
		c.bad.Store(&s)
	}
	return ingest.Result{}, nil
}
