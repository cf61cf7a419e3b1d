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

// TestTrimFlushedWAL trims the flushed WAL files kept for reuse, then
// keeps writing (Pebble reuses the trimmed files) and reopens: every write
// must read back.
func TestTrimFlushedWAL(t *testing.T) {
	dir := t.TempDir()
	po := &pebble.Options{MemTableSize: 4 << 20}
	UnreservedWAL(po)
	db, err := Open(dir, "test store", po, nil)
	if err != nil {
		t.Fatal(err)
	}
	write(t, db, 256) // rotates the memtable, so flushed files are kept
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := db.Metrics().WAL.Files; n != 1 {
		t.Fatalf("%d live WAL files after a flush, want 1", n)
	}
	before := walFiles(t, dir)
	var kept int64
	newest := ""
	for name, f := range before {
		if name > newest {
			newest = name
		}
		kept += f.apparent
	}
	if len(before) < 2 || kept == 0 {
		t.Fatalf("no flushed WAL files kept for reuse: %v", before)
	}
	freed, err := TrimFlushedWAL(dir)
	if err != nil {
		t.Fatal(err)
	}
	after := walFiles(t, dir)
	var left int64
	for name, f := range after {
		if name != newest && (f.apparent != 0 || f.allocated != 0) {
			t.Errorf("%s holds %d bytes (%d allocated) after the trim", name, f.apparent, f.allocated)
		}
		left += f.apparent
	}
	if freed != kept-before[newest].apparent || left != before[newest].apparent {
		t.Errorf("freed %d of %d bytes; %d left, want the newest file's %d", freed, kept, left, before[newest].apparent)
	}
	// Writes after the trim go through the trimmed files as Pebble reuses them.
	value := make([]byte, 64<<10)
	for i := range 256 {
		if err := db.Set(fmt.Appendf(nil, "after-%06d", i), value, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, "test store", po, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, prefix := range []string{"key", "after"} {
		for i := range 256 {
			v, closer, err := db.Get(fmt.Appendf(nil, "%s-%06d", prefix, i))
			if err != nil {
				t.Fatalf("%s-%06d after the trim and a reopen: %v", prefix, i, err)
			}
			if len(v) != len(value) {
				t.Fatalf("%s-%06d: %d bytes", prefix, i, len(v))
			}
			closer.Close()
		}
	}
}
