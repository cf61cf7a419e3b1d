package promapi

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/promql/parser"
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
