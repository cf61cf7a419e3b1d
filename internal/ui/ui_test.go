package ui

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/lookout-dev/lookout/dashboards"
)

var builtAssets = fstest.MapFS{
	"index.html":             {Data: []byte(`<!doctype html><div id="app"></div><script type="module" src="/assets/index-abc123.js"></script>`)},
	"assets/index-abc123.js": {Data: []byte(`console.log("ui")`)},
	"favicon.svg":            {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
	".keep":                  {Data: nil},
}

func get(t *testing.T, h http.Handler, target string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSPAAndAssets(t *testing.T) {
	h := NewHandler(Options{Assets: builtAssets})
	tests := []struct {
		path, wantBody, wantCache string
		wantCode                  int
	}{
		{"/", `<div id="app">`, "no-cache", 200},
		{"/d/service-health", `<div id="app">`, "no-cache", 200},
		{"/d/service-health?from=now-1h&to=now", `<div id="app">`, "no-cache", 200},
		{"/explore", `<div id="app">`, "no-cache", 200},
		{"/search", `<div id="app">`, "no-cache", 200},
		{"/alerts", `<div id="app">`, "no-cache", 200},
		{"/services", `<div id="app">`, "no-cache", 200},
		{"/services?service=fastapi-app&op=x", `<div id="app">`, "no-cache", 200},
		{"/trace/4bf92f3577b34da6a3ce929d0e0e4736", `<div id="app">`, "no-cache", 200},
		{"/assets/index-abc123.js", `console.log`, "public, max-age=31536000, immutable", 200},
		{"/favicon.svg", `<svg`, "no-cache", 200},
		{"/assets/missing.js", "", "", 404},
		{"/.keep", "", "", 404},
		{"/nope", "", "", 404},
		{"/prometheus/api/v1/query", "", "", 404},
		{"/api/unknown", "", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := get(t, h, tt.path)
			if res.StatusCode != tt.wantCode {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.wantCode)
			}
			if tt.wantCode != 200 {
				return
			}
			if b := body(t, res); !strings.Contains(b, tt.wantBody) {
				t.Errorf("body = %q, want containing %q", b, tt.wantBody)
			}
			if c := res.Header.Get("Cache-Control"); c != tt.wantCache {
				t.Errorf("Cache-Control = %q, want %q", c, tt.wantCache)
			}
			if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("CSP = %q", csp)
			}
		})
	}
}

func TestPlaceholderWhenNotBuilt(t *testing.T) {
	h := NewHandler(Options{Assets: fstest.MapFS{".keep": {}}})
	for _, p := range []string{"/", "/d/service-health", "/trace/abc"} {
		res := get(t, h, p)
		b := body(t, res)
		if res.StatusCode != 200 || !strings.Contains(b, "npm run build") {
			t.Errorf("%s: status %d body %q, want the build instructions", p, res.StatusCode, b)
		}
	}
}

func TestEmbeddedAssetsServeSomething(t *testing.T) {
	// Built or not, the embedded assets answer / with a page: the UI or the
	// placeholder telling how to build it.
	res := get(t, NewHandler(Options{}), "/d/service-health")
	b := body(t, res)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if Built() != !strings.Contains(b, "was not built") {
		t.Errorf("Built() = %v but body = %.200q", Built(), b)
	}
}

func TestDashboardAPI(t *testing.T) {
	h := NewHandler(Options{Assets: builtAssets})
	res := get(t, h, "/api/dashboards/uid/service-health")
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	var got struct {
		Dashboard struct {
			UID    string `json:"uid"`
			Title  string `json:"title"`
			Panels []struct {
				Title string `json:"title"`
			} `json:"panels"`
		} `json:"dashboard"`
		Meta dashboardMeta `json:"meta"`
	}
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Dashboard.UID != "service-health" || got.Meta.URL != "/d/service-health/service-health" || !got.Meta.Provisioned {
		t.Errorf("got %+v", got)
	}
	titles := map[string]bool{}
	for _, p := range got.Dashboard.Panels {
		titles[p.Title] = true
	}
	if !titles["Payment Duration P95"] {
		t.Errorf("panels %v lack Payment Duration P95", titles)
	}

	if res := get(t, h, "/api/dashboards/uid/nope"); res.StatusCode != 404 {
		t.Errorf("unknown uid: status %d, want 404", res.StatusCode)
	}

	res = get(t, h, "/api/search?type=dash-db")
	var hits []searchHit
	if err := json.NewDecoder(res.Body).Decode(&hits); err != nil {
		t.Fatal(err)
	}
	uids := []string{}
	for _, hit := range hits {
		uids = append(uids, hit.UID)
	}
	if strings.Join(uids, ",") != "http-metrics,service-health" {
		t.Errorf("search uids = %v", uids)
	}
	res = get(t, h, "/api/search?query=health")
	hits = nil
	if err := json.NewDecoder(res.Body).Decode(&hits); err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 || hits[0].UID != "service-health" || hits[0].URL != "/d/service-health/service-health" {
		t.Errorf("query=health: %+v", hits)
	}
}

