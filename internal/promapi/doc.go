// Package promapi serves the Prometheus HTTP API v1 by mounting
// Prometheus's own web/api/v1 handler over the metric store, with GET and
// POST (form) for every query endpoint. Its answers are Prometheus's JSON,
// extended through one codec (codec.go) in two documented ways: series of
// an instant /api/v1/query result carry "exemplars" for that series within
// the lookback window, and an AlertExtension (Lookout's alerting) adds its
// annotations and members to the alerts of /api/v1/alerts and
// /api/v1/rules. It also serves Lookout's own /metrics, /-/ready and
// /-/healthy, and works mounted under a path prefix.
package promapi
