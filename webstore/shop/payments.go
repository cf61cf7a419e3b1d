package shop

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/lookout-dev/lookout/webstore/store"
	"github.com/lookout-dev/lookout/webstore/telemetry"
)

// paymentsService records payments and charges them through the provider.
type paymentsService struct {
	shop     *Shop
	tel      *telemetry.Providers
	provider *serviceClient
}

func newPaymentsService(s *Shop, tel *telemetry.Providers) *paymentsService {
	return &paymentsService{
		shop: s,
		tel:  tel,
		// The per-call timeout is PaymentTimeout; this one only backstops it.
		provider: s.newClient(s.urls[ProviderService], ProviderService, tel, s.cfg.PaymentTimeout+5*time.Second),
	}
}

func (p *paymentsService) routes() http.Handler {
	mux := http.NewServeMux()
	handle(mux, p.tel, "POST /payments", p.create)
	handle(mux, p.tel, "POST /payments/{id}/refund", p.refund)
	handle(mux, p.tel, "POST /payments/void", p.void)
	handle(mux, p.tel, "GET /payments/{id}", p.get)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("/", notFound)
	return mux
}

// paymentRequest is the body of POST /payments.
type paymentRequest struct {
	CheckoutRef   string `json:"checkout_ref"`
	AmountCents   int64  `json:"amount_cents"`
	Currency      string `json:"currency"`
	PaymentMethod string `json:"payment_method"`
	Country       string `json:"country"`
}

// paymentResponse answers POST /payments on success.
type paymentResponse struct {
	PaymentID string `json:"payment_id"`
	ChargeID  string `json:"charge_id"`
	Status    string `json:"status"`
}

func (p *paymentsService) create(w http.ResponseWriter, r *http.Request) {
	var req paymentRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		writeError(w, http.StatusBadRequest, errorMessage(err))
		return
	}
	switch {
	case req.CheckoutRef == "":
		writeError(w, http.StatusBadRequest, "checkout_ref is required")
		return
	case req.AmountCents <= 0:
		writeError(w, http.StatusBadRequest, "amount_cents must be positive")
		return
	case req.Currency != "USD":
		writeError(w, http.StatusBadRequest, fmt.Sprintf("currency %q is not supported: use USD", req.Currency))
		return
	case !slices.Contains(PaymentMethods, req.PaymentMethod):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown payment_method %q", req.PaymentMethod))
		return
	case !slices.Contains(Countries, req.Country):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown country %q", req.Country))
		return
	}
	// The payment outcome must be recorded even if the caller goes away.
	ctx := context.WithoutCancel(r.Context())
	pay := store.Payment{
		ID: store.NewID("pay"), CheckoutRef: req.CheckoutRef, AmountCents: req.AmountCents,
		Currency: req.Currency, Method: req.PaymentMethod, Country: req.Country, Status: "pending",
	}
	if err := p.shop.db.InsertPayment(ctx, pay); err != nil {
		p.shop.logger.Error("record payment", "err", err)
		writeError(w, http.StatusInternalServerError, "could not record the payment")
		return
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("payment.id", pay.ID))

	charge, err := p.authorize(ctx, req)
	status, msg, httpStatus := "succeeded", "", http.StatusCreated
	switch {
	case err == nil:
	case remoteStatus(err) == http.StatusPaymentRequired:
		status, msg, httpStatus = "declined", "payment declined: "+err.(*remoteError).Message, http.StatusPaymentRequired
	case errors.Is(err, context.DeadlineExceeded):
		status, msg, httpStatus = "timeout", fmt.Sprintf("payment provider did not answer within %s", p.shop.cfg.PaymentTimeout), http.StatusGatewayTimeout
	default:
		status, msg, httpStatus = "error", "payment provider error: "+err.Error(), http.StatusBadGateway
	}
	if err := p.shop.db.SetPaymentStatus(ctx, pay.ID, status, msg); err != nil {
		p.shop.logger.Error("record payment outcome", "payment_id", pay.ID, "err", err)
		writeError(w, http.StatusInternalServerError, "could not record the payment outcome")
		return
	}
	if httpStatus != http.StatusCreated {
		span := trace.SpanFromContext(ctx)
		span.SetStatus(codes.Error, msg)
		writeJSON(w, httpStatus, map[string]string{"error": msg, "payment_id": pay.ID, "status": status})
		return
	}
	writeJSON(w, httpStatus, paymentResponse{PaymentID: pay.ID, ChargeID: charge.ChargeID, Status: status})
}

// authorize charges the provider. Its client span, payment_provider_api, is
// a child of the POST /payments server span.
func (p *paymentsService) authorize(ctx context.Context, req paymentRequest) (chargeResponse, error) {
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(
		attribute.String("payment_method", req.PaymentMethod),
		attribute.String("country", req.Country),
		attribute.Int64("payment.amount_cents", req.AmountCents),
	)
	ctx, cancel := context.WithTimeout(ctx, p.shop.cfg.PaymentTimeout)
	defer cancel()
	var out chargeResponse
	err := p.provider.call(ctx, "payment_provider_api", http.MethodPost, "/v1/charges", chargeRequest{
		AmountCents: req.AmountCents, Currency: req.Currency, PaymentMethod: req.PaymentMethod,
		Country: req.Country, IdempotencyKey: req.CheckoutRef,
	}, &out)
	if err != nil {
		span.RecordError(err)
	}
	return out, err
}

func (p *paymentsService) refund(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx := context.WithoutCancel(r.Context())
	pay, err := p.shop.db.GetPayment(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown payment %q", id))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "could not read the payment")
		return
	}
	if pay.Status != "succeeded" && pay.Status != "refunded" {
		writeError(w, http.StatusConflict, fmt.Sprintf("payment %s is %s; only a succeeded payment can be refunded", id, pay.Status))
		return
	}
	if err := p.shop.db.SetPaymentStatus(ctx, id, "refunded", ""); err != nil {
		writeError(w, http.StatusInternalServerError, "could not refund the payment")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"payment_id": id, "status": "refunded"})
}

// voidRequest is the body of POST /payments/void.
type voidRequest struct {
	CheckoutRef string `json:"checkout_ref"`
}

// void refunds every succeeded payment of a checkout whose outcome the caller
// could not learn.
func (p *paymentsService) void(w http.ResponseWriter, r *http.Request) {
	var req voidRequest
	if err := decodeJSON(r.Body, &req); err != nil || req.CheckoutRef == "" {
		writeError(w, http.StatusBadRequest, "send {\"checkout_ref\": \"...\"}")
		return
	}
	n, err := p.shop.db.VoidPayments(context.WithoutCancel(r.Context()), req.CheckoutRef)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "could not void the payments")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"checkout_ref": req.CheckoutRef, "refunded": n})
}

func (p *paymentsService) get(w http.ResponseWriter, r *http.Request) {
	pay, err := p.shop.db.GetPayment(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown payment %q", r.PathValue("id")))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "could not read the payment")
		return
	}
	writeJSON(w, http.StatusOK, pay)
}
