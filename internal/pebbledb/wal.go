package pebbledb

import (
	"cmp"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
// nothing measurable. TrimFlushedWAL gives their space back when a
// database's owner can stop its writers for a moment.
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

// TrimFlushedWAL gives back the disk space of the flushed WAL files in dir
// that Pebble keeps for reuse: it truncates every WAL file but the newest to
// zero bytes, and returns the bytes their apparent sizes held. A file so
// trimmed grows again when Pebble reuses it, paying the metadata updates
// of a new file's first synced writes once.
//
// Only the caller can know that this is safe: no write may reach the
// database during the call, and its only live WAL file must be the newest,
// as after db.Flush() with every writer stopped and db.Metrics().WAL.Files
// equal to 1. The database must use the operating system's file system.
func TrimFlushedWAL(dir string) (int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var logs []string
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if n, ok := strings.CutSuffix(e.Name(), ".log"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
			logs = append(logs, e.Name())
		}
	}
	// Pebble names WAL files by their number, zero-padded to six digits
	// and longer once the number outgrows them: longer names are newer.
	slices.SortFunc(logs, func(a, b string) int { return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a, b)) })
	var freed int64
	for _, name := range logs[:max(len(logs)-1, 0)] {
		path := filepath.Join(dir, name)
		info, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted by Pebble meanwhile
		}
		if err != nil {
			return freed, err
		}
		if info.Size() == 0 {
			continue
		}
		if err := os.Truncate(path, 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return freed, err
		}
		freed += info.Size()
	}
	return freed, nil
}
