package shop

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/lookout-dev/lookout/webstore/store"
)

// Checkout outcomes: the status attribute of webstore.orders.
const (
	OutcomeCompleted       = "completed"
	OutcomeInvalid         = "invalid"
	OutcomeOutOfStock      = "out_of_stock"
	OutcomePaymentDeclined = "payment_declined"
	OutcomePaymentTimeout  = "payment_timeout"
	OutcomePaymentError    = "payment_error"
	OutcomeError           = "error"
)

// CheckoutResponse is the body of a successful POST /checkout.
type CheckoutResponse struct {
	OrderID    string            `json:"order_id"`
	CheckoutID string            `json:"checkout_id"`
	PaymentID  string            `json:"payment_id"`
	TotalCents int64             `json:"total_cents"`
	Currency   string            `json:"currency"`
	Items      []store.OrderItem `json:"items"`
}

// checkoutError is a failed checkout: its HTTP status, message and outcome.
type checkoutError struct {
	status  int
	outcome string
	msg     string
}

func (e *checkoutError) Error() string { return e.msg }

func failCheckout(status int, outcome, format string, args ...any) *checkoutError {
	return &checkoutError{status: status, outcome: outcome, msg: fmt.Sprintf(format, args...)}
}

func (m *mainService) checkout(w http.ResponseWriter, r *http.Request) {
	span := trace.SpanFromContext(r.Context())
	req, err := DecodeCheckoutRequest(r.Body)
	if err != nil {
		m.countOrder(r.Context(), OutcomeInvalid)
		span.SetAttributes(attribute.String("checkout.outcome", OutcomeInvalid))
		writeError(w, http.StatusBadRequest, errorMessage(err))
		return
	}
	// From here on the checkout runs to a consistent end even if the shopper
	// disconnects: stock held must be released or sold, a charge must be kept
	// only with an order.
	ctx := context.WithoutCancel(r.Context())
	resp, err := m.runCheckout(ctx, req)
	if err != nil {
		ce := &checkoutError{}
		if !errors.As(err, &ce) {
			ce = failCheckout(http.StatusInternalServerError, OutcomeError, "checkout failed: %v", err)
		}
		m.countOrder(ctx, ce.outcome)
		span.SetAttributes(attribute.String("checkout.outcome", ce.outcome))
		if ce.outcome != OutcomeInvalid {
			span.SetStatus(codes.Error, ce.msg)
		}
		if ce.status >= 500 {
			m.shop.logger.Warn("checkout failed", "outcome", ce.outcome, "err", ce.msg, "trace_id", span.SpanContext().TraceID())
		}
		writeError(w, ce.status, ce.msg)
		return
	}
	m.countOrder(ctx, OutcomeCompleted)
	// Inside the checkout server span, so the exemplar points at it.
	m.inst.checkoutAmount.Record(ctx, float64(resp.TotalCents)/100, m.attrs(req)...)
	span.SetAttributes(attribute.String("checkout.outcome", OutcomeCompleted), attribute.String("order.id", resp.OrderID))
	writeJSON(w, http.StatusCreated, resp)
}

// attrs returns the cached country/payment_method options; requests are
// validated, so the fallback only guards against a future mismatch.
func (m *mainService) attrs(req CheckoutRequest) []metric.RecordOption {
	if o, ok := m.attrSets[[2]string{req.Country, req.PaymentMethod}]; ok {
		return o
	}
	return []metric.RecordOption{metric.WithAttributes(attribute.String("country", req.Country), attribute.String("payment_method", req.PaymentMethod))}
}

func (m *mainService) countOrder(ctx context.Context, outcome string) {
	o, ok := m.outcomeSets[outcome]
	if !ok {
		o = []metric.AddOption{metric.WithAttributes(attribute.String("status", outcome))}
	}
	m.inst.orders.Add(ctx, 1, o...)
}

// priced is a validated cart: lines after the quantity multiplier, with prices.
type priced struct {
	lines      []store.Line
	items      []store.OrderItem
	totalCents int64
}

