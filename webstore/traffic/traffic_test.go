package traffic

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lookout-dev/lookout/webstore/faults"
	"github.com/lookout-dev/lookout/webstore/shop"
	"github.com/lookout-dev/lookout/webstore/telemetry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func startShop(t *testing.T, f faults.Faults) *shop.Shop {
	t.Helper()
	cfg := shop.Config{
		DataDir: t.TempDir(), MainListen: "127.0.0.1:0", PaymentsListen: "127.0.0.1:0",
		ProviderListen: "127.0.0.1:0", InventoryListen: "127.0.0.1:0",
		Faults: f, Telemetry: telemetry.Config{Disabled: true},
	}
	s, err := shop.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

func testClient(t *testing.T) *http.Client {
	c := &http.Client{Timeout: 30 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// TestScenarioRun runs big-orders sessions and checks that the scenario's
// faults applied during the run and were restored after it.
func TestScenarioRun(t *testing.T) {
	before := faults.Faults{ProviderJitter: 5 * time.Millisecond, QuantityMultiplier: 1}
	s := startShop(t, before)
	var progress bytes.Buffer
	sum, err := Run(context.Background(), Config{
		Target: s.MainURL(), Rate: 200, Requests: 40, Scenario: "big-orders",
		MaxInFlight: 100, ProgressInterval: time.Hour, Client: testClient(t),
	}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sessions+sum.Skipped != 40 {
		t.Errorf("%d sessions + %d skipped, want 40", sum.Sessions, sum.Skipped)
	}
	if got := s.Faults(); got != before {
		t.Errorf("faults after the run %+v, want the previous %+v", got, before)
	}
	l, err := s.DB().Ledger(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(); err != nil {
		t.Error(err)
	}
	if int64(sum.Checkouts["completed"]) != l.Orders {
		t.Errorf("summary says %d completed checkouts, the database has %d orders", sum.Checkouts["completed"], l.Orders)
	}
	if l.Orders == 0 {
		t.Fatalf("no orders in 40 sessions: %s", sum)
	}
	// Every order line was multiplied by 500.
	if l.Ordered%500 != 0 {
		t.Errorf("%d units ordered: not a multiple of 500", l.Ordered)
	}
	if sum.Requests == 0 || sum.CheckoutLatency.Count == 0 {
		t.Errorf("summary %+v", sum)
	}
	for _, want := range []string{"faults applied", "previous faults restored", "sessions 40"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress output lacks %q:\n%s", want, progress.String())
		}
	}
	if !strings.Contains(sum.String(), "checkouts:") {
		t.Errorf("summary text %q", sum.String())
	}
}

func TestDurationBound(t *testing.T) {
	s := startShop(t, faults.Faults{})
	sum, err := Run(context.Background(), Config{
		Target: s.MainURL(), Rate: 50, Duration: 300 * time.Millisecond, Scenario: "normal", Client: testClient(t),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sessions == 0 {
		t.Errorf("no sessions in a 300ms run at 50/s: %s", sum)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	tests := []struct {
		name, wantErr string
		mod           func(*Config)
	}{
		{"remote target", "not a loopback", func(c *Config) { c.Target = "http://example.com:8080" }},
		{"bad URL", "want a URL", func(c *Config) { c.Target = "127.0.0.1:8080" }},
		{"zero rate", "rate", func(c *Config) { c.Rate = 0 }},
		{"unbounded", "positive duration", func(c *Config) { c.Duration = 0 }},
		{"unknown scenario", "unknown scenario", func(c *Config) { c.Scenario = "chaos" }},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: %v, want error mentioning %q", tc.name, err, tc.wantErr)
		}
	}
	c := DefaultConfig()
	c.Target, c.AllowRemote = "http://example.com:8080", true
	if err := c.Validate(); err != nil {
		t.Errorf("--allow-remote: %v", err)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1", "127.3.4.5"} {
		if !isLoopback(h) {
			t.Errorf("%s is loopback", h)
		}
	}
}

func TestRefusesNonWebStore(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := Run(context.Background(), Config{Target: srv.URL, Rate: 1, Requests: 1, Scenario: "normal", Client: testClient(t)}, nil)
	if err == nil || !strings.Contains(err.Error(), "does not look like WebStore") {
		t.Errorf("error %v", err)
	}
}

// TestScenariosAreValid checks every scenario's faults against the shop's
// rules, and that a scoped scenario's value is one the session mix sends
// often enough to make a spike.
func TestScenariosAreValid(t *testing.T) {
	share := func(ws []weighted, v string) float64 {
		total, w := 0, 0
		for _, x := range ws {
			total += x.weight
			if x.value == v {
				w = x.weight
			}
		}
		return float64(w) / float64(total)
	}
	for _, name := range ScenarioNames() {
		f := Scenarios[name]
		if f == nil {
			continue
		}
		if err := errors.Join(f.Validate(), f.ValidateScope(shop.PaymentMethods, shop.Countries)); err != nil {
			t.Errorf("scenario %s: %v", name, err)
		}
		if m := f.ScopePaymentMethod; m != "" && share(paymentMethods, m) < 0.1 {
			t.Errorf("scenario %s is scoped to payment_method=%s, which is only %.0f%% of checkouts", name, m, 100*share(paymentMethods, m))
		}
		if c := f.ScopeCountry; c != "" && share(countries, c) < 0.1 {
			t.Errorf("scenario %s is scoped to country=%s, which is only %.0f%% of checkouts", name, c, 100*share(countries, c))
		}
	}
	if got := Scenarios["slow-paypal"]; got == nil || got.ScopePaymentMethod != "paypal" || got.ProviderLatency != 7*time.Second {
		t.Errorf("slow-paypal = %+v, want 7s provider latency for payment_method=paypal", got)
	}
}

// TestScenarioFaultsRoundTrip sets each scenario's faults as a run does and
// restores the previous ones: a scope must be set, and cleared again, through
// /admin/faults.
func TestScenarioFaultsRoundTrip(t *testing.T) {
	before := faults.Faults{PaymentFailureRate: 0.01, QuantityMultiplier: 1}
	s := startShop(t, before)
	sh := &shopper{client: testClient(t), base: s.MainURL()}
	ctx := context.Background()
	for _, name := range ScenarioNames() {
		f := Scenarios[name]
		if f == nil {
			continue
		}
		prev, err := sh.getFaults(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := sh.setFaults(ctx, *f); err != nil {
			t.Fatalf("scenario %s: %v", name, err)
		}
		if got := s.Faults(); got != f.Normalize() {
			t.Errorf("scenario %s: shop faults %+v, want %+v", name, got, *f)
		}
		if err := sh.setFaults(ctx, prev); err != nil {
			t.Fatalf("scenario %s: restore: %v", name, err)
		}
		if got := s.Faults(); got != before {
			t.Errorf("scenario %s: restored faults %+v, want %+v", name, got, before)
		}
	}
}
