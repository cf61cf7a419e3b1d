package dashboards

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// FS holds every dashboard file (*.json) of this directory.
//
//go:embed *.json
var FS embed.FS

// Dashboard is one dashboard file: the fields Lookout indexes, plus the raw
// JSON model, which is served unchanged.
type Dashboard struct {
	UID   string          // the dashboard's uid, its URL is /d/<uid>
	Title string          // the dashboard's title
	Tags  []string        // the dashboard's tags, possibly empty
	File  string          // the file's base name
	Path  string          // the user's file as --dashboards named it; empty for a built-in dashboard
	Model json.RawMessage // the whole Grafana JSON model
}

// Load reads and validates every *.json file at the root of fsys. It fails on
// a file that is not a JSON object, that lacks a uid or title, or whose uid
// another file already uses. The result is sorted by title.
func Load(fsys fs.FS) ([]Dashboard, error) {
	names, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return nil, fmt.Errorf("list dashboards: %w", err)
	}
	seen := make(map[string]string, len(names))
	out := make([]Dashboard, 0, len(names))
	for _, name := range names {
		raw, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read dashboard %s: %w", name, err)
		}
		d, err := Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", name, err)
		}
		if other, dup := seen[d.UID]; dup {
			return nil, fmt.Errorf("dashboard %s: uid %q already used by %s", name, d.UID, other)
		}
		seen[d.UID] = name
		d.File = path.Base(name)
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Title) < strings.ToLower(out[j].Title) })
	return out, nil
}

// Parse validates one dashboard JSON model: a JSON object with a non-empty
// uid and title.
func Parse(raw []byte) (Dashboard, error) {
	var head struct {
		UID   string   `json:"uid"`
		Title string   `json:"title"`
		Tags  []string `json:"tags"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return Dashboard{}, fmt.Errorf("not a dashboard JSON object: %w", err)
	}
	if strings.TrimSpace(head.UID) == "" {
		return Dashboard{}, fmt.Errorf("missing uid")
	}
	if strings.TrimSpace(head.Title) == "" {
		return Dashboard{}, fmt.Errorf("missing title")
	}
	if head.Tags == nil {
		head.Tags = []string{}
	}
	return Dashboard{UID: head.UID, Title: head.Title, Tags: head.Tags, Model: json.RawMessage(raw)}, nil
}
