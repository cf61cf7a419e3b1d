package pebbledb

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// walFile is one WAL file's size: allocated as du counts it, apparent as
// ls does.
type walFile struct{ allocated, apparent int64 }

func walFiles(t *testing.T, dir string) map[string]walFile {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]walFile{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = walFile{allocated: info.Sys().(*syscall.Stat_t).Blocks * 512, apparent: info.Size()}
	}
	return out
}

// write commits n synced 64 KiB values.
func write(t *testing.T, db *pebble.DB, n int) {
	t.Helper()
	value := make([]byte, 64<<10)
	for i := range n {
		if err := db.Set(fmt.Appendf(nil, "key-%06d", i), value, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUnreservedWAL(t *testing.T) {
	const memtable = 4 << 20
	// Pebble's default, for contrast: the WAL file reserves 1.1 × the
	// memtable size as soon as it is opened.
	dir := t.TempDir()
	db, err := Open(dir, "test store", &pebble.Options{MemTableSize: memtable}, nil)
	if err != nil {
		t.Fatal(err)
	}
	write(t, db, 4)
	for name, f := range walFiles(t, dir) {
		if f.apparent > 0 && f.allocated < memtable {
			t.Errorf("default options: %s has %d bytes allocated for %d written; want the reservation (else UnreservedWAL may be unneeded)", name, f.allocated, f.apparent)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	dir = t.TempDir()
	po := &pebble.Options{MemTableSize: memtable}
	UnreservedWAL(po)
	db, err = Open(dir, "test store", po, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Enough to rotate the memtable several times, so that flushed WAL
	// files are reused.
	write(t, db, 256)
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	write(t, db, 4)
	files := walFiles(t, dir)
	if len(files) < 2 {
		t.Errorf("%d WAL files; want flushed ones kept for reuse", len(files))
	}
	for name, f := range files {
		if f.allocated > f.apparent+64<<10 {
			t.Errorf("UnreservedWAL: %s has %d bytes allocated for %d written", name, f.allocated, f.apparent)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	po = &pebble.Options{MemTableSize: memtable}
	UnreservedWAL(po)
	db, err = Open(dir, "test store", po, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, closer, err := db.Get([]byte("key-000003")); err != nil {
		t.Fatalf("after reopening: %v", err)
	} else {
		closer.Close()
	}
}
