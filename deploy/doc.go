// Package deploy holds the production path's configuration (OpenTelemetry
// Collector, Prometheus, Tempo, Grafana, compose) and, in interop_test.go,
// the test that runs a real Prometheus and a real collector built from
// collector/builder.yaml with the shipped configs and the WebStore.
package deploy
