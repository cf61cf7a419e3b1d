package metricstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	deltatocumulative "github.com/open-telemetry/opentelemetry-collector-contrib/processor/deltatocumulativeprocessor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	prw "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/prometheus/prometheus/util/compression"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/metric/noop"
	"go.uber.org/zap"

	"github.com/lookout-dev/lookout/internal/exemplars"
	"github.com/lookout-dev/lookout/internal/ingest"
)

// Options configure a Store. Start from DefaultOptions.
type Options struct {
	// Retention is how long samples are kept. Default 15 days.
	Retention time.Duration
	// BlockDuration is the TSDB's block range (Prometheus's hidden
	// --storage.tsdb.min-block-duration): the head is written to a block
	// once it spans 1.5 times it. Default 2 hours.
	BlockDuration time.Duration
	// MaxExemplars sizes the TSDB's in-memory exemplar ring buffer.
	// Default 100000, Prometheus's default, for when the ring answers
	// exemplar queries. The store applies Prometheus's exemplar rules
	// itself (exemplarfilter.go), so with an ExemplarWriter answering them
	// 1 suffices: the ring then only logs exemplars to the WAL.
	MaxExemplars int64
	// OTLP is Prometheus's OTLP translation configuration (translation
	// strategy, promoted resource attributes, ...). Default:
	// config.DefaultOTLPConfig with the UnderscoreEscapingWithoutSuffixes
	// strategy.
	OTLP config.OTLPConfig
	// DeltaToCumulative converts delta sums and histograms to cumulative in
	// memory, as Prometheus's otlp-deltatocumulative feature does. Default
	// true. Mutually exclusive with NativeDelta.
	DeltaToCumulative bool
	// NativeDelta stores delta samples as they arrive (Prometheus's
	// otlp-native-delta-ingestion). Default false.
	NativeDelta bool
	// LookbackDelta is the PromQL lookback, used to space target_info
	// samples. Default 5 minutes.
	LookbackDelta time.Duration
	// ExemplarWriter, when not nil, receives every exemplar the TSDB
	// accepted (deduplicated), in batches, after the samples are committed,
	// and records how much of the WAL it holds; Open first hands it the
	// exemplars of the WAL it may lack (feed.go).
	ExemplarWriter exemplars.Writer
	// ExemplarQueueSize bounds the batches waiting for ExemplarWriter. When
	// the queue stays full for 5 seconds a batch is dropped and counted
	// rather than slowing ingestion further; the next Open re-indexes it
	// from the WAL. Default 1024.
	ExemplarQueueSize int
	// MaxSeries, when positive, refuses samples of new series once the
	// head holds this many (Mimir's max_global_series_per_user): they are
	// reported as rejected, naming the limit. A request may pass the limit
	// by the new series it brings once. Default 0: no limit.
	MaxSeries int
	// MaxAheadTime rejects samples further in the future than this, as
	// Prometheus's OTLP receiver does. Default 10 minutes.
	MaxAheadTime time.Duration

	// walSegmentSize overrides the TSDB's WAL segment size (tests).
	walSegmentSize int
}

// DefaultOptions returns the options Lookout uses unless told otherwise.
func DefaultOptions() Options {
	otlp := config.DefaultOTLPConfig
	otlp.TranslationStrategy = otlptranslator.UnderscoreEscapingWithoutSuffixes
	return Options{
		Retention:         15 * 24 * time.Hour,
		BlockDuration:     2 * time.Hour,
		MaxExemplars:      100000,
		OTLP:              otlp,
		DeltaToCumulative: true,
		LookbackDelta:     5 * time.Minute,
		ExemplarQueueSize: 1024,
		MaxAheadTime:      10 * time.Minute,
	}
}

