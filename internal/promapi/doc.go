// Package promapi serves the Prometheus HTTP API v1 by mounting
// Prometheus's own web/api/v1 handler over the metric store, with GET and
// POST (form) for every query endpoint. It adds one documented extension:
// series of an instant /api/v1/query result carry "exemplars" for that
// series within the lookback window. It also serves Lookout's own /metrics,
// /-/ready and /-/healthy, and works mounted under a path prefix.
package promapi
