package main

// The series-scaling comparison (-series-scaling): how memory and CPU grow
// with the number of active series, Lookout against a real Prometheus.
//
// For each size N (active TSDB series) and each protocol, both servers
// start fresh (own temp data dir, loopback ports) one after the other and
// receive the same pre-encoded requests: N/10 classic histogram families
// (7 bounds, so 8 _bucket series with +Inf, plus _sum and _count: 10 TSDB
// series each), one point per family every -interval for -rounds rounds.
// Each round is sent whole and acknowledged before the next begins, so
// every series gets exactly one sample per round, in time order. The
// harness reads each server's /proc/<pid> before the first round (idle
// RSS), after the last acknowledgement (CPU, RSS) and VmHWM (peak RSS),
// and the server's own prometheus_tsdb_head_series.

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/lookout-dev/lookout/internal/testpeers"
)

var (
	flagSeriesSizes = flag.String("series-scaling", "", "run the series-scaling comparison instead: active TSDB series per size, comma-separated (e.g. 10k,100k,1M); each histogram family makes 10 series")
	flagRounds      = flag.Int("rounds", 10, "series scaling: samples per series, one round every -interval, each acknowledged before the next")
	flagInterval    = flag.Duration("interval", 15*time.Second, "series scaling: the rounds' timestamp spacing (a scrape interval); rounds are sent back to back, not paced")
	flagProtocol    = flag.String("protocol", "both", "series scaling: otlp, remote-write or both (each server's OTLP receiver, or Prometheus's remote-write receiver in both)")
	flagCSV         = flag.String("csv", "", "series scaling: also write the results to this CSV file")
)

// seriesBounds gives each family 8 buckets (with +Inf), _sum and _count.
var seriesBounds = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}

// scaling is one server's measurement at one size.
type scaling struct {
	target, protocol string
	series, families int   // what the workload makes
	headSeries       int64 // the server's prometheus_tsdb_head_series at the end
	samples, failed  int64 // samples acknowledged, requests failed
	cpu, wall        time.Duration
	idleKB, peakKB   int64 // VmRSS before the first round, VmHWM at the end
	endKB            int64 // VmRSS after the last acknowledgement
}

func (m scaling) cpuPerSample() time.Duration {
	if m.samples == 0 {
		return 0
	}
	return m.cpu / time.Duration(m.samples)
}

// perSeries is kb in bytes per active series of the workload.
func (m scaling) perSeries(kb int64) float64 { return float64(kb) * 1024 / float64(m.series) }

func seriesScaling() error {
	sizes, err := parseCounts(*flagSeriesSizes)
	if err != nil {
		return fmt.Errorf("-series-scaling: %w", err)
	}
	protocols, err := protocolList(*flagProtocol)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "lookout-series-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	lookoutBin, promBin, err := binaries(tmp)
	if err != nil {
		return err
	}
	spp := workload{bounds: seriesBounds}.samplesPerPoint()
	fmt.Printf("series scaling: %d TSDB series per histogram family (%d buckets with +Inf, _sum, _count), %d rounds %v apart, %d families per request, %d senders\n",
		spp, len(seriesBounds)+1, *flagRounds, *flagInterval, *flagPerReq, *flagSenders)
	var all []scaling
	run := 0
	for _, n := range sizes {
		w := workload{families: n / spp, timestamps: *flagRounds, perRequest: *flagPerReq,
			bounds: seriesBounds, interval: *flagInterval}
		for _, proto := range protocols {
			base := time.Now().Add(-time.Duration(w.timestamps) * w.interval)
			reqs := buildRequests(base, w, proto == "remote-write")
			var pair []scaling
			for _, target := range seriesTargets() {
				run++
				m, err := measureSeries(target, tmp, lookoutBin, promBin, run, w, proto, reqs)
				if err != nil {
					return err
				}
				fmt.Println(m)
				pair = append(pair, m)
			}
			if len(pair) == 2 {
				fmt.Println(ratios(pair[0], pair[1]))
			}
			all = append(all, pair...)
		}
	}
	fmt.Println()
	printScalingTable(all)
	if *flagCSV != "" {
		return writeScalingCSV(*flagCSV, all)
	}
	return nil
}

