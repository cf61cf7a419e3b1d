package metricstore

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// TestWriteAppendable appends through the remote-write appendable: the
// TSDB's sample errors come back as they are, and only the exemplars the
// TSDB took reach the exemplar writer, once each.
func TestWriteAppendable(t *testing.T) {
	w := &recordingWriter{}
	s := openStore(t, func(o *Options) { o.ExemplarWriter = w })
	ctx := context.Background()
	ls := labels.FromStrings("__name__", "rw_total", "job", "a")
	ex := func(trace string, ts int64) exemplar.Exemplar {
		return exemplar.Exemplar{Labels: labels.FromStrings("trace_id", trace), Value: 1, Ts: ts, HasTs: true}
	}
	ms := t0.UnixMilli()

	app := s.WriteAppendable().AppenderV2(ctx).(storage.ExemplarAppenderV2)
	ref, err := app.Append(0, ls, 0, ms+1000, 1, nil, nil, storage.AOptions{Exemplars: []exemplar.Exemplar{ex("aa", ms+1000)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name      string
		t         int64
		exemplars []exemplar.Exemplar
		wantErr   error // of Append
		partial   bool  // AppendExemplars reports a partial error
	}{
		// Older than the series' oldest exemplar: refused by the TSDB; the
		// duplicate is ignored, the new one taken.
		{name: "partly refused exemplars", t: ms + 2000, exemplars: []exemplar.Exemplar{ex("bb", ms), ex("aa", ms+1000), ex("cc", ms+2000)}, partial: true},
		{name: "out-of-order sample", t: ms, wantErr: storage.ErrOutOfOrderSample},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			app := s.WriteAppendable().AppenderV2(ctx).(storage.ExemplarAppenderV2)
			ref, err := app.Append(ref, ls, 0, c.t, 2, nil, nil, storage.AOptions{})
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("Append: %v, want %v", err, c.wantErr)
			}
			if c.wantErr != nil {
				_ = app.Rollback()
				return
			}
			_, err = app.AppendExemplars(ref, ls, c.exemplars)
			var pe *storage.AppendPartialError
			if got := errors.As(err, &pe); got != c.partial {
				t.Errorf("AppendExemplars: %v, want a partial error: %v", err, c.partial)
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
		})
	}
	if err := s.feed.wait(ctx); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var got []string
	for _, r := range w.recs {
		got = append(got, r.Exemplar.Labels.Get("trace_id"))
	}
	if len(got) != 2 || got[0] != "aa" || got[1] != "cc" {
		t.Errorf("exemplar writer got %v, want [aa cc]", got)
	}
}
