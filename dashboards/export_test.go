package dashboards

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestParseFileForms(t *testing.T) {
	export, err := os.ReadFile("testdata/grafana-export.json")
	if err != nil {
		t.Fatal(err)
	}
	plain := `{"uid":"plain","title":"Plain","tags":["a"],"panels":[{"type":"timeseries","title":"x","targets":[{"expr":"up","refId":"A"}]}]}`
	tests := []struct {
		name, file, raw string
		wantUID         string
		wantTitle       string
		check           func(t *testing.T, d Dashboard, m map[string]any)
	}{
		{
			name: "plain model is kept byte for byte", file: "plain.json", raw: plain, wantUID: "plain", wantTitle: "Plain",
			check: func(t *testing.T, d Dashboard, _ map[string]any) {
				if string(d.Model) != plain {
					t.Errorf("model rewritten: %s", d.Model)
				}
			},
		},
		{
			name: "export for sharing externally", file: "grafana-export.json", raw: string(export), wantUID: "http-server-export", wantTitle: "HTTP Server (exported)",
			check: func(t *testing.T, d Dashboard, m map[string]any) {
				for _, k := range []string{"__inputs", "__requires", "__elements"} {
					if _, ok := m[k]; ok {
						t.Errorf("%s kept", k)
					}
				}
				if bytes.Contains(d.Model, []byte("${DS_PROMETHEUS}")) {
					t.Error("${DS_PROMETHEUS} left in the model")
				}
				if !bytes.Contains(d.Model, []byte(`"uid":"prometheus"`)) {
					t.Error(`datasource references not resolved to uid "prometheus"`)
				}
				// Variables and PromQL with $ and ${...} that are not inputs stay.
				for _, s := range []string{`[$interval]`, `$__auto_interval_interval`, `{{http_route}}`, `"exemplar":true`, `"collapsed":true`, `"type":"piechart"`} {
					if !bytes.Contains(d.Model, []byte(s)) {
						t.Errorf("model lacks %s", s)
					}
				}
				if strings.Join(d.Tags, ",") != "http,exported" {
					t.Errorf("tags %v", d.Tags)
				}
			},
		},
		{
			name: "HTTP API answer", file: "api.json", raw: `{"dashboard":{"id":7,"uid":"api","title":"From the API","panels":[]},"meta":{"slug":"from-the-api","folderTitle":"General"}}`,
			wantUID: "api", wantTitle: "From the API",
			check: func(t *testing.T, _ Dashboard, m map[string]any) {
				if _, ok := m["meta"]; ok {
					t.Error("meta kept")
				}
				if _, ok := m["panels"]; !ok {
					t.Error("panels lost")
				}
			},
		},
		{
			name: "constant input", file: "c.json", wantUID: "c", wantTitle: "C",
			raw: `{"__inputs":[{"name":"VAR_NS","type":"constant","value":"shop"},{"name":"DS_T","type":"datasource","pluginId":"tempo"}],"uid":"c","title":"C",` +
				`"templating":{"list":[{"name":"ns","type":"constant","query":"${VAR_NS}"}]},"panels":[{"type":"stat","datasource":{"uid":"${DS_T}"},"targets":[{"expr":"up{ns=\"${VAR_NS}\", x=\"${other}\"}"}]}]}`,
			check: func(t *testing.T, d Dashboard, _ map[string]any) {
				for _, s := range []string{`"query":"shop"`, `"uid":"tempo"`, `up{ns=\"shop\", x=\"${other}\"}`} {
					if !bytes.Contains(d.Model, []byte(s)) {
						t.Errorf("model lacks %s: %s", s, d.Model)
					}
				}
			},
		},
		{
			name: "library panel inlined", file: "lib.json", wantUID: "lib", wantTitle: "Lib",
			raw: `{"__inputs":[{"name":"DS","type":"datasource","pluginId":"prometheus"}],` +
				`"__elements":{"e1":{"uid":"e1","kind":1,"model":{"type":"stat","title":"Shared","datasource":{"uid":"${DS}"},"targets":[{"expr":"up"}],"gridPos":{"x":9,"y":9,"w":1,"h":1}}}},"uid":"lib","title":"Lib",` +
				`"panels":[{"type":"row","panels":[{"id":3,"gridPos":{"x":0,"y":1,"w":6,"h":4},"libraryPanel":{"uid":"e1","name":"Shared"}}]},` +
				`{"id":4,"gridPos":{"x":6,"y":1,"w":6,"h":4},"libraryPanel":{"uid":"e1"}},{"id":5,"libraryPanel":{"uid":"missing"}}]}`,
			check: func(t *testing.T, d Dashboard, m map[string]any) {
				panels := m["panels"].([]any)
				p := panels[0].(map[string]any)["panels"].([]any)[0].(map[string]any)
				if p["type"] != "stat" || p["title"] != "Shared" || p["gridPos"].(map[string]any)["x"] != json.Number("0") {
					t.Errorf("library panel = %v", p)
				}
				if q := panels[1].(map[string]any); q["id"] != json.Number("4") || q["title"] != "Shared" {
					t.Errorf("second use = %v", q)
				}
				if q := panels[2].(map[string]any); q["type"] != nil {
					t.Errorf("a panel whose library panel is missing = %v", q)
				}
				if bytes.Count(d.Model, []byte(`"uid":"prometheus"`)) != 2 {
					t.Errorf("inputs in library panels not replaced: %s", d.Model)
				}
			},
		},
		{name: "missing uid from the file name", file: "My dash (v2).json", raw: `{"title":"T"}`, wantUID: "My-dash--v2-", wantTitle: "T"},
		{name: "empty uid from the file name", file: "x.json", raw: `{"uid":" ","title":"T"}`, wantUID: "x", wantTitle: "T"},
		{name: "long file name cut to 40", file: strings.Repeat("a", 50) + ".json", raw: `{"title":"T"}`, wantUID: strings.Repeat("a", 40), wantTitle: "T"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseFile(tt.file, []byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			if d.UID != tt.wantUID || d.Title != tt.wantTitle {
				t.Errorf("uid, title = %q, %q; want %q, %q", d.UID, d.Title, tt.wantUID, tt.wantTitle)
			}
			var m map[string]any
			dec := json.NewDecoder(bytes.NewReader(d.Model))
			dec.UseNumber()
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("model is not JSON: %v", err)
			}
			if m["uid"] != tt.wantUID {
				t.Errorf("model uid = %v, want %q", m["uid"], tt.wantUID)
			}
			if tt.check != nil {
				tt.check(t, d, m)
			}
		})
	}
}

