package analysis

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// shopTrace is a WebStore checkout (the tree webstoreCheckout draws) with
// its payment method and country on process_payment, as the shop sets them.
func shopTrace(seed uint64, provider time.Duration, multiplier int, cents int, method, country, providerErr string) ptrace.Traces {
	n := webstoreCheckout(provider, multiplier, cents)
	for i := range n.children {
		c := &n.children[i]
		if c.name == "process_payment" {
			c.attrs = map[string]any{"payment.amount_cents": cents, "payment_method": method, "country": country}
			if providerErr != "" {
				pay := &c.children[0].children[0].children[0]
				pay.err = providerErr
			}
		}
	}
	return build(seed, n)
}

var (
	methods   = []string{"card", "card", "card", "paypal", "apple_pay"}
	countries = []string{"US", "DE", "FR", "GB", "JP", "BR"}
)

// shop draws n checkouts from seed on: f gives each one's provider time,
// quantity multiplier, payment method and error.
func shop(seed uint64, n int, f func(i int, method string) (time.Duration, int, string)) []ptrace.Traces {
	var out []ptrace.Traces
	for i := range n {
		method := methods[i%len(methods)]
		provider, mult, errMsg := f(i, method)
		cents := (1 + i%7) * 2999 * mult
		out = append(out, shopTrace(seed+uint64(i), provider, mult, cents, method, countries[i%len(countries)], errMsg))
	}
	return out
}

func normal(i int, _ string) (time.Duration, int, string) {
	return time.Duration(60+i%40) * ms, 1, ""
}

func TestCompareShop(t *testing.T) {
	baseline := shop(1000, 120, normal)
	tests := []struct {
		name  string
		g     Groups
		want  string // the top finding, as "kind service/span attribute=value"
		vstr  string // in the verdict
		latcy bool
	}{
		{
			name: "slow payment provider",
			g: Groups{Spike: shop(1, 40, func(i int, _ string) (time.Duration, int, string) {
				return time.Duration(7000+i*25) * ms, 1, ""
			}), Baseline: baseline},
			want: "span payments-service/payment_provider_api", vstr: "payment_provider_api self time 80 ms → 7.5 s in 40 of 40 slow traces", latcy: true,
		},
		{
			name: "500x quantity",
			g: Groups{Spike: shop(1, 30, func(i int, _ string) (time.Duration, int, string) {
				return time.Duration(60+i%40) * ms, 500, ""
			}), Baseline: baseline},
			want: "attribute /webstore.quantity_multiplier=500", vstr: "webstore.quantity_multiplier=500 100% vs 0%",
		},
		{
			name: "payment failures",
			g: Groups{Spike: shop(1, 30, func(i int, _ string) (time.Duration, int, string) {
				return time.Duration(60+i%40) * ms, 1, "card declined: insufficient_funds"
			}), Baseline: baseline},
			want: "error payments-service/payment_provider_api", vstr: `errors start at payment_provider_api in 100% vs 0% ("card declined: insufficient_funds")`,
		},
		{
			name: "only paypal slow: the rest of the spike window is fast",
			g: Groups{
				Spike: shop(1, 40, func(i int, _ string) (time.Duration, int, string) {
					return time.Duration(7000+i*25) * ms, 1, ""
				}),
				Baseline: baseline,
				Rest:     shop(5000, 60, normal),
			},
			want: "attribute /payment_method=paypal", vstr: "payment_method=paypal", latcy: true,
		},
	}
	// The paypal case: every spike trace pays with paypal.
	for i := range tests[3].g.Spike {
		tests[3].g.Spike[i] = retag(tests[3].g.Spike[i], "payment_method", "paypal")
	}
	for i := range tests[3].g.Rest {
		tests[3].g.Rest[i] = retag(tests[3].g.Rest[i], "payment_method", []string{"card", "apple_pay"}[i%2])
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Compare(tt.g, Options{})
			if len(r.Findings) == 0 {
				t.Fatalf("no findings; verdict %q", r.Verdict)
			}
			f := r.Findings[0]
			got := fmt.Sprintf("%s %s/%s", f.Kind, f.Service, f.Span)
			if f.Kind == KindAttribute {
				got = fmt.Sprintf("%s /%s=%s", f.Kind, f.Attribute, f.Value)
			}
			if got != tt.want {
				t.Errorf("top finding %s, want %s; findings %+v", got, tt.want, r.Findings[:min(3, len(r.Findings))])
			}
			if !strings.Contains(r.Verdict, tt.vstr) {
				t.Errorf("verdict %q, want it to contain %q", r.Verdict, tt.vstr)
			}
			if r.Latency != tt.latcy {
				t.Errorf("latency %v, want %v", r.Latency, tt.latcy)
			}
			for _, f := range r.Findings {
				if f.Score < 0 || f.Score > 1 || len(f.TraceIDs) > 10 {
					t.Errorf("finding %+v: score out of [0, 1] or too many traces", f)
				}
			}
		})
	}
}

