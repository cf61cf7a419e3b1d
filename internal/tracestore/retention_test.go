package tracestore

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// walFiles lists the names of the WAL files in dir, sorted.
func walFiles(t *testing.T, dir string) []string {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return logs
}

func TestFlushWrittenFlushesOnlyAfterWrites(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	defer s.Close()
	// As the background loop starts: from the WAL's bytes at open (a new
	// store writes its mark).
	walBytes := s.db.Metrics().WAL.BytesIn
	opened := walBytes
	flushes := s.db.Metrics().Flush.Count
	s.flushWritten(context.Background(), &walBytes)
	if n := s.db.Metrics().Flush.Count; n != flushes || walBytes != opened {
		t.Errorf("a new store flushed (%d flushes, was %d; %d WAL bytes, %d at open)", n, flushes, walBytes, opened)
	}

	searchFixture(t, s)
	s.flushWritten(context.Background(), &walBytes)
	// The flush runs in the background.
	for i := 0; ; i++ {
		usage, err := s.TableUsage()
		if err != nil {
			t.Fatal(err)
		}
		if d := slices.IndexFunc(usage, func(u TableUsage) bool { return u.Prefix == pData }); usage[d].Bytes > 0 {
			break
		}
		if i == 200 {
			t.Fatal("after 10 s the spans are not in sstables")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Nothing written since: no flush, so no new WAL file either.
	logs := walFiles(t, dir)
	flushes = s.db.Metrics().Flush.Count
	s.flushWritten(context.Background(), &walBytes)
	time.Sleep(100 * time.Millisecond)
	if n := s.db.Metrics().Flush.Count; n != flushes {
		t.Errorf("flushed with nothing written: %d flushes, was %d", n, flushes)
	}
	if now := walFiles(t, dir); !slices.Equal(now, logs) {
		t.Errorf("WAL files changed with nothing written: %v, was %v", now, logs)
	}
}

// TestFlushWrittenTrimsWAL writes enough to rotate the memtable several
// times, so that Pebble keeps flushed WAL files for reuse, then a little:
// the background flush trims the kept files, and every span still reads
// after a reopen, including those written through the trimmed files.
func TestFlushWrittenTrimsWAL(t *testing.T) {
	dir := t.TempDir()
	opts := Options{MemTableSize: 1 << 20}
	s := openTest(t, dir, opts)
	rng := rand.New(rand.NewPCG(5, 5))
	var reqs []int
	consumeSome := func(n int) {
		for range n {
			i := len(reqs)
			consume(t, s, randomRequest(rng, 20, byte(i), base.Add(time.Duration(i)*time.Second)))
			reqs = append(reqs, i)
		}
	}
	consumeSome(40)
	var walBytes uint64
	s.flushWritten(context.Background(), &walBytes) // much written: flushes in the background
	consumeSome(1)
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	kept := int64(0)
	for _, name := range walFiles(t, dir)[:len(walFiles(t, dir))-1] {
		info, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		kept += info.Size()
	}
	if kept == 0 {
		t.Fatal("no flushed WAL files kept for reuse: nothing to trim")
	}
	walBytes = s.db.Metrics().WAL.BytesIn
	consumeSome(1)
	s.flushWritten(context.Background(), &walBytes) // little written: flushes and trims
	// Nothing was written since: the live file is a trimmed one too.
	for _, name := range walFiles(t, dir) {
		if info, err := os.Stat(name); err != nil || info.Size() != 0 {
			t.Fatalf("%s after the trim: %v %v", name, info.Size(), err)
		}
	}
	consumeSome(40) // through the trimmed files
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, opts)
	defer s.Close()
	for _, i := range reqs {
		for tr := range 20 {
			id := [16]byte{0xee, 14: byte(i), 15: byte(tr)}
			if ok, err := s.HasTrace(context.Background(), id); err != nil || !ok {
				t.Fatalf("trace %d of request %d after the trim and a reopen: %v %v", tr, i, ok, err)
			}
		}
	}
}
