package metricstore

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type storeMetrics struct {
	samplesAppended       prometheus.Counter
	samplesRejected       prometheus.Counter
	translationErrors     prometheus.Counter
	exemplarsAppended     prometheus.Counter
	exemplarsDuplicate    prometheus.Counter
	exemplarsRejected     prometheus.Counter
	exemplarWriterDropped prometheus.Counter
	exemplarWriterErrors  prometheus.Counter
	cachedPoints          prometheus.Counter
}

func newStoreMetrics(reg prometheus.Registerer) *storeMetrics {
	f := promauto.With(reg)
	c := func(name, help string) prometheus.Counter {
		return f.NewCounter(prometheus.CounterOpts{Namespace: "lookout", Subsystem: "metricstore", Name: name, Help: help})
	}
	return &storeMetrics{
		samplesAppended:       c("samples_appended_total", "Samples stored in the TSDB."),
		samplesRejected:       c("samples_rejected_total", "Samples the TSDB refused (out of order, duplicate timestamp, out of bounds)."),
		translationErrors:     c("translation_errors_total", "OTLP metrics or resources the Prometheus translator refused."),
		exemplarsAppended:     c("exemplars_appended_total", "New exemplars stored in the TSDB."),
		exemplarsDuplicate:    c("exemplars_duplicate_total", "Exemplars already stored (re-exported by an SDK), ignored."),
		exemplarsRejected:     c("exemplars_rejected_total", "Exemplars refused: out of order by Prometheus's rule, or with labels too long."),
		exemplarWriterDropped: c("exemplar_writer_dropped_total", "Exemplars not handed to the exemplar index because its queue was full."),
		exemplarWriterErrors:  c("exemplar_writer_errors_total", "Exemplars the exemplar index failed to write."),
		cachedPoints:          c("cached_points_total", "Data points appended by series reference from the stream cache, without the translator."),
	}
}
