package store

import (
	"context"
	"errors"
	"sync"
	"testing"
)

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestSeedOnce(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := db.ListProducts(ctx, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != len(catalog) {
		t.Fatalf("%d products, want %d", len(ps), len(catalog))
	}
	if err := db.Reserve(ctx, "r1", []Line{{ProductID: 1, Quantity: 5}}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Reopening must neither reseed nor reset stock.
	db, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ps, _ = db.ListProducts(ctx, "", 1000)
	if len(ps) != len(catalog) {
		t.Errorf("reopen: %d products", len(ps))
	}
	if q, _ := db.Stock(ctx, 1); q != 10000-5 {
		t.Errorf("stock after reopen %d, want %d", q, 10000-5)
	}
	books, _ := db.ListProducts(ctx, "books", 100)
	for _, b := range books {
		if b.Category != "books" {
			t.Errorf("category filter returned %+v", b)
		}
	}
}

func TestReserveAllOrNothing(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	before, _ := db.Stock(ctx, 2)
	// Product 7 has 5,000 units; asking for more fails the whole reservation.
	err := db.Reserve(ctx, "r1", []Line{{ProductID: 2, Quantity: 3}, {ProductID: 7, Quantity: 5001}})
	var se *StockError
	if !errors.As(err, &se) || !errors.Is(err, ErrInsufficientStock) || se.ProductID != 7 || se.Available != 5000 {
		t.Fatalf("error %v, want a StockError for product 7", err)
	}
	if q, _ := db.Stock(ctx, 2); q != before {
		t.Errorf("failed reservation changed stock of product 2: %d -> %d", before, q)
	}
	if err := db.Reserve(ctx, "r2", []Line{{ProductID: 999, Quantity: 1}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown product: %v", err)
	}
	// Repeated lines are merged.
	if err := db.Reserve(ctx, "r3", []Line{{ProductID: 2, Quantity: 3}, {ProductID: 2, Quantity: 4}}); err != nil {
		t.Fatal(err)
	}
	if q, _ := db.Stock(ctx, 2); q != before-7 {
		t.Errorf("stock %d, want %d", q, before-7)
	}
	if err := db.ReleaseReservation(ctx, "r3"); err != nil {
		t.Fatal(err)
	}
	if err := db.ReleaseReservation(ctx, "r3"); err != nil {
		t.Errorf("second release: %v", err)
	}
	if q, _ := db.Stock(ctx, 2); q != before {
		t.Errorf("stock after release %d, want %d", q, before)
	}
	if err := db.CommitReservation(ctx, "r3"); err == nil {
		t.Error("committed a released reservation")
	}
	if err := db.ReleaseReservation(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("release unknown: %v", err)
	}
	l, err := db.Ledger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(); err != nil {
		t.Error(err)
	}
}

func TestCreateOrderNeedsSucceededPayment(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	if err := db.Reserve(ctx, "r1", []Line{{ProductID: 1, Quantity: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := db.InsertPayment(ctx, Payment{ID: "p1", CheckoutRef: "c1", AmountCents: 100, Currency: "USD", Method: "card", Country: "US", Status: "pending"}); err != nil {
		t.Fatal(err)
	}
	o := Order{ID: "o1", CheckoutRef: "c1", PaymentID: "p1", ReservationID: "r1", Country: "US", PaymentMethod: "card", TotalCents: 100,
		Items: []OrderItem{{ProductID: 1, Quantity: 2, UnitPriceCents: 50}}}
	if err := db.CreateOrder(ctx, o, ""); err == nil {
		t.Fatal("created an order for a pending payment")
	}
	if err := db.SetPaymentStatus(ctx, "p1", "succeeded", ""); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateOrder(ctx, o, ""); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetOrder(ctx, "o1")
	if err != nil || len(got.Items) != 1 || got.Items[0].Quantity != 2 {
		t.Fatalf("order %+v, %v", got, err)
	}
	if err := db.ReleaseReservation(ctx, "r1"); err == nil {
		t.Error("released a reservation that was sold")
	}
	if n, err := db.VoidPayments(ctx, "c1"); err != nil || n != 1 {
		t.Errorf("void: %d, %v", n, err)
	}
	l, _ := db.Ledger(ctx)
	if l.Orders != 1 || l.Committed != 2 || l.Ordered != 2 {
		t.Errorf("ledger %+v", l)
	}
	// A voided (refunded) payment under an order breaks the invariant, and Check says so.
	if l.Check() == nil {
		t.Error("Check accepted an order whose payment was refunded")
	}
}

func TestRestockAndConcurrentReservations(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	// Drain product 7 (5,000 units) with concurrent reservations of 100.
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, short := 0, 0
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.Reserve(ctx, NewID("res"), []Line{{ProductID: 7, Quantity: 100}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrInsufficientStock):
				short++
			default:
				t.Errorf("reserve %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if ok != 50 || short != 10 {
		t.Errorf("%d reservations fit and %d did not, want 50 and 10", ok, short)
	}
	n, err := db.Restock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 5000 {
		t.Errorf("restocked %d units, want 5000", n)
	}
	if n, _ := db.Restock(ctx); n != 0 {
		t.Errorf("second restock delivered %d", n)
	}
	l, _ := db.Ledger(ctx)
	if err := l.Check(); err != nil {
		t.Error(err)
	}
	if l.Held != 5000 || l.Restocked != 5000 {
		t.Errorf("ledger %+v", l)
	}
}

func TestCarts(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	id, err := db.CreateCart(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetCartItem(ctx, id, 3, 2); err != nil {
		t.Fatal(err)
	}
	if err := db.SetCartItem(ctx, id, 3, 5); err != nil {
		t.Fatal(err)
	}
	if err := db.SetCartItem(ctx, id, 4242, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown product: %v", err)
	}
	if err := db.SetCartItem(ctx, "cart_none", 3, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown cart: %v", err)
	}
	lines, err := db.CartItems(ctx, id)
	if err != nil || len(lines) != 1 || lines[0].Quantity != 5 {
		t.Fatalf("lines %+v, %v", lines, err)
	}
	if err := db.SetCartItem(ctx, id, 3, 0); err != nil {
		t.Fatal(err)
	}
	if lines, _ := db.CartItems(ctx, id); len(lines) != 0 {
		t.Errorf("lines after removal %+v", lines)
	}
}

func TestAddCartItemConcurrent(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	id, err := db.CreateCart(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := db.AddCartItem(ctx, id, 5, 3, 1000); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	lines, _ := db.CartItems(ctx, id)
	if len(lines) != 1 || lines[0].Quantity != 60 {
		t.Errorf("lines %+v, want 60 units of product 5 (no lost update)", lines)
	}
	if _, err := db.AddCartItem(ctx, id, 5, 941, 1000); !errors.Is(err, ErrQuantityLimit) {
		t.Errorf("over the limit: %v", err)
	}
	if lines, _ := db.CartItems(ctx, id); lines[0].Quantity != 60 {
		t.Errorf("refused add changed the line: %+v", lines)
	}
	if _, err := db.AddCartItem(ctx, "cart_x", 5, 1, 1000); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown cart: %v", err)
	}
}
