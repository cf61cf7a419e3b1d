// Package alerting runs Prometheus rule files on Prometheus's own rules
// manager, embedded, and attaches evidence to every firing alert.
//
// When an alert fires, the Manager parses the alert's expression, queries the
// exemplars of the series it selects (restricted to the alert's labels) over
// the alert window, takes the highest values first, fetches the exemplars'
// traces and summarises them with package analysis ("payment_provider_api
// 7.6 s in 5 of 5"). The evidence is shown in the Prometheus API's
// /api/v1/alerts and /api/v1/rules answers (the Manager is promapi's
// AlertExtension: it adds annotations and an "evidence" extension field) and
// is sent to webhook receivers in Alertmanager's webhook JSON format.
// Notifications are queued and sent by their own goroutines with retries, so
// a receiver that is down never blocks rule evaluation.
package alerting