// Validate reports options that cannot work together.
func (o Options) Validate() error {
	var errs []error
	if o.Retention <= 0 {
		errs = append(errs, errors.New("retention must be positive"))
	}
	if o.BlockDuration < time.Minute {
		errs = append(errs, fmt.Errorf("block duration %s is under a minute", o.BlockDuration))
	}
	if o.MaxExemplars < 0 {
		errs = append(errs, errors.New("max exemplars must not be negative"))
	}
	if o.DeltaToCumulative && o.NativeDelta {
		errs = append(errs, errors.New("delta-to-cumulative conversion and native delta ingestion cannot both be on"))
	}
	if err := ValidateTranslationStrategy(string(o.OTLP.TranslationStrategy)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// TranslationStrategies lists Prometheus's names for the OTLP translation
// strategies.
var TranslationStrategies = []otlptranslator.TranslationStrategyOption{
	otlptranslator.UnderscoreEscapingWithSuffixes,
	otlptranslator.UnderscoreEscapingWithoutSuffixes,
	otlptranslator.NoUTF8EscapingWithSuffixes,
	otlptranslator.NoTranslation,
}

// ValidateTranslationStrategy returns an error naming the valid strategies
// when s is not one of them.
func ValidateTranslationStrategy(s string) error {
	for _, t := range TranslationStrategies {
		if string(t) == s {
			return nil
		}
	}
	names := make([]string, len(TranslationStrategies))
	for i, t := range TranslationStrategies {
		names[i] = string(t)
	}
	return fmt.Errorf("unknown OTLP translation strategy %q (valid: %s)", s, strings.Join(names, ", "))
}

// Store is Prometheus's TSDB fed with OTLP metrics. It is safe for
// concurrent use. After Close, ConsumeMetrics returns an error.
type Store struct {
	db       *tsdb.DB
	stats    *tsdb.DBStats
	dir      string
	logger   *slog.Logger
	opts     Options
	settings prw.Settings
	metrics  *storeMetrics

	converters sync.Pool
	plans      sync.Pool // *resourcePlan
	streams    *streamCache
	// noStreamCache sends everything through the translator (tests).
	noStreamCache bool
	d2c           processor.Metrics

	// feed carries the exemplars the TSDB accepted to ExemplarWriter.
	feed *exemplarFeed

	mu     sync.RWMutex // held for reading by writers, for writing by Close
	closed bool
}

var _ ingest.MetricsSink = (*Store)(nil)

// Open opens (or creates) the TSDB under dir and replays its WAL, then
// hands opts.ExemplarWriter the exemplars of the WAL it may lack.
func Open(dir string, opts Options, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	to := tsdb.DefaultOptions()
	to.RetentionDuration = opts.Retention.Milliseconds()
	to.MinBlockDuration = opts.BlockDuration.Milliseconds()
	to.MaxBlockDuration = max(to.MaxBlockDuration, to.MinBlockDuration)
	to.EnableExemplarStorage = true
	to.MaxExemplars = opts.MaxExemplars
	to.WALCompression = compression.Snappy
	if opts.walSegmentSize > 0 {
		to.WALSegmentSize = opts.walSegmentSize
	}
	// Blocks larger than 10% of retention make retention coarse, as
	// Prometheus's own main computes.
	maxBlock := min(opts.Retention/10, 31*24*time.Hour)
	if maxBlock.Milliseconds() > to.MinBlockDuration {
		to.MaxBlockDuration = maxBlock.Milliseconds()
	}
	stats := tsdb.NewDBStats()
	db, err := tsdb.Open(dir, logger.With("component", "tsdb"), reg, to, stats)
	if err != nil {
		return nil, fmt.Errorf("open metrics TSDB in %s: %w", dir, err)
	}
	s := &Store{
		db:     db,
		stats:  stats,
		dir:    dir,
		logger: logger,
		opts:   opts,
		settings: prw.Settings{
			AddMetricSuffixes:                    opts.OTLP.TranslationStrategy.ShouldAddSuffixes(),
			AllowUTF8:                            !opts.OTLP.TranslationStrategy.ShouldEscape(),
			PromoteResourceAttributes:            prw.NewPromoteResourceAttributes(opts.OTLP),
			KeepIdentifyingResourceAttributes:    opts.OTLP.KeepIdentifyingResourceAttributes,
			ConvertHistogramsToNHCB:              opts.OTLP.ConvertHistogramsToNHCB,
			PromoteScopeMetadata:                 opts.OTLP.PromoteScopeMetadata,
			AllowDeltaTemporality:                opts.NativeDelta,
			LookbackDelta:                        opts.LookbackDelta,
			LabelNameUnderscoreSanitization:      opts.OTLP.LabelNameUnderscoreSanitization,
			LabelNamePreserveMultipleUnderscores: opts.OTLP.LabelNamePreserveMultipleUnderscores,
		},
		metrics: newStoreMetrics(reg),
		streams: newStreamCache(1 << 22),
	}
	s.converters.New = func() any { return prw.NewPrometheusConverter(nil) }
	s.plans.New = func() any { return &resourcePlan{} }
	if opts.DeltaToCumulative {
		fac := deltatocumulative.NewFactory()
		set := processor.Settings{
			ID:                component.NewID(fac.Type()),
			TelemetrySettings: component.TelemetrySettings{MeterProvider: noop.NewMeterProvider(), Logger: zap.NewNop()},
		}
		next, err := consumer.NewMetrics(func(ctx context.Context, md pmetric.Metrics) error {
			acc, _ := ctx.Value(resultKey{}).(*ingest.Result)
			res, err := s.write(ctx, md)
			if acc != nil {
				*acc = res
			}
			return err
		})
		if err != nil {
			_ = db.Close()
			return nil, err
		}
		d2c, err := fac.CreateMetrics(context.Background(), set, fac.CreateDefaultConfig(), next)
		if err == nil {
			err = d2c.Start(context.Background(), nil)
		}
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("start delta-to-cumulative conversion: %w", err)
		}
		s.d2c = d2c
	}
	s.feed = openFeed(db, dir, opts.ExemplarWriter, opts.ExemplarQueueSize, logger, s.metrics)
	return s, nil
}

type resultKey struct{}

// ConsumeMetrics implements ingest.MetricsSink: it translates md as
// Prometheus's OTLP receiver does and appends it in one TSDB transaction.
// Samples the TSDB refuses (out of order, duplicate timestamps, too far in
// the future) and metrics the translator refuses are reported as a partial
// success; everything else in the batch is kept. A batch of which nothing
// could be stored is ErrBadData.
func (s *Store) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) (ingest.Result, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ingest.Result{}, errors.New("metric store is closed")
	}
	sortHistogramExemplars(md)
	if s.d2c != nil && hasDelta(md) {
		var res ingest.Result
		// The processor holds a lock while it converts; only batches with
		// delta data take this path, as in Prometheus's handler.
		err := s.d2c.ConsumeMetrics(context.WithValue(ctx, resultKey{}, &res), md)
		return res, err
	}
	return s.write(ctx, md)
}

