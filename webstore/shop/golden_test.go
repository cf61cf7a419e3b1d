package shop

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// TestAPIGolden pins the JSON shapes main-service promises: a product, a
// cart, a successful checkout, an order, error bodies. Random IDs are masked.
func TestAPIGolden(t *testing.T) {
	s := startShop(t, testConfig(t))
	c := newAPIClient(t, s.MainURL())
	type exchange struct {
		Request string         `json:"request"`
		Status  int            `json:"status"`
		Body    map[string]any `json:"body"`
	}
	var got []exchange
	record := func(method, path string, body any) map[string]any {
		status, out := c.do(method, path, body)
		req := method + " " + path
		if b, ok := body.(string); ok {
			req += " " + b
		}
		// Mask a copy: the caller needs the real IDs.
		var masked map[string]any
		raw, _ := json.Marshal(out)
		_ = json.Unmarshal(raw, &masked)
		got = append(got, exchange{Request: req, Status: status, Body: maskIDs(masked)})
		return out
	}
	record("GET", "/products/12", nil)
	cart := record("POST", "/carts", nil)
	id, _ := cart["cart_id"].(string)
	record("POST", "/carts/"+id+"/items", `{"product_id":12,"quantity":2}`)
	chk := record("POST", "/checkout", `{"cart_id":"`+id+`","country":"US","payment_method":"card"}`)
	orderID, _ := chk["order_id"].(string)
	record("GET", "/orders/"+orderID, nil)
	record("POST", "/checkout", `{"items":[{"product_id":12,"quantity":0}],"country":"US","payment_method":"card"}`)
	record("GET", "/admin/faults", nil)
	if id == "" || orderID == "" {
		t.Fatalf("cart %q or order %q missing", id, orderID)
	}
	for i := range got {
		got[i].Request = strings.ReplaceAll(strings.ReplaceAll(got[i].Request, id, "<cart_id>"), orderID, "<order_id>")
	}

	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(got); err != nil {
		t.Fatal(err)
	}
	b := []byte(buf.String())
	path := filepath.Join("testdata", "api.golden.json")
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(b) != string(want) {
		t.Errorf("API shapes changed (go test -update rewrites the golden file):\n got %s\nwant %s", b, want)
	}
}

// maskIDs replaces generated identifiers by their key name.
func maskIDs(v map[string]any) map[string]any {
	for k, x := range v {
		switch x := x.(type) {
		case string:
			if strings.HasSuffix(k, "_id") || k == "id" || k == "checkout_ref" {
				v[k] = "<" + k + ">"
			}
		case map[string]any:
			maskIDs(x)
		case []any:
			for _, e := range x {
				if m, ok := e.(map[string]any); ok {
					maskIDs(m)
				}
			}
		}
	}
	return v
}
