package pebbledb

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// BenchmarkSyncedBatches commits 128 KiB batches with synced WAL writes
// from 4 goroutines, as the trace store's ingest does, and reports the
// process's CPU time per batch, for Pebble's WAL, UnreservedWAL, and
// without the reuse of flushed WAL files (reuse-off, reuse-off-unreserved),
// which the trace store does not turn off: it saves their space (three
// memtables' worth) but costs CPU. Run it a few times with -count 1: the
// variants run in turn.
func BenchmarkSyncedBatches(b *testing.B) {
	for _, name := range []string{"default", "unreserved", "reuse-off", "reuse-off-unreserved"} {
		b.Run(name, func(b *testing.B) {
			po := &pebble.Options{MemTableSize: 32 << 20}
			switch name {
			case "unreserved":
				UnreservedWAL(po)
			case "reuse-off":
				po.Cleaner = reuseOffCleaner{}
			case "reuse-off-unreserved":
				UnreservedWAL(po)
				po.Cleaner = reuseOffCleaner{}
			}
			db, err := Open(b.TempDir(), "bench store", po, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			value := make([]byte, 1024)
			var next atomic.Int64
			var wg sync.WaitGroup
			cpu0 := cpuTime()
			b.ResetTimer()
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					key := make([]byte, 8)
					for {
						n := next.Add(1)
						if n > int64(b.N) {
							return
						}
						batch := db.NewBatch()
						for i := range 128 {
							binary.BigEndian.PutUint64(key, uint64(n)<<8|uint64(i))
							_ = batch.Set(key, value, nil)
						}
						if err := batch.Commit(pebble.Sync); err != nil {
							b.Error(err)
						}
						batch.Close()
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// reuseOffCleaner deletes obsolete files as Pebble's default cleaner does
// and stops Pebble from reusing flushed WAL files: Pebble reuses none when
// its cleaner needs the files' contents, which it tells by the unexported
// method of pebble.ArchiveCleaner, here one level deeper than
// pebble.DeleteCleaner's Clean and String.
type reuseOffCleaner struct {
	pebble.DeleteCleaner
	contentsMarker
}

type contentsMarker struct{ pebble.ArchiveCleaner }
