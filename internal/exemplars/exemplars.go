package exemplars

import (
	"context"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
)

// Record is one exemplar accepted by the metrics side, with the labels of the
// series (e.g. the `_bucket` series with its `le`) it was attached to.
type Record struct {
	Series   labels.Labels
	Exemplar exemplar.Exemplar
}

// Writer takes exemplars the metrics store accepted. Implementations must be
// safe for concurrent use and must not block ingestion for long: the metrics
// store calls WriteExemplars after committing samples. Records whose
// (series, timestamp, value, labels) were already written are ignored.
type Writer interface {
	WriteExemplars(ctx context.Context, recs []Record) error
}
