package shop

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lookout-dev/lookout/webstore/faults"
	"github.com/lookout-dev/lookout/webstore/store"
	"github.com/lookout-dev/lookout/webstore/telemetry"
)

// testConfig is a shop on free loopback ports in a temp dir, with no
// simulated base latency, no restocking and telemetry off.
func testConfig(t testing.TB) Config {
	return Config{
		DataDir:         t.TempDir(),
		MainListen:      "127.0.0.1:0",
		PaymentsListen:  "127.0.0.1:0",
		ProviderListen:  "127.0.0.1:0",
		InventoryListen: "127.0.0.1:0",
		PaymentTimeout:  5 * time.Second,
		Telemetry:       telemetry.Config{Disabled: true},
	}
}

func startShop(t testing.TB, cfg Config) *Shop {
	t.Helper()
	s, err := Start(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

type apiClient struct {
	t    testing.TB
	base string
	http *http.Client
}

func newAPIClient(t testing.TB, base string) *apiClient {
	c := &apiClient{t: t, base: base, http: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(c.http.CloseIdleConnections)
	return c
}

// do sends body (a string is sent verbatim, anything else as JSON) and
// returns the status and decoded JSON answer.
func (c *apiClient) do(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			c.t.Fatalf("%s %s: answer is not a JSON object: %q", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

func ledger(t testing.TB, s *Shop) store.Ledger {
	t.Helper()
	l, err := s.DB().Ledger(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(); err != nil {
		t.Errorf("ledger inconsistent: %v", err)
	}
	return l
}

func stockOf(t testing.TB, s *Shop, id int64) int64 {
	t.Helper()
	q, err := s.DB().Stock(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestCheckoutUnderFaults checks, for each fault, the checkout's answer and
// that stock, payments and orders stay consistent.
func TestCheckoutUnderFaults(t *testing.T) {
	tests := []struct {
		name        string
		faults      faults.Faults
		timeout     time.Duration
		qty         int64
		wantStatus  int
		wantOrder   bool
		wantPayment string // status of the payment row, "" for none
		wantSold    int64  // units taken from stock
	}{
		{name: "no faults", qty: 2, wantStatus: 201, wantOrder: true, wantPayment: "succeeded", wantSold: 2},
		{name: "provider latency below timeout", faults: faults.Faults{ProviderLatency: 30 * time.Millisecond, ProviderJitter: 10 * time.Millisecond}, qty: 1,
			wantStatus: 201, wantOrder: true, wantPayment: "succeeded", wantSold: 1},
		{name: "provider latency above timeout", faults: faults.Faults{ProviderLatency: 2 * time.Second}, timeout: 100 * time.Millisecond, qty: 3,
			wantStatus: 504, wantPayment: "timeout"},
		{name: "provider timeouts", faults: faults.Faults{ProviderTimeoutRate: 1}, timeout: 100 * time.Millisecond, qty: 3,
			wantStatus: 504, wantPayment: "timeout"},
		{name: "payment failures", faults: faults.Faults{PaymentFailureRate: 1}, qty: 3, wantStatus: 402, wantPayment: "declined"},
		{name: "slow get_product", faults: faults.Faults{GetProductLatency: 20 * time.Millisecond}, qty: 4,
			wantStatus: 201, wantOrder: true, wantPayment: "succeeded", wantSold: 4},
		{name: "quantity multiplier", faults: faults.Faults{QuantityMultiplier: 500}, qty: 2,
			wantStatus: 201, wantOrder: true, wantPayment: "succeeded", wantSold: 1000},
		{name: "quantity multiplier beyond stock", faults: faults.Faults{QuantityMultiplier: 500}, qty: 50,
			wantStatus: 409},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.Faults = tc.faults
			if tc.timeout > 0 {
				cfg.PaymentTimeout = tc.timeout
			}
			s := startShop(t, cfg)
			c := newAPIClient(t, s.MainURL())
			const product = 7 // Orbit 13" Ultrabook: $1,249.00, 5,000 in stock
			before := stockOf(t, s, product)

			status, body := c.do("POST", "/checkout", map[string]any{
				"items": []map[string]int64{{"product_id": product, "quantity": tc.qty}}, "country": "US", "payment_method": "card",
			})
			if status != tc.wantStatus {
				t.Fatalf("checkout: HTTP %d %v, want %d", status, body, tc.wantStatus)
			}
			if status >= 400 {
				if msg, _ := body["error"].(string); msg == "" {
					t.Errorf("error answer has no error message: %v", body)
				}
			}
			if got := before - stockOf(t, s, product); got != tc.wantSold {
				t.Errorf("stock went down by %d, want %d", got, tc.wantSold)
			}
			l := ledger(t, s)
			if got := l.Orders; (got == 1) != tc.wantOrder || got > 1 {
				t.Errorf("%d orders, want order=%v", got, tc.wantOrder)
			}
			if l.Held != 0 {
				t.Errorf("%d units still held in reservations", l.Held)
			}
			var payments int64
			for _, n := range l.Payments {
				payments += n
			}
			switch {
			case tc.wantPayment == "" && payments != 0:
				t.Errorf("payments %v, want none", l.Payments)
			case tc.wantPayment != "" && (payments != 1 || l.Payments[tc.wantPayment] != 1):
				t.Errorf("payments %v, want one %s", l.Payments, tc.wantPayment)
			}
			if tc.wantOrder {
				id, _ := body["order_id"].(string)
				o, err := s.DB().GetOrder(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if len(o.Items) != 1 || o.Items[0].Quantity != tc.wantSold || o.TotalCents != tc.wantSold*124900 {
					t.Errorf("order %+v, want %d units at $1,249.00", o, tc.wantSold)
				}
			}
		})
	}
}

// TestScopedProviderFaults checks that payment-provider faults scoped to a
// payment method or country hit only the charges in scope, and that the
// scope leaves the other faults alone. A provider latency far above the
// payment timeout shows a slowed charge as a timeout (504), so the test
// does not depend on timing.
func TestScopedProviderFaults(t *testing.T) {
	type charge struct {
		paymentMethod, country string
		wantStatus             int
		wantSold               int64 // units taken from stock
	}
	tests := []struct {
		name    string
		faults  faults.Faults
		charges []charge
	}{
		{"latency for paypal only", faults.Faults{ProviderLatency: time.Minute, ScopePaymentMethod: "paypal"}, []charge{
			{"paypal", "US", 504, 0}, {"card", "US", 201, 1}, {"apple_pay", "DE", 201, 1},
		}},
		{"declines for paypal only", faults.Faults{PaymentFailureRate: 1, ScopePaymentMethod: "paypal"}, []charge{
			{"paypal", "GB", 402, 0}, {"card", "GB", 201, 1},
		}},
		{"timeouts for one country", faults.Faults{ProviderTimeoutRate: 1, ScopeCountry: "DE"}, []charge{
			{"card", "DE", 504, 0}, {"card", "US", 201, 1}, {"paypal", "FR", 201, 1},
		}},
		{"payment method and country together", faults.Faults{PaymentFailureRate: 1, ScopePaymentMethod: "paypal", ScopeCountry: "DE"}, []charge{
			{"paypal", "DE", 402, 0}, {"paypal", "US", 201, 1}, {"card", "DE", 201, 1},
		}},
		{"scope leaves the quantity multiplier alone", faults.Faults{QuantityMultiplier: 3, PaymentFailureRate: 1, ScopePaymentMethod: "paypal"}, []charge{
			{"card", "US", 201, 3}, {"paypal", "US", 402, 0},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.Faults = tc.faults
			cfg.PaymentTimeout = time.Second
			s := startShop(t, cfg)
			c := newAPIClient(t, s.MainURL())
			const product = 7
			for _, ch := range tc.charges {
				before := stockOf(t, s, product)
				status, body := c.do("POST", "/checkout", map[string]any{
					"items":   []map[string]int64{{"product_id": product, "quantity": 1}},
					"country": ch.country, "payment_method": ch.paymentMethod,
				})
				if status != ch.wantStatus {
					t.Errorf("%s from %s: HTTP %d %v, want %d", ch.paymentMethod, ch.country, status, body, ch.wantStatus)
				}
				if got := before - stockOf(t, s, product); got != ch.wantSold {
					t.Errorf("%s from %s: stock went down by %d, want %d", ch.paymentMethod, ch.country, got, ch.wantSold)
				}
			}
			if l := ledger(t, s); l.Held != 0 {
				t.Errorf("%d units still held in reservations", l.Held)
			}
		})
	}
}

// TestCheckoutValidation checks that bad requests get a 4xx JSON error and
// leave no order, no stock change and no charge behind.
func TestCheckoutValidation(t *testing.T) {
	s := startShop(t, testConfig(t))
	c := newAPIClient(t, s.MainURL())
	_, cart := c.do("POST", "/carts", nil)
	emptyCart, _ := cart["cart_id"].(string)
	before := ledger(t, s)

	tests := []struct {
		name, body, wantErr string
		wantStatus          int
	}{
		{"malformed JSON", `{"items": [`, "malformed JSON", 400},
		{"empty body", ``, "empty body", 400},
		{"not an object", `[1,2]`, "malformed JSON", 400},
		{"trailing data", `{"items":[{"product_id":1,"quantity":1}],"country":"US","payment_method":"card"} {}`, "trailing data", 400},
		{"unknown field", `{"items":[{"product_id":1,"quantity":1}],"country":"US","payment_method":"card","coupon":"FREE"}`, "unknown field", 400},
		{"unknown product", `{"items":[{"product_id":9999,"quantity":1}],"country":"US","payment_method":"card"}`, "unknown product 9999", 400},
		{"zero quantity", `{"items":[{"product_id":1,"quantity":0}],"country":"US","payment_method":"card"}`, "quantity must be at least 1", 400},
		{"negative quantity", `{"items":[{"product_id":1,"quantity":-3}],"country":"US","payment_method":"card"}`, "quantity must be at least 1", 400},
		{"absurd quantity", `{"items":[{"product_id":1,"quantity":1000000}],"country":"US","payment_method":"card"}`, "more than the 1000 allowed", 400},
		{"absurd after merging lines", `{"items":[{"product_id":1,"quantity":600},{"product_id":1,"quantity":600}],"country":"US","payment_method":"card"}`, "more than the 1000 allowed", 400},
		{"huge number", `{"items":[{"product_id":1,"quantity":1e30}],"country":"US","payment_method":"card"}`, "malformed JSON", 400},
		{"unknown country", `{"items":[{"product_id":1,"quantity":1}],"country":"XX","payment_method":"card"}`, "unknown country", 400},
		{"unknown payment method", `{"items":[{"product_id":1,"quantity":1}],"country":"US","payment_method":"bitcoin"}`, "unknown payment_method", 400},
		{"no items", `{"country":"US","payment_method":"card"}`, "cart_id or a non-empty items", 400},
		{"cart and items", `{"cart_id":"x","items":[{"product_id":1,"quantity":1}],"country":"US","payment_method":"card"}`, "not both", 400},
		{"unknown cart", `{"cart_id":"cart_nope","country":"US","payment_method":"card"}`, "unknown cart", 404},
		{"empty cart", `{"cart_id":"` + emptyCart + `","country":"US","payment_method":"card"}`, "is empty", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := c.do("POST", "/checkout", tc.body)
			if status != tc.wantStatus {
				t.Errorf("HTTP %d %v, want %d", status, body, tc.wantStatus)
			}
			msg, _ := body["error"].(string)
			if !strings.Contains(msg, tc.wantErr) {
				t.Errorf("error %q does not mention %q", msg, tc.wantErr)
			}
		})
	}
	after := ledger(t, s)
	if after.OnHand != before.OnHand || after.Orders != 0 || len(after.Payments) != 0 {
		t.Errorf("bad requests changed the shop: before %+v, after %+v", before, after)
	}
}

// TestCartCheckout fills a cart over the API and checks out from it.
func TestCartCheckout(t *testing.T) {
	s := startShop(t, testConfig(t))
	c := newAPIClient(t, s.MainURL())
	status, cart := c.do("POST", "/carts", nil)
	if status != 201 {
		t.Fatalf("create cart: %d %v", status, cart)
	}
	id := cart["cart_id"].(string)
	for _, add := range []map[string]int64{{"product_id": 3, "quantity": 1}, {"product_id": 3, "quantity": 2}, {"product_id": 11, "quantity": 1}} {
		if status, body := c.do("POST", "/carts/"+id+"/items", add); status != 200 {
			t.Fatalf("add %v: %d %v", add, status, body)
		}
	}
	if status, body := c.do("POST", "/carts/"+id+"/items", map[string]int64{"product_id": 424242, "quantity": 1}); status != 400 {
		t.Errorf("adding an unknown product: %d %v, want 400", status, body)
	}
	if status, body := c.do("POST", "/carts/"+id+"/items", map[string]int64{"product_id": 3, "quantity": 998}); status != 400 {
		t.Errorf("adding past the quantity limit: %d %v, want 400", status, body)
	}
	_, view := c.do("GET", "/carts/"+id, nil)
	if got := view["total_cents"].(float64); got != 3*8999+2899 {
		t.Errorf("cart total %v, want %d", got, 3*8999+2899)
	}
	status, body := c.do("POST", "/checkout", map[string]string{"cart_id": id, "country": "gb", "payment_method": "Apple_Pay"})
	if status != 201 {
		t.Fatalf("checkout: %d %v", status, body)
	}
	_, order := c.do("GET", "/orders/"+body["order_id"].(string), nil)
	if order["country"] != "GB" || order["payment_method"] != "apple_pay" || order["total_cents"].(float64) != 3*8999+2899 {
		t.Errorf("order %v", order)
	}
	_, view = c.do("GET", "/carts/"+id, nil)
	if items := view["items"].([]any); len(items) != 0 {
		t.Errorf("cart not emptied after checkout: %v", view)
	}
	if status, _ := c.do("GET", "/orders/ord_missing", nil); status != 404 {
		t.Errorf("unknown order: %d, want 404", status)
	}
	if status, _ := c.do("GET", "/products/0", nil); status != 400 {
		t.Errorf("product 0: %d, want 400", status)
	}
	if status, _ := c.do("GET", "/nope", nil); status != 404 {
		t.Errorf("unknown route: %d, want 404", status)
	}
	ledger(t, s)
}

// TestConcurrentCheckoutsStayConsistent races many checkouts for scarce
// stock with flaky payments and checks the books balance.
func TestConcurrentCheckoutsStayConsistent(t *testing.T) {
	cfg := testConfig(t)
	cfg.Faults = faults.Faults{PaymentFailureRate: 0.3, ProviderTimeoutRate: 0.1, QuantityMultiplier: 100}
	cfg.PaymentTimeout = 200 * time.Millisecond
	s := startShop(t, cfg)
	c := newAPIClient(t, s.MainURL())
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Product 10 has 5,000 units: at 100x most of these will not fit.
			status, _ := c.do("POST", "/checkout", map[string]any{
				"items":   []map[string]int64{{"product_id": 10, "quantity": int64(1 + i%5)}, {"product_id": 1, "quantity": 1}},
				"country": "FR", "payment_method": "card",
			})
			mu.Lock()
			statuses[status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	l := ledger(t, s)
	if int(l.Orders) != statuses[201] {
		t.Errorf("%d orders but %d successful checkouts (%v)", l.Orders, statuses[201], statuses)
	}
	if l.Payments["succeeded"] != l.Orders {
		t.Errorf("%d succeeded payments but %d orders", l.Payments["succeeded"], l.Orders)
	}
	if l.Held != 0 {
		t.Errorf("%d units left held", l.Held)
	}
	for st := range statuses {
		switch st {
		case 201, 402, 409, 504:
		default:
			t.Errorf("unexpected status %d (%v)", st, statuses)
		}
	}
}

// TestAdminFaults checks the faults API: partial updates merge, bad ones are refused.
func TestAdminFaults(t *testing.T) {
	s := startShop(t, testConfig(t))
	c := newAPIClient(t, s.MainURL())
	if status, body := c.do("POST", "/admin/faults", `{"provider_latency":"7s","quantity_multiplier":500}`); status != 200 {
		t.Fatalf("set faults: %d %v", status, body)
	}
	if status, body := c.do("POST", "/admin/faults", `{"payment_failure_rate":0.25}`); status != 200 {
		t.Fatalf("set faults: %d %v", status, body)
	}
	for _, bad := range []string{`{"payment_failure_rate":2}`, `{"provider_latency":"soon"}`, `{"bogus":1}`, `nope`, `{"quantity_multiplier":-1}`,
		`{"scope_payment_method":"bitcoin"}`, `{"scope_country":"XX"}`, `{"scope_payment_method":"PayPal"}`} {
		if status, body := c.do("POST", "/admin/faults", bad); status != 400 || body["error"] == "" {
			t.Errorf("POST %s: %d %v, want 400 with an error", bad, status, body)
		}
	}
	want := faults.Faults{ProviderLatency: 7 * time.Second, QuantityMultiplier: 500, PaymentFailureRate: 0.25}
	if got := s.Faults(); got != want {
		t.Errorf("faults %+v, want %+v", got, want)
	}
	_, body := c.do("GET", "/admin/faults", nil)
	if body["provider_latency"] != "7s" || body["quantity_multiplier"].(float64) != 500 || body["payment_failure_rate"].(float64) != 0.25 {
		t.Errorf("GET /admin/faults = %v", body)
	}
	if status, body := c.do("POST", "/admin/faults", `{"scope_payment_method":"paypal","scope_country":"DE"}`); status != 200 ||
		body["scope_payment_method"] != "paypal" || body["scope_country"] != "DE" || body["provider_latency"] != "7s" {
		t.Errorf("set scopes: %d %v", status, body)
	}
	if got := s.Faults(); got.ScopePaymentMethod != "paypal" || got.ScopeCountry != "DE" {
		t.Errorf("faults after setting scopes %+v", got)
	}
	if status, body := c.do("POST", "/admin/faults", `{"scope_country":""}`); status != 200 || body["scope_country"] != "" || body["scope_payment_method"] != "paypal" {
		t.Errorf("clear scope_country: %d %v", status, body)
	}
	if err := s.SetFaults(faults.Faults{ScopePaymentMethod: "bitcoin"}); err == nil || !strings.Contains(err.Error(), "unknown scope_payment_method") {
		t.Errorf("SetFaults with an unknown payment method: %v", err)
	}
	if err := s.SetFaults(faults.Faults{}); err != nil {
		t.Fatal(err)
	}
	if got := s.Faults().Multiplier(); got != 1 {
		t.Errorf("multiplier after reset = %d", got)
	}
	if err := s.SetFaults(faults.Faults{PaymentFailureRate: -1}); err == nil {
		t.Error("SetFaults accepted a negative rate")
	}
}

// TestStartRejectsBadConfig checks Start's validation and a taken port.
func TestStartRejectsBadConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.MainListen = ""
	if _, err := Start(context.Background(), cfg, testLogger(t)); err == nil {
		t.Error("Start accepted an empty listen address")
	}
	cfg = testConfig(t)
	cfg.Faults.ScopeCountry = "XX"
	if _, err := Start(context.Background(), cfg, testLogger(t)); err == nil || !strings.Contains(err.Error(), "unknown scope_country") {
		t.Errorf("Start with an unknown scope country: %v", err)
	}
	s := startShop(t, testConfig(t))
	cfg = testConfig(t)
	cfg.PaymentsListen = strings.TrimPrefix(s.MainURL(), "http://")
	if _, err := Start(context.Background(), cfg, testLogger(t)); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("Start on a taken port: %v", err)
	}
}