func TestParseFileRejects(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{"not json", `{"uid":`, "not a dashboard JSON object"},
		{"array", `[]`, "the file holds a JSON array"},
		{"trailing data", `{"uid":"a","title":"A"} {}`, "data after the top-level value"},
		{"no title", `{"uid":"a"}`, "missing title"},
		{"title not a string", `{"uid":"a","title":5}`, "title: want a string, got number"},
		{"uid not a string", `{"uid":5,"title":"A"}`, "uid: want a string, got number"},
		{"uid with a slash", `{"uid":"a/b","title":"A"}`, "only letters, digits"},
		{"uid too long", `{"uid":"` + strings.Repeat("u", 41) + `","title":"A"}`, "longer than 40"},
		{"tags not strings", `{"uid":"a","title":"A","tags":[1]}`, "tags[0]: want a string"},
		{"panels not an array", `{"uid":"a","title":"A","panels":{}}`, "panels: want an array, got object"},
		{"panel not an object", `{"uid":"a","title":"A","panels":["x"]}`, "panels[0]: want an object, got string"},
		{"panel title", `{"uid":"a","title":"A","panels":[{"type":"stat"},{"type":"stat","title":{"a":1}}]}`, "panels[1].title: want a string, got object"},
		{"gridPos", `{"uid":"a","title":"A","panels":[{"type":"stat","gridPos":{"x":"1"}}]}`, "panels[0].gridPos.x: want a number"},
		{"target expr", `{"uid":"a","title":"A","panels":[{"type":"stat","targets":[{"expr":1}]}]}`, "panels[0].targets[0].expr: want a string"},
		{"row child", `{"uid":"a","title":"A","panels":[{"type":"row","panels":[{"type":7}]}]}`, "panels[0].panels[0].type: want a string"},
		{"rows nest once", `{"uid":"a","title":"A","panels":[{"type":"row","panels":[{"type":"row","panels":[]}]}]}`, "nest one level only"},
		{"templating", `{"uid":"a","title":"A","templating":[]}`, "templating: want an object"},
		{"variable name", `{"uid":"a","title":"A","templating":{"list":[{"type":"custom"}]}}`, "templating.list[0].name: want a string, got null"},
		{"variable label", `{"uid":"a","title":"A","templating":{"list":[{"name":"x","label":[]}]}}`, "templating.list[0].label: want a string"},
		{"inputs", `{"uid":"a","title":"A","__inputs":{}}`, "__inputs: want an array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFile("f.json", []byte(tt.raw))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseFile() error = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func FuzzParseFile(f *testing.F) {
	export, err := os.ReadFile("testdata/grafana-export.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(export)
	f.Add([]byte(`{"dashboard":{"title":"x"},"meta":{}}`))
	f.Add([]byte(`{"__inputs":[{"name":"A","type":"constant","value":"${A}"}],"title":"${A}"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := ParseFile("fuzz.json", raw)
		if err != nil {
			return
		}
		if checkUID(d.UID) != nil || d.UID == "" || d.Title == "" {
			t.Fatalf("ParseFile accepted uid %q title %q", d.UID, d.Title)
		}
		if _, err := ParseFile("fuzz.json", d.Model); err != nil {
			t.Fatalf("the normalized model does not parse again: %v", err)
		}
	})
}
