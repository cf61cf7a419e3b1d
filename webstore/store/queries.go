package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
)

// Product is one catalog entry.
type Product struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Category    string `json:"category"`
	Description string `json:"description"`
	PriceCents  int64  `json:"price_cents"`
}

// Line is a product and a quantity, in a cart, reservation or order.
type Line struct {
	ProductID int64 `json:"product_id"`
	Quantity  int64 `json:"quantity"`
}

// ListProducts returns products ordered by ID, optionally of one category.
func (s *DB) ListProducts(ctx context.Context, category string, limit int) ([]Product, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.ro.QueryContext(ctx,
		`SELECT id, name, category, description, price_cents FROM products
		 WHERE (? = '' OR category = ?) ORDER BY id LIMIT ?`, category, category, limit)
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	defer rows.Close()
	out := []Product{}
	for rows.Next() {
		var p Product
		if err := rows.Scan(&p.ID, &p.Name, &p.Category, &p.Description, &p.PriceCents); err != nil {
			return nil, fmt.Errorf("list products: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	return out, nil
}

// GetProduct returns one product or [ErrNotFound].
func (s *DB) GetProduct(ctx context.Context, id int64) (Product, error) {
	var p Product
	err := s.ro.QueryRowContext(ctx,
		`SELECT id, name, category, description, price_cents FROM products WHERE id = ?`, id).
		Scan(&p.ID, &p.Name, &p.Category, &p.Description, &p.PriceCents)
	if errors.Is(err, sql.ErrNoRows) {
		return Product{}, fmt.Errorf("product %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Product{}, fmt.Errorf("get product %d: %w", id, err)
	}
	return p, nil
}

// Stock returns the quantity on hand of one product or [ErrNotFound].
func (s *DB) Stock(ctx context.Context, productID int64) (int64, error) {
	var q int64
	err := s.ro.QueryRowContext(ctx, `SELECT quantity FROM stock WHERE product_id = ?`, productID).Scan(&q)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("stock of product %d: %w", productID, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("stock of product %d: %w", productID, err)
	}
	return q, nil
}

// mergeLines sums quantities per product and orders lines by product ID, so
// transactions always touch rows in the same order.
func mergeLines(lines []Line) []Line {
	sum := map[int64]int64{}
	for _, l := range lines {
		sum[l.ProductID] += l.Quantity
	}
	out := make([]Line, 0, len(sum))
	for id, q := range sum {
		out = append(out, Line{ProductID: id, Quantity: q})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProductID < out[j].ProductID })
	return out
}

// Reserve takes the lines' quantities out of stock under reservation id, all
// or nothing. It returns a [*StockError] when any line is short.
func (s *DB) Reserve(ctx context.Context, id string, lines []Line) error {
	lines = mergeLines(lines)
	if len(lines) == 0 {
		return errors.New("reserve: no lines")
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO reservations (id, status, created_ms) VALUES (?, 'held', ?)`, id, ms(now())); err != nil {
			return fmt.Errorf("create reservation: %w", err)
		}
		for _, l := range lines {
			if l.Quantity <= 0 {
				return fmt.Errorf("reserve product %d: quantity must be positive, got %d", l.ProductID, l.Quantity)
			}
			var have int64
			err := tx.QueryRowContext(ctx, `SELECT quantity FROM stock WHERE product_id = ?`, l.ProductID).Scan(&have)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("reserve product %d: %w", l.ProductID, ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("reserve product %d: %w", l.ProductID, err)
			}
			if have < l.Quantity {
				return &StockError{ProductID: l.ProductID, Requested: l.Quantity, Available: have}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE stock SET quantity = quantity - ? WHERE product_id = ?`, l.Quantity, l.ProductID); err != nil {
				return fmt.Errorf("reserve product %d: %w", l.ProductID, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO reservation_items (reservation_id, product_id, quantity) VALUES (?, ?, ?)`, id, l.ProductID, l.Quantity); err != nil {
				return fmt.Errorf("reserve product %d: %w", l.ProductID, err)
			}
		}
		return nil
	})
}

// ReleaseReservation puts a held reservation's stock back. Releasing a
// reservation that is already released is a no-op; releasing a committed one
// is an error. An unknown id gives [ErrNotFound].
func (s *DB) ReleaseReservation(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		status, err := reservationStatus(ctx, tx, id)
		if err != nil {
			return err
		}
		switch status {
		case "released":
			return nil
		case "committed":
			return fmt.Errorf("release reservation %s: already committed to an order", id)
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE stock SET quantity = quantity + (SELECT ri.quantity FROM reservation_items ri
			   WHERE ri.reservation_id = ? AND ri.product_id = stock.product_id)
			 WHERE product_id IN (SELECT product_id FROM reservation_items WHERE reservation_id = ?)`, id, id); err != nil {
			return fmt.Errorf("release reservation %s: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE reservations SET status = 'released' WHERE id = ?`, id); err != nil {
			return fmt.Errorf("release reservation %s: %w", id, err)
		}
		return nil
	})
}

// CommitReservation marks a held reservation as sold. Committing twice is a no-op.
func (s *DB) CommitReservation(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		status, err := reservationStatus(ctx, tx, id)
		if err != nil {
			return err
		}
		switch status {
		case "committed":
			return nil
		case "released":
			return fmt.Errorf("commit reservation %s: already released", id)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE reservations SET status = 'committed' WHERE id = ?`, id); err != nil {
			return fmt.Errorf("commit reservation %s: %w", id, err)
		}
		return nil
	})
}

func reservationStatus(ctx context.Context, tx *sql.Tx, id string) (string, error) {
	var status string
	err := tx.QueryRowContext(ctx, `SELECT status FROM reservations WHERE id = ?`, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("reservation %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("reservation %s: %w", id, err)
	}
	return status, nil
}

// Restock tops every product whose stock fell below half its target back up
// to the target, recording each delivery. It returns the units delivered.
func (s *DB) Restock(ctx context.Context) (int64, error) {
	var total int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT product_id, target - quantity FROM stock WHERE quantity * 2 < target`)
		if err != nil {
			return fmt.Errorf("restock: %w", err)
		}
		var lines []Line
		for rows.Next() {
			var l Line
			if err := rows.Scan(&l.ProductID, &l.Quantity); err != nil {
				rows.Close()
				return fmt.Errorf("restock: %w", err)
			}
			lines = append(lines, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("restock: %w", err)
		}
		t := ms(now())
		for _, l := range lines {
			if _, err := tx.ExecContext(ctx, `UPDATE stock SET quantity = quantity + ? WHERE product_id = ?`, l.Quantity, l.ProductID); err != nil {
				return fmt.Errorf("restock product %d: %w", l.ProductID, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO restocks (product_id, quantity, created_ms) VALUES (?, ?, ?)`, l.ProductID, l.Quantity, t); err != nil {
				return fmt.Errorf("restock product %d: %w", l.ProductID, err)
			}
			total += l.Quantity
		}
		return nil
	})
	return total, err
}

// CreateCart creates an empty cart and returns its id.
func (s *DB) CreateCart(ctx context.Context) (string, error) {
	id := NewID("cart")
	if _, err := s.sql.ExecContext(ctx, `INSERT INTO carts (id, created_ms) VALUES (?, ?)`, id, ms(now())); err != nil {
		return "", fmt.Errorf("create cart: %w", err)
	}
	return id, nil
}

// SetCartItem sets a product's quantity in a cart (0 removes it). The cart
// and product must exist.
func (s *DB) SetCartItem(ctx context.Context, cartID string, productID, quantity int64) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := cartExists(ctx, tx, cartID); err != nil {
			return err
		}
		if quantity == 0 {
			_, err := tx.ExecContext(ctx, `DELETE FROM cart_items WHERE cart_id = ? AND product_id = ?`, cartID, productID)
			if err != nil {
				return fmt.Errorf("remove cart item: %w", err)
			}
			return nil
		}
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM products WHERE id = ?`, productID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("product %d: %w", productID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("set cart item: %w", err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO cart_items (cart_id, product_id, quantity) VALUES (?, ?, ?)
			 ON CONFLICT (cart_id, product_id) DO UPDATE SET quantity = excluded.quantity`,
			cartID, productID, quantity); err != nil {
			return fmt.Errorf("set cart item: %w", err)
		}
		return nil
	})
}

// AddCartItem adds delta units of a product to a cart atomically and returns
// the line's new quantity. It refuses, changing nothing, a line that would
// exceed max units ([ErrQuantityLimit]).
func (s *DB) AddCartItem(ctx context.Context, cartID string, productID, delta, max int64) (int64, error) {
	var q int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := cartExists(ctx, tx, cartID); err != nil {
			return err
		}
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM products WHERE id = ?`, productID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("product %d: %w", productID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("add cart item: %w", err)
		}
		err = tx.QueryRowContext(ctx, `SELECT quantity FROM cart_items WHERE cart_id = ? AND product_id = ?`, cartID, productID).Scan(&q)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("add cart item: %w", err)
		}
		q += delta
		if q > max {
			return fmt.Errorf("%w: %d units of product %d would exceed the %d allowed", ErrQuantityLimit, q, productID, max)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO cart_items (cart_id, product_id, quantity) VALUES (?, ?, ?)
			 ON CONFLICT (cart_id, product_id) DO UPDATE SET quantity = excluded.quantity`,
			cartID, productID, q); err != nil {
			return fmt.Errorf("add cart item: %w", err)
		}
		return nil
	})
	return q, err
}

func cartExists(ctx context.Context, tx *sql.Tx, id string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM carts WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("cart %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("cart %s: %w", id, err)
	}
	return nil
}

// CartItems returns a cart's lines ordered by product ID, or [ErrNotFound].
func (s *DB) CartItems(ctx context.Context, cartID string) ([]Line, error) {
	var one int
	err := s.ro.QueryRowContext(ctx, `SELECT 1 FROM carts WHERE id = ?`, cartID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("cart %s: %w", cartID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("cart %s: %w", cartID, err)
	}
	rows, err := s.ro.QueryContext(ctx, `SELECT product_id, quantity FROM cart_items WHERE cart_id = ? ORDER BY product_id`, cartID)
	if err != nil {
		return nil, fmt.Errorf("cart items: %w", err)
	}
	defer rows.Close()
	out := []Line{}
	for rows.Next() {
		var l Line
		if err := rows.Scan(&l.ProductID, &l.Quantity); err != nil {
			return nil, fmt.Errorf("cart items: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// Payment is one charge attempt recorded by payments-service.
type Payment struct {
	ID          string `json:"id"`
	CheckoutRef string `json:"checkout_ref"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
	Method      string `json:"payment_method"`
	Country     string `json:"country"`
	Status      string `json:"status"`
	Error       string `json:"error,omitempty"`
}

// InsertPayment records a new payment attempt (normally status "pending").
func (s *DB) InsertPayment(ctx context.Context, p Payment) error {
	t := ms(now())
	if _, err := s.sql.ExecContext(ctx,
		`INSERT INTO payments (id, checkout_ref, amount_cents, currency, method, country, status, error, created_ms, updated_ms)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.CheckoutRef, p.AmountCents, p.Currency, p.Method, p.Country, p.Status, p.Error, t, t); err != nil {
		return fmt.Errorf("insert payment: %w", err)
	}
	return nil
}

// SetPaymentStatus moves a payment to status, recording errMsg.
func (s *DB) SetPaymentStatus(ctx context.Context, id, status, errMsg string) error {
	res, err := s.sql.ExecContext(ctx, `UPDATE payments SET status = ?, error = ?, updated_ms = ? WHERE id = ?`, status, errMsg, ms(now()), id)
	if err != nil {
		return fmt.Errorf("update payment %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("payment %s: %w", id, ErrNotFound)
	}
	return nil
}

// GetPayment returns one payment or [ErrNotFound].
func (s *DB) GetPayment(ctx context.Context, id string) (Payment, error) {
	var p Payment
	err := s.ro.QueryRowContext(ctx,
		`SELECT id, checkout_ref, amount_cents, currency, method, country, status, error FROM payments WHERE id = ?`, id).
		Scan(&p.ID, &p.CheckoutRef, &p.AmountCents, &p.Currency, &p.Method, &p.Country, &p.Status, &p.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return Payment{}, fmt.Errorf("payment %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Payment{}, fmt.Errorf("get payment %s: %w", id, err)
	}
	return p, nil
}

// OrderItem is one line of an order, with the price paid.
type OrderItem struct {
	ProductID      int64 `json:"product_id"`
	Quantity       int64 `json:"quantity"`
	UnitPriceCents int64 `json:"unit_price_cents"`
}

// Order is a paid checkout.
type Order struct {
	ID            string      `json:"id"`
	CheckoutRef   string      `json:"checkout_ref"`
	PaymentID     string      `json:"payment_id"`
	ReservationID string      `json:"reservation_id"`
	Country       string      `json:"country"`
	PaymentMethod string      `json:"payment_method"`
	TotalCents    int64       `json:"total_cents"`
	Items         []OrderItem `json:"items"`
}

// CreateOrder records a paid order with its lines, commits its stock
// reservation and empties cartID (if not empty), in one transaction. It
// refuses an order whose payment has not succeeded.
func (s *DB) CreateOrder(ctx context.Context, o Order, cartID string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var status string
		err := tx.QueryRowContext(ctx, `SELECT status FROM payments WHERE id = ?`, o.PaymentID).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("create order: payment %s: %w", o.PaymentID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("create order: %w", err)
		}
		if status != "succeeded" {
			return fmt.Errorf("create order: payment %s is %s, not succeeded", o.PaymentID, status)
		}
		rs, err := reservationStatus(ctx, tx, o.ReservationID)
		if err != nil {
			return fmt.Errorf("create order: %w", err)
		}
		if rs != "held" {
			return fmt.Errorf("create order: reservation %s is %s, not held", o.ReservationID, rs)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO orders (id, checkout_ref, payment_id, reservation_id, country, payment_method, total_cents, created_ms)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			o.ID, o.CheckoutRef, o.PaymentID, o.ReservationID, o.Country, o.PaymentMethod, o.TotalCents, ms(now())); err != nil {
			return fmt.Errorf("create order: %w", err)
		}
		for _, it := range o.Items {
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents) VALUES (?, ?, ?, ?)`,
				o.ID, it.ProductID, it.Quantity, it.UnitPriceCents); err != nil {
				return fmt.Errorf("create order line for product %d: %w", it.ProductID, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE reservations SET status = 'committed' WHERE id = ?`, o.ReservationID); err != nil {
			return fmt.Errorf("create order: commit reservation: %w", err)
		}
		if cartID != "" {
			if _, err := tx.ExecContext(ctx, `DELETE FROM cart_items WHERE cart_id = ?`, cartID); err != nil {
				return fmt.Errorf("create order: empty cart: %w", err)
			}
		}
		return nil
	})
}

// GetOrder returns one order with its lines, or [ErrNotFound].
func (s *DB) GetOrder(ctx context.Context, id string) (Order, error) {
	var o Order
	err := s.ro.QueryRowContext(ctx,
		`SELECT id, checkout_ref, payment_id, reservation_id, country, payment_method, total_cents FROM orders WHERE id = ?`, id).
		Scan(&o.ID, &o.CheckoutRef, &o.PaymentID, &o.ReservationID, &o.Country, &o.PaymentMethod, &o.TotalCents)
	if errors.Is(err, sql.ErrNoRows) {
		return Order{}, fmt.Errorf("order %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Order{}, fmt.Errorf("get order %s: %w", id, err)
	}
	rows, err := s.ro.QueryContext(ctx, `SELECT product_id, quantity, unit_price_cents FROM order_items WHERE order_id = ? ORDER BY product_id`, id)
	if err != nil {
		return Order{}, fmt.Errorf("get order %s lines: %w", id, err)
	}
	defer rows.Close()
	o.Items = []OrderItem{}
	for rows.Next() {
		var it OrderItem
		if err := rows.Scan(&it.ProductID, &it.Quantity, &it.UnitPriceCents); err != nil {
			return Order{}, fmt.Errorf("get order %s lines: %w", id, err)
		}
		o.Items = append(o.Items, it)
	}
	return o, rows.Err()
}

// Ledger is a consistency snapshot of the whole database, used by tests and
// by operators checking that no stock, order or payment went astray.
type Ledger struct {
	// OnHand is current stock summed over all products.
	OnHand int64
	// Target is the seeded stock target summed over all products.
	Target int64
	// Restocked is every unit delivered by Restock.
	Restocked int64
	// Held is stock in reservations still held.
	Held int64
	// Committed is stock in committed reservations.
	Committed int64
	// Ordered is units in order lines.
	Ordered int64
	// Orders is the number of orders.
	Orders int64
	// OrdersWithoutPayment counts orders whose payment did not succeed (must be 0).
	OrdersWithoutPayment int64
	// Payments counts payment attempts by status.
	Payments map[string]int64
}

// Ledger computes a [Ledger]. Stock is conserved when
// Target + Restocked == OnHand + Held + Committed and Committed == Ordered.
func (s *DB) Ledger(ctx context.Context) (Ledger, error) {
	var l Ledger
	l.Payments = map[string]int64{}
	q := func(dst *int64, query string) error {
		if err := s.ro.QueryRowContext(ctx, query).Scan(dst); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		return nil
	}
	for _, c := range []struct {
		dst   *int64
		query string
	}{
		{&l.OnHand, `SELECT COALESCE(SUM(quantity), 0) FROM stock`},
		{&l.Target, `SELECT COALESCE(SUM(target), 0) FROM stock`},
		{&l.Restocked, `SELECT COALESCE(SUM(quantity), 0) FROM restocks`},
		{&l.Held, `SELECT COALESCE(SUM(ri.quantity), 0) FROM reservation_items ri JOIN reservations r ON r.id = ri.reservation_id WHERE r.status = 'held'`},
		{&l.Committed, `SELECT COALESCE(SUM(ri.quantity), 0) FROM reservation_items ri JOIN reservations r ON r.id = ri.reservation_id WHERE r.status = 'committed'`},
		{&l.Ordered, `SELECT COALESCE(SUM(quantity), 0) FROM order_items`},
		{&l.Orders, `SELECT COUNT(*) FROM orders`},
		{&l.OrdersWithoutPayment, `SELECT COUNT(*) FROM orders o LEFT JOIN payments p ON p.id = o.payment_id WHERE p.status IS NULL OR p.status != 'succeeded'`},
	} {
		if err := q(c.dst, c.query); err != nil {
			return Ledger{}, err
		}
	}
	rows, err := s.ro.QueryContext(ctx, `SELECT status, COUNT(*) FROM payments GROUP BY status`)
	if err != nil {
		return Ledger{}, fmt.Errorf("ledger: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return Ledger{}, fmt.Errorf("ledger: %w", err)
		}
		l.Payments[st] = n
	}
	return l, rows.Err()
}

// Check reports a broken invariant in l, or nil.
func (l Ledger) Check() error {
	var errs []error
	if l.Target+l.Restocked != l.OnHand+l.Held+l.Committed {
		errs = append(errs, fmt.Errorf("stock not conserved: target %d + restocked %d != on hand %d + held %d + committed %d",
			l.Target, l.Restocked, l.OnHand, l.Held, l.Committed))
	}
	if l.Committed != l.Ordered {
		errs = append(errs, fmt.Errorf("committed stock %d != ordered units %d", l.Committed, l.Ordered))
	}
	if l.OrdersWithoutPayment != 0 {
		errs = append(errs, fmt.Errorf("%d orders without a successful payment", l.OrdersWithoutPayment))
	}
	return errors.Join(errs...)
}

// VoidPayments refunds every succeeded payment of a checkout and returns how many.
func (s *DB) VoidPayments(ctx context.Context, checkoutRef string) (int64, error) {
	res, err := s.sql.ExecContext(ctx,
		`UPDATE payments SET status = 'refunded', updated_ms = ? WHERE checkout_ref = ? AND status = 'succeeded'`,
		ms(now()), checkoutRef)
	if err != nil {
		return 0, fmt.Errorf("void payments of %s: %w", checkoutRef, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
