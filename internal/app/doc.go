// Package app assembles one Lookout process: New opens every part in
// dependency order (exemplar index, trace store, metric store, PromQL
// engine, analysis engine, rule manager, span metrics, the Prometheus and
// Tempo APIs and the UI, the listeners and OTLP receivers), each pushing
// its close onto a stack, and App.Run serves until it is told to stop, then
// closes the parts in reverse order. cmd/lookout, the end-to-end tests and
// `webstore demo` all use this one assembly.
package app