// putPlan returns p to the pool without the request's data points it
// refers to, so a pooled plan keeps no request alive.
func (s *Store) putPlan(p *resourcePlan) {
	clear(p.points[:cap(p.points)])
	clear(p.learnPoints[:cap(p.learnPoints)])
	*p = resourcePlan{points: p.points[:0], learnPoints: p.learnPoints[:0], residual: p.residual[:0]}
	s.plans.Put(p)
}

// appendResources appends md's resources: the points of streams the cache
// knows by reference, the others through Prometheus's translator, which
// the cache learns from (see streams.go). md is consumed.
func (s *Store) appendResources(ctx context.Context, app *appender, md pmetric.Metrics) error {
	s.streams.sweep()
	conv := s.converters.Get().(*prw.PrometheusConverter)
	defer s.converters.Put(conv)
	var errs []error
	var warnings annotations.Annotations
	// translate runs the translator over one resource's batch, recording
	// its appends when record is set; it reports whether it succeeded.
	translate := func(md pmetric.Metrics, settings prw.Settings, record bool) bool {
		app.record, app.recorded = record, app.recorded[:0]
		conv.Reset(app)
		annots, err := conv.FromMetrics(ctx, md, settings)
		conv.Reset(nil)
		app.record = false
		warnings.Merge(annots)
		if err == nil {
			return true
		}
		var j interface{ Unwrap() []error }
		if errors.As(err, &j) {
			errs = append(errs, j.Unwrap()...)
		} else {
			errs = append(errs, err)
		}
		return false
	}
	noTarget := s.settings
	noTarget.DisableTargetInfo = true
	h := s.streams.newHasher()
	sb := labels.NewScratchBuilder(2)
	seen := map[targetKey]struct{}{}
	plan := s.plans.Get().(*resourcePlan)
	defer s.putPlan(plan)
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		rm := rms.At(i)
		whole := func() {
			single := pmetric.NewMetrics()
			rm.MoveTo(single.ResourceMetrics().AppendEmpty())
			translate(single, s.settings, false)
		}
		if s.noStreamCache {
			whole()
			continue
		}
		s.streams.plan(h, rm, plan)
		if plan.res == nil {
			dry := &dryAppender{}
			conv.Reset(dry)
			if _, err := conv.FromMetrics(ctx, probe(rm), s.settings); err == nil {
				s.streams.learnResource(plan, dry.recorded)
			}
			conv.Reset(nil)
			if plan.res == nil {
				whole()
				continue
			}
		}
		if len(plan.points) > 0 {
			s.streams.fastAppend(app, plan, &sb)
			s.metrics.cachedPoints.Add(float64(len(plan.points)))
		}
		if len(plan.learnPoints) > 0 && translate(learningBatch(rm, plan), noTarget, true) {
			s.streams.learn(plan, app.recorded)
		}
		if len(plan.residual) > 0 {
			translate(subset(rm, plan.residual), noTarget, false)
		}
		s.streams.appendTargetInfo(app, plan, s.opts.LookbackDelta, seen)
	}
	if ws, _ := warnings.AsStrings("", 0, 0); len(ws) > 0 {
		s.logger.Debug("warnings translating OTLP metrics", "warnings", ws)
	}
	return errors.Join(errs...)
}

