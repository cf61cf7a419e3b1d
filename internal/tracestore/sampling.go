package tracestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// SamplingPolicy is exemplar-aware tail sampling (--traces.sampling). A
// trace stays provisional for Window after its first span started, so that
// the exemplars pointing at it (sent up to one metric export interval
// later) can arrive; then it is kept when an exemplar references it, when
// one of its spans has an error status, when its root span took longer than
// its root operation's recent p99, or when its trace ID falls in Share
// (by the lower 8 bytes of the ID, as OpenTelemetry's TraceIDRatioBased
// sampler decides, so every service of a trace, and an app's own head
// sampler at the same ratio, agree). Every other trace is deleted.
type SamplingPolicy struct {
	// Share of the traces not kept for another reason that are kept, in
	// [0, 1].
	Share float64
	// Window is how long a trace stays provisional. Default 2 minutes.
	Window time.Duration
}

// DefaultSamplingWindow is SamplingPolicy.Window's default.
const DefaultSamplingWindow = 2 * time.Minute

// ParseSamplingPolicy reads the --traces.sampling format: comma-separated
// key=value pairs, `share` (a fraction such as 0.1, or a percentage such as
// 10%) required, `window` (a Go duration) optional, e.g. "share=10%" or
// "share=0.1,window=5m". Errors name the problem.
func ParseSamplingPolicy(s string) (SamplingPolicy, error) {
	p := SamplingPolicy{Share: -1, Window: DefaultSamplingWindow}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || v == "" {
			return p, fmt.Errorf("sampling policy %q: %q is not key=value (want e.g. share=10%%,window=2m)", s, part)
		}
		switch k {
		case "share":
			pct := strings.HasSuffix(v, "%")
			f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
			if pct {
				f /= 100
			}
			if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
				return p, fmt.Errorf("sampling policy %q: share %q is not a fraction in [0, 1] or a percentage in [0%%, 100%%]", s, v)
			}
			p.Share = f
		case "window":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return p, fmt.Errorf("sampling policy %q: window %q is not a positive duration such as 2m", s, v)
			}
			p.Window = d
		default:
			return p, fmt.Errorf("sampling policy %q: unknown key %q (want share, window)", s, k)
		}
	}
	if p.Share < 0 {
		return p, fmt.Errorf("sampling policy %q: share is required, e.g. share=10%%", s)
	}
	return p, nil
}

// String is the policy in ParseSamplingPolicy's format.
func (p SamplingPolicy) String() string {
	return fmt.Sprintf("share=%s,window=%s", strconv.FormatFloat(p.Share, 'g', -1, 64), p.Window)
}

// keepsShare reports whether id falls in the policy's share: its lower 8
// bytes, shifted right by one, below share × 2^63, as TraceIDRatioBased.
func (p SamplingPolicy) keepsShare(id pcommon.TraceID) bool {
	if p.Share >= 1 {
		return true
	}
	bound := uint64(p.Share * (1 << 63))
	return binary.BigEndian.Uint64(id[8:16])>>1 < bound
}

// Why a trace was kept, the values of the kept counter's reason label.
const (
	keptExemplar = "exemplar"
	keptError    = "error"
	keptSlow     = "slow"
	keptShare    = "share"
)

// samplingInterval is how often the sampling pass runs.
const samplingInterval = 10 * time.Second

// rootHistory is how many recent root durations per root operation the
// p99 is taken from.
const rootHistory = 1000

// samplingGroup is how many traces the pass reads before judging them.
const samplingGroup = 10_000

// maxLateChecks bounds the dropped traces remembered for the late check.
const maxLateChecks = 1 << 20

// sampler holds the sampling pass's state.
type sampler struct {
	policy SamplingPolicy

	mu sync.Mutex
	// upTo is the start time (ns) before which traces have been decided.
	upTo uint64
	// roots holds recent root durations per root operation, as rings.
	roots map[rootOp]*ring
	// late lists dropped traces in drop order, to check once, a window
	// after the drop, whether an exemplar referenced them meanwhile.
	late []droppedTrace

	kept    *prometheus.CounterVec
	dropped prometheus.Counter
	lateRef prometheus.Counter
}

type rootOp struct{ service, name string }

