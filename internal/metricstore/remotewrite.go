package metricstore

import (
	"context"
	"errors"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// WriteAppendable returns the appendable for Prometheus's remote-write
// receiver: its appenders write to the TSDB as Prometheus's own would,
// returning the TSDB's errors for the receiver to report, and the
// exemplars they store also reach the exemplar writer, as the OTLP path's
// do (deduplicated, counted, covered by the WAL marks).
func (s *Store) WriteAppendable() storage.AppendableV2 { return writeAppendable{s} }

type writeAppendable struct{ s *Store }

func (w writeAppendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return &writeAppender{s: w.s, app: &appender{
		AppenderV2: w.s.db.AppenderV2(ctx),
		collect:    w.s.feed.collects(),
	}}
}

var _ storage.ExemplarAppenderV2 = (*writeAppender)(nil)

type writeAppender struct {
	s   *Store
	app *appender
}

// Append implements storage.AppenderV2.
func (w *writeAppender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	ref, err := w.app.AppenderV2.Append(ref, ls, st, t, v, h, fh, opts)
	bad, ferr := w.app.badExemplars(ls, err)
	if ferr != nil {
		return ref, ferr
	}
	w.app.appended++
	w.app.noteExemplars(ref, ls, opts.Exemplars, bad)
	return ref, err
}

// AppendExemplars implements storage.ExemplarAppenderV2, which Prometheus's
// remote-write receiver appends exemplars through.
func (w *writeAppender) AppendExemplars(ref storage.SeriesRef, ls labels.Labels, exs []exemplar.Exemplar) (storage.SeriesRef, error) {
	ea, ok := w.app.AppenderV2.(storage.ExemplarAppenderV2)
	if !ok {
		return ref, errors.New("the TSDB's appender takes no exemplars")
	}
	ref, err := ea.AppendExemplars(ref, ls, exs)
	bad, ferr := w.app.badExemplars(ls, err)
	if ferr != nil {
		return ref, ferr
	}
	w.app.noteExemplars(ref, ls, exs, bad)
	return ref, err // a partial error, for the receiver to count
}

// Commit implements storage.AppenderV2.
func (w *writeAppender) Commit() error {
	w.s.mu.RLock()
	defer w.s.mu.RUnlock()
	if w.s.closed {
		_ = w.app.Rollback()
		return errors.New("metric store is closed")
	}
	return w.s.commitAndQueue(w.app)
}

// Rollback implements storage.AppenderV2.
func (w *writeAppender) Rollback() error { return w.app.Rollback() }
