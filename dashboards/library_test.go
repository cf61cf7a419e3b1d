package dashboards

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// dash is a minimal dashboard file.
func dash(uid, title string) string {
	return fmt.Sprintf(`{"uid":%q,"title":%q,"panels":[]}`, uid, title)
}

// writeFiles writes name → content under dir, creating subdirectories.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func uids(l *Library) string {
	var out []string
	for _, d := range l.List() {
		out = append(out, d.UID)
	}
	return strings.Join(out, ",")
}

func problemFiles(l *Library, dir string) string {
	var out []string
	for _, p := range l.Problems() {
		out = append(out, strings.TrimPrefix(p.File, dir+string(filepath.Separator)))
	}
	return strings.Join(out, ",")
}

// syncBuffer is a log sink safe for the Run goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLibraryPatterns(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a/one.json":        dash("one", "One"),
		"a/two.JSON":        dash("two", "Two"),
		"a/notes.txt":       "not a dashboard",
		"a/.hidden.json":    "{",
		"a/sub/deep.json":   dash("deep", "Deep"),
		"b/three.json":      dash("three", "Three"),
		"b/four.json":       dash("four", "Four"),
		"c/five.dashboard":  dash("five", "Five"),
		"empty/.keep":       "",
		"globbed/six.json":  dash("six", "Six"),
		"globbed/.swp.json": "{",
	})
	in := func(p string) string { return filepath.Join(dir, p) }
	tests := []struct {
		name         string
		patterns     []string
		wantUIDs     string
		wantProblems string
	}{
		{"directory means its *.json, not hidden or nested ones", []string{in("a")}, "one,two", ""},
		{"glob", []string{in("b/t*.json")}, "three", ""},
		{"file with any extension", []string{in("c/five.dashboard")}, "five", ""},
		{"repeated and overlapping patterns load each file once", []string{in("b"), in("b/*.json"), in("b/four.json")}, "four,three", ""},
		{"glob over directories", []string{in("[ab]")}, "four,one,three,two", ""},
		{"glob skips hidden matches", []string{in("globbed/*")}, "six", ""},
		{"empty directory is no problem", []string{in("empty")}, "", ""},
		{"missing path and empty glob are problems", []string{in("nope.json"), in("a/*.yaml"), in("b/four.json")}, "four", "a/*.yaml,nope.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := New(nil, tt.patterns, Options{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := uids(l)
			if got != tt.wantUIDs {
				t.Errorf("uids = %q, want %q", got, tt.wantUIDs)
			}
			if got := problemFiles(l, dir); got != tt.wantProblems {
				t.Errorf("problems = %q (%v), want %q", got, l.Problems(), tt.wantProblems)
			}
		})
	}
}

func TestLibraryBadPattern(t *testing.T) {
	for _, p := range []string{"", "  ", "dir/[a-"} {
		if _, err := New(nil, []string{p}, Options{}, nil); !errors.Is(err, ErrBadPattern) {
			t.Errorf("New(%q) error = %v, want ErrBadPattern", p, err)
		}
	}
	if _, err := New(fstest.MapFS{"x.json": {Data: []byte("{")}}, nil, Options{}, nil); err == nil || !strings.Contains(err.Error(), "built-in dashboards") {
		t.Errorf("broken built-in: error = %v", err)
	}
}

func TestLibraryExportForms(t *testing.T) {
	dir := t.TempDir()
	export, err := os.ReadFile("testdata/grafana-export.json")
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{
		"export.json": string(export),
		"api.json":    `{"dashboard":` + dash("api", "Via API") + `,"meta":{"slug":"via-api"}}`,
		"no-uid.json": `{"title":"Nameless"}`,
	})
	l, err := New(nil, []string{dir}, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := uids(l); got != "http-server-export,no-uid,api" {
		t.Errorf("uids = %q", got)
	}
	d, ok := l.Get("http-server-export")
	if !ok || d.File != "export.json" || d.Path != filepath.Join(dir, "export.json") || bytes.Contains(d.Model, []byte("__inputs")) {
		t.Errorf("Get = %+v, %v", d.File, ok)
	}
	if len(l.Problems()) != 0 {
		t.Errorf("problems %v", l.Problems())
	}
}

