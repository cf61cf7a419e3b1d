package promapi

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"google.golang.org/protobuf/proto"
)

// federation serves /federate as Prometheus's server does: for every series
// matching any match[] selector, its newest sample within the lookback
// window before now, in the exposition format the scraper negotiates, with
// an empty instance label when the series has none (so a scraper with
// honor_labels keeps it unset). Float samples go out as one untyped family
// per metric name. Native histograms go out in the protobuf formats only,
// as a histogram or gauge-histogram family of the same name (the text
// formats cannot carry them, and Prometheus leaves them out there too);
// Lookout's classic histograms are float series and federate in any format.
// Native histograms with custom buckets are left out: the exposition
// formats cannot carry their bounds.
type federation struct {
	q        storage.Queryable
	lookback time.Duration
	now      func() time.Time
	parser   parser.Parser
	logger   *slog.Logger
}

type federated struct {
	ls labels.Labels
	t  int64
	f  float64
	h  *histogram.Histogram      // a native histogram sample, or
	fh *histogram.FloatHistogram // a float native histogram sample
}

// kind is the exposition type of s's family.
func (s federated) kind() dto.MetricType {
	switch {
	case s.h != nil && s.h.CounterResetHint == histogram.GaugeType,
		s.fh != nil && s.fh.CounterResetHint == histogram.GaugeType:
		return dto.MetricType_GAUGE_HISTOGRAM
	case s.h != nil || s.fh != nil:
		return dto.MetricType_HISTOGRAM
	}
	return dto.MetricType_UNTYPED
}