// binaries builds Lookout (unless -lookout-bin names it) and finds
// Prometheus, as the ingestion comparison does, for the targets asked for.
func binaries(tmp string) (lookout, prom string, err error) {
	lookout = *flagLookoutBin
	if lookout == "" && *flagTarget != "prometheus" {
		lookout = filepath.Join(tmp, "lookout")
		if err := buildLookout(lookout); err != nil {
			return "", "", err
		}
	}
	if *flagTarget != "lookout" {
		prom, err = testpeers.Install("prometheus", testpeers.PrometheusModule+"/cmd/prometheus", testpeers.PrometheusVersion)
	}
	return lookout, prom, err
}

// seriesTargets are the servers compared: Lookout and Prometheus, or the
// one -target names.
func seriesTargets() []string {
	if *flagTarget == "both" {
		return []string{"lookout", "prometheus"}
	}
	return []string{*flagTarget}
}

func protocolList(s string) ([]string, error) {
	switch s {
	case "both":
		return []string{"otlp", "remote-write"}, nil
	case "otlp", "remote-write":
		return []string{s}, nil
	}
	return nil, fmt.Errorf("-protocol %q: want otlp, remote-write or both", s)
}

// measureSeries starts a fresh server, sends reqs round by round and
// measures it.
func measureSeries(target, tmp, lookoutBin, promBin string, run int, w workload, proto string, reqs []request) (scaling, error) {
	s := start(target, tmp, lookoutBin, promBin, run)
	defer s.stop()
	m := scaling{target: target, protocol: proto, families: w.families, series: w.families * w.samplesPerPoint()}
	pid := s.cmd.Process.Pid
	m.idleKB = procStatusKB(pid, "VmRSS")
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: *flagSenders}}
	cpu0, t0 := procCPU(pid), time.Now()
	for round := range w.timestamps {
		acked, failed := sendAll(s, client, roundRequests(reqs, round))
		m.samples += acked
		m.failed += failed
	}
	m.wall, m.cpu = time.Since(t0), procCPU(pid)-cpu0
	m.endKB, m.peakKB = procStatusKB(pid, "VmRSS"), procStatusKB(pid, "VmHWM")
	m.headSeries = int64(metricValue(s, "prometheus_tsdb_head_series"))
	if m.headSeries != int64(m.series) {
		log.Printf("%s (%s): the head holds %d series, the workload makes %d", target, proto, m.headSeries, m.series)
	}
	if *flagProfile != "" {
		// After the RSS reads: gc=1 collects first, so the profile shows
		// what is live at the end rather than at the last cycle.
		fetch(s, "/debug/pprof/heap?gc=1", "heap")
	}
	if m.failed > 0 {
		return m, fmt.Errorf("%s (%s, %d series): %d requests failed", target, proto, m.series, m.failed)
	}
	return m, nil
}

// roundRequests is the run of reqs for one round; buildRequests orders
// them by round.
func roundRequests(reqs []request, round int) []request {
	lo, hi := len(reqs), len(reqs)
	for i, r := range reqs {
		if r.round == round && lo == len(reqs) {
			lo = i
		}
		if r.round > round {
			hi = i
			break
		}
	}
	return reqs[lo:hi]
}

// encodeRemoteWrite encodes chunk c as a snappy-compressed remote-write 1.0
// message with the series and values encodeOTLP's point would make.
func encodeRemoteWrite(w workload, c chunk) ([]byte, error) {
	if w.exemplars > 0 {
		return nil, errors.New("remote write: the harness sends no exemplars")
	}
	const name = "bench_request_duration"
	ts := c.now.UnixMilli()
	req := prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, 0, c.n*w.samplesPerPoint())}
	add := func(metric, le, route, series string, v float64) {
		ls := []prompb.Label{{Name: "__name__", Value: metric}, {Name: "instance", Value: "bench-1"},
			{Name: "job", Value: service(w, c.first)}}
		if le != "" {
			ls = append(ls, prompb.Label{Name: "le", Value: le})
		}
		ls = append(ls, prompb.Label{Name: "route", Value: route}, prompb.Label{Name: "series", Value: series})
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Value: v, Timestamp: ts}}})
	}
	for i := range c.n {
		r, id := route(c.first+i), strconv.Itoa(c.first+i)
		counts, total := bucketCounts(w, c.ts, i)
		var cum uint64
		for b, n := range counts {
			cum += n
			le := "+Inf"
			if b < len(w.bounds) {
				le = strconv.FormatFloat(w.bounds[b], 'f', -1, 64)
			}
			add(name+"_bucket", le, r, id, float64(cum))
		}
		add(name+"_sum", "", r, id, float64(total)*0.3)
		add(name+"_count", "", r, id, float64(total))
	}
	raw, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	return snappy.Encode(nil, raw), nil
}