// TestLibraryBrokenFiles checks that each broken file is reported, with a
// warning naming it, while the others load.
func TestLibraryBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"good.json":     dash("good", "Good"),
		"notjson.json":  "<html>",
		"notitle.json":  `{"uid":"t"}`,
		"shape.json":    `{"uid":"s","title":"S","panels":[{"type":"stat","title":["x"]}]}`,
		"toobig.json":   dash("big", "Big"+strings.Repeat(" ", 2000)),
		"zz-empty.json": "",
	})
	var logs syncBuffer
	l, err := New(nil, []string{dir}, Options{MaxFileBytes: 1000}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got := uids(l); got != "good" {
		t.Errorf("uids = %q, want good", got)
	}
	want := map[string]string{
		"notjson.json":  "not a dashboard JSON object",
		"notitle.json":  "missing title",
		"shape.json":    "panels[0].title: want a string, got array",
		"toobig.json":   "larger than the 1000 bytes limit",
		"zz-empty.json": "not a dashboard JSON object",
	}
	probs := l.Problems()
	if len(probs) != len(want) {
		t.Fatalf("problems = %v, want one for each of %v", probs, want)
	}
	for _, p := range probs {
		name := filepath.Base(p.File)
		if !strings.Contains(p.Error, want[name]) {
			t.Errorf("%s: error %q, want containing %q", name, p.Error, want[name])
		}
		line := fmt.Sprintf("level=WARN msg=\"dashboard file not served as it is on disk\" file=%s", p.File)
		if !strings.Contains(logs.String(), line) {
			t.Errorf("no warning %q in\n%s", line, logs.String())
		}
	}
}

