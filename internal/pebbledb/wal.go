package pebbledb

import (
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// UnreservedWAL makes the WAL files of a database opened with po take on
// disk only the bytes written to them. By default Pebble reserves 1.1 ×
// the memtable size of disk blocks for every WAL file it opens
// (fallocate: du counts them, ls does not), and it keeps each memtable's
// WAL until the queued memtables reach half the memtable size; a new
// database's memtables start at 256 KiB and double, so it opens up to
// seven WAL files before its first flush. The demo's trace store, with
// 32 MiB memtables, thus held 258 MB after six minutes for 29 MB
// written.
//
// Pebble still keeps up to MemTableStopWritesThreshold+1 flushed WAL files
// to reuse, each as large as the most written to it: a synced commit that
// overwrites a reused file needs no metadata update, and turning reuse off
// cost 14–22% more CPU and a third more time per synced batch
// (BenchmarkSyncedBatches), while dropping the reservation alone cost
// nothing measurable.
func UnreservedWAL(po *pebble.Options) {
	fs := po.FS
	if fs == nil {
		fs = vfs.Default
	}
	po.FS = unreservedWALFS{fs}
}

// unreservedWALFS opens WAL files (*.log) whose Preallocate does nothing.
type unreservedWALFS struct{ vfs.FS }

// Create creates name; a WAL file reserves no space ahead of its writes.
func (fs unreservedWALFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return unreservedFile{f}, nil
}

// ReuseForWrite reuses the flushed WAL file oldname as newname; it
// reserves no space beyond what the file already has.
func (fs unreservedWALFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	if err != nil || !strings.HasSuffix(newname, ".log") {
		return f, err
	}
	return unreservedFile{f}, nil
}

type unreservedFile struct{ vfs.File }

// Preallocate does nothing: the file's blocks are allocated as it is written.
func (unreservedFile) Preallocate(offset, length int64) error { return nil }