// dryAppender records appends without storing them.
type dryAppender struct {
	storage.AppenderV2 // nil: only Append is called
	recorded           []recorded
}

func (d *dryAppender) Append(_ storage.SeriesRef, ls labels.Labels, _, _ int64, _ float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	opts.Exemplars = nil
	d.recorded = append(d.recorded, recorded{ls: ls, opts: opts, hist: h != nil || fh != nil})
	return 0, nil
}

func (s *Store) write(ctx context.Context, md pmetric.Metrics) (ingest.Result, error) {
	app := &appender{
		AppenderV2: s.db.AppenderV2(ctx),
		maxTime:    time.Now().Add(s.opts.MaxAheadTime).UnixMilli(),
		maxSeries:  uint64(max(s.opts.MaxSeries, 0)),
		numSeries:  s.db.Head().NumSeries,
	}
	keys := s.feed.buffers(app)
	defer s.feed.releaseKeys(keys, app)
	points := int64(md.DataPointCount())
	terr := s.appendResources(ctx, app, md)
	if err := ctx.Err(); err != nil {
		_ = app.Rollback()
		return ingest.Result{}, fmt.Errorf("append metrics: %w", err)
	}
	translationErrs := countErrors(terr)
	// OTLP counts rejected data points; a histogram point is many samples.
	rejected := min(int64(len(app.rejectedPoints)+translationErrs), points)
	s.metrics.samplesRejected.Add(float64(app.rejected))
	s.metrics.translationErrors.Add(float64(translationErrs))
	if app.appended == 0 && rejected > 0 {
		_ = app.Rollback()
		return ingest.Result{}, fmt.Errorf("%w: nothing stored: %s", ingest.ErrBadData, app.message(terr))
	}
	if err := s.commitAndQueue(app); err != nil {
		return ingest.Result{}, fmt.Errorf("commit metrics: %w", err)
	}
	res := ingest.Result{Rejected: rejected}
	if rejected > 0 {
		res.Message = app.message(terr)
	}
	return res, nil
}

