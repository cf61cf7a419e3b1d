package exemplars_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/lookout-dev/lookout/internal/exemplars"
)

func TestWALMark(t *testing.T) {
	dir := t.TempDir()
	x := openIndex(t, dir, exemplars.Options{})
	if seg, ok, err := x.WALMark(); ok || err != nil {
		t.Fatalf("new index: WAL mark %d, %v, %v; want none", seg, ok, err)
	}
	if err := x.SetWALMark(-1); err == nil {
		t.Error("SetWALMark(-1) accepted")
	}
	for _, seg := range []int{0, 7, 1 << 40} {
		if err := x.SetWALMark(seg); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := x.WALMark(); got != seg || !ok || err != nil {
			t.Fatalf("after SetWALMark(%d): %d, %v, %v", seg, got, ok, err)
		}
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := x.WALMark(); !errors.Is(err, exemplars.ErrClosed) {
		t.Errorf("WALMark after Close: %v, want ErrClosed", err)
	}
	x = openIndex(t, dir, exemplars.Options{})
	defer x.Close()
	if got, ok, err := x.WALMark(); got != 1<<40 || !ok || err != nil {
		t.Fatalf("after reopening: WAL mark %d, %v, %v; want %d", got, ok, err, 1<<40)
	}
	if res, err := x.ByTrace(context.Background(), pcommon.TraceID{}); err != nil || len(res) != 0 {
		t.Errorf("the mark shows up as exemplars: %v, %v", res, err)
	}
}
