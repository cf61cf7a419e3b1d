package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/lookout-dev/lookout/internal/tracestore"
)

// TestTracesWhenOpen: the exemplar index's checker waits for the trace
// store (until its context ends), then asks it.
func TestTracesWhenOpen(t *testing.T) {
	checker, opened := tracesWhenOpen()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := checker.HasTrace(ctx, pcommon.TraceID{1}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("before the store opened: %v, want the context's deadline", err)
	}
	store, err := tracestore.Open(t.TempDir(), tracestore.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	opened(store)
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ok, err := checker.HasTrace(ctx, pcommon.TraceID{1}); ok || err != nil {
		t.Fatalf("after the store opened: %v, %v; want false, nil", ok, err)
	}
}
