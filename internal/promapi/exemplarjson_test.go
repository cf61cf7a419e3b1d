package promapi

import (
	"bytes"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	v1 "github.com/prometheus/prometheus/web/api/v1"
)

// TestExemplarJSONMatchesPrometheus compares the hand-written encoding of
// query_exemplars answers with Prometheus's codec, byte for byte.
func TestExemplarJSONMatchesPrometheus(t *testing.T) {
	ex := func(v float64, ts int64, kv ...string) exemplar.Exemplar {
		return exemplar.Exemplar{Labels: labels.FromStrings(kv...), Value: v, Ts: ts, HasTs: true}
	}
	series := labels.FromStrings("__name__", "webstore_payment_duration_bucket", "le", "+Inf", "job", "payments-service")
	for _, tc := range []struct {
		name string
		data []exemplar.QueryResult
	}{
		{"nil", nil},
		{"empty", []exemplar.QueryResult{}},
		{"seed", []exemplar.QueryResult{{SeriesLabels: series, Exemplars: []exemplar.Exemplar{
			ex(5.8, 1767322799000, "trace_id", "4bf92f3577b34da6a3ce929d0e0e4736", "span_id", "00f067aa0ba902b7"),
			ex(0.005, 1767322799123, "trace_id", "4bf92f3577b34da6a3ce929d0e0e4737"),
		}}}},
		{"values", []exemplar.QueryResult{{SeriesLabels: series, Exemplars: []exemplar.Exemplar{
			ex(math.NaN(), 1, "a", "b"), ex(math.Inf(1), 10, "a", "b"), ex(math.Inf(-1), 100, "a", "b"),
			ex(0, -1500, "a", "b"), ex(-0.0000001, -7, "a", "b"), ex(1e21, 999, "a", "b"), ex(123456789.125, 0),
			ex(-2.5e-7, 1767322799001),
		}}}},
		{"escapes", []exemplar.QueryResult{
			{SeriesLabels: labels.FromStrings("__name__", "x", "path", `/a"b\c<d>&e`, "ctl", "tab\tnew\nline\x01", "uni", "é€😀\u2028", "bad", "\xff\xfe"), Exemplars: []exemplar.Exemplar{
				ex(1, 2, "trace_id", `<script>alert("x")</script>`),
			}},
			{SeriesLabels: labels.FromStrings("__name__", "y"), Exemplars: nil},
			{SeriesLabels: labels.EmptyLabels(), Exemplars: []exemplar.Exemplar{ex(1, 2)}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := &v1.Response{Status: "success", Data: tc.data}
			want, err := v1.JSONCodec{}.Encode(resp)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := encodeExemplarAnswer(resp)
			if !ok {
				t.Fatal("not encoded")
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
	for _, resp := range []*v1.Response{
		{Status: "success", Data: []exemplar.QueryResult{}, Warnings: []string{"w"}},
		{Status: "success", Data: []exemplar.QueryResult{}, Infos: []string{"i"}},
		{Status: "error", ErrorType: "bad_data", Error: "e"},
		{Status: "success", Data: "other"},
	} {
		if _, ok := encodeExemplarAnswer(resp); ok {
			t.Errorf("%+v: encoded, want it left to the codec", resp)
		}
	}
}

// FuzzExemplarJSON: any label strings encode as Prometheus's codec does.
func FuzzExemplarJSON(f *testing.F) {
	f.Add("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736", 5.8, int64(1767322799000))
	f.Add("k<", "\x00\xff\"\\\u2029", -1e-9, int64(-1))
	f.Fuzz(func(t *testing.T, name, value string, v float64, ts int64) {
		if name == "" || ts == math.MinInt64 {
			return
		}
		resp := &v1.Response{Status: "success", Data: []exemplar.QueryResult{{
			SeriesLabels: labels.FromStrings("__name__", value, name, value),
			Exemplars:    []exemplar.Exemplar{{Labels: labels.FromStrings(name, value), Value: v, Ts: ts}},
		}}}
		want, err := v1.JSONCodec{}.Encode(resp)
		if err != nil {
			return
		}
		got, _ := encodeExemplarAnswer(resp)
		if !bytes.Equal(got, want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	})
}
