package rules

import "embed"

// DefaultFile is the name of the built-in rule file inside Default.
const DefaultFile = "webstore.yml"

// Default holds the built-in rule files. Lookout's `--rules` flag defaults to
// DefaultFile from this file system; the same file is shipped to a real
// Prometheus by deploy/prometheus/prometheus.yml.
//
//go:embed webstore.yml
var Default embed.FS
