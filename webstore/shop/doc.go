// Package shop runs WebStore: four services on loopback HTTP that talk to
// each other with W3C trace context, backed by one SQLite database.
//
//   - main-service: products, carts, POST /checkout, orders, /admin/faults.
//   - inventory-service: stock reservations (reserve, release).
//   - payments-service: payment records; charges through the provider.
//   - payment-provider: a simulated external payments API whose latency,
//     timeouts and declines are set by [faults.Faults].
//
// Each service has its own telemetry providers (service.name = its name).
// A checkout produces the trace POST /checkout → validate_cart (with
// db.query.get_product spans), check_inventory (→ inventory-service),
// process_payment (→ payments-service → payment_provider_api →
// payment-provider) and create_order; webstore.payment.duration is recorded
// inside process_payment and webstore.checkout.amount inside the checkout
// span, so their exemplars point at those spans.
//
// Consistency: stock is reserved in one transaction before payment and
// released when payment fails, times out or errs; an order is written, and
// its reservation committed, in one transaction that refuses a payment that
// did not succeed; a payment whose outcome main-service could not learn is
// voided. Once a checkout has passed validation it runs to its end even if the
// shopper disconnects.
package shop
