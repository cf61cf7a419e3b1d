package ui

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/lookout-dev/lookout/dashboards"
)

// dist holds the built UI (web/ → vite build → internal/ui/dist). In a tree
// where the UI was not built it holds only .keep, hence the all: prefix.
//
//go:embed all:dist
var dist embed.FS

//go:embed placeholder.html
var placeholderHTML []byte

// Options configure NewHandler. The zero value serves the embedded UI and the
// built-in dashboards.
type Options struct {
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
	// Assets is the built UI (index.html at its root, hashed files under
	// assets/). Nil means the assets embedded at build time.
	Assets fs.FS
	// Dashboards are the dashboards served, with the problems of the files
	// that could not be loaded. Nil means the built-in dashboards alone.
	Dashboards Dashboards
}

// Dashboards is where the handler reads the dashboards it serves, on every
// request; *dashboards.Library is one. Implementations must be safe for
// concurrent use.
type Dashboards interface {
	// List returns every dashboard, sorted by title.
	List() []dashboards.Dashboard
	// Get returns the dashboard with the uid.
	Get(uid string) (dashboards.Dashboard, bool)
	// Problems returns the dashboard files not served as they are on disk.
	Problems() []dashboards.Problem
}

var _ Dashboards = (*dashboards.Library)(nil)

// contentSecurityPolicy allows nothing but Lookout's own origin: no inline
// scripts, no third-party hosts. Inline styles are allowed because the chart
// library positions elements with style attributes.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// clientRoutes are the first path segments the single-page application
// routes itself; any of them gets index.html.
var clientRoutes = map[string]bool{"": true, "d": true, "explore": true, "search": true, "trace": true, "alerts": true, "dashboards": true, "services": true}

type handler struct {
	log        *slog.Logger
	assets     fs.FS
	index      []byte // nil when the UI was not built
	dashboards Dashboards
	dashErr    error // why the built-in dashboards failed to load
	started    time.Time
}

// NewHandler returns the UI handler. It serves the single-page application
// (index.html for its client routes /, /d/<uid>, /explore, /search,
// /trace/<id>, /alerts, /services), the hashed assets under /assets/ with a year-long
// cache, /api/dashboards/uid/<uid> in Grafana's shape, /api/search, a
// dashboard list, and /api/lookout/dashboards/problems, the dashboard files
// that could not be loaded. The handler is safe for concurrent use.
func NewHandler(opts Options) http.Handler {
	h := &handler{log: opts.Logger, assets: opts.Assets, started: time.Now()}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.assets == nil {
		sub, err := fs.Sub(dist, "dist")
		if err != nil {
			// fs.Sub fails only on an invalid path; "dist" is valid.
			panic(fmt.Sprintf("ui: sub dist: %v", err))
		}
		h.assets = sub
	}
	if idx, err := fs.ReadFile(h.assets, "index.html"); err == nil {
		h.index = idx
	}
	h.dashboards = opts.Dashboards
	if h.dashboards == nil {
		lib, err := dashboards.New(dashboards.FS, nil, dashboards.Options{}, h.log)
		if err != nil {
			h.log.Error("load dashboards", "err", err)
			h.dashErr = err
		} else {
			h.dashboards = lib
		}
	}
	return h
}

// Built reports whether the embedded UI assets were built (index.html is
// present), as opposed to the placeholder page.
func Built() bool {
	_, err := fs.Stat(dist, "dist/index.html")
	return err == nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "same-origin")
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)

	p := r.URL.Path
	switch {
	case p == "/api/search":
		h.serveSearch(w, r)
		return
	case strings.HasPrefix(p, "/api/dashboards/uid/"):
		h.serveDashboard(w, r, strings.TrimPrefix(p, "/api/dashboards/uid/"))
		return
	case p == ProblemsPath:
		h.serveProblems(w, r)
		return
	case p == "/api" || strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/prometheus/") || strings.HasPrefix(p, "/tempo/"):
		writeJSONError(w, http.StatusNotFound, "not found: "+p)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if clientRoutes[first] {
		h.serveIndex(w, r)
		return
	}
	h.serveAsset(w, r, strings.TrimPrefix(path.Clean(p), "/"))
}

func (h *handler) serveIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	body := h.index
	if body == nil {
		body = placeholderHTML
	}
	http.ServeContent(w, r, "index.html", h.started, bytes.NewReader(body))
}

