package ui

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGoldenAPIShapes pins the JSON shapes the UI and Grafana-style clients
// read: /api/search, the "meta" object of /api/dashboards/uid/<uid>, and
// Lookout's /api/lookout/dashboards/problems.
func TestGoldenAPIShapes(t *testing.T) {
	h := NewHandler(Options{Assets: builtAssets})
	whole := func(t *testing.T, b []byte) any {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name, path string
		pick       func(t *testing.T, body []byte) any
		handler    http.Handler // nil: h
	}{
		{"search.json", "/api/search?type=dash-db", whole, nil},
		{"dashboard-problems.json", ProblemsPath, whole, NewHandler(Options{Assets: builtAssets, Dashboards: userLibrary(t)})},
		{"dashboard-meta.json", "/api/dashboards/uid/service-health", func(t *testing.T, b []byte) any {
			var v struct {
				Meta any `json:"meta"`
			}
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatal(err)
			}
			return v.Meta
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hh := tt.handler
			if hh == nil {
				hh = h
			}
			res := get(t, hh, tt.path)
			raw, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(tt.pick(t, raw), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			file := filepath.Join("testdata", tt.name)
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s:\n got: %s\nwant: %s", tt.path, file, got, want)
			}
		})
	}
}
