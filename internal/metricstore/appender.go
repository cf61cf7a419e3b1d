package metricstore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/lookout-dev/lookout/internal/exemplars"
)

// appender wraps one TSDB appender for one request. It keeps the translator
// going past a refused sample (the translator would otherwise drop the rest
// of that metric), counts what was stored and refused, and notes the
// exemplars the TSDB took. Like storage.AppenderV2 it is not goroutine-safe.
type appender struct {
	storage.AppenderV2
	maxTime int64
	collect bool // keep exemplar records for the exemplar writer
	// maxSeries, when not 0, refuses samples of new series once
	// numSeries() reaches it.
	maxSeries uint64
	numSeries func() uint64

	appended, rejected int64 // samples
	// rejectedPoints identifies the data points of rejected samples
	// (pointKey), to report rejected data points as OTLP counts them.
	rejectedPoints map[uint64]struct{}
	exRejected     int64
	errs           []string
	exKeys         []exemplarKey
	recs           []exemplars.Record

	// record makes Append note every call in recorded, for the stream
	// cache to learn from.
	record   bool
	recorded []recorded
}

const maxNotedErrors = 5

func (a *appender) note(err error) {
	if len(a.errs) < maxNotedErrors {
		a.errs = append(a.errs, err.Error())
	}
}

func (a *appender) message(translationErr error) string {
	msgs := a.errs
	if translationErr != nil {
		msgs = append(msgs, strings.Split(translationErr.Error(), "\n")...)
	}
	if len(msgs) > maxNotedErrors {
		msgs = append(msgs[:maxNotedErrors:maxNotedErrors], fmt.Sprintf("and %d more", len(msgs)-maxNotedErrors))
	}
	return strings.Join(msgs, "; ")
}

// Append implements storage.AppenderV2.
func (a *appender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	ref, err := a.append(ref, ls, st, t, v, h, fh, opts)
	if a.record {
		opts.Exemplars = nil
		a.recorded = append(a.recorded, recorded{ls: ls, ref: ref, opts: opts, hist: h != nil || fh != nil})
	}
	return ref, err
}

func (a *appender) append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	if t > a.maxTime {
		a.reject(ls, t)
		a.note(fmt.Errorf("series %s: sample timestamp too far in the future: %w", shortLabels(ls), storage.ErrOutOfBounds))
		return 0, nil
	}
	if a.maxSeries > 0 && ref == 0 && a.numSeries() >= a.maxSeries && a.isNew(ls) {
		a.reject(ls, t)
		a.note(fmt.Errorf("series %s: active series limit of %d reached (--metrics.max-series)", shortLabels(ls), a.maxSeries))
		return 0, nil
	}
	ref, err := a.AppenderV2.Append(ref, ls, st, t, v, h, fh, opts)
	bad, err := a.badExemplars(ls, err)
	if err != nil {
		a.reject(ls, t)
		a.note(fmt.Errorf("series %s: %w", shortLabels(ls), err))
		return 0, nil
	}
	a.appended++
	a.noteExemplars(ref, ls, opts.Exemplars, bad)
	return ref, nil
}

// isNew reports whether the head has no series ls yet.
func (a *appender) isNew(ls labels.Labels) bool {
	g, ok := a.AppenderV2.(storage.GetRef)
	if !ok {
		return false
	}
	ref, _ := g.GetRef(ls, ls.Hash())
	return ref == 0
}

// badExemplars returns the indexes of the exemplars of series ls that err,
// a partial error from the TSDB, names, counting and noting them as
// rejected; any other error is returned.
func (a *appender) badExemplars(ls labels.Labels, err error) (map[int]bool, error) {
	if err == nil {
		return nil, nil
	}
	var pe *storage.AppendPartialError
	if !errors.As(err, &pe) {
		return nil, err
	}
	bad := make(map[int]bool, len(pe.ExemplarErrors))
	for _, e := range pe.ExemplarErrors {
		if !bad[e.Index] {
			a.exRejected++
			bad[e.Index] = true
			a.note(fmt.Errorf("exemplar on series %s: %w", shortLabels(ls), e.Err))
		}
	}
	return bad, nil
}

// noteExemplars notes the exemplars the TSDB took with a sample of series
// ref: all of exs but those whose index is in bad.
func (a *appender) noteExemplars(ref storage.SeriesRef, ls labels.Labels, exs []exemplar.Exemplar, bad map[int]bool) {
	for i, e := range exs {
		if bad[i] {
			continue
		}
		a.exKeys = append(a.exKeys, exemplarKey{ref, exemplarOrder{e.Ts, e.Value, e.Labels.Hash()}})
		if a.collect {
			a.recs = append(a.recs, exemplars.Record{Series: ls, Exemplar: e})
		}
	}
}

// reject counts a rejected sample and notes its data point.
func (a *appender) reject(ls labels.Labels, t int64) {
	a.rejected++
	if a.rejectedPoints == nil {
		a.rejectedPoints = map[uint64]struct{}{}
	}
	a.rejectedPoints[pointKey(ls, t)] = struct{}{}
}

// pointKey identifies the OTLP data point a translated sample came from:
// the samples of one histogram or summary point (its _bucket series with
// each le, _sum, _count, its quantiles) share the series labels without le
// or quantile, the metric name without those suffixes, and the timestamp.
func pointKey(ls labels.Labels, t int64) uint64 {
	h := xxhash.New()
	ls.Range(func(l labels.Label) {
		switch l.Name {
		case "le", "quantile":
			return
		case labels.MetricName:
			v := l.Value
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(v, suffix); ok {
					v = base
					break
				}
			}
			l.Value = v
		}
		_, _ = h.WriteString(l.Name)
		_, _ = h.Write([]byte{0xff})
		_, _ = h.WriteString(l.Value)
		_, _ = h.Write([]byte{0xff})
	})
	var buf [8]byte
	putU64(buf[:], uint64(t))
	_, _ = h.Write(buf[:])
	return h.Sum64()
}

func putU64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

func shortLabels(ls labels.Labels) string {
	s := ls.String()
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