type droppedTrace struct {
	id pcommon.TraceID
	at time.Time
}

type ring struct {
	d    []uint64
	next int
	// p99 as last computed, and the durations added since.
	cached uint64
	stale  int
}

func (r *ring) add(v uint64) {
	r.stale++
	if len(r.d) < rootHistory {
		r.d = append(r.d, v)
		return
	}
	r.d[r.next] = v
	r.next = (r.next + 1) % rootHistory
}

// p99 is the ring's 99th percentile (nearest rank), recomputed after every
// 20 additions, or MaxUint64 while it holds fewer than 100 durations: too
// few to call anything slow.
func (r *ring) p99() uint64 {
	if len(r.d) < 100 {
		return math.MaxUint64
	}
	if r.stale >= 20 || r.cached == 0 {
		s := slices.Clone(r.d)
		slices.Sort(s)
		r.cached, r.stale = s[int(math.Ceil(0.99*float64(len(s))))-1], 0
	}
	return r.cached
}

// samplingKey holds how far the sampling pass has decided (start time in
// ns, 8 bytes), so a restart neither decides a trace twice nor skips one.
var samplingKey = []byte{pMeta, 's', 'a', 'm', 'p', 'l', 'e', 'd'}

// newSampler resumes where the last pass stopped; on a store that never
// sampled, at the start of the provisional window: traces stored before
// sampling was turned on are kept.
func newSampler(db *pebble.DB, p SamplingPolicy, now time.Time) (*sampler, error) {
	if p.Window <= 0 {
		p.Window = DefaultSamplingWindow
	}
	upTo := uint64(max(now.Add(-p.Window).UnixNano(), 0))
	v, closer, err := db.Get(samplingKey)
	switch {
	case err == nil:
		if len(v) == 8 {
			upTo = binary.BigEndian.Uint64(v)
		}
		_ = closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return nil, fmt.Errorf("read sampling state: %w", err)
	}
	return &sampler{
		policy: p,
		upTo:   upTo,
		roots:  map[rootOp]*ring{},
		kept: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_tracestore_sampling_kept_traces_total",
			Help: "Traces the sampling policy kept, by reason: exemplar (an exemplar references it), error, slow (root slower than its operation's recent p99), share.",
		}, []string{"reason"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_tracestore_sampling_dropped_traces_total",
			Help: "Traces the sampling policy deleted at the end of their provisional window.",
		}),
		lateRef: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_tracestore_sampling_late_referenced_traces_total",
			Help: "Dropped traces that an exemplar referenced after their provisional window (their exemplars are dangling).",
		}),
	}, nil
}

func (sm *sampler) collectors() []prometheus.Collector {
	return []prometheus.Collector{sm.kept, sm.dropped, sm.lateRef}
}

// rootDuration is a summary's root operation and root span duration; ok
// is false when the root has not arrived (or has no end).
func rootDuration(sum *summary) (op rootOp, d uint64, ok bool) {
	if !sum.HasRoot || sum.RootEnd <= sum.RootStart {
		return rootOp{}, 0, false
	}
	return rootOp{sum.RootService, sum.RootName}, sum.RootEnd - sum.RootStart, true
}

// observe adds a trace's root duration to its operation's recent ones.
func (sm *sampler) observe(sum *summary) {
	op, d, ok := rootDuration(sum)
	if !ok {
		return
	}
	r := sm.roots[op]
	if r == nil {
		r = &ring{}
		sm.roots[op] = r
	}
	r.add(d)
}

// decide is the sampling pass's verdict on one trace, whose root duration
// observe has already counted.
func (sm *sampler) decide(ctx context.Context, pinner Pinner, tid pcommon.TraceID, sum *summary) (reason string, keep bool, err error) {
	if pinner != nil {
		pinned, err := pinner.IsPinned(ctx, tid)
		if err != nil {
			return "", false, err
		}
		if pinned {
			return keptExemplar, true, nil
		}
	}
	if sum.Errors > 0 {
		return keptError, true, nil
	}
	if op, d, ok := rootDuration(sum); ok && d > sm.roots[op].p99() {
		return keptSlow, true, nil
	}
	if sm.policy.keepsShare(tid) {
		return keptShare, true, nil
	}
	return "", false, nil
}