func (f *federation) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, fmt.Sprintf("error parsing form values: %v", err), http.StatusBadRequest)
		return
	}
	sets, err := f.parser.ParseMetricSelectors(r.Form["match[]"])
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	maxt := f.now().UnixMilli()
	mint := maxt - f.lookback.Milliseconds()
	format := expfmt.NegotiateAccept(r.Header, expfmt.NewFormat(expfmt.TypeProtoDelim), expfmt.NewFormat(expfmt.TypeProtoText), expfmt.NewFormat(expfmt.TypeProtoCompact), expfmt.NewFormat(expfmt.TypeTextPlain))
	histograms := format.FormatType() == expfmt.TypeProtoDelim || format.FormatType() == expfmt.TypeProtoText || format.FormatType() == expfmt.TypeProtoCompact

	q, err := f.q.Querier(mint, maxt)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, tsdb.ErrNotReady) {
			code = http.StatusServiceUnavailable
		}
		http.Error(w, err.Error(), code)
		return
	}
	defer q.Close()
	hints := &storage.SelectHints{Start: mint, End: maxt}
	var ss []storage.SeriesSet
	for _, ms := range sets {
		ss = append(ss, q.Select(r.Context(), true, hints, ms...))
	}
	set := storage.NewMergeSeriesSet(ss, 0, storage.ChainedSeriesMerge)
	var out []federated
	var it chunkenc.Iterator
	for set.Next() {
		s := set.At()
		it = s.Iterator(it)
		last, ok := federated{}, false
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if it.AtT() > maxt {
				break
			}
			switch vt {
			case chunkenc.ValFloat:
				t, v := it.At()
				last, ok = federated{ls: s.Labels(), t: t, f: v}, true
			case chunkenc.ValHistogram:
				t, h := it.AtHistogram(nil)
				last, ok = federated{ls: s.Labels(), t: t, h: h, f: h.Sum}, histograms && !h.UsesCustomBuckets()
			case chunkenc.ValFloatHistogram:
				t, fh := it.AtFloatHistogram(nil)
				last, ok = federated{ls: s.Labels(), t: t, fh: fh, f: fh.Sum}, histograms && !fh.UsesCustomBuckets()
			}
		}
		if err := it.Err(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		// The exposition formats have no stale markers: a series marked
		// stale is left out.
		if ok && !value.IsStaleNaN(last.f) {
			out = append(out, last)
		}
	}
	if err := set.Err(); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if ws := set.Warnings(); len(ws) > 0 {
		f.logger.Debug("federation select returned warnings", "warnings", ws)
	}
	// One family per metric name and type: floats, then histograms, then
	// gauge histograms of a name.
	slices.SortStableFunc(out, func(a, b federated) int {
		return cmp.Or(cmp.Compare(a.ls.Get(labels.MetricName), b.ls.Get(labels.MetricName)), cmp.Compare(a.kind(), b.kind()))
	})

	w.Header().Set("Content-Type", string(format))
	enc := expfmt.NewEncoder(w, format)
	var fam *dto.MetricFamily
	flush := func() error {
		if fam == nil {
			return nil
		}
		return enc.Encode(fam)
	}
	for _, s := range out {
		name := s.ls.Get(labels.MetricName)
		if name == "" {
			continue
		}
		if fam == nil || fam.GetName() != name || fam.GetType() != s.kind() {
			if err := flush(); err != nil {
				f.logger.Warn("federation: writing the answer failed", "err", err)
				return
			}
			fam = &dto.MetricFamily{Name: proto.String(name), Type: s.kind().Enum()}
		}
		m := &dto.Metric{TimestampMs: proto.Int64(s.t)}
		switch {
		case s.h != nil:
			m.Histogram = nativeHistogram(s.h.ToFloat(nil))
			m.Histogram.SampleCount, m.Histogram.SampleCountFloat = proto.Uint64(s.h.Count), nil
			m.Histogram.ZeroCount, m.Histogram.ZeroCountFloat = proto.Uint64(s.h.ZeroCount), nil
			m.Histogram.PositiveDelta, m.Histogram.PositiveCount = s.h.PositiveBuckets, nil
			m.Histogram.NegativeDelta, m.Histogram.NegativeCount = s.h.NegativeBuckets, nil
		case s.fh != nil:
			m.Histogram = nativeHistogram(s.fh)
		default:
			m.Untyped = &dto.Untyped{Value: proto.Float64(s.f)}
		}
		hasInstance := false
		s.ls.Range(func(l labels.Label) {
			if l.Name == labels.MetricName || l.Value == "" {
				return
			}
			hasInstance = hasInstance || l.Name == "instance"
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)})
		})
		if !hasInstance {
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String("instance"), Value: proto.String("")})
		}
		fam.Metric = append(fam.Metric, m)
	}
	if err := flush(); err != nil {
		f.logger.Warn("federation: writing the answer failed", "err", err)
	}
	if closer, ok := enc.(expfmt.Closer); ok {
		_ = closer.Close()
	}
}

// nativeHistogram is h in the exposition's native-histogram fields, with
// float counts.
func nativeHistogram(h *histogram.FloatHistogram) *dto.Histogram {
	spans := func(ss []histogram.Span) []*dto.BucketSpan {
		out := make([]*dto.BucketSpan, len(ss))
		for i, s := range ss {
			out[i] = &dto.BucketSpan{Offset: proto.Int32(s.Offset), Length: proto.Uint32(s.Length)}
		}
		return out
	}
	d := &dto.Histogram{
		SampleCountFloat: proto.Float64(h.Count),
		SampleSum:        proto.Float64(h.Sum),
		Schema:           proto.Int32(h.Schema),
		ZeroThreshold:    proto.Float64(h.ZeroThreshold),
		ZeroCountFloat:   proto.Float64(h.ZeroCount),
		PositiveSpan:     spans(h.PositiveSpans),
		PositiveCount:    h.PositiveBuckets,
		NegativeSpan:     spans(h.NegativeSpans),
		NegativeCount:    h.NegativeBuckets,
	}
	if len(d.PositiveSpan) == 0 && len(d.NegativeSpan) == 0 {
		// A native histogram without buckets: one empty span tells a
		// scraper that it is native, not a classic histogram.
		d.PositiveSpan = []*dto.BucketSpan{{Offset: proto.Int32(0), Length: proto.Uint32(0)}}
	}
	return d
}
