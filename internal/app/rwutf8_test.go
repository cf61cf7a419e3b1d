package app

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/prometheus/prompb"
)

// TestRemoteWriteInvalidUTF8: Prometheus's remote-write handler drops a
// series whose label value is not valid UTF-8 (answering 204, as Prometheus
// does, and counting it), so the API never answers with it: remote write
// needs no repair of its own, unlike OTLP, which repairs and keeps.
func TestRemoteWriteInvalidUTF8(t *testing.T) {
	a := startApp(t, testConfig(t))
	now := time.Now().UnixMilli()
	code, body := postRemoteWrite(t, a.PrometheusAddr(), &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "rw_bad"}, {Name: "k", Value: "v\xff"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: now}},
	}}})
	if code/100 != 2 {
		t.Errorf("invalid UTF-8 label value: %d %s, want Prometheus's 204", code, body)
	}
	_, b := call(t, http.MethodGet, "http://"+a.PrometheusAddr()+"/api/v1/query", url.Values{"query": {"rw_bad"}})
	var out struct {
		Data struct {
			Result []any `json:"result"`
		} `json:"data"`
	}
	if !json.Valid(b) || !utf8.Valid(b) || json.Unmarshal(b, &out) != nil || len(out.Data.Result) != 0 {
		t.Errorf("query answer: %s", b)
	}
}