// commitAndQueue commits app, counts what it stored and hands its new
// exemplars to the exemplar feed.
func (s *Store) commitAndQueue(app *appender) error {
	if err := s.feed.commit(app); err != nil {
		return err
	}
	s.metrics.samplesAppended.Add(float64(app.appended))
	s.metrics.exemplarsRejected.Add(float64(app.exRejected))
	return nil
}

// DB returns the underlying TSDB.
func (s *Store) DB() *tsdb.DB { return s.db }

// Dir returns the TSDB directory.
func (s *Store) Dir() string { return s.dir }

// Queryable returns the samples for PromQL and the series/labels APIs.
func (s *Store) Queryable() storage.SampleAndChunkQueryable { return s.db }

// ExemplarQueryable returns the TSDB's own in-memory exemplar storage.
// ReadAfterWrite answers from the exemplar writer's index instead.
func (s *Store) ExemplarQueryable() storage.ExemplarQueryable { return s.db }

// Appendable returns the TSDB appender, e.g. for recording rules.
func (s *Store) Appendable() storage.AppendableV2 { return s.db }

// Close stops accepting metrics, flushes queued exemplars to the writer and
// closes the TSDB cleanly. It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	var errs []error
	if s.d2c != nil {
		errs = append(errs, s.d2c.Shutdown(context.Background()))
	}
	errs = append(errs, s.feed.close())
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close metrics TSDB: %w", err))
	}
	return errors.Join(errs...)
}

// MetricsDir is where Lookout keeps the TSDB under its data directory.
func MetricsDir(dataDir string) string { return filepath.Join(dataDir, "metrics") }

func countErrors(err error) int {
	if err == nil {
		return 0
	}
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		return len(j.Unwrap())
	}
	return 1
}

// sortHistogramExemplars orders each classic histogram data point's
// exemplars by value. Prometheus's translator walks exemplars and bucket
// bounds together assuming both ascend; an unsorted batch would otherwise put
// an exemplar on a higher bucket than the first with le >= value.
func sortHistogramExemplars(md pmetric.Metrics) {
	for m := range allMetrics(md) {
		if m.Type() != pmetric.MetricTypeHistogram {
			continue
		}
		for _, dp := range m.Histogram().DataPoints().All() {
			sortExemplarsByValue(dp.Exemplars())
		}
	}
}

// allMetrics yields every metric of md, resource by resource, scope by scope.
func allMetrics(md pmetric.Metrics) iter.Seq[pmetric.Metric] {
	return func(yield func(pmetric.Metric) bool) {
		for _, rm := range md.ResourceMetrics().All() {
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					if !yield(m) {
						return
					}
				}
			}
		}
	}
}

func exemplarValue(e pmetric.Exemplar) float64 {
	if e.ValueType() == pmetric.ExemplarValueTypeInt {
		return float64(e.IntValue())
	}
	return e.DoubleValue()
}

func sortExemplarsByValue(es pmetric.ExemplarSlice) {
	n := es.Len()
	if n < 2 {
		return
	}
	sorted := true
	for i := 1; i < n; i++ {
		if exemplarValue(es.At(i)) < exemplarValue(es.At(i-1)) {
			sorted = false
			break
		}
	}
	if sorted {
		return
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		return cmp.Compare(exemplarValue(es.At(a)), exemplarValue(es.At(b)))
	})
	out := pmetric.NewExemplarSlice()
	out.EnsureCapacity(n)
	for _, i := range idx {
		es.At(i).CopyTo(out.AppendEmpty())
	}
	out.CopyTo(es)
}

func hasDelta(md pmetric.Metrics) bool {
	for m := range allMetrics(md) {
		t := pmetric.AggregationTemporalityUnspecified
		switch m.Type() {
		case pmetric.MetricTypeSum:
			t = m.Sum().AggregationTemporality()
		case pmetric.MetricTypeHistogram:
			t = m.Histogram().AggregationTemporality()
		case pmetric.MetricTypeExponentialHistogram:
			t = m.ExponentialHistogram().AggregationTemporality()
		}
		if t == pmetric.AggregationTemporalityDelta {
			return true
		}
	}
	return false
}
