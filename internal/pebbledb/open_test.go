package pebbledb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
)

func TestOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	db, err := Open(dir, "test store", &pebble.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("k"), []byte("v"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(file, "db"), "test store", &pebble.Options{}, nil); err == nil || !strings.HasPrefix(err.Error(), "open test store: ") {
		t.Errorf("opening under a file: %v, want an error naming the store", err)
	}
}

func TestRegister(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_total", Help: "A test counter."})
	if err := Register(nil, "test store", c); err != nil {
		t.Errorf("nil registry: %v", err)
	}
	reg := prometheus.NewRegistry()
	if err := Register(reg, "test store", c); err != nil {
		t.Fatal(err)
	}
	if err := Register(reg, "test store", c); err == nil || !strings.HasPrefix(err.Error(), "register test store metrics: ") {
		t.Errorf("registering twice: %v, want an error naming the store", err)
	}
}
