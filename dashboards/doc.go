// Package dashboards holds Lookout's dashboards in the Grafana dashboard JSON
// model and loads users' own.
//
// The built-in files (timeseries, stat and alertlist panels with Prometheus
// targets, exemplar toggles, units and template variables) are embedded as
// FS and read with Load. They also provision a real Grafana in deploy/, so
// they use only features both understand: a "datasource" variable of type
// prometheus, query variables of the form label_values(metric, label), and
// $__rate_interval.
//
// A Library serves the built-in dashboards together with users' files
// (lookout --dashboards), in every form Grafana exports (ParseFile), and
// keeps them current: Library.Run polls the files' sizes and modification
// times, and broken files are reported as Problems without affecting the
// rest. internal/ui serves a Library; docs/dashboards.md is the user's guide.
package dashboards
