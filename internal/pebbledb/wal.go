package pebbledb

import (
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// LeanWAL makes the write-ahead log of a database opened with po take on
// disk only the bytes it holds. By default Pebble reserves 1.1 × the
// memtable size of disk blocks for every WAL file it opens (fallocate: du
// counts them, ls does not); keeps each memtable's WAL until the queued
// memtables reach half the memtable size, and a new database's memtables
// start at 256 KiB and double, so it opens up to seven WAL files before
// its first flush; and keeps up to MemTableStopWritesThreshold+1 flushed
// WAL files to reuse. The demo's trace store, with 32 MiB memtables,
// held 258 MB after six minutes for 29 MB written. LeanWAL turns off the
// reservation (po.FS) and the reuse (po.Cleaner): flushed WAL files are
// deleted.
//
// Both trade a little sync latency for space: a reused or reserved file
// needs no block allocation when a commit extends it. The trace store's
// synced ingest (bench/traces) showed no difference.
func LeanWAL(po *pebble.Options) {
	fs := po.FS
	if fs == nil {
		fs = vfs.Default
	}
	po.FS = unreservedWALFS{fs}
	po.Cleaner = deletingCleaner{}
}

// unreservedWALFS creates WAL files (*.log) whose Preallocate does nothing.
type unreservedWALFS struct{ vfs.FS }

// Create creates name; a WAL file reserves no space ahead of its writes.
func (fs unreservedWALFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return unreservedFile{f}, nil
}

// ReuseForWrite reuses oldname as newname; a WAL file reserves no space
// ahead of its writes. With deletingCleaner Pebble reuses no WAL file, but
// a store last opened without it may still list some to reuse.
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

// deletingCleaner deletes obsolete files, as Pebble's default cleaner
// does, and stops Pebble from keeping flushed WAL files to reuse: Pebble
// reuses none when its cleaner needs the files' contents, which it tells
// by the unexported method of pebble.ArchiveCleaner. deletingCleaner has
// that method through contentsMarker, one level deeper than
// pebble.DeleteCleaner, whose Clean and String (OPTIONS files record
// "delete") therefore win. TestLeanWAL fails if a Pebble upgrade changes this.
type deletingCleaner struct {
	pebble.DeleteCleaner
	contentsMarker
}

type contentsMarker struct{ pebble.ArchiveCleaner }
