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

// Writer takes the exemplars the metric store accepted, and records how far
// the metric store's TSDB WAL, which logged them first, is durably held.
// The metric store's exemplar feed is its one caller; Index implements it.
// Implementations must be safe for concurrent use and must not block
// ingestion for long: the feed calls WriteExemplars after committing
// samples. Records whose (series, timestamp, value, labels) were already
// written are ignored.
//
// The WAL mark is part of the Writer, not an interface of its own, because
// it is a promise about the writer's own durable state: SetWALMark(seg)
// says that every exemplar WriteExemplars was given from the WAL segments
// before seg survives a crash, which only the writer can say (Index syncs
// the mark, and with it every write before it). A writer that keeps
// nothing across restarts reports no mark; it is then handed the exemplars
// of the whole WAL at each start.
type Writer interface {
	// WriteExemplars writes recs. It keeps no reference to the slice.
	WriteExemplars(ctx context.Context, recs []Record) error
	// WALMark returns the first segment of the metric store's WAL that may
	// hold exemplars not yet durably written; ok is false when no mark was
	// ever set.
	WALMark() (seg int, ok bool, err error)
	// SetWALMark durably records that every exemplar in the WAL segments
	// before seg has been written.
	SetWALMark(seg int) error
}
