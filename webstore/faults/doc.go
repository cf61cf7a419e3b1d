// Package faults describes the failures WebStore can be told to simulate:
// a slow or flaky payment provider, a slow get_product query and the
// "500x" quantity bug from the seed guide.
//
// A [Faults] value is immutable once published; services read the current
// value through a [Switch], which is safe for concurrent use. The JSON shape
// is the one served by GET /admin/faults and accepted (as a partial patch) by
// POST /admin/faults on main-service.
package faults
