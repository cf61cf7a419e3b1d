package faults

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// TestJSONGolden pins the JSON shape served by GET /admin/faults.
func TestJSONGolden(t *testing.T) {
	f := Faults{
		ProviderLatency: 7 * time.Second, ProviderJitter: 1500 * time.Millisecond,
		ProviderTimeoutRate: 0.05, PaymentFailureRate: 0.3,
		GetProductLatency: 250 * time.Millisecond, QuantityMultiplier: 500,
		ScopePaymentMethod: "paypal", ScopeCountry: "DE",
	}
	got, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "faults.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("JSON shape changed:\n got %s\nwant %s", got, want)
	}
	var back Faults
	if err := json.Unmarshal(want, &back); err != nil {
		t.Fatal(err)
	}
	if back != f {
		t.Errorf("round trip: %+v, want %+v", back, f)
	}
}

func TestDecodePatch(t *testing.T) {
	base := Faults{ProviderLatency: time.Second, QuantityMultiplier: 1}
	tests := []struct {
		name, in string
		want     Faults
		wantErr  string
	}{
		{"empty object changes nothing", `{}`, base, ""},
		{"one field", `{"payment_failure_rate":0.5}`, Faults{ProviderLatency: time.Second, PaymentFailureRate: 0.5, QuantityMultiplier: 1}, ""},
		{"durations", `{"provider_latency":"7s","provider_jitter":"250ms","get_product_latency":"0"}`,
			Faults{ProviderLatency: 7 * time.Second, ProviderJitter: 250 * time.Millisecond, QuantityMultiplier: 1}, ""},
		{"empty duration is zero", `{"provider_latency":""}`, Faults{QuantityMultiplier: 1}, ""},
		{"multiplier", `{"quantity_multiplier":500}`, Faults{ProviderLatency: time.Second, QuantityMultiplier: 500}, ""},
		{"scopes", `{"scope_payment_method":"paypal","scope_country":"DE"}`,
			Faults{ProviderLatency: time.Second, QuantityMultiplier: 1, ScopePaymentMethod: "paypal", ScopeCountry: "DE"}, ""},
		{"number for scope", `{"scope_country":49}`, Faults{}, "malformed"},
		{"bad duration", `{"provider_latency":"7 seconds"}`, Faults{}, "provider_latency"},
		{"number for duration", `{"provider_latency":7}`, Faults{}, "malformed"},
		{"unknown field", `{"latency":"1s"}`, Faults{}, "unknown field"},
		{"trailing data", `{} {}`, Faults{}, "trailing"},
		{"not JSON", `provider_latency=1s`, Faults{}, "malformed"},
		{"empty body", ``, Faults{}, "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := DecodePatch(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Apply(base); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		f    Faults
		ok   bool
	}{
		{"zero", Faults{}, true},
		{"all set", Faults{ProviderLatency: 7 * time.Second, ProviderJitter: time.Second, ProviderTimeoutRate: 1, PaymentFailureRate: 0, GetProductLatency: time.Second, QuantityMultiplier: 500}, true},
		{"negative latency", Faults{ProviderLatency: -1}, false},
		{"latency too long", Faults{GetProductLatency: MaxLatency + 1}, false},
		{"rate above 1", Faults{PaymentFailureRate: 1.01}, false},
		{"negative rate", Faults{ProviderTimeoutRate: -0.1}, false},
		{"multiplier too big", Faults{QuantityMultiplier: MaxQuantityMultiplier + 1}, false},
		{"negative multiplier", Faults{QuantityMultiplier: -2}, false},
		{"scoped", Faults{ProviderLatency: 7 * time.Second, ScopePaymentMethod: "paypal", ScopeCountry: "DE"}, true},
		{"scope of 64 bytes", Faults{ScopePaymentMethod: strings.Repeat("p", MaxScopeLen)}, true},
		{"scope too long", Faults{ScopePaymentMethod: strings.Repeat("p", MaxScopeLen+1)}, false},
		{"scope with a control character", Faults{ScopeCountry: "D\nE"}, false},
		{"scope with a space", Faults{ScopePaymentMethod: "apple pay"}, false},
		{"scope not UTF-8", Faults{ScopeCountry: "\xff"}, false},
	}
	for _, tc := range tests {
		if err := tc.f.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestValidateScope(t *testing.T) {
	methods, countries := []string{"card", "paypal"}, []string{"US", "DE"}
	tests := []struct {
		name    string
		f       Faults
		wantErr string
	}{
		{"unscoped", Faults{ProviderLatency: time.Second}, ""},
		{"known method", Faults{ScopePaymentMethod: "paypal"}, ""},
		{"known method and country", Faults{ScopePaymentMethod: "card", ScopeCountry: "DE"}, ""},
		{"unknown method", Faults{ScopePaymentMethod: "bitcoin"}, `unknown scope_payment_method "bitcoin": use one of card, paypal`},
		{"method in the wrong case", Faults{ScopePaymentMethod: "PayPal"}, "unknown scope_payment_method"},
		{"unknown country", Faults{ScopeCountry: "XX"}, `unknown scope_country "XX": use one of US, DE`},
		{"country in the wrong case", Faults{ScopeCountry: "de"}, "unknown scope_country"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f.ValidateScope(methods, countries)
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("ValidateScope() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ValidateScope() = %v, want an error mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestProviderFaultsApply(t *testing.T) {
	tests := []struct {
		name                   string
		method, country        string
		paymentMethod, charged string
		want                   bool
	}{
		{name: "unscoped applies to all", paymentMethod: "card", charged: "US", want: true},
		{name: "method matches", method: "paypal", paymentMethod: "paypal", charged: "US", want: true},
		{name: "method differs", method: "paypal", paymentMethod: "card", charged: "US", want: false},
		{name: "country matches", country: "DE", paymentMethod: "card", charged: "DE", want: true},
		{name: "country differs", country: "DE", paymentMethod: "card", charged: "US", want: false},
		{name: "both match", method: "paypal", country: "DE", paymentMethod: "paypal", charged: "DE", want: true},
		{name: "method matches, country differs", method: "paypal", country: "DE", paymentMethod: "paypal", charged: "US", want: false},
		{name: "country matches, method differs", method: "paypal", country: "DE", paymentMethod: "card", charged: "DE", want: false},
		{name: "comparison is exact", method: "paypal", paymentMethod: "PayPal", charged: "US", want: false},
	}
	for _, tc := range tests {
		f := Faults{ProviderLatency: 7 * time.Second, ScopePaymentMethod: tc.method, ScopeCountry: tc.country}
		if got := f.ProviderFaultsApply(tc.paymentMethod, tc.charged); got != tc.want {
			t.Errorf("%s: ProviderFaultsApply(%q, %q) = %v, want %v", tc.name, tc.paymentMethod, tc.charged, got, tc.want)
		}
	}
}

func TestScope(t *testing.T) {
	for _, tc := range []struct {
		f    Faults
		want string
	}{
		{Faults{}, ""},
		{Faults{ScopePaymentMethod: "paypal"}, "payment_method=paypal"},
		{Faults{ScopeCountry: "DE"}, "country=DE"},
		{Faults{ScopePaymentMethod: "paypal", ScopeCountry: "DE"}, "payment_method=paypal country=DE"},
	} {
		if got := tc.f.Scope(); got != tc.want {
			t.Errorf("%+v.Scope() = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestOverlay(t *testing.T) {
	paypal := Faults{ProviderLatency: 7 * time.Second, ProviderJitter: time.Second, ScopePaymentMethod: "paypal", QuantityMultiplier: 1}
	tests := []struct {
		name           string
		base, incident Faults
		want           Faults
	}{
		{"incident on no faults", Faults{QuantityMultiplier: 1}, paypal, paypal},
		{"zero incident keeps base", Faults{PaymentFailureRate: 0.1, QuantityMultiplier: 1}, Faults{QuantityMultiplier: 1},
			Faults{PaymentFailureRate: 0.1, QuantityMultiplier: 1}},
		{"unscoped faults merge field by field",
			Faults{PaymentFailureRate: 0.1, GetProductLatency: time.Second, QuantityMultiplier: 1},
			Faults{ProviderLatency: 7 * time.Second, ProviderJitter: time.Second, QuantityMultiplier: 1},
			Faults{ProviderLatency: 7 * time.Second, ProviderJitter: time.Second, PaymentFailureRate: 0.1, GetProductLatency: time.Second, QuantityMultiplier: 1}},
		{"scoped incident brings all provider faults and its scope",
			Faults{PaymentFailureRate: 0.1, GetProductLatency: time.Second, QuantityMultiplier: 1}, paypal,
			Faults{ProviderLatency: 7 * time.Second, ProviderJitter: time.Second, GetProductLatency: time.Second, ScopePaymentMethod: "paypal", QuantityMultiplier: 1}},
		{"unscoped incident over a scoped base drops the scope",
			Faults{PaymentFailureRate: 0.1, ScopeCountry: "DE"}, Faults{ProviderTimeoutRate: 0.05},
			Faults{ProviderTimeoutRate: 0.05}},
		{"incident without provider faults keeps base's scope",
			Faults{PaymentFailureRate: 0.1, ScopeCountry: "DE"}, Faults{QuantityMultiplier: 500},
			Faults{PaymentFailureRate: 0.1, ScopeCountry: "DE", QuantityMultiplier: 500}},
	}
	for _, tc := range tests {
		if got := Overlay(tc.base, tc.incident); got != tc.want {
			t.Errorf("%s: Overlay = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		f    Faults
		want string
	}{
		{Faults{QuantityMultiplier: 1}, "none"},
		{Faults{ProviderLatency: 7 * time.Second, ProviderJitter: time.Second}, "payment provider +7s–8s"},
		{Faults{ProviderLatency: 7 * time.Second, ProviderJitter: time.Second, ScopePaymentMethod: "paypal"},
			"payment provider +7s–8s for payment_method=paypal"},
		{Faults{ProviderLatency: 2 * time.Second}, "payment provider +2s"},
		{Faults{PaymentFailureRate: 0.3, ProviderTimeoutRate: 0.05, ScopePaymentMethod: "paypal", ScopeCountry: "DE"},
			"30% payments declined, 5% provider timeouts for payment_method=paypal country=DE"},
		{Faults{GetProductLatency: 5500 * time.Millisecond, QuantityMultiplier: 500, ScopeCountry: "DE"},
			"get_product query +5.5s; quantities x500"},
		{Faults{ProviderLatency: time.Second, ScopeCountry: "DE", QuantityMultiplier: 500},
			"payment provider +1s for country=DE; quantities x500"},
	}
	for _, tc := range tests {
		if got := tc.f.Describe(); got != tc.want {
			t.Errorf("%+v.Describe() = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestSwitchUpdate(t *testing.T) {
	s := NewSwitch(Faults{})
	if got := s.Load().QuantityMultiplier; got != 1 {
		t.Errorf("zero faults load with multiplier %d, want 1", got)
	}
	rate := 2.0
	if _, err := s.Update(Patch{PaymentFailureRate: &rate}); err == nil {
		t.Error("Update accepted rate 2")
	}
	if got := s.Load(); got.PaymentFailureRate != 0 {
		t.Errorf("rejected update changed faults: %+v", got)
	}
	// Concurrent updates of different fields must all land.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := time.Duration(i) * time.Millisecond
			if i%2 == 0 {
				_, _ = s.Update(Patch{ProviderLatency: &d})
			} else {
				_, _ = s.Update(Patch{GetProductLatency: &d})
			}
		}()
	}
	wg.Wait()
	if got := s.Load(); got.ProviderLatency == 0 && got.GetProductLatency == 0 {
		t.Errorf("concurrent updates lost: %+v", got)
	}
	var zero Switch
	if got := zero.Load().Multiplier(); got != 1 {
		t.Errorf("zero Switch multiplier %d", got)
	}
}

// FuzzDecodePatch checks that no input crashes the decoder and that every
// accepted patch, applied and validated, survives a JSON round trip.
func FuzzDecodePatch(f *testing.F) {
	for _, s := range []string{`{}`, `{"provider_latency":"7s"}`, `{"payment_failure_rate":0.5,"quantity_multiplier":500}`,
		`{"get_product_latency":"-1h"}`, `{"provider_jitter":"9999999999h"}`, `[]`, `null`, `{"provider_timeout_rate":1e309}`,
		`{"scope_payment_method":"paypal","scope_country":"DE"}`, `{"scope_country":"\u0000"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := DecodePatch(strings.NewReader(in))
		if err != nil {
			return
		}
		got := p.Apply(Faults{})
		if got.Validate() != nil {
			return
		}
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatalf("marshal %+v: %v", got, err)
		}
		var back Faults
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if back != got.Normalize() {
			t.Fatalf("round trip %+v -> %s -> %+v", got, b, back)
		}
	})
}