func (m *mainService) runCheckout(ctx context.Context, req CheckoutRequest) (CheckoutResponse, error) {
	checkoutID := store.NewID("chk")
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(
		attribute.String("checkout.id", checkoutID),
		attribute.String("country", req.Country),
		attribute.String("payment_method", req.PaymentMethod),
	)

	cart, err := m.validateCart(ctx, req)
	if err != nil {
		return CheckoutResponse{}, err
	}
	span.SetAttributes(attribute.Int64("checkout.amount_cents", cart.totalCents))

	reservationID, err := m.checkInventory(ctx, cart)
	if err != nil {
		return CheckoutResponse{}, err
	}

	paymentID, err := m.processPayment(ctx, checkoutID, req, cart)
	if err != nil {
		m.releaseStock(ctx, reservationID)
		return CheckoutResponse{}, err
	}

	order := store.Order{
		ID: store.NewID("ord"), CheckoutRef: checkoutID, PaymentID: paymentID, ReservationID: reservationID,
		Country: req.Country, PaymentMethod: req.PaymentMethod, TotalCents: cart.totalCents, Items: cart.items,
	}
	if err := m.createOrder(ctx, order, req.CartID); err != nil {
		// The order did not happen: give the money and the stock back.
		m.refund(ctx, paymentID)
		m.releaseStock(ctx, reservationID)
		return CheckoutResponse{}, failCheckout(http.StatusInternalServerError, OutcomeError, "could not create the order; the payment was refunded")
	}
	return CheckoutResponse{
		OrderID: order.ID, CheckoutID: checkoutID, PaymentID: paymentID,
		TotalCents: cart.totalCents, Currency: "USD", Items: cart.items,
	}, nil
}

// validateCart resolves the lines (from the cart or the request), reads each
// product and prices the order, inside a validate_cart span.
func (m *mainService) validateCart(ctx context.Context, req CheckoutRequest) (priced, error) {
	ctx, span := m.tracer.Start(ctx, "validate_cart")
	defer span.End()
	fail := func(err *checkoutError) (priced, error) {
		span.SetStatus(codes.Error, err.msg)
		return priced{}, err
	}
	lines := req.Items
	if req.CartID != "" {
		span.SetAttributes(attribute.String("cart.id", req.CartID))
		var err error
		lines, err = m.shop.db.CartItems(ctx, req.CartID)
		if errors.Is(err, store.ErrNotFound) {
			return fail(failCheckout(http.StatusNotFound, OutcomeInvalid, "unknown cart %q", req.CartID))
		}
		if err != nil {
			return fail(failCheckout(http.StatusInternalServerError, OutcomeError, "could not read the cart"))
		}
		if len(lines) == 0 {
			return fail(failCheckout(http.StatusBadRequest, OutcomeInvalid, "cart %s is empty", req.CartID))
		}
	}
	// Merge repeated products and check the merged quantities.
	merged := map[int64]int64{}
	var order []int64
	for _, l := range lines {
		if _, ok := merged[l.ProductID]; !ok {
			order = append(order, l.ProductID)
		}
		merged[l.ProductID] += l.Quantity
	}
	mult := int64(m.shop.faults.Load().Multiplier())
	if mult > 1 {
		span.SetAttributes(attribute.Int64("webstore.quantity_multiplier", mult))
	}
	var p priced
	for _, id := range order {
		q := merged[id]
		if err := checkQuantity(q); err != nil {
			return fail(failCheckout(http.StatusBadRequest, OutcomeInvalid, "product %d: %s", id, errorMessage(err)))
		}
		prod, err := m.getProduct(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return fail(failCheckout(http.StatusBadRequest, OutcomeInvalid, "unknown product %d", id))
		}
		if err != nil {
			return fail(failCheckout(http.StatusServiceUnavailable, OutcomeError, "could not read product %d", id))
		}
		// The simulated UI bug: the quantity sold is not the one validated.
		q *= mult
		p.lines = append(p.lines, store.Line{ProductID: id, Quantity: q})
		p.items = append(p.items, store.OrderItem{ProductID: id, Quantity: q, UnitPriceCents: prod.PriceCents})
		p.totalCents += q * prod.PriceCents
	}
	var quantity int64
	for _, l := range p.lines {
		quantity += l.Quantity
	}
	// cart.quantity counts the items sold, after the quantity multiplier, so
	// a spike in checkout amounts can be traced to the quantities.
	span.SetAttributes(attribute.Int("cart.lines", len(p.lines)), attribute.Int64("cart.quantity", quantity),
		attribute.Int64("cart.total_cents", p.totalCents))
	return p, nil
}

// checkInventory reserves the stock at inventory-service.
func (m *mainService) checkInventory(ctx context.Context, cart priced) (string, error) {
	ctx, span := m.tracer.Start(ctx, "check_inventory")
	defer span.End()
	var out reservationResponse
	err := m.inventory.call(ctx, "POST /reservations", http.MethodPost, "/reservations", reservationRequest{Items: cart.lines}, &out)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		switch remoteStatus(err) {
		case http.StatusConflict:
			var re *remoteError
			errors.As(err, &re)
			return "", failCheckout(http.StatusConflict, OutcomeOutOfStock, "%s", re.Message)
		case http.StatusNotFound, http.StatusBadRequest:
			var re *remoteError
			errors.As(err, &re)
			return "", failCheckout(http.StatusBadRequest, OutcomeInvalid, "%s", re.Message)
		}
		return "", failCheckout(http.StatusBadGateway, OutcomeError, "inventory-service is unavailable: %v", err)
	}
	span.SetAttributes(attribute.String("reservation.id", out.ReservationID))
	return out.ReservationID, nil
}