func TestLibraryDefaultSizeLimit(t *testing.T) {
	if got := DefaultOptions().MaxFileBytes; got != 10<<20 {
		t.Errorf("default MaxFileBytes = %d, want 10 MiB", got)
	}
	dir := t.TempDir()
	big := dash("big", "Big") + strings.Repeat(" ", 10<<20)
	writeFiles(t, dir, map[string]string{"big.json": big})
	l, err := New(nil, []string{dir}, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := l.Problems(); len(p) != 1 || !strings.Contains(p[0].Error, "larger than the 10 MiB limit") {
		t.Errorf("problems = %v", p)
	}
}

func TestLibraryPrecedence(t *testing.T) {
	builtin := fstest.MapFS{
		"a.json": {Data: []byte(dash("a", "Built-in A"))},
		"b.json": {Data: []byte(dash("b", "Built-in B"))},
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"1.json":   dash("a", "User A"),
		"2.json":   dash("c", "First C"),
		"3.json":   dash("c", "Second C"),
		"x/4.json": dash("c", "Third C"),
	})
	var logs syncBuffer
	l, err := New(builtin, []string{dir, filepath.Join(dir, "x")}, Options{}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var titles []string
	for _, d := range l.List() {
		titles = append(titles, d.Title)
	}
	if got := strings.Join(titles, ","); got != "Built-in B,First C,User A" {
		t.Errorf("titles = %q", got)
	}
	if d, _ := l.Get("a"); d.Title != "User A" || d.Path == "" {
		t.Errorf("Get(a) = %+v", d)
	}
	if d, _ := l.Get("b"); d.File != "b.json" || d.Path != "" {
		t.Errorf("Get(b) = %+v", d)
	}
	probs := l.Problems()
	if len(probs) != 2 || filepath.Base(probs[0].File) != "3.json" || filepath.Base(probs[1].File) != "4.json" ||
		!strings.Contains(probs[0].Error, `uid "c" is already used by `+filepath.Join(dir, "2.json")) {
		t.Errorf("problems = %v", probs)
	}
	if !strings.Contains(logs.String(), "replaces the built-in dashboard") || !strings.Contains(logs.String(), "uid=a") {
		t.Errorf("the override is not logged:\n%s", logs.String())
	}
}

// waitUntil polls cond until it holds or 10 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLibraryReload(t *testing.T) {
	dir := t.TempDir()
	builtin := fstest.MapFS{"b.json": {Data: []byte(dash("b", "Built-in B"))}}
	writeFiles(t, dir, map[string]string{"one.json": dash("one", "One")})
	l, err := New(builtin, []string{dir}, Options{PollInterval: 10 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	title := func(uid string) string { d, _ := l.Get(uid); return d.Title }
	steps := []struct {
		what   string
		change func()
		cond   func() bool
	}{
		{"a changed title", func() { writeFiles(t, dir, map[string]string{"one.json": dash("one", "One, renamed")}) },
			func() bool { return title("one") == "One, renamed" }},
		{"an added file", func() { writeFiles(t, dir, map[string]string{"two.json": dash("two", "Two")}) },
			func() bool { return title("two") == "Two" }},
		{"an added file replacing a built-in", func() { writeFiles(t, dir, map[string]string{"b.json": dash("b", "User B")}) },
			func() bool { return title("b") == "User B" }},
		{"a deleted file brings the built-in back", func() { _ = os.Remove(filepath.Join(dir, "b.json")) },
			func() bool { return title("b") == "Built-in B" }},
		{"a deleted file", func() { _ = os.Remove(filepath.Join(dir, "two.json")) },
			func() bool { _, ok := l.Get("two"); return !ok }},
		{"a broken reload keeps the last good version, reported", func() { writeFiles(t, dir, map[string]string{"one.json": `{"uid":"one",`}) },
			func() bool {
				p := l.Problems()
				return len(p) == 1 && strings.Contains(p[0].Error, "serving the version loaded before") && title("one") == "One, renamed"
			}},
		{"a repaired file", func() { writeFiles(t, dir, map[string]string{"one.json": dash("one", "One, repaired")}) },
			func() bool { return title("one") == "One, repaired" && len(l.Problems()) == 0 }},
	}
	for _, s := range steps {
		s.change()
		waitUntil(t, s.what, s.cond)
	}
	if got := uids(l); got != "b,one" {
		t.Errorf("uids at the end = %q", got)
	}
}

func TestLibraryRunWithoutPatterns(t *testing.T) {
	l, err := New(FS, nil, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.Run(ctx); err != nil {
		t.Errorf("Run = %v", err)
	}
	if got := uids(l); got != "http-metrics,service-health" {
		t.Errorf("uids = %q", got)
	}
	if p := l.Problems(); p == nil || len(p) != 0 {
		t.Errorf("Problems() = %#v, want an empty list", p)
	}
}

// TestLibraryManyPanels loads a file of 10,000 panels: the server takes it;
// the UI bounds what it renders.
func TestLibraryManyPanels(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"uid":"many","title":"Many","panels":[`)
	for i := range 10_000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"type":"timeseries","title":"Panel %d","gridPos":{"x":%d,"y":%d,"w":6,"h":4},"targets":[{"refId":"A","expr":"up"}]}`, i, i, i%4*6, i/4*4)
	}
	b.WriteString(`]}`)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"many.json": b.String()})
	l, err := New(nil, []string{filepath.Join(dir, "many.json")}, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := l.Get("many")
	if !ok || len(l.Problems()) != 0 {
		t.Fatalf("not loaded: %v", l.Problems())
	}
	if n := bytes.Count(d.Model, []byte(`"type":"timeseries"`)); n != 10_000 {
		t.Errorf("model holds %d panels", n)
	}
}

func TestLibraryListIsACopy(t *testing.T) {
	l, err := New(FS, nil, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := l.List()
	slices.Reverse(a)
	if got := uids(l); got != "http-metrics,service-health" {
		t.Errorf("List() shares its slice: %q", got)
	}
}
