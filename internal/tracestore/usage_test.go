package tracestore

import (
	"context"
	"errors"
	"testing"
)

func TestTableUsage(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	searchFixture(t, s)
	if err := s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	usage, err := s.TableUsage()
	if err != nil {
		t.Fatal(err)
	}
	got := map[byte]uint64{}
	for _, u := range usage {
		got[u.Prefix] = u.Bytes
	}
	if len(got) != len(tables) {
		t.Errorf("%d tables reported, want %d: %+v", len(got), len(tables), usage)
	}
	// Compact moves every row into pages: the fixture leaves every other
	// table but the store's own state.
	for _, p := range []byte{pPage, pSummary, pBlock, pColumns, pAttrCol, pTagKey, pTagVal} {
		if got[p] == 0 {
			t.Errorf("table %c: 0 bytes after compaction", p)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TableUsage(); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}
