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
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"google.golang.org/protobuf/proto"
)

// federation serves /federate as Prometheus's server does: for every series
// matching any match[] selector, its newest float sample within the lookback
// window before now, in the exposition format the scraper negotiates, each
// metric name as one untyped family, with an empty instance label when the
// series has none (so a scraper with honor_labels keeps it unset). Native
// histograms are left out, as Prometheus leaves them out of the text
// formats; Lookout's classic histograms are float series and federate.
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
			if vt != chunkenc.ValFloat {
				ok = false // the newest sample so far is a native histogram
				continue
			}
			t, v := it.At()
			if t > maxt {
				break
			}
			last, ok = federated{ls: s.Labels(), t: t, f: v}, true
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
	slices.SortStableFunc(out, func(a, b federated) int {
		return cmp.Compare(a.ls.Get(labels.MetricName), b.ls.Get(labels.MetricName))
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
		if fam == nil || fam.GetName() != name {
			if err := flush(); err != nil {
				f.logger.Warn("federation: writing the answer failed", "err", err)
				return
			}
			fam = &dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_UNTYPED.Enum()}
		}
		m := &dto.Metric{TimestampMs: proto.Int64(s.t), Untyped: &dto.Untyped{Value: proto.Float64(s.f)}}
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
