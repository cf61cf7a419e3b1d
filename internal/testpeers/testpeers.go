// Package testpeers builds and locates the real third-party programs that
// end-to-end tests run beside Lookout: Prometheus, promtool, telemetrygen and
// the OpenTelemetry Collector builder. Each is built once with `go install`
// into the repository's gitignored .cache/bin and reused by later runs;
// collectors built with the builder go to .cache/collector-<manifest hash>.
package testpeers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Pinned versions of the peers. Change them here only.
const (
	PrometheusModule   = "github.com/prometheus/prometheus"
	PrometheusVersion  = "v0.316.0"
	TelemetrygenModule = "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen"
	TelemetrygenVer    = "v0.161.0"
	BuilderModule      = "go.opentelemetry.io/collector/cmd/builder"
	BuilderVersion     = "v0.165.0"
)

var mu sync.Mutex

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// BinDir is where peers are installed: $LOOKOUT_PEERS_BIN or <repo>/.cache/bin.
func BinDir() (string, error) {
	if d := os.Getenv("LOOKOUT_PEERS_BIN"); d != "" {
		return d, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "bin"), nil
}

// Install builds pkg@version into BinDir unless a binary named name is
// already there, and returns its path. Concurrent test binaries serialise on
// a file lock so the build runs once.
func Install(name, pkg, version string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	dir, err := BinDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	cmd := exec.Command("go", "install", pkg+"@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-buildvcs=false", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", pkg, version, err, out)
	}
	return bin, nil
}

// need returns the peer's path or ends the test: Skip only when
// LOOKOUT_ALLOW_PEER_SKIP=1, otherwise Fatal, so CI never passes silently
// without the comparison it promises.
func need(t testing.TB, name, pkg, version string) string {
	t.Helper()
	bin, err := Install(name, pkg, version)
	if err != nil {
		if os.Getenv("LOOKOUT_ALLOW_PEER_SKIP") == "1" {
			t.Skipf("peer %s unavailable (build failed): %v", name, err)
		}
		t.Fatalf("peer %s unavailable: %v", name, err)
	}
	return bin
}

// Prometheus returns the path of a real Prometheus server binary.
func Prometheus(t testing.TB) string {
	return need(t, "prometheus", PrometheusModule+"/cmd/prometheus", PrometheusVersion)
}

// Promtool returns the path of promtool.
func Promtool(t testing.TB) string {
	return need(t, "promtool", PrometheusModule+"/cmd/promtool", PrometheusVersion)
}

// Telemetrygen returns the path of telemetrygen.
func Telemetrygen(t testing.TB) string {
	return need(t, "telemetrygen", TelemetrygenModule, TelemetrygenVer)
}

// Builder returns the path of the OpenTelemetry Collector builder (ocb).
func Builder(t testing.TB) string {
	return need(t, "builder", BuilderModule, BuilderVersion)
}

// Collector builds the OpenTelemetry Collector described by the builder
// manifest at manifestPath (output_path is replaced) into
// <repo>/.cache/collector-<manifest hash> unless it is there already, and
// returns the binary's path. Concurrent test binaries serialise on a file
// lock so the build runs once per manifest.
func Collector(t testing.TB, manifestPath string) string {
	t.Helper()
	manifest, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`(?m)^\s*name:\s*(\S+)`).FindSubmatch(manifest)
	if name == nil {
		t.Fatalf("%s: no dist name", manifestPath)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(manifest)
	out := filepath.Join(root, ".cache", "collector-"+hex.EncodeToString(sum[:8]))
	bin := filepath.Join(out, "src", string(name[1]))
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	builder := Builder(t)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(out, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	m := regexp.MustCompile(`(?m)^(\s*output_path:).*$`).ReplaceAll(manifest, []byte("${1} "+filepath.Join(out, "src")))
	if err := os.WriteFile(filepath.Join(out, "builder.yaml"), m, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("building the collector from %s (first run only)", manifestPath)
	cmd := exec.Command(builder, "--config", filepath.Join(out, "builder.yaml"))
	cmd.Dir = out
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		if os.Getenv("LOOKOUT_ALLOW_PEER_SKIP") == "1" {
			t.Skipf("collector build failed: %v\n%s", err, b)
		}
		t.Fatalf("collector build failed: %v\n%s", err, b)
	}
	return bin
}

// StartPrometheus runs a real Prometheus (built on first use) on a free
// loopback port with its OTLP receiver (at /api/v1/otlp/v1/metrics) and
// exemplar storage on, naming OTLP metrics as Lookout's default does, and
// returns its host:port. It is stopped when the test ends.
func StartPrometheus(t testing.TB) string {
	t.Helper()
	return StartPrometheusConfig(t, func(string) string { return "" })
}

// StartPrometheusConfig is StartPrometheus with more configuration: extra
// returns YAML appended to the configuration file, given the address
// Prometheus will listen on (e.g. for a scrape of itself).
func StartPrometheusConfig(t testing.TB, extra func(addr string) string) string {
	t.Helper()
	bin := Prometheus(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("otlp:\n  translation_strategy: UnderscoreEscapingWithoutSuffixes\n"+extra(addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "prometheus.log")
	logs, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--enable-feature=exemplar-storage", "--web.enable-otlp-receiver",
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dumpLogs := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = logs.Close()
		if t.Failed() {
			t.Logf("prometheus logs:\n%s", dumpLogs())
		}
	})
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := client.Get("http://" + addr + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
	}
	t.Fatalf("prometheus did not become ready on %s:\n%s", addr, dumpLogs())
	return ""
}
