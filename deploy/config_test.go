package deploy_test

import (
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func load(t *testing.T, p string, v any) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}

type datasources struct {
	Datasources []struct {
		Name, UID, Type, URL string
		IsDefault            bool `yaml:"isDefault"`
		JSONData             struct {
			ExemplarTraceIDDestinations []struct {
				Name          string
				DatasourceUID string `yaml:"datasourceUid"`
			} `yaml:"exemplarTraceIdDestinations"`
			StreamingEnabled map[string]bool `yaml:"streamingEnabled"`
		} `yaml:"jsonData"`
	}
}

// TestGrafanaDatasources checks both provisioning variants: exemplars link
// through trace_id to the Tempo data source, Tempo's streaming search is off,
// and the uids agree so the same dashboards work with either.
func TestGrafanaDatasources(t *testing.T) {
	for _, p := range []string{
		"grafana/provisioning/datasources/datasources.yaml",
		"grafana/provisioning-lookout/datasources/datasources.yaml",
	} {
		t.Run(p, func(t *testing.T) {
			var ds datasources
			load(t, p, &ds)
			uids := map[string]string{}
			for _, d := range ds.Datasources {
				uids[d.Type] = d.UID
			}
			if uids["prometheus"] != "prometheus" || uids["tempo"] != "tempo" {
				t.Fatalf("data source uids %v, want prometheus and tempo", uids)
			}
			for _, d := range ds.Datasources {
				switch d.Type {
				case "prometheus":
					if !d.IsDefault {
						t.Error("Prometheus is not the default data source (the dashboards' $datasource picks the default)")
					}
					dst := d.JSONData.ExemplarTraceIDDestinations
					if len(dst) != 1 || dst[0].Name != "trace_id" || dst[0].DatasourceUID != uids["tempo"] {
						t.Errorf("exemplarTraceIdDestinations %+v, want [{trace_id %s}]", dst, uids["tempo"])
					}
				case "tempo":
					if on, ok := d.JSONData.StreamingEnabled["search"]; !ok || on {
						t.Errorf("Tempo streaming search %v (set %v), want false", on, ok)
					}
				}
			}
		})
	}
}

type compose struct {
	Services map[string]struct {
		Image       string
		Command     []string
		Environment map[string]string
		Volumes     []string
	}
}

func mounts(vols []string) map[string]string { // container path → host path
	m := map[string]string{}
	for _, v := range vols {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			m[parts[1]] = parts[0]
		}
	}
	return m
}

// TestComposeWiring checks that compose.yaml, the collector config,
// prometheus.yml and the Grafana providers agree on names, paths and flags.
func TestComposeWiring(t *testing.T) {
	var c compose
	load(t, "compose.yaml", &c)
	for _, name := range []string{"webstore", "otel-collector", "prometheus", "tempo", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("compose.yaml lacks service %q", name)
		}
	}

	// Prometheus: OTLP receiver and exemplar storage on; the rule file
	// prometheus.yml names (relative to itself) is the repository's.
	prom := c.Services["prometheus"]
	for _, flag := range []string{"--web.enable-otlp-receiver", "--enable-feature=exemplar-storage"} {
		if !slices.Contains(prom.Command, flag) {
			t.Errorf("prometheus command lacks %s", flag)
		}
	}
	var promCfg struct {
		OTLP struct {
			TranslationStrategy string `yaml:"translation_strategy"`
		}
		RuleFiles []string `yaml:"rule_files"`
	}
	load(t, "prometheus/prometheus.yml", &promCfg)
	if promCfg.OTLP.TranslationStrategy != "UnderscoreEscapingWithoutSuffixes" {
		t.Errorf("translation_strategy %q", promCfg.OTLP.TranslationStrategy)
	}
	pm := mounts(prom.Volumes)
	cfgDir := ""
	for ctr, host := range pm {
		if host == "./prometheus/prometheus.yml" {
			cfgDir = path.Dir(ctr)
		}
	}
	for _, rf := range promCfg.RuleFiles {
		if got := pm[path.Join(cfgDir, rf)]; got != "../rules/webstore.yml" {
			t.Errorf("rule file %s resolves to container path %s mounted from %q, want ../rules/webstore.yml", rf, path.Join(cfgDir, rf), got)
		}
	}

	// Collector: its defaults and compose's environment point at compose services.
	b, err := os.ReadFile("collector/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PROMETHEUS_OTLP_ENDPOINT:-http://prometheus:9090/api/v1/otlp", "TEMPO_OTLP_ENDPOINT:-http://tempo:4318"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("collector config lacks default %s", want)
		}
	}
	col := c.Services["otel-collector"]
	for k, v := range col.Environment {
		host := regexp.MustCompile(`^https?://([^:/]+)`).FindStringSubmatch(v)
		if host != nil {
			if _, ok := c.Services[host[1]]; !ok {
				t.Errorf("collector %s=%s: no compose service %q", k, v, host[1])
			}
		}
	}
	if ep := c.Services["webstore"].Environment["OTEL_EXPORTER_OTLP_ENDPOINT"]; ep != "http://otel-collector:4318" {
		t.Errorf("webstore exports to %q", ep)
	}

	// Grafana: the dashboards provider reads where compose mounts dashboards/.
	for _, g := range []string{"grafana", "grafana-lookout"} {
		gm := mounts(c.Services[g].Volumes)
		var prov struct {
			Providers []struct {
				Options struct{ Path string }
			}
		}
		provDir := ""
		for ctr, host := range gm {
			if ctr == "/etc/grafana/provisioning" {
				provDir = host
			}
		}
		load(t, path.Join(provDir, "dashboards/dashboards.yaml"), &prov)
		if len(prov.Providers) != 1 || gm[prov.Providers[0].Options.Path] != "../dashboards" {
			t.Errorf("%s: dashboards provider path %+v not the mount of ../dashboards (%v)", g, prov.Providers, gm)
		}
	}
}
