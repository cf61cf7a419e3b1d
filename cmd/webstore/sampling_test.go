package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lookout-dev/lookout/internal/tracestore"
	"github.com/lookout-dev/lookout/webstore/traffic"
)

// TestSamplingKeepsExemplarLinks runs Lookout with --traces.sampling at a
// 10% share under the real shop's traffic with an incident (failing and
// slow payments): after every trace's provisional window has passed, every
// exemplar still leads to its trace, every trace with an error is still
// there, and sampling did drop traces. It takes about two minutes.
func TestSamplingKeepsExemplarLinks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real shop under sampling for two minutes; skipped with -short")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.DiscardHandler)

	const window = 30 * time.Second
	lc := loopbackConfig(t)
	lc.TracesSampling = &tracestore.SamplingPolicy{Share: 0.1, Window: window}
	// Span metrics' exemplars, flushed every 5 s, pin traces too: each
	// must arrive within the window.
	lc.SpanMetricsFlushInterval = 5 * time.Second
	lookout, s := startStack(t, lc, logger)
	prom, tempo := "http://"+lookout.PrometheusAddr(), "http://"+lookout.TempoAddr()

	tc := traffic.DefaultConfig()
	tc.Target = s.MainURL()
	tc.Rate = 10
	tc.Duration = 50 * time.Second
	tc.ProgressInterval = time.Hour
	trafficDone := make(chan struct{})
	go func() {
		defer close(trafficDone)
		_, _ = traffic.Run(ctx, tc, io.Discard)
	}()

	// The incident from 15 s to 35 s: failing and slow payments. Error
	// traces are listed every 5 s, well inside their window, so each is
	// seen before the sampling pass decides it.
	start := time.Now()
	base := s.Faults()
	incident := mergeFaults(mergeFaults(base, *traffic.Scenarios["payment-failures"]), *traffic.Scenarios["slow-payments"])
	errorTraces := map[string]bool{}
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-trafficDone:
			running = false
		case now := <-tick.C:
			switch el := now.Sub(start); {
			case el >= 15*time.Second && el < 20*time.Second:
				if err := s.SetFaults(incident); err != nil {
					t.Fatal(err)
				}
			case el >= 35*time.Second && el < 40*time.Second:
				if err := s.SetFaults(base); err != nil {
					t.Fatal(err)
				}
			}
			for _, id := range searchTraceIDs(t, tempo, `{ status = error }`, now.Add(-20*time.Second), now) {
				errorTraces[id] = true
			}
		}
	}
	if err := s.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	for _, id := range searchTraceIDs(t, tempo, `{ status = error }`, end.Add(-20*time.Second), end) {
		errorTraces[id] = true
	}
	// Every trace's window ends by end + window; the pass runs every 10 s.
	time.Sleep(time.Until(end.Add(window + 25*time.Second)))

	dropped := ownCounter(t, prom, "lookout_tracestore_sampling_dropped_traces_total")
	late := ownCounter(t, prom, "lookout_tracestore_sampling_late_referenced_traces_total")
	t.Logf("sampling: %.0f traces dropped, %.0f late-referenced; %d error traces seen", dropped, late, len(errorTraces))
	if dropped == 0 {
		t.Fatal("sampling dropped no trace: the test checks nothing")
	}
	if len(errorTraces) == 0 {
		t.Fatal("the incident made no error traces")
	}
	if late != 0 {
		t.Errorf("%.0f dropped traces were referenced by exemplars later", late)
	}
	var missingErr []string
	for id := range errorTraces {
		if !traceFound(t, tempo, id) {
			missingErr = append(missingErr, id)
		}
	}
	if len(missingErr) > 0 {
		t.Errorf("%d of %d error traces were dropped, e.g. %s", len(missingErr), len(errorTraces), missingErr[0])
	}

	// Every exemplar of every series, the histograms' and span metrics',
	// still leads to its trace.
	q := url.Values{"query": {`{__name__=~".+_bucket"}`}, "start": {strconv.FormatInt(start.Add(-time.Minute).Unix(), 10)}, "end": {strconv.FormatInt(time.Now().Unix(), 10)}}
	var ex struct {
		Data []struct {
			SeriesLabels map[string]string `json:"seriesLabels"`
			Exemplars    []struct {
				Labels map[string]string `json:"labels"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	getJSON(t, prom+"/api/v1/query_exemplars?"+q.Encode(), &ex)
	linked := map[string]string{} // trace → series
	for _, s := range ex.Data {
		for _, e := range s.Exemplars {
			if id := e.Labels["trace_id"]; id != "" {
				linked[id] = s.SeriesLabels["__name__"]
			}
		}
	}
	if len(linked) < 50 {
		t.Fatalf("only %d exemplar traces to check", len(linked))
	}
	var broken []string
	for id, series := range linked {
		if !traceFound(t, tempo, id) {
			broken = append(broken, fmt.Sprintf("%s (%s)", id, series))
		}
	}
	t.Logf("%d exemplar traces checked, %d broken", len(linked), len(broken))
	if len(broken) > 0 {
		t.Errorf("%d of %d exemplars lead to no trace, e.g. %s", len(broken), len(linked), strings.Join(broken[:min(3, len(broken))], ", "))
	}
}

// searchTraceIDs runs a TraceQL search on the Tempo API.
func searchTraceIDs(t *testing.T, tempo, query string, from, to time.Time) []string {
	t.Helper()
	q := url.Values{"q": {query}, "start": {strconv.FormatInt(from.Unix(), 10)}, "end": {strconv.FormatInt(to.Unix()+1, 10)}, "limit": {"1000"}}
	var out struct {
		Traces []struct {
			TraceID string `json:"traceID"`
		} `json:"traces"`
	}
	getJSON(t, tempo+"/api/search?"+q.Encode(), &out)
	ids := make([]string, 0, len(out.Traces))
	for _, tr := range out.Traces {
		ids = append(ids, tr.TraceID)
	}
	return ids
}

// traceFound asks Lookout's Tempo API whether it holds the trace.
func traceFound(t *testing.T, tempo, id string) bool {
	t.Helper()
	var out struct {
		Found map[string]bool `json:"found"`
	}
	getJSON(t, tempo+"/api/lookout/traces/found?ids="+id, &out)
	return out.Found[id]
}

// ownCounter reads one of Lookout's own counters from its /metrics.
func ownCounter(t *testing.T, prom, name string) float64 {
	t.Helper()
	resp, err := http.Get(prom + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}
