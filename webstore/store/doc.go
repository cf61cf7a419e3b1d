// Package store is WebStore's SQLite database: the product catalog, stock,
// stock reservations, carts, payments and orders, in one file opened with the
// pure-Go modernc.org/sqlite driver.
//
// Every method is safe for concurrent use. Writes that must be all-or-nothing
// (reserving stock for several lines, creating an order with its lines) run in
// one IMMEDIATE transaction, so stock is never lost or double-counted. The
// package knows nothing about HTTP or telemetry; the services wrap it.
package store