// userLibrary is a library of the built-in dashboards and the files in
// testdata/dashboards (some broken) and the Grafana export of the
// dashboards package's tests.
func userLibrary(t *testing.T) *dashboards.Library {
	t.Helper()
	lib, err := dashboards.New(dashboards.FS, []string{"testdata/dashboards", "../../dashboards/testdata/grafana-export.json", "testdata/missing/*.json"}, dashboards.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

func TestUserDashboards(t *testing.T) {
	h := NewHandler(Options{Assets: builtAssets, Dashboards: userLibrary(t)})

	// A user's export is served in Grafana's shape, its inputs resolved.
	res := get(t, h, "/api/dashboards/uid/http-server-export")
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	var got struct {
		Dashboard struct {
			UID    string `json:"uid"`
			Inputs any    `json:"__inputs"`
			Panels []struct {
				Type string `json:"type"`
			} `json:"panels"`
		} `json:"dashboard"`
		Meta dashboardMeta `json:"meta"`
	}
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Dashboard.UID != "http-server-export" || got.Dashboard.Inputs != nil || len(got.Dashboard.Panels) != 8 ||
		got.Meta.URL != "/d/http-server-export/http-server-exported" || got.Meta.ProvisionedExternalID != "grafana-export.json" {
		t.Errorf("got %+v", got)
	}

	// The user's service-health replaces the built-in one, in search too.
	res = get(t, h, "/api/dashboards/uid/service-health")
	if b := body(t, res); !strings.Contains(b, "My Service Health") {
		t.Errorf("service-health = %.200s, want the user's", b)
	}
	res = get(t, h, "/api/search?type=dash-db")
	var hits []searchHit
	if err := json.NewDecoder(res.Body).Decode(&hits); err != nil {
		t.Fatal(err)
	}
	var titles []string
	for _, hit := range hits {
		titles = append(titles, hit.Title)
	}
	if got := strings.Join(titles, "|"); got != "Dup A|HTTP Metrics|HTTP Server (exported)|My Service Health" {
		t.Errorf("search titles = %q", got)
	}
	for _, uid := range []string{"broken", "no-title", "wrong-shape"} {
		if res := get(t, h, "/api/dashboards/uid/"+uid); res.StatusCode != 404 {
			t.Errorf("%s: status %d, want 404", uid, res.StatusCode)
		}
	}
}

func TestProblemsEndpoint(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want []dashboards.Problem
	}{
		{"built-in only", Options{Assets: builtAssets}, []dashboards.Problem{}},
		{"user files", Options{Assets: builtAssets, Dashboards: userLibrary(t)}, []dashboards.Problem{
			{File: "testdata/dashboards/broken.json", Error: "not a dashboard JSON object: unexpected EOF"},
			{File: "testdata/dashboards/dup-b.json", Error: `uid "dup" is already used by testdata/dashboards/dup-a.json, which wins (the first by path); this file is not served`},
			{File: "testdata/dashboards/no-title.json", Error: "missing title"},
			{File: "testdata/dashboards/wrong-shape.json", Error: "panels[0].targets: want an array, got object"},
			{File: "testdata/missing/*.json", Error: "the pattern matches no file"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, NewHandler(tt.opts), ProblemsPath)
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
			}
			var got struct {
				Problems []dashboards.Problem `json:"problems"`
			}
			if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Problems, tt.want) {
				t.Errorf("problems =\n%v\nwant\n%v", got.Problems, tt.want)
			}
		})
	}
	rec := httptest.NewRecorder()
	NewHandler(Options{Assets: builtAssets}).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, ProblemsPath, nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d", rec.Code)
	}
}

func TestSlugify(t *testing.T) {
	for in, want := range map[string]string{"Service Health": "service-health", "HTTP  Metrics!": "http-metrics", "  A/B 2 ": "a-b-2", "": ""} {
		if got := slugify(in); got != want {
			t.Errorf("slugify(%q) = %q, want %q", in, got, want)
		}
	}
}
