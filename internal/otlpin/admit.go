package otlpin

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lookout-dev/lookout/internal/ingest"
)

// admission decides, before a request's body is read or decoded, whether
// memory allows it, as the Collector's memory_limiter does: a budget of
// request bytes in flight across HTTP and gRPC, and a check of the
// process's memory against the limit. It is safe for concurrent use.
type admission struct {
	maxBytes int64  // budget of request bytes in flight
	limit    uint64 // memory above which requests are refused; 0: no check

	mu       sync.Mutex
	inFlight int64
	sampled  time.Time
	over     bool
	samples  []metrics.Sample
	lastGC   time.Time
	gcActive atomic.Bool
}

// memorySampleEvery bounds how often the runtime's memory is read.
const memorySampleEvery = 50 * time.Millisecond

// forcedGCEvery bounds how often a collection is forced while memory is over
// the limit.
const forcedGCEvery = time.Second

var (
	errBytesInFlight = errors.Join(ingest.ErrOverloaded, errors.New("too many request bytes in flight"))
	errMemoryLimit   = errors.Join(ingest.ErrOverloaded, errors.New("memory limit reached"))
)

func newAdmission(maxBytes int64, limit uint64) *admission {
	return &admission{
		maxBytes: maxBytes,
		limit:    limit,
		samples: []metrics.Sample{
			{Name: "/memory/classes/total:bytes"},
			{Name: "/memory/classes/heap/released:bytes"},
			{Name: "/memory/classes/heap/free:bytes"},
		},
	}
}

// checkLocked reports errMemoryLimit when the process holds more memory than the
// limit allows new requests to take: 90% of it, leaving room for the
// requests already admitted. Memory counts what the Go runtime has mapped,
// less what it returned to the system and its free heap pages (reused
// before any more is mapped). While over, a collection is forced now and
// then, as the Collector's memory_limiter does: after a flood nothing else
// may allocate enough to start one, and the garbage of the refused and
// finished requests would keep new ones out. a.mu is held.
func (a *admission) checkLocked() error {
	if a.limit == 0 {
		return nil
	}
	if now := time.Now(); now.Sub(a.sampled) >= memorySampleEvery {
		a.sampled = now
		metrics.Read(a.samples)
		used := a.samples[0].Value.Uint64() - a.samples[1].Value.Uint64() - a.samples[2].Value.Uint64()
		a.over = used > a.limit/10*9
		if a.over && now.Sub(a.lastGC) >= forcedGCEvery && a.gcActive.CompareAndSwap(false, true) {
			a.lastGC = now
			go func() {
				defer a.gcActive.Store(false)
				runtime.GC()
			}()
		}
	}
	if a.over {
		return errMemoryLimit
	}
	return nil
}

// acquire reserves n bytes of the in-flight budget, or reports why not. A
// request larger than the whole budget is admitted alone.
func (a *admission) acquire(n int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.checkLocked(); err != nil {
		return err
	}
	if a.inFlight > 0 && a.inFlight+n > a.maxBytes {
		return fmt.Errorf("%w (%d of %d bytes)", errBytesInFlight, a.inFlight, a.maxBytes)
	}
	a.inFlight += n
	return nil
}

// release returns n bytes to the budget.
func (a *admission) release(n int64) {
	a.mu.Lock()
	a.inFlight -= n
	a.mu.Unlock()
}
