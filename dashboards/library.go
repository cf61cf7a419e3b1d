package dashboards

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Problem is a dashboard file that could not be loaded (or reloaded), or a
// --dashboards pattern that names no file, and why. Its JSON form is the
// shape of GET /api/lookout/dashboards/problems.
type Problem struct {
	File  string `json:"file"`
	Error string `json:"error"`
}

// Options configure a Library. Zero fields take their defaults.
type Options struct {
	// PollInterval is how often Run looks for changed, added and removed
	// files (default 2s).
	PollInterval time.Duration
	// MaxFileBytes bounds one dashboard file; a bigger file is reported,
	// never read (default 10 MiB).
	MaxFileBytes int64
}

// DefaultOptions returns the defaults of every option.
func DefaultOptions() Options {
	return Options{PollInterval: 2 * time.Second, MaxFileBytes: 10 << 20}
}

// ErrBadPattern reports a --dashboards pattern that is not a valid glob.
var ErrBadPattern = errors.New("invalid dashboard file pattern")

// Library is the set of dashboards Lookout serves: the built-in ones and
// users' files named by paths, directories (their *.json) and globs.
//
// A user's dashboard with the uid of a built-in one replaces it; of two user
// files with the same uid the first by path wins and the other is reported
// as a Problem. A file that cannot be read or parsed is a Problem and never
// affects the others; a file that fails to reload after it loaded once keeps
// serving its last good version, with the failure reported.
//
// A Library is safe for concurrent use. Its answers are shared: callers must
// not modify the Dashboards' slices.
type Library struct {
	patterns []string
	opts     Options
	log      *slog.Logger
	builtin  []Dashboard

	scanMu sync.Mutex            // serializes scans; guards files and logged
	files  map[string]*fileState // by path, as the patterns spelled it
	logged map[string]bool       // the last scan's problems and overrides, to log changes only

	snap atomic.Pointer[snapshot]
}

// fileState is what the last scan knew about one file.
type fileState struct {
	size    int64
	modTime time.Time
	good    *Dashboard // the last version that parsed; nil if none did
	err     error      // why the current version is not served; nil when it is
}

// snapshot is one immutable answer of a Library.
type snapshot struct {
	list     []Dashboard // sorted by title
	byUID    map[string]int
	problems []Problem // sorted by file
}

// New loads the built-in dashboards (every *.json at the root of builtin,
// which may be nil) and the files patterns name, once. Run keeps the files'
// dashboards current. New fails if a built-in dashboard is broken or a
// pattern is not a valid glob; a broken user file is only reported.
func New(builtin fs.FS, patterns []string, opts Options, logger *slog.Logger) (*Library, error) {
	def := DefaultOptions()
	if opts.PollInterval <= 0 {
		opts.PollInterval = def.PollInterval
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = def.MaxFileBytes
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Library{opts: opts, log: logger, files: map[string]*fileState{}, logged: map[string]bool{}}
	for _, p := range patterns {
		if err := ValidatePattern(p); err != nil {
			return nil, err
		}
		l.patterns = append(l.patterns, p)
	}
	if builtin != nil {
		b, err := Load(builtin)
		if err != nil {
			return nil, fmt.Errorf("built-in dashboards: %w", err)
		}
		l.builtin = b
	}
	l.scan()
	return l, nil
}

// ValidatePattern checks one --dashboards value: a non-empty path or a glob
// in filepath.Match's syntax.
func ValidatePattern(p string) error {
	if strings.TrimSpace(p) == "" {
		return fmt.Errorf("%w: empty path", ErrBadPattern)
	}
	if _, err := filepath.Match(p, ""); err != nil {
		return fmt.Errorf("%w %q: %w", ErrBadPattern, p, err)
	}
	return nil
}

// Run checks the files every PollInterval for changes, additions and
// removals until ctx is done, and then returns nil. Without patterns it
// only waits for ctx.
func (l *Library) Run(ctx context.Context) error {
	if len(l.patterns) == 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(l.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			l.scan()
		}
	}
}

// List returns every dashboard served, sorted by title.
func (l *Library) List() []Dashboard { return slices.Clone(l.snap.Load().list) }

// Get returns the dashboard served under uid.
func (l *Library) Get(uid string) (Dashboard, bool) {
	s := l.snap.Load()
	i, ok := s.byUID[uid]
	if !ok {
		return Dashboard{}, false
	}
	return s.list[i], true
}

// Problems returns the files (and patterns) that are not served as they
// are on disk, and why, sorted by file.
func (l *Library) Problems() []Problem { return slices.Clone(l.snap.Load().problems) }

