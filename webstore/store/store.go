package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// FileName is the database file's name inside the data directory.
const FileName = "webstore.db"

// Errors callers compare with errors.Is.
var (
	// ErrNotFound means the product, cart, payment or order does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInsufficientStock means a reservation asked for more than is in stock.
	ErrInsufficientStock = errors.New("insufficient stock")
	// ErrQuantityLimit means a cart line would hold more than allowed.
	ErrQuantityLimit = errors.New("quantity limit")
)

// StockError tells which product ran short. It wraps [ErrInsufficientStock].
type StockError struct {
	ProductID int64
	Requested int64
	Available int64
}

func (e *StockError) Error() string {
	return fmt.Sprintf("insufficient stock for product %d: requested %d, available %d", e.ProductID, e.Requested, e.Available)
}

// Unwrap returns [ErrInsufficientStock].
func (e *StockError) Unwrap() error { return ErrInsufficientStock }

// DB is the WebStore database.
type DB struct {
	sql *sql.DB // writes and transactions: one connection
	ro  *sql.DB // reads
}

// now is the clock; tests may replace it.
var now = time.Now

// Open opens (creating if needed) the database in dir, creates the schema and
// seeds the catalog on first start.
func Open(ctx context.Context, dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	dsn := func(txlock string) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Set("_txlock", txlock)
		return "file:" + path + "?" + q.Encode()
	}
	// SQLite has one writer at a time. All writes go through a one-connection
	// pool, so writers queue in database/sql instead of polling SQLite's busy
	// handler; reads use their own pool and, with WAL, never wait for writers.
	db, err := sql.Open("sqlite", dsn("immediate"))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	ro, err := sql.Open("sqlite", dsn("deferred"))
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	ro.SetMaxOpenConns(4)
	ro.SetMaxIdleConns(4)
	s := &DB{sql: db, ro: ro}
	if err := s.migrate(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	if err := s.seed(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *DB) Close() error { return errors.Join(s.sql.Close(), s.ro.Close()) }

const schema = `
CREATE TABLE IF NOT EXISTS products (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	category TEXT NOT NULL,
	description TEXT NOT NULL,
	price_cents INTEGER NOT NULL CHECK (price_cents > 0)
);
CREATE TABLE IF NOT EXISTS stock (
	product_id INTEGER PRIMARY KEY REFERENCES products(id),
	quantity INTEGER NOT NULL CHECK (quantity >= 0),
	target INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS restocks (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	product_id INTEGER NOT NULL REFERENCES products(id),
	quantity INTEGER NOT NULL,
	created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reservations (
	id TEXT PRIMARY KEY,
	status TEXT NOT NULL CHECK (status IN ('held','committed','released')),
	created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reservation_items (
	reservation_id TEXT NOT NULL REFERENCES reservations(id),
	product_id INTEGER NOT NULL REFERENCES products(id),
	quantity INTEGER NOT NULL CHECK (quantity > 0),
	PRIMARY KEY (reservation_id, product_id)
);
CREATE TABLE IF NOT EXISTS carts (
	id TEXT PRIMARY KEY,
	created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cart_items (
	cart_id TEXT NOT NULL REFERENCES carts(id) ON DELETE CASCADE,
	product_id INTEGER NOT NULL REFERENCES products(id),
	quantity INTEGER NOT NULL CHECK (quantity > 0),
	PRIMARY KEY (cart_id, product_id)
);
CREATE TABLE IF NOT EXISTS payments (
	id TEXT PRIMARY KEY,
	checkout_ref TEXT NOT NULL,
	amount_cents INTEGER NOT NULL,
	currency TEXT NOT NULL,
	method TEXT NOT NULL,
	country TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('pending','succeeded','declined','timeout','error','refunded')),
	error TEXT NOT NULL DEFAULT '',
	created_ms INTEGER NOT NULL,
	updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
	id TEXT PRIMARY KEY,
	checkout_ref TEXT NOT NULL,
	payment_id TEXT NOT NULL REFERENCES payments(id),
	reservation_id TEXT NOT NULL REFERENCES reservations(id),
	country TEXT NOT NULL,
	payment_method TEXT NOT NULL,
	total_cents INTEGER NOT NULL,
	created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS order_items (
	order_id TEXT NOT NULL REFERENCES orders(id),
	product_id INTEGER NOT NULL REFERENCES products(id),
	quantity INTEGER NOT NULL CHECK (quantity > 0),
	unit_price_cents INTEGER NOT NULL,
	PRIMARY KEY (order_id, product_id)
);
CREATE INDEX IF NOT EXISTS orders_created ON orders(created_ms);
`

func (s *DB) migrate(ctx context.Context) error {
	if _, err := s.sql.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	return nil
}

// NewID returns a random identifier with the given prefix, e.g. "ord_3f9a…".
func NewID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return prefix + "_" + hex.EncodeToString(b[:])
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// inTx runs fn in a transaction, committing when it returns nil.
func (s *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