// processPayment charges the order through payments-service inside a
// process_payment span, and records webstore.payment.duration with that
// span's context whatever the outcome, so its exemplar links to this span.
func (m *mainService) processPayment(ctx context.Context, checkoutID string, req CheckoutRequest, cart priced) (string, error) {
	ctx, span := m.tracer.Start(ctx, "process_payment", trace.WithAttributes(
		attribute.String("country", req.Country),
		attribute.String("payment_method", req.PaymentMethod),
		attribute.Int64("payment.amount_cents", cart.totalCents),
	))
	defer span.End()
	start := time.Now()
	var out paymentResponse
	err := m.payments.call(ctx, "POST /payments", http.MethodPost, "/payments", paymentRequest{
		CheckoutRef: checkoutID, AmountCents: cart.totalCents, Currency: "USD",
		PaymentMethod: req.PaymentMethod, Country: req.Country,
	}, &out)
	m.inst.paymentDuration.Record(ctx, time.Since(start).Seconds(), m.attrs(req)...)
	if err == nil {
		span.SetAttributes(attribute.String("payment.id", out.PaymentID))
		return out.PaymentID, nil
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	var re *remoteError
	if errors.As(err, &re) {
		switch re.Status {
		case http.StatusPaymentRequired:
			return "", failCheckout(http.StatusPaymentRequired, OutcomePaymentDeclined, "%s", re.Message)
		case http.StatusGatewayTimeout:
			return "", failCheckout(http.StatusGatewayTimeout, OutcomePaymentTimeout, "%s", re.Message)
		case http.StatusBadRequest:
			return "", failCheckout(http.StatusBadRequest, OutcomeInvalid, "%s", re.Message)
		}
		// payments-service answered: its outcome is recorded and not a success.
		return "", failCheckout(http.StatusBadGateway, OutcomePaymentError, "%s", re.Message)
	}
	// No answer: the payment may or may not have gone through. Void it.
	m.voidPayments(ctx, checkoutID)
	return "", failCheckout(http.StatusBadGateway, OutcomePaymentError, "payments-service did not answer: %v", err)
}

// createOrder writes the order, commits the reservation and empties the cart
// in one transaction, inside a create_order span.
func (m *mainService) createOrder(ctx context.Context, o store.Order, cartID string) error {
	ctx, span := m.tracer.Start(ctx, "create_order", trace.WithAttributes(
		attribute.String("order.id", o.ID),
		attribute.String("db.system.name", "sqlite"),
		attribute.String("db.operation.name", "INSERT"),
		attribute.String("db.collection.name", "orders"),
	))
	defer span.End()
	if err := m.shop.db.CreateOrder(ctx, o, cartID); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		m.shop.logger.Error("create order", "order_id", o.ID, "err", err)
		return err
	}
	return nil
}

// releaseStock gives a reservation's stock back. Failures are logged: the
// reservation stays held and is visible in the ledger.
func (m *mainService) releaseStock(ctx context.Context, reservationID string) {
	ctx, span := m.tracer.Start(ctx, "release_inventory", trace.WithAttributes(attribute.String("reservation.id", reservationID)))
	defer span.End()
	if err := m.inventory.call(ctx, "POST /reservations/{id}/release", http.MethodPost, "/reservations/"+reservationID+"/release", nil, nil); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		m.shop.logger.Error("release reservation", "reservation_id", reservationID, "err", err)
	}
}

func (m *mainService) refund(ctx context.Context, paymentID string) {
	ctx, span := m.tracer.Start(ctx, "refund_payment", trace.WithAttributes(attribute.String("payment.id", paymentID)))
	defer span.End()
	if err := m.payments.call(ctx, "POST /payments/{id}/refund", http.MethodPost, "/payments/"+paymentID+"/refund", nil, nil); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		m.shop.logger.Error("refund payment", "payment_id", paymentID, "err", err)
	}
}

func (m *mainService) voidPayments(ctx context.Context, checkoutID string) {
	if err := m.payments.call(ctx, "POST /payments/void", http.MethodPost, "/payments/void", voidRequest{CheckoutRef: checkoutID}, nil); err != nil {
		m.shop.logger.Error("void payments", "checkout_id", checkoutID, "err", err)
	}
}
