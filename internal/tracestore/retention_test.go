package tracestore

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// walFiles lists the WAL files in dir with their sizes.
func walFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".log") {
			info, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			out[e.Name()] = info.Size()
		}
	}
	return out
}

// eventually polls cond for up to 10 s: flushes and the deletion of the
// WAL files they make obsolete run in the background.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("after 10 s: %s", what)
}

func TestFlushWrittenEmptiesWAL(t *testing.T) {
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
	var written int64
	for _, n := range walFiles(t, dir) {
		written += n
	}
	if written == 0 {
		t.Fatal("the spans written are not in the WAL")
	}
	s.flushWritten(&walBytes)
	eventually(t, "the spans are not in sstables", func() bool {
		usage, err := s.TableUsage()
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range usage {
			if u.Prefix == pData {
				return u.Bytes > 0
			}
		}
		return false
	})
	eventually(t, "the flushed WAL is still on disk", func() bool {
		var n int64
		for _, size := range walFiles(t, dir) {
			n += size
		}
		return n == 0
	})

	// Nothing written since: no flush, so no new WAL file.
	logs := walFiles(t, dir)
	flushes = s.db.Metrics().Flush.Count
	s.flushWritten(&walBytes)
	time.Sleep(100 * time.Millisecond)
	if n := s.db.Metrics().Flush.Count; n != flushes {
		t.Errorf("flushed with nothing written: %d flushes, was %d", n, flushes)
	}
	if now := walFiles(t, dir); !slices.Equal(sortedKeys(now), sortedKeys(logs)) {
		t.Errorf("WAL files changed with nothing written: %v, was %v", now, logs)
	}
}

func sortedKeys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
