// Package dashboards holds Lookout's dashboards as files in the Grafana
// dashboard JSON model (timeseries, stat and alertlist panels with Prometheus
// targets, exemplar toggles, units and template variables).
//
// The same files are served by the Lookout UI (internal/ui) at /d/<uid> and
// provision a real Grafana in deploy/, so they use only features both
// understand: a "datasource" variable of type prometheus, query variables of
// the form label_values(metric, label), and $__rate_interval.
package dashboards
