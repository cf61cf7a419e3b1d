package shop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/lookout-dev/lookout/webstore/store"
)

// Countries are the ISO 3166-1 alpha-2 codes the shop ships to.
var Countries = []string{"US", "CA", "MX", "BR", "GB", "IE", "DE", "FR", "ES", "IT", "NL", "SE", "PL", "IN", "JP", "AU"}

// PaymentMethods are the accepted payment methods.
var PaymentMethods = []string{"card", "paypal", "apple_pay", "google_pay", "bank_transfer"}

// Limits on a checkout request.
const (
	// MaxLineQuantity is the largest quantity a shopper may ask for in one line.
	MaxLineQuantity = 1000
	// MaxLines is the most distinct lines in one checkout.
	MaxLines = 100
	// maxBodyBytes bounds every JSON request body.
	maxBodyBytes = 1 << 20
)

// CheckoutRequest is the body of POST /checkout: either a cart or explicit items.
type CheckoutRequest struct {
	CartID        string       `json:"cart_id,omitempty"`
	Items         []store.Line `json:"items,omitempty"`
	Country       string       `json:"country"`
	PaymentMethod string       `json:"payment_method"`
}

// ErrBadRequest marks errors caused by the request; they map to HTTP 400.
var ErrBadRequest = errors.New("bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}

// decodeJSON reads exactly one JSON object of at most maxBodyBytes into v,
// rejecting unknown fields and trailing data.
func decodeJSON(r io.Reader, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, maxBodyBytes+1))
	if err != nil {
		return badRequest("read body: %v", err)
	}
	if len(b) > maxBodyBytes {
		return badRequest("body is larger than %d bytes", maxBodyBytes)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return badRequest("empty body: send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("malformed JSON: %v", err)
	}
	if dec.More() {
		return badRequest("malformed JSON: trailing data after the object")
	}
	return nil
}

// DecodeCheckoutRequest reads and checks a checkout body: its syntax, that it
// names a cart or items (not both), the quantities, the country and the
// payment method. Whether the products and cart exist is checked later,
// against the database.
func DecodeCheckoutRequest(r io.Reader) (CheckoutRequest, error) {
	var req CheckoutRequest
	if err := decodeJSON(r, &req); err != nil {
		return CheckoutRequest{}, err
	}
	req.Country = strings.ToUpper(strings.TrimSpace(req.Country))
	req.PaymentMethod = strings.ToLower(strings.TrimSpace(req.PaymentMethod))
	var errs []error
	switch {
	case req.CartID == "" && len(req.Items) == 0:
		errs = append(errs, badRequest("give a cart_id or a non-empty items list"))
	case req.CartID != "" && len(req.Items) > 0:
		errs = append(errs, badRequest("give either cart_id or items, not both"))
	}
	if len(req.CartID) > 64 {
		errs = append(errs, badRequest("cart_id is too long"))
	}
	if len(req.Items) > MaxLines {
		errs = append(errs, badRequest("too many lines: %d (at most %d)", len(req.Items), MaxLines))
	} else {
		for i, it := range req.Items {
			if err := checkLine(it); err != nil {
				errs = append(errs, fmt.Errorf("items[%d]: %w", i, err))
			}
		}
	}
	if !slices.Contains(Countries, req.Country) {
		errs = append(errs, badRequest("unknown country %q: use one of %s", req.Country, strings.Join(Countries, ", ")))
	}
	if !slices.Contains(PaymentMethods, req.PaymentMethod) {
		errs = append(errs, badRequest("unknown payment_method %q: use one of %s", req.PaymentMethod, strings.Join(PaymentMethods, ", ")))
	}
	if err := errors.Join(errs...); err != nil {
		return CheckoutRequest{}, err
	}
	return req, nil
}

func checkLine(l store.Line) error {
	if l.ProductID <= 0 {
		return badRequest("product_id must be a positive integer, got %d", l.ProductID)
	}
	return checkQuantity(l.Quantity)
}

func checkQuantity(q int64) error {
	if q <= 0 {
		return badRequest("quantity must be at least 1, got %d", q)
	}
	if q > MaxLineQuantity {
		return badRequest("quantity %d is more than the %d allowed per product", q, MaxLineQuantity)
	}
	return nil
}

// errorBody is every error response: {"error": "..."}.
type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client may be gone; nothing useful to do
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// errorMessage strips the ErrBadRequest prefix users need not see.
func errorMessage(err error) string {
	return strings.ReplaceAll(err.Error(), ErrBadRequest.Error()+": ", "")
}
