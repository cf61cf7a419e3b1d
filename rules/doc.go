// Package rules ships Lookout's built-in Prometheus rule file, webstore.yml,
// with the seed guide's HighPaymentLatency alert and the alerts a shop needs
// (HTTP error rate, checkout amount anomaly). The file is in Prometheus's own
// rule file format, so `promtool check rules rules/webstore.yml` validates it
// and a real Prometheus loads it unchanged.
package rules