// RunSampling decides the traces whose first span started more than the
// policy's window ago and were not decided yet, deleting those the policy
// does not keep, and checks the traces dropped a window earlier for late
// exemplar references. It runs in the background every 10 seconds when a
// policy is set; tests call it directly. It is a no-op without a policy.
func (s *Store) RunSampling(ctx context.Context) error {
	sm := s.sampler
	if sm == nil {
		return nil
	}
	s.retMu.Lock()
	defer s.retMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	sm.mu.Lock()
	defer sm.mu.Unlock()
	now := s.opts.Now()
	if err := sm.checkLate(ctx, s.opts.Pinner, now); err != nil {
		return err
	}
	cutoff := uint64(max(now.Add(-sm.policy.Window).UnixNano(), 0))
	if cutoff <= sm.upTo {
		return nil
	}
	tids, err := s.tracesStarted(ctx, sm.upTo, cutoff)
	if err != nil {
		return err
	}
	// Summaries are read in trace ID order through one iterator: random
	// point reads of the same summaries cost three times the CPU.
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{pSummary}, UpperBound: []byte{pSummary + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	b := s.db.NewBatch()
	defer func() { b.Close() }()
	// A group's root durations join their operations' recent ones before
	// any of its traces is judged slow.
	type traceSum struct {
		tid pcommon.TraceID
		sum summary
	}
	group := make([]traceSum, 0, min(len(tids), samplingGroup))
	decideGroup := func() error {
		for i := range group {
			sm.observe(&group[i].sum)
		}
		for _, t := range group {
			reason, keep, err := sm.decide(ctx, s.opts.Pinner, t.tid, &t.sum)
			if err != nil {
				return err
			}
			if keep {
				sm.kept.WithLabelValues(reason).Inc()
				continue
			}
			s.deleteTrace(b, t.tid, &t.sum)
			sm.dropped.Inc()
			if len(sm.late) < maxLateChecks {
				sm.late = append(sm.late, droppedTrace{id: t.tid, at: now})
			}
			if b.Count() >= 4096 {
				if err := b.Commit(pebble.NoSync); err != nil {
					return err
				}
				b.Close()
				b = s.db.NewBatch()
			}
		}
		group = group[:0]
		return nil
	}
	for _, tid := range tids {
		key := summaryKey(tid)
		if !it.SeekGE(key) || !bytes.Equal(it.Key(), key) {
			continue // gone meanwhile (retention)
		}
		sum, err := decodeSummary(it.Value())
		if err != nil {
			return fmt.Errorf("sampling: summary of trace %s: %w", tid, err)
		}
		group = append(group, traceSum{tid, sum})
		if len(group) == samplingGroup {
			if err := decideGroup(); err != nil {
				return err
			}
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if err := decideGroup(); err != nil {
		return err
	}
	_ = b.Set(samplingKey, binary.BigEndian.AppendUint64(nil, cutoff), nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	sm.upTo = cutoff
	return nil
}

// checkLate asks, once per dropped trace and a window after its drop,
// whether an exemplar now references it, and counts those that are.
func (sm *sampler) checkLate(ctx context.Context, pinner Pinner, now time.Time) error {
	if pinner == nil {
		sm.late = sm.late[:0]
		return nil
	}
	n := 0
	for _, d := range sm.late {
		if now.Sub(d.at) < sm.policy.Window {
			break
		}
		pinned, err := pinner.IsPinned(ctx, d.id)
		if err != nil {
			return fmt.Errorf("late exemplar check: %w", err)
		}
		if pinned {
			sm.lateRef.Inc()
		}
		n++
	}
	sm.late = slices.Delete(sm.late, 0, n)
	return nil
}

// tracesStarted lists, sorted, the traces with a chunk whose start time is
// in [from, to).
func (s *Store) tracesStarted(ctx context.Context, from, to uint64) ([]pcommon.TraceID, error) {
	var tids []pcommon.TraceID
	err := s.walkChunks(ctx, from, to, func(k, _ []byte, _ bool) error {
		tids = append(tids, pcommon.TraceID(k[8:24]))
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(tids, func(a, b pcommon.TraceID) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(tids), nil
}
