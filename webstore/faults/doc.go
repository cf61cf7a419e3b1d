// Package faults describes the failures WebStore can be told to simulate:
// a slow or flaky payment provider, a slow get_product query and the
// "500x" quantity bug from the seed guide. The payment-provider faults can be
// scoped to one payment method and/or country, so a spike can have an
// attribute value as its cause.
//
// A [Faults] value is immutable once published; services read the current
// value through a [Switch], which is safe for concurrent use. The JSON shape
// is the one served by GET /admin/faults and accepted (as a partial patch) by
// POST /admin/faults on main-service.
package faults