// retag sets attribute key to v on every span that has it.
func retag(td ptrace.Traces, key, v string) ptrace.Traces {
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				if _, ok := sp.Attributes().Get(key); ok {
					sp.Attributes().PutStr(key, v)
				}
			}
		}
	}
	return td
}

func TestCompareEdges(t *testing.T) {
	if r := Compare(Groups{}, Options{}); r.Verdict != "no spike traces to compare" || len(r.Findings) != 0 {
		t.Errorf("empty: %+v", r)
	}
	// Without a baseline, the operation that dominates is named by coverage.
	spike := shop(1, 5, func(i int, _ string) (time.Duration, int, string) { return 7 * time.Second, 1, "" })
	r := Compare(Groups{Spike: spike}, Options{})
	if len(r.Findings) == 0 || r.Findings[0].Span != "payment_provider_api" || r.Findings[0].Coverage != 1 ||
		!strings.HasSuffix(r.Verdict, "(no baseline traces to compare with)") {
		t.Errorf("no baseline: %q %+v", r.Verdict, r.Findings)
	}
	// A trace whose root is missing and whose parent links loop still
	// counts once and does not hang.
	td := build(1, checkout(7*time.Second, 3*ms, 1, ""))
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	spans.RemoveIf(func(s ptrace.Span) bool { return s.ParentSpanID().IsEmpty() })
	a, b := spans.At(0), spans.At(1)
	a.SetParentSpanID(b.SpanID())
	b.SetParentSpanID(a.SpanID())
	if r := Compare(Groups{Spike: []ptrace.Traces{td}, Baseline: shop(50, 10, normal)}, Options{}); r.SpikeTraces != 1 {
		t.Errorf("corrupt trace: %+v", r)
	}
}

// FuzzCompare feeds arbitrary OTLP/protobuf trace payloads (outside input
// that reaches the engine through the trace store) as spike and baseline.
func FuzzCompare(f *testing.F) {
	m := ptrace.ProtoMarshaler{}
	for _, td := range []ptrace.Traces{build(1, checkout(7*time.Second, 3*ms, 1, "")), build(2, checkout(80*ms, 3*ms, 500, "x"))} {
		b, err := m.MarshalTraces(td)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, b)
	}
	u := ptrace.ProtoUnmarshaler{}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		sa, err := u.UnmarshalTraces(a)
		if err != nil {
			return
		}
		sb, err := u.UnmarshalTraces(b)
		if err != nil {
			return
		}
		r := Compare(Groups{Spike: []ptrace.Traces{sa}, Baseline: []ptrace.Traces{sb}}, Options{})
		if r.Verdict == "" {
			t.Fatal("empty verdict")
		}
		for _, f := range r.Findings {
			if f.Score < 0 || f.Score > 1 {
				t.Fatalf("score %v", f.Score)
			}
		}
	})
}

// TestCompareRestatedMetric: on a checkout-amount spike, the amounts in
// cents on the spans are the metric itself; with the exemplar values given,
// they are not findings, and the injected multiplier is the top one.
func TestCompareRestatedMetric(t *testing.T) {
	big := func(i int, _ string) (time.Duration, int, string) { return time.Duration(60+i%40) * ms, 500, "" }
	g := Groups{Spike: shop(1, 30, big), Baseline: shop(1000, 120, normal), Values: map[pcommon.TraceID]float64{}}
	for mult, tds := range map[int][]ptrace.Traces{500: g.Spike, 1: g.Baseline} {
		for i, td := range tds {
			id := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID()
			g.Values[id] = float64((1+i%7)*2999*mult) / 100 // as shop() prices them
		}
	}
	r := Compare(g, Options{})
	for _, f := range r.Findings {
		if strings.HasSuffix(f.Attribute, "_cents") {
			t.Errorf("finding %+v restates the metric", f)
		}
	}
	if len(r.Findings) == 0 || r.Findings[0].Attribute != "webstore.quantity_multiplier" {
		t.Errorf("findings %+v, want the multiplier first", r.Findings)
	}
	// Without the values, the amounts are findings.
	g.Values = nil
	if r := Compare(g, Options{}); !strings.Contains(fmt.Sprint(r.Findings), "_cents") {
		t.Errorf("without values: %+v", r.Findings)
	}
}

func TestSpearman(t *testing.T) {
	for _, tt := range []struct {
		xs, ys []float64
		want   float64
	}{
		{[]float64{1, 2, 3, 4}, []float64{10, 20, 30, 40}, 1},
		{[]float64{1, 2, 3, 4}, []float64{40, 30, 20, 10}, -1},
		{[]float64{1, 1, 1}, []float64{1, 2, 3}, 0},
		{[]float64{1, 2, 3, 4, 5}, []float64{1, 4, 9, 16, 25}, 1},
	} {
		if got := spearman(tt.xs, tt.ys); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("spearman(%v, %v) = %v, want %v", tt.xs, tt.ys, got, tt.want)
		}
	}
}
