// Package ui serves Lookout's web UI: the single-page application built from
// web/ (embedded from dist/ with go:embed), and the small dashboard API the
// application reads (/api/dashboards/uid/<uid>, /api/search, and
// /api/lookout/dashboards/problems) from a dashboards.Library, which loads
// and reloads the files; this package only serves it.
//
// Everything else the UI shows comes from the Prometheus and Tempo HTTP APIs,
// which the caller mounts beside this handler under /prometheus/ and /tempo/.
// When the UI was not built (dist/ holds only its committed .keep file) the
// handler serves a page that says how to build it.
package ui
