package dashboards

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"
)

// model is the subset of the Grafana JSON model the checks below read.
type model struct {
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		GridPos struct {
			X, Y, W, H int
		} `json:"gridPos"`
		Targets []struct {
			RefID    string `json:"refId"`
			Expr     string `json:"expr"`
			Exemplar bool   `json:"exemplar"`
		} `json:"targets"`
	} `json:"panels"`
}

func TestShippedDashboards(t *testing.T) {
	ds, err := Load(FS)
	if err != nil {
		t.Fatal(err)
	}
	byUID := map[string]Dashboard{}
	for _, d := range ds {
		byUID[d.UID] = d
	}
	for _, uid := range []string{"http-metrics", "service-health"} {
		if _, ok := byUID[uid]; !ok {
			t.Fatalf("dashboard %q missing; have %v", uid, byUID)
		}
	}
	for _, d := range ds {
		var m model
		if err := json.Unmarshal(d.Model, &m); err != nil {
			t.Fatalf("%s: %v", d.File, err)
		}
		ids := map[int]bool{}
		for _, p := range m.Panels {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d used twice", d.File, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("%s: panel %q has bad gridPos %+v", d.File, p.Title, p.GridPos)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" {
					t.Errorf("%s: panel %q has a target without expr or refId", d.File, p.Title)
				}
			}
		}
	}

	var sh model
	if err := json.Unmarshal(byUID["service-health"].Model, &sh); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range sh.Panels {
		if p.Title != "Payment Duration P95" {
			continue
		}
		found = true
		if p.Type != "timeseries" || len(p.Targets) != 1 || !p.Targets[0].Exemplar {
			t.Errorf("Payment Duration P95: want one timeseries target with exemplars, got %+v", p)
		}
		// The seed's formula, restricted by the dashboard's selectors (all
		// values by default).
		want := `histogram_quantile(0.95, sum by (le) (rate(webstore_payment_duration_bucket{job=~"$job", country=~"$country", payment_method=~"$payment_method"}[5m])))`
		if p.Targets[0].Expr != want {
			t.Errorf("Payment Duration P95 expr = %q, want %q", p.Targets[0].Expr, want)
		}
	}
	if !found {
		t.Error(`service-health has no panel titled "Payment Duration P95"`)
	}
	vars := map[string]bool{}
	for _, v := range sh.Templating.List {
		vars[v.Name] = true
	}
	for _, v := range []string{"job", "country", "payment_method"} {
		if !vars[v] {
			t.Errorf("service-health lacks template variable %q", v)
		}
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"not json", map[string]string{"a.json": "{"}, "not a dashboard JSON object"},
		{"no uid", map[string]string{"a.json": `{"title":"A"}`}, "missing uid"},
		{"no title", map[string]string{"a.json": `{"uid":"a"}`}, "missing title"},
		{"array", map[string]string{"a.json": `[]`}, "not a dashboard JSON object"},
		{"duplicate uid", map[string]string{"a.json": `{"uid":"x","title":"A"}`, "b.json": `{"uid":"x","title":"B"}`}, "already used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for n, c := range tt.files {
				fsys[n] = &fstest.MapFile{Data: []byte(c)}
			}
			_, err := Load(fsys)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load() error = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"uid":"a","title":"A","tags":["x"]}`))
	f.Add([]byte(`{"uid":1}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := Parse(raw)
		if err == nil && (d.UID == "" || d.Title == "") {
			t.Fatalf("Parse accepted %q without uid or title", raw)
		}
	})
}
