package pebbledb

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// walFiles returns the WAL files in dir: their count, allocated bytes (as
// du counts them) and apparent bytes.
func walFiles(t *testing.T, dir string) (n int, allocated, apparent int64) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n++
		apparent += info.Size()
		allocated += info.Sys().(*syscall.Stat_t).Blocks * 512
	}
	return n, allocated, apparent
}

// fillAndFlush writes enough synced batches to rotate the memtable
// several times, then flushes.
func fillAndFlush(t *testing.T, db *pebble.DB) {
	t.Helper()
	value := make([]byte, 64<<10)
	for i := range 256 {
		if err := db.Set(fmt.Appendf(nil, "key-%06d", i), value, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestLeanWAL(t *testing.T) {
	const memtable = 4 << 20
	// Pebble's defaults, for contrast: flushed WAL files kept for reuse,
	// each with its reserved blocks.
	dir := t.TempDir()
	db, err := Open(dir, "test store", &pebble.Options{MemTableSize: memtable}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fillAndFlush(t, db)
	n, allocated, _ := walFiles(t, dir)
	if n < 2 || allocated < 2*memtable {
		t.Errorf("default options: %d WAL files, %d bytes allocated; want flushed ones kept for reuse (else LeanWAL may be unneeded)", n, allocated)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	dir = t.TempDir()
	po := &pebble.Options{MemTableSize: memtable}
	LeanWAL(po)
	db, err = Open(dir, "test store", po, nil)
	if err != nil {
		t.Fatal(err)
	}
	fillAndFlush(t, db)
	n, allocated, apparent := walFiles(t, dir)
	if n != 1 || allocated > apparent+64<<10 {
		t.Errorf("LeanWAL: %d WAL files, %d bytes allocated for %d written; want only the current one, allocated as written", n, allocated, apparent)
	}
	if err := db.Set([]byte("k"), []byte("v"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// The store reopens (its OPTIONS file names a known cleaner) and has
	// its data.
	options, err := filepath.Glob(filepath.Join(dir, "OPTIONS-*"))
	if err != nil || len(options) == 0 {
		t.Fatalf("no OPTIONS file: %v", err)
	}
	b, err := os.ReadFile(options[len(options)-1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "cleaner=delete") {
		t.Errorf("OPTIONS file records another cleaner than delete:\n%s", b)
	}
	po = &pebble.Options{MemTableSize: memtable}
	LeanWAL(po)
	db, err = Open(dir, "test store", po, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, closer, err := db.Get([]byte("k"))
	if err != nil || string(v) != "v" {
		t.Fatalf("after reopening: %q, %v", v, err)
	}
	closer.Close()
}