func (h *handler) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	if name == "" || name == "index.html" {
		h.serveIndex(w, r)
		return
	}
	f, err := h.assets.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() || strings.HasPrefix(path.Base(name), ".") {
		http.NotFound(w, r)
		return
	}
	rs, ok := f.(interface {
		Read([]byte) (int, error)
		Seek(int64, int) (int64, error)
	})
	if !ok {
		http.NotFound(w, r)
		return
	}
	if strings.HasPrefix(name, "assets/") {
		// Vite puts a content hash in every file name under assets/.
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, name, h.started, rs)
}

// dashboardMeta is the "meta" object of Grafana's /api/dashboards/uid/<uid>.
type dashboardMeta struct {
	Type                  string `json:"type"`
	Slug                  string `json:"slug"`
	URL                   string `json:"url"`
	CanSave               bool   `json:"canSave"`
	CanEdit               bool   `json:"canEdit"`
	Provisioned           bool   `json:"provisioned"`
	ProvisionedExternalID string `json:"provisionedExternalId"`
}

func (h *handler) serveDashboard(w http.ResponseWriter, r *http.Request, uid string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeJSONError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if h.dashErr != nil {
		writeJSONError(w, http.StatusInternalServerError, "dashboards failed to load: "+h.dashErr.Error())
		return
	}
	d, ok := h.dashboards.Get(uid)
	if !ok {
		writeJSONError(w, http.StatusNotFound, "Dashboard not found")
		return
	}
	slug := slugify(d.Title)
	writeJSON(w, http.StatusOK, struct {
		Dashboard json.RawMessage `json:"dashboard"`
		Meta      dashboardMeta   `json:"meta"`
	}{d.Model, dashboardMeta{
		Type: "db", Slug: slug, URL: "/d/" + d.UID + "/" + slug,
		Provisioned: true, ProvisionedExternalID: d.File,
	}})
}

// ProblemsPath lists the dashboard files that could not be loaded, as
// {"problems": [{"file": "...", "error": "..."}]}: a Lookout endpoint, beside
// Grafana's /api/search whose shape it must not change.
const ProblemsPath = "/api/lookout/dashboards/problems"

func (h *handler) serveProblems(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeJSONError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	problems := []dashboards.Problem{}
	if h.dashErr != nil {
		problems = append(problems, dashboards.Problem{File: "(built-in dashboards)", Error: h.dashErr.Error()})
	} else {
		problems = append(problems, h.dashboards.Problems()...)
	}
	writeJSON(w, http.StatusOK, struct {
		Problems []dashboards.Problem `json:"problems"`
	}{problems})
}

// searchHit is one entry of Grafana's /api/search answer.
type searchHit struct {
	UID   string   `json:"uid"`
	Title string   `json:"title"`
	URI   string   `json:"uri"`
	URL   string   `json:"url"`
	Slug  string   `json:"slug"`
	Type  string   `json:"type"`
	Tags  []string `json:"tags"`
}

func (h *handler) serveSearch(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeJSONError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	q := r.URL.Query()
	if t := q.Get("type"); t != "" && t != "dash-db" {
		writeJSON(w, http.StatusOK, []searchHit{})
		return
	}
	if h.dashErr != nil {
		writeJSONError(w, http.StatusInternalServerError, "dashboards failed to load: "+h.dashErr.Error())
		return
	}
	query := strings.ToLower(q.Get("query"))
	tags := q["tag"]
	hits := []searchHit{}
	for _, d := range h.dashboards.List() {
		if query != "" && !strings.Contains(strings.ToLower(d.Title), query) {
			continue
		}
		if !hasAll(d.Tags, tags) {
			continue
		}
		slug := slugify(d.Title)
		hits = append(hits, searchHit{UID: d.UID, Title: d.Title, URI: "db/" + slug, URL: "/d/" + d.UID + "/" + slug,
			Slug: slug, Type: "dash-db", Tags: d.Tags})
	}
	writeJSON(w, http.StatusOK, hits)
}

func hasAll(have, want []string) bool {
	for _, t := range want {
		found := false
		for _, h := range have {
			if h == t {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// slugify lower-cases a title and joins its letters and digits with dashes,
// as Grafana's dashboard URLs do.
func slugify(title string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(title) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(c)
			continue
		}
		dash = true
	}
	return b.String()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"message": msg})
}
