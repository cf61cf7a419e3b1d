package ui

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzServeHTTP feeds arbitrary paths and queries to the handler: it must
// answer every one with a normal status, never panic or serve a dotfile.
func FuzzServeHTTP(f *testing.F) {
	for _, s := range []string{"/", "/d/service-health", "/assets/index-abc123.js", "/../../etc/passwd", "/.keep", "/api/dashboards/uid/%2e%2e", "/api/search?query=%00&tag=x", "/trace/zz"} {
		f.Add(s)
	}
	h := NewHandler(Options{Assets: builtAssets})
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.Parse(target)
		if err != nil || u.Path == "" || u.Path[0] != '/' {
			return
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL = u
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 301, 304, 404, 405, 500:
		default:
			t.Fatalf("%q: status %d", target, rec.Code)
		}
		if rec.Code == 500 {
			t.Fatalf("%q: 500 %s", target, rec.Body)
		}
	})
}
