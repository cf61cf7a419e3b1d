package shop

import (
	"math/rand/v2"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/lookout-dev/lookout/webstore/faults"
	"github.com/lookout-dev/lookout/webstore/store"
	"github.com/lookout-dev/lookout/webstore/telemetry"
)

// providerService simulates an external payments API. Its latency, timeouts
// and declines come from the shop's faults, for the charges in their scope.
type providerService struct {
	shop *Shop
	tel  *telemetry.Providers
}

func newProviderService(s *Shop, tel *telemetry.Providers) *providerService {
	return &providerService{shop: s, tel: tel}
}

func (p *providerService) routes() http.Handler {
	mux := http.NewServeMux()
	handle(mux, p.tel, "POST /v1/charges", p.charge)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("/", notFound)
	return mux
}

// chargeRequest is the provider's charge API body.
type chargeRequest struct {
	AmountCents    int64  `json:"amount_cents"`
	Currency       string `json:"currency"`
	PaymentMethod  string `json:"payment_method"`
	Country        string `json:"country"`
	IdempotencyKey string `json:"idempotency_key"`
}

// chargeResponse is a successful charge.
type chargeResponse struct {
	ChargeID string `json:"charge_id"`
	Status   string `json:"status"`
}

// jitter returns a uniform duration in [0, d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)))
}

func (p *providerService) charge(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	span := trace.SpanFromContext(ctx)
	var req chargeRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		writeError(w, http.StatusBadRequest, errorMessage(err))
		return
	}
	if req.AmountCents <= 0 {
		writeError(w, http.StatusBadRequest, "amount_cents must be positive")
		return
	}
	f := p.shop.faults.Load()
	if !f.ProviderFaultsApply(req.PaymentMethod, req.Country) {
		// Out of the faults' scope: this charge behaves normally.
		f = faults.Faults{}
	}
	cfg := p.shop.cfg
	latency := cfg.ProviderBaseLatency + jitter(cfg.ProviderBaseJitter) + f.ProviderLatency + jitter(f.ProviderJitter)
	span.SetAttributes(attribute.Int64("provider.simulated_latency_ms", latency.Milliseconds()))

	if f.ProviderTimeoutRate > 0 && rand.Float64() < f.ProviderTimeoutRate {
		// Simulate a hung upstream: never answer; the caller's timeout ends it.
		span.SetAttributes(attribute.Bool("provider.simulated_timeout", true))
		p.shop.sleep(ctx, 24*time.Hour)
		return
	}
	if !p.shop.sleep(ctx, latency) {
		return // caller gone or shop stopping
	}
	if f.PaymentFailureRate > 0 && rand.Float64() < f.PaymentFailureRate {
		span.SetAttributes(attribute.String("provider.decline_code", "insufficient_funds"))
		writeError(w, http.StatusPaymentRequired, "card declined: insufficient_funds")
		return
	}
	writeJSON(w, http.StatusOK, chargeResponse{ChargeID: store.NewID("ch"), Status: "succeeded"})
}
