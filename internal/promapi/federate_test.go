package promapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lookout-dev/lookout/internal/metricstore"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
)

// TestFederate reads the seed store through /federate two minutes after its
// last sample: text and protobuf answers, selectors, and bad input.
func TestFederate(t *testing.T) {
	s, _ := seed(t)
	f := &federation{
		q: s.Queryable(), lookback: 5 * time.Minute, now: func() time.Time { return t0.Add(2 * time.Minute) },
		parser: parser.NewParser(parser.Options{}), logger: slog.New(slog.DiscardHandler),
	}
	get := func(query, accept string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/federate?"+query, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		rec := httptest.NewRecorder()
		f.ServeHTTP(rec, req)
		return rec
	}
	for _, c := range []struct {
		name, query string
		code        int
		golden      string // testdata/<golden>.txt holds the body
		contains    string
	}{
		{name: "histogram series", query: `match[]={__name__=~"webstore_payment_duration_(count|bucket)"}`, code: 200, golden: "federate_histogram"},
		{name: "two selectors merge", query: `match[]=webstore_payment_duration_count&match[]={job="payments-service",__name__="webstore_payment_duration_count"}`, code: 200, contains: "webstore_payment_duration_count{country=\"US\",instance=\"host-1\",job=\"payments-service\"} 20 1767322860000\n"},
		{name: "no selector", query: "", code: 200},
		{name: "nothing matches", query: `match[]=absent_metric`, code: 200},
		{name: "bad selector", query: `match[]={job=`, code: 400, contains: "parse error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := get(c.query, "")
			if rec.Code != c.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.code, rec.Body)
			}
			body := rec.Body.String()
			if c.code == 200 && c.golden == "" && c.contains == "" && body != "" {
				t.Errorf("body %q, want none", body)
			}
			if c.contains != "" && !strings.Contains(body, c.contains) {
				t.Errorf("body %q lacks %q", body, c.contains)
			}
			if c.golden != "" {
				path := filepath.Join("testdata", c.golden+".txt")
				if *update {
					if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create)", err)
				}
				if body != string(want) {
					t.Errorf("body differs from %s:\n%s", path, body)
				}
			}
		})
	}

	// A scraper that asks for protobuf gets the same families in it.
	rec := get(`match[]={__name__=~"webstore_payment_duration_(count|bucket)"}`, "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/vnd.google.protobuf") {
		t.Fatalf("content type %q, want protobuf", ct)
	}
	dec := expfmt.NewDecoder(rec.Body, expfmt.ResponseFormat(rec.Result().Header))
	var names []string
	var metrics int
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			break
		}
		names = append(names, mf.GetName())
		metrics += len(mf.GetMetric())
	}
	if strings.Join(names, ",") != "webstore_payment_duration_bucket,webstore_payment_duration_count" || metrics != 4 {
		t.Errorf("protobuf families %v with %d metrics, want bucket (3) and count (1)", names, metrics)
	}
}

// TestFederateNativeHistograms: native histograms federate in the protobuf
// formats, as Prometheus's scrape parser reads them back unchanged, in a
// family of their own type beside a float family of the same name; the
// text format and histograms with custom buckets leave them out.
func TestFederateNativeHistograms(t *testing.T) {
	s, err := metricstore.Open(t.TempDir(), metricstore.DefaultOptions(), nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := t0.UnixMilli()
	counter := &histogram.Histogram{
		Schema: 1, ZeroThreshold: 0.001, ZeroCount: 2, Count: 12, Sum: 18.5,
		PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 1}}, PositiveBuckets: []int64{3, 1, -2},
		NegativeSpans: []histogram.Span{{Offset: -1, Length: 1}}, NegativeBuckets: []int64{1},
	}
	gauge := &histogram.FloatHistogram{
		CounterResetHint: histogram.GaugeType, Schema: 0, Count: 2.5, Sum: 7,
		PositiveSpans: []histogram.Span{{Offset: 2, Length: 1}}, PositiveBuckets: []float64{2.5},
	}
	empty := &histogram.Histogram{Schema: 3}
	custom := &histogram.Histogram{Schema: histogram.CustomBucketsSchema, Count: 1, Sum: 1, CustomValues: []float64{1, 2},
		PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []int64{1}}
	app := s.Appendable().AppenderV2(context.Background())
	for _, a := range []struct {
		ls labels.Labels
		h  *histogram.Histogram
		fh *histogram.FloatHistogram
		v  float64
	}{
		{ls: labels.FromStrings("__name__", "latency", "job", "a"), h: counter},
		{ls: labels.FromStrings("__name__", "latency", "job", "b"), v: 4},
		{ls: labels.FromStrings("__name__", "queue", "job", "a"), fh: gauge},
		{ls: labels.FromStrings("__name__", "queue", "job", "empty"), h: empty},
		{ls: labels.FromStrings("__name__", "sizes", "job", "a"), h: custom},
	} {
		if _, err := app.Append(0, a.ls, 0, at, a.v, a.h, a.fh, storage.AOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	f := &federation{
		q: s.Queryable(), lookback: 5 * time.Minute, now: func() time.Time { return t0.Add(time.Minute) },
		parser: parser.NewParser(parser.Options{}), logger: slog.New(slog.DiscardHandler),
	}
	get := func(accept string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, `/federate?match[]={job!=""}`, nil)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		f.ServeHTTP(rec, req)
		return rec
	}

	rec := get("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	var families []string
	dec := expfmt.NewDecoder(bytes.NewReader(rec.Body.Bytes()), expfmt.ResponseFormat(rec.Result().Header))
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			break
		}
		families = append(families, fmt.Sprintf("%s %s %d", mf.GetName(), mf.GetType(), len(mf.GetMetric())))
	}
	if want := "latency UNTYPED 1,latency HISTOGRAM 1,queue HISTOGRAM 1,queue GAUGE_HISTOGRAM 1"; strings.Join(families, ",") != want {
		t.Errorf("families %v, want %s", families, want)
	}
	p, err := textparse.New(rec.Body.Bytes(), rec.Header().Get("Content-Type"), nil, textparse.ParserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if e != textparse.EntryHistogram {
			continue
		}
		var ls labels.Labels
		p.Labels(&ls)
		_, ts, h, fh := p.Histogram()
		if ts == nil || *ts != at {
			t.Errorf("%s: timestamp %v, want %d", ls, ts, at)
		}
		if h != nil {
			got[ls.Get("job")+"/"+ls.Get("__name__")] = h.String()
		} else {
			got[ls.Get("job")+"/"+ls.Get("__name__")] = fh.String()
		}
	}
	want := map[string]string{"a/latency": counter.String(), "a/queue": gauge.String(), "empty/queue": empty.String()}
	if !maps.Equal(got, want) {
		t.Errorf("Prometheus's parser read %v, want %v", got, want)
	}

	text := get("text/plain").Body.String()
	if strings.Contains(text, "queue") || !strings.Contains(text, `latency{job="b",instance=""} 4`) || strings.Count(text, "latency{") != 1 {
		t.Errorf("text answer %q, want only the float series", text)
	}
}
