// Package traffic generates realistic shopper sessions against WebStore's
// main-service: browse the catalog, look at products, fill a cart and check
// out, with a mix of countries and payment methods.
//
// A run is bounded (by duration or session count), targets loopback only
// unless told otherwise, and may apply a scenario's faults through
// /admin/faults for its length, restoring the previous faults afterwards.
package traffic