// parseCounts parses a comma-separated list of counts with an optional k
// (thousand) or M (million) suffix, e.g. "10k,100k,1M".
func parseCounts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		switch {
		case strings.HasSuffix(f, "k"):
			f, mult = strings.TrimSuffix(f, "k"), 1000
		case strings.HasSuffix(f, "M"):
			f, mult = strings.TrimSuffix(f, "M"), 1000000
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 || n > math.MaxInt32/mult {
			return nil, fmt.Errorf("%q is not a positive count like 10k or 1M", f)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

func (m scaling) String() string {
	return fmt.Sprintf("%-10s %-12s %8d series (%d families, head %d): %6.2f µs CPU/sample, RSS idle %5d MB, peak %5d MB, end %5d MB: %6.0f B/series at peak, %6.0f at end  (%d samples in %v)",
		m.target, m.protocol, m.series, m.families, m.headSeries, micros(m.cpuPerSample()), m.idleKB>>10, m.peakKB>>10, m.endKB>>10,
		m.perSeries(m.peakKB), m.perSeries(m.endKB), m.samples, m.wall.Round(time.Millisecond))
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// ratio is Lookout's figures over Prometheus's at one size and protocol.
type ratio struct{ cpu, peak, end, grown float64 }

func ratioOf(l, p scaling) ratio {
	return ratio{
		cpu:   micros(l.cpuPerSample()) / micros(p.cpuPerSample()),
		peak:  float64(l.peakKB) / float64(p.peakKB),
		end:   float64(l.endKB) / float64(p.endKB),
		grown: float64(l.endKB-l.idleKB) / float64(p.endKB-p.idleKB),
	}
}

func ratios(l, p scaling) string {
	r := ratioOf(l, p)
	return fmt.Sprintf("ratios lookout/prometheus (%s, %d series): CPU per sample %.2f, peak RSS per series %.2f, end RSS per series %.2f, end-idle RSS per series %.2f",
		l.protocol, l.series, r.cpu, r.peak, r.end, r.grown)
}

// printScalingTable prints one Markdown table per size, as BENCHMARKS.md
// shows them: each protocol's Lookout and Prometheus rows and their ratio.
func printScalingTable(all []scaling) {
	for i, m := range all {
		if i == 0 || all[i-1].series != m.series {
			fmt.Printf("\n%d active TSDB series (%d histogram families):\n\n", m.series, m.families)
			fmt.Println("| protocol | server | CPU µs/sample | idle RSS MB | peak RSS MB | end RSS MB | end RSS B/series | (end − idle) B/series |")
			fmt.Println("|---|---|---|---|---|---|---|---|")
		}
		fmt.Printf("| %s | %s | %.2f | %d | %d | %d | %.0f | %.0f |\n", m.protocol, m.target, micros(m.cpuPerSample()),
			m.idleKB>>10, m.peakKB>>10, m.endKB>>10, m.perSeries(m.endKB), m.perSeries(m.endKB-m.idleKB))
		if i > 0 && all[i-1].target == "lookout" && m.target == "prometheus" && all[i-1].protocol == m.protocol && all[i-1].series == m.series {
			r := ratioOf(all[i-1], m)
			fmt.Printf("| %s | **Lookout / Prometheus** | %.2f | | %.2f | %.2f | **%.2f** | %.2f |\n", m.protocol, r.cpu, r.peak, r.end, r.end, r.grown)
		}
	}
}

func writeScalingCSV(path string, all []scaling) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"protocol", "series", "families", "target", "head_series", "samples", "failed_requests", "cpu_seconds", "wall_seconds",
		"cpu_us_per_sample", "idle_rss_kb", "peak_rss_kb", "end_rss_kb"})
	for _, m := range all {
		_ = w.Write([]string{m.protocol, strconv.Itoa(m.series), strconv.Itoa(m.families), m.target, strconv.FormatInt(m.headSeries, 10),
			strconv.FormatInt(m.samples, 10), strconv.FormatInt(m.failed, 10), fmt.Sprintf("%.2f", m.cpu.Seconds()), fmt.Sprintf("%.2f", m.wall.Seconds()),
			fmt.Sprintf("%.3f", micros(m.cpuPerSample())), strconv.FormatInt(m.idleKB, 10), strconv.FormatInt(m.peakKB, 10), strconv.FormatInt(m.endKB, 10)})
	}
	w.Flush()
	return errors.Join(w.Error(), f.Close())
}
