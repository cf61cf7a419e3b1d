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
	}
	for _, tc := range tests {
		if err := tc.f.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tc.name, err, tc.ok)
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
		`{"get_product_latency":"-1h"}`, `{"provider_jitter":"9999999999h"}`, `[]`, `null`, `{"provider_timeout_rate":1e309}`} {
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
