// Package app assembles one Lookout process from its parts: the OTLP
// receivers, the metric store (Prometheus TSDB), the Prometheus HTTP API,
// and the Tempo API and UI listeners. cmd/lookout, the end-to-end tests and
// `webstore demo` all use this one assembly. Parts built elsewhere (trace
// store, exemplar index, Tempo API, UI, alerting) plug in through Options.
package app
