package metricstore

import (
	"context"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
)

// AdminStats adapts the TSDB to the statistics interface of Prometheus's
// HTTP API (web/api/v1.TSDBAdminStats), for /api/v1/status/tsdb.
type AdminStats struct {
	db    *tsdb.DB
	stats *tsdb.DBStats
}

// AdminStats returns the store's TSDB statistics adapter.
func (s *Store) AdminStats() AdminStats { return AdminStats{db: s.db, stats: s.stats} }

// CleanTombstones implements v1.TSDBAdminStats.
func (a AdminStats) CleanTombstones() error { return a.db.CleanTombstones() }

// Delete implements v1.TSDBAdminStats.
func (a AdminStats) Delete(ctx context.Context, mint, maxt int64, ms ...*labels.Matcher) error {
	return a.db.Delete(ctx, mint, maxt, ms...)
}

// Snapshot implements v1.TSDBAdminStats.
func (a AdminStats) Snapshot(dir string, withHead bool) error { return a.db.Snapshot(dir, withHead) }

// Stats implements v1.TSDBAdminStats.
func (a AdminStats) Stats(statsByLabelName string, limit int) (*tsdb.Stats, error) {
	return a.db.Head().Stats(statsByLabelName, limit), nil
}

// WALReplayStatus implements v1.TSDBAdminStats.
func (a AdminStats) WALReplayStatus() (tsdb.WALReplayStatus, error) {
	return a.stats.Head.WALReplayStatus.GetWALReplayStatus(), nil
}

// BlockMetas implements v1.TSDBAdminStats.
func (a AdminStats) BlockMetas() ([]tsdb.BlockMeta, error) { return a.db.BlockMetas(), nil }