// scan brings the library up to date with the files on disk and publishes
// a new snapshot. A file whose size and modification time did not change
// is not read again.
func (l *Library) scan() {
	l.scanMu.Lock()
	defer l.scanMu.Unlock()

	paths, problems := l.expand()
	seen := make(map[string]bool, len(paths))
	for _, p := range paths {
		seen[p] = true
		l.refresh(p)
	}
	for p := range l.files {
		if !seen[p] {
			delete(l.files, p)
			l.log.Info("dashboard file gone; its dashboard is no longer served", "file", p)
		}
	}

	builtin := make(map[string]bool, len(l.builtin))
	for _, d := range l.builtin {
		builtin[d.UID] = true
	}
	owner := map[string]string{} // uid → path of the user file serving it
	var user []Dashboard
	events := map[string]bool{}
	for _, p := range paths {
		f := l.files[p]
		if f.err != nil {
			msg := f.err.Error()
			if f.good != nil {
				msg += "; serving the version loaded before"
			}
			problems = append(problems, Problem{File: p, Error: msg})
		}
		if f.good == nil {
			continue
		}
		d := *f.good
		if first, dup := owner[d.UID]; dup {
			problems = append(problems, Problem{File: p, Error: fmt.Sprintf("uid %q is already used by %s, which wins (the first by path); this file is not served", d.UID, first)})
			continue
		}
		owner[d.UID] = p
		user = append(user, d)
		if builtin[d.UID] {
			key := "override\x00" + d.UID + "\x00" + p
			events[key] = true
			if !l.logged[key] {
				l.log.Info("dashboard file replaces the built-in dashboard with its uid", "file", p, "uid", d.UID)
			}
		}
	}

	list := make([]Dashboard, 0, len(l.builtin)+len(user))
	for _, d := range l.builtin {
		if _, replaced := owner[d.UID]; !replaced {
			list = append(list, d)
		}
	}
	list = append(list, user...)
	slices.SortStableFunc(list, func(a, b Dashboard) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.Title), strings.ToLower(b.Title)), strings.Compare(a.UID, b.UID))
	})
	byUID := make(map[string]int, len(list))
	for i, d := range list {
		byUID[d.UID] = i
	}
	slices.SortStableFunc(problems, func(a, b Problem) int {
		return cmp.Or(strings.Compare(a.File, b.File), strings.Compare(a.Error, b.Error))
	})
	if problems == nil {
		problems = []Problem{}
	}
	for _, pr := range problems {
		key := "problem\x00" + pr.File + "\x00" + pr.Error
		events[key] = true
		if !l.logged[key] {
			l.log.Warn("dashboard file not served as it is on disk", "file", pr.File, "err", pr.Error)
		}
	}
	l.logged = events
	l.snap.Store(&snapshot{list: list, byUID: byUID, problems: problems})
}

// refresh re-reads path if its size or modification time changed.
func (l *Library) refresh(path string) {
	f := l.files[path]
	if f == nil {
		f = &fileState{}
		l.files[path] = f
	}
	st, err := os.Stat(path)
	if err != nil {
		f.err = err
		f.size, f.modTime = -1, time.Time{}
		return
	}
	if f.size == st.Size() && f.modTime.Equal(st.ModTime()) && (f.good != nil || f.err != nil) {
		return
	}
	f.size, f.modTime = st.Size(), st.ModTime()
	d, err := l.read(path, st.Size())
	if err != nil {
		f.err = err
		return
	}
	l.log.Info("dashboard file loaded", "file", path, "uid", d.UID, "title", d.Title)
	f.good, f.err = &d, nil
}

// read reads and parses one file, never more than MaxFileBytes of it.
func (l *Library) read(path string, size int64) (Dashboard, error) {
	limit := l.opts.MaxFileBytes
	tooBig := fmt.Errorf("file is larger than the %s limit on a dashboard file", formatBytes(limit))
	if size > limit {
		return Dashboard{}, tooBig
	}
	fh, err := os.Open(path)
	if err != nil {
		return Dashboard{}, err
	}
	defer fh.Close()
	// The file may grow between the stat and the read.
	raw, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return Dashboard{}, err
	}
	if int64(len(raw)) > limit {
		return Dashboard{}, tooBig
	}
	d, err := ParseFile(filepath.Base(path), raw)
	if err != nil {
		return Dashboard{}, err
	}
	d.File = filepath.Base(path)
	d.Path = path
	return d, nil
}

// expand lists the files the patterns name, sorted and without repeats: a
// directory stands for the *.json files in it (not in its subdirectories,
// and not hidden ones), a glob for its matches. A path that does not exist
// and a glob that matches nothing are problems; an empty directory is not.
func (l *Library) expand() ([]string, []Problem) {
	var paths []string
	var problems []Problem
	addDir := func(dir string) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			problems = append(problems, Problem{File: dir, Error: err.Error()})
			return
		}
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() || hidden(n) || !strings.EqualFold(filepath.Ext(n), ".json") {
				continue
			}
			paths = append(paths, filepath.Join(dir, n))
		}
	}
	for _, p := range l.patterns {
		matches := []string{p}
		if hasMeta(p) {
			// The pattern was checked in New: Glob cannot fail.
			matches, _ = filepath.Glob(p)
			if len(matches) == 0 {
				problems = append(problems, Problem{File: p, Error: "the pattern matches no file"})
				continue
			}
		}
		for _, m := range matches {
			if m != p && hidden(m) && !hidden(p) {
				// Editors' lock and swap files, Kubernetes' ..data links.
				continue
			}
			st, err := os.Stat(m)
			switch {
			case err != nil:
				problems = append(problems, Problem{File: m, Error: err.Error()})
			case st.IsDir():
				addDir(m)
			default:
				paths = append(paths, filepath.Clean(m))
			}
		}
	}
	slices.Sort(paths)
	return slices.Compact(paths), problems
}

func hidden(p string) bool { return strings.HasPrefix(filepath.Base(p), ".") }

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

func formatBytes(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
