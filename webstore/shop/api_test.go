package shop

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestDecodeCheckoutRequest(t *testing.T) {
	got, err := DecodeCheckoutRequest(strings.NewReader(` {"items":[{"product_id":4,"quantity":2}],"country":" us ","payment_method":"PayPal"} `))
	if err != nil {
		t.Fatal(err)
	}
	if got.Country != "US" || got.PaymentMethod != "paypal" || len(got.Items) != 1 || got.Items[0].Quantity != 2 {
		t.Errorf("decoded %+v", got)
	}
	// Several problems are reported together.
	_, err = DecodeCheckoutRequest(strings.NewReader(`{"items":[{"product_id":0,"quantity":0}],"country":"ZZ","payment_method":"cash"}`))
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("error %v is not ErrBadRequest", err)
	}
	for _, want := range []string{"items[0]", "product_id must be a positive", "unknown country", "unknown payment_method"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	big := `{"items":[` + strings.Repeat(`{"product_id":1,"quantity":1},`, MaxLines) + `{"product_id":1,"quantity":1}],"country":"US","payment_method":"card"}`
	if _, err := DecodeCheckoutRequest(strings.NewReader(big)); err == nil || !strings.Contains(err.Error(), "too many lines") {
		t.Errorf("too many lines: %v", err)
	}
	huge := `{"cart_id":"` + strings.Repeat("a", maxBodyBytes) + `"}`
	if _, err := DecodeCheckoutRequest(strings.NewReader(huge)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized body: %v", err)
	}
}

// FuzzDecodeCheckoutRequest checks that no body crashes the decoder and that
// every accepted request satisfies the documented limits.
func FuzzDecodeCheckoutRequest(f *testing.F) {
	for _, s := range []string{
		`{"items":[{"product_id":1,"quantity":2}],"country":"US","payment_method":"card"}`,
		`{"cart_id":"cart_1","country":"de","payment_method":"paypal"}`,
		`{"items":[{"product_id":-1,"quantity":1e3}],"country":"US","payment_method":"card"}`,
		`{"items":null}`, `[]`, `"x"`, `{"items":[{}]}`, `{"country":"US"}{}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := DecodeCheckoutRequest(strings.NewReader(body))
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		if (req.CartID == "") == (len(req.Items) == 0) {
			t.Fatalf("accepted %+v: need exactly one of cart_id and items", req)
		}
		if len(req.Items) > MaxLines {
			t.Fatalf("accepted %d lines", len(req.Items))
		}
		for _, it := range req.Items {
			if it.ProductID <= 0 || it.Quantity <= 0 || it.Quantity > MaxLineQuantity {
				t.Fatalf("accepted line %+v", it)
			}
		}
		if !slices.Contains(Countries, req.Country) || !slices.Contains(PaymentMethods, req.PaymentMethod) {
			t.Fatalf("accepted country %q, method %q", req.Country, req.PaymentMethod)
		}
	})
}
