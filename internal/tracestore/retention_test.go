package tracestore

import (
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
	var walBytes uint64
	flushes := s.db.Metrics().Flush.Count
	s.flushWritten(&walBytes)
	if n := s.db.Metrics().Flush.Count; n != flushes || walBytes != 0 {
		t.Errorf("a new store flushed (%d flushes, was %d; %d WAL bytes)", n, flushes, walBytes)
	}

	searchFixture(t, s)
	s.flushWritten(&walBytes)
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
	s.flushWritten(&walBytes)
	time.Sleep(100 * time.Millisecond)
	if n := s.db.Metrics().Flush.Count; n != flushes {
		t.Errorf("flushed with nothing written: %d flushes, was %d", n, flushes)
	}
	if now := walFiles(t, dir); !slices.Equal(now, logs) {
		t.Errorf("WAL files changed with nothing written: %v, was %v", now, logs)
	}
}
