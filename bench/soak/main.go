// Command soak runs Lookout under WebStore traffic for a set time and
// samples what should stay flat: Lookout's resident memory and CPU, its
// data directory's disk usage, ingest rates, and the latency of the queries
// a user makes (a PromQL range query, query_exemplars, a TraceQL search, a
// trace by ID and a spike analysis). It writes one CSV row per sample and,
// at the end, fails when RSS or disk still grow after the warm-up.
//
//	make build && go run ./bench/soak -duration 2h -out soak.csv
//
// Lookout runs as a child process (the binary -lookout names) with short
// retentions (-traces.retention, -metrics.retention) and TSDB blocks
// (-metrics.block-duration), so the run reaches the retention's steady
// state; the shop runs in this process with the traffic generator at -rate
// sessions per second, its telemetry going to Lookout over OTLP/gRPC as the
// demo's does.
package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lookout-dev/lookout/webstore/shop"
	"github.com/lookout-dev/lookout/webstore/telemetry"
	"github.com/lookout-dev/lookout/webstore/traffic"
)

type config struct {
	lookout         string
	duration        time.Duration
	interval        time.Duration
	warmup          time.Duration
	rate            float64
	tracesRetention time.Duration
	metricRetention time.Duration
	blockDuration   time.Duration
	maxGrowth       float64
	out             string
	keep            bool
}

func main() {
	var c config
	flag.StringVar(&c.lookout, "lookout", "bin/lookout", "the Lookout binary to run")
	flag.DurationVar(&c.duration, "duration", 2*time.Hour, "length of the run")
	flag.DurationVar(&c.interval, "interval", 30*time.Second, "time between two samples")
	flag.DurationVar(&c.warmup, "warmup", 0, "samples before this are left out of the growth check (default: the longest of the retentions and the TSDB head's first compaction, plus 10 minutes, at most half the run)")
	flag.Float64Var(&c.rate, "rate", 10, "shopper sessions started per second (the demo runs 5)")
	flag.DurationVar(&c.tracesRetention, "traces.retention", 30*time.Minute, "Lookout's --traces.retention for the run")
	flag.DurationVar(&c.metricRetention, "metrics.retention", time.Hour, "Lookout's --metrics.retention for the run (exemplars pin their traces this long)")
	flag.DurationVar(&c.blockDuration, "metrics.block-duration", 10*time.Minute, "Lookout's --metrics.block-duration for the run: the TSDB head is written to a block once it spans 1.5 times this, so with the 2h default the head (RSS, WAL) grows for the first 3 hours")
	flag.Float64Var(&c.maxGrowth, "max-growth", 0.10, "fail when RSS or disk grows by more than this share of its mean per hour after the warm-up (least-squares slope)")
	flag.StringVar(&c.out, "out", "", "write the samples as CSV to this file (default: standard output only)")
	flag.BoolVar(&c.keep, "keep", false, "keep Lookout's data directory")
	flag.Parse()
	if c.warmup == 0 {
		c.warmup = min(max(c.tracesRetention, c.metricRetention, c.blockDuration*3/2)+10*time.Minute, c.duration/2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// sample is one row of the CSV.
type sample struct {
	elapsed     time.Duration
	rssBytes    int64
	cpuSeconds  float64
	diskBytes   int64
	tracesBytes int64
	spansPerSec float64
	samplesPerS float64
	latency     map[string]time.Duration // by query name; -1 when it failed
}

var queryNames = []string{"promql_range", "query_exemplars", "traceql_search", "trace_by_id", "analyze"}

func run(ctx context.Context, c config) error {
	dir, err := os.MkdirTemp("", "lookout-soak-")
	if err != nil {
		return err
	}
	if !c.keep {
		defer os.RemoveAll(dir)
	}
	lk, err := startLookout(ctx, c, filepath.Join(dir, "lookout"))
	if err != nil {
		return err
	}
	defer lk.stop()

	cfg := shop.DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "shop")
	cfg.MainListen, cfg.PaymentsListen, cfg.ProviderListen, cfg.InventoryListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Telemetry = telemetry.Config{Endpoint: "http://" + lk.grpc, Protocol: telemetry.ProtocolGRPC}
	s, err := shop.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return fmt.Errorf("start shop: %w", err)
	}
	defer s.Shutdown(context.Background())

	trafficCtx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	trafficDone := make(chan error, 1)
	go func() {
		_, err := traffic.Run(trafficCtx, traffic.Config{
			Target: s.MainURL(), Rate: c.rate, Duration: c.duration, Scenario: "normal",
			MaxInFlight: 1000, ProgressInterval: time.Hour,
		}, nil)
		trafficDone <- err
	}()

	var w *csv.Writer
	if c.out != "" {
		f, err := os.Create(c.out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = csv.NewWriter(f)
		defer w.Flush()
	}
	header := append([]string{"elapsed_s", "rss_mb", "cpu_s", "disk_mb", "traces_disk_mb", "spans_per_s", "samples_per_s"}, queryNames...)
	fmt.Println(strings.Join(header, "\t"))
	if w != nil {
		_ = w.Write(header)
	}

	t0 := time.Now()
	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	var samples []sample
	var prevSpans, prevSamples float64
	prevAt := t0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-trafficDone:
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("traffic: %w", err)
			}
			break loop
		case now := <-tick.C:
			sm, spans, samplesIn, err := lk.measure(ctx, dir)
			if err != nil {
				return err
			}
			sm.elapsed = now.Sub(t0)
			secs := now.Sub(prevAt).Seconds()
			sm.spansPerSec, sm.samplesPerS = (spans-prevSpans)/secs, (samplesIn-prevSamples)/secs
			prevSpans, prevSamples, prevAt = spans, samplesIn, now
			sm.latency = lk.queries(ctx, now)
			samples = append(samples, sm)
			row := sm.row()
			fmt.Println(strings.Join(row, "\t"))
			if w != nil {
				_ = w.Write(row)
				w.Flush()
			}
			if exited := lk.exited(); exited != nil {
				return fmt.Errorf("lookout exited during the run: %w", exited)
			}
		}
	}
	return verdict(samples, c)
}

func (s sample) row() []string {
	r := []string{
		strconv.FormatFloat(s.elapsed.Seconds(), 'f', 0, 64),
		strconv.FormatFloat(float64(s.rssBytes)/(1<<20), 'f', 1, 64),
		strconv.FormatFloat(s.cpuSeconds, 'f', 1, 64),
		strconv.FormatFloat(float64(s.diskBytes)/(1<<20), 'f', 1, 64),
		strconv.FormatFloat(float64(s.tracesBytes)/(1<<20), 'f', 1, 64),
		strconv.FormatFloat(s.spansPerSec, 'f', 0, 64),
		strconv.FormatFloat(s.samplesPerS, 'f', 0, 64),
	}
	for _, q := range queryNames {
		d := s.latency[q]
		if d < 0 {
			r = append(r, "error")
			continue
		}
		r = append(r, strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64))
	}
	return r
}

// verdict fits a least-squares line to RSS and disk after the warm-up and
// fails when either grows faster than c.maxGrowth of its mean per hour.
func verdict(samples []sample, c config) error {
	var after []sample
	for _, s := range samples {
		if s.elapsed >= c.warmup {
			after = append(after, s)
		}
	}
	if len(after) < 4 {
		return fmt.Errorf("only %d samples after the %s warm-up: run longer", len(after), c.warmup)
	}
	var errs []error
	for _, m := range []struct {
		name string
		of   func(sample) float64
	}{
		{"rss", func(s sample) float64 { return float64(s.rssBytes) }},
		{"disk", func(s sample) float64 { return float64(s.diskBytes) }},
	} {
		slope, mean := fit(after, m.of)
		perHour := slope * 3600 / mean
		fmt.Printf("%s after warm-up: mean %.1f MB, slope %+.2f MB/h (%+.1f%% of the mean per hour)\n",
			m.name, mean/(1<<20), slope*3600/(1<<20), 100*perHour)
		if perHour > c.maxGrowth {
			errs = append(errs, fmt.Errorf("%s grows %.1f%% of its mean per hour after the warm-up (limit %.1f%%)", m.name, 100*perHour, 100*c.maxGrowth))
		}
	}
	for _, q := range queryNames {
		var ds []float64
		failed := 0
		for _, s := range after {
			if s.latency[q] < 0 {
				failed++
				continue
			}
			ds = append(ds, float64(s.latency[q].Microseconds())/1000)
		}
		fmt.Printf("%s after warm-up: p50 %.1f ms, max %.1f ms, %d failed\n", q, percentile(ds, 0.5), percentile(ds, 1), failed)
		if failed > 0 {
			errs = append(errs, fmt.Errorf("%s failed %d times", q, failed))
		}
	}
	return errors.Join(errs...)
}

func fit(ss []sample, of func(sample) float64) (slope, mean float64) {
	var sx, sy, sxx, sxy float64
	n := float64(len(ss))
	for _, s := range ss {
		x, y := s.elapsed.Seconds(), of(s)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx), sy / n
}

func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	return s[int(math.Round(q*float64(len(s)-1)))]
}

// lookout is the child process.
type lookout struct {
	cmd                   *exec.Cmd
	done                  chan error
	grpc, prom, tempo, ui string
	client                *http.Client
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startLookout(ctx context.Context, c config, dataDir string) (*lookout, error) {
	addrs := make([]string, 5)
	for i := range addrs {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	l := &lookout{grpc: addrs[0], prom: addrs[2], tempo: addrs[3], ui: addrs[4], done: make(chan error, 1),
		client: &http.Client{Timeout: time.Minute}}
	l.cmd = exec.Command(c.lookout,
		"--data-dir", dataDir,
		"--otlp.grpc-listen", addrs[0], "--otlp.http-listen", addrs[1],
		"--prometheus.listen", addrs[2], "--tempo.listen", addrs[3], "--ui.listen", addrs[4],
		"--traces.retention", c.tracesRetention.String(), "--metrics.retention", c.metricRetention.String(),
		"--metrics.block-duration", c.blockDuration.String(),
		"--log.level", "warn")
	l.cmd.Stdout, l.cmd.Stderr = os.Stderr, os.Stderr
	if err := l.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", c.lookout, err)
	}
	go func() { l.done <- l.cmd.Wait() }()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := l.client.Get("http://" + l.prom + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return l, nil
			}
		}
		if e := l.exited(); e != nil || time.Now().After(deadline) || ctx.Err() != nil {
			l.stop()
			return nil, fmt.Errorf("lookout did not become ready (exit: %v)", e)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// exited returns Lookout's exit error when it has exited, else nil.
func (l *lookout) exited() error {
	select {
	case err := <-l.done:
		l.done <- err
		if err == nil {
			return errors.New("exit status 0")
		}
		return err
	default:
		return nil
	}
}

func (l *lookout) stop() {
	if l.exited() != nil {
		return
	}
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.done:
	case <-time.After(time.Minute):
		_ = l.cmd.Process.Kill()
	}
}

// measure reads RSS and CPU from /proc, the data directory's allocated
// blocks, and the cumulative spans stored and samples appended from
// Lookout's /metrics.
func (l *lookout) measure(ctx context.Context, dir string) (sample, float64, float64, error) {
	var s sample
	pid := l.cmd.Process.Pid
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, 0, 0, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			s.rssBytes = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, 0, 0, err
	}
	// Fields after the command name's closing parenthesis; utime and stime
	// are the 14th and 15th fields of the line, in clock ticks (100/s).
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 {
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 12 {
			u, _ := strconv.ParseFloat(f[11], 64)
			st, _ := strconv.ParseFloat(f[12], 64)
			s.cpuSeconds = (u + st) / 100
		}
	}
	s.diskBytes = du(filepath.Join(dir, "lookout"))
	s.tracesBytes = du(filepath.Join(dir, "lookout", "traces"))

	spans, samples, err := l.counters(ctx)
	return s, spans, samples, err
}

// du is the allocated size of the files under dir, as du(1) reports it.
func du(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		}
		return nil
	})
	return n
}

func (l *lookout) counters(ctx context.Context) (spans, samples float64, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+l.prom+"/metrics", nil)
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bufio.NewReader(resp.Body))
	if err != nil {
		return 0, 0, fmt.Errorf("lookout /metrics: %w", err)
	}
	total := func(name string) float64 {
		var v float64
		if f := families[name]; f != nil {
			for _, m := range f.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
		return v
	}
	return total("lookout_tracestore_spans_stored_total"), total("prometheus_tsdb_head_samples_appended_total"), nil
}

// queries times one of each query a user makes, over the last 15 minutes.
func (l *lookout) queries(ctx context.Context, now time.Time) map[string]time.Duration {
	start, end := strconv.FormatInt(now.Add(-15*time.Minute).Unix(), 10), strconv.FormatInt(now.Unix(), 10)
	out := make(map[string]time.Duration, len(queryNames))
	p95 := `histogram_quantile(0.95, sum by (le) (rate(webstore_payment_duration_bucket[1m])))`
	var traceID string
	timed := func(name, u string, into any) {
		t := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := l.client.Do(req)
		if err == nil {
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("%s", resp.Status)
			} else if into != nil {
				err = json.NewDecoder(resp.Body).Decode(into)
			} else {
				_, err = io.Copy(io.Discard, resp.Body)
			}
			resp.Body.Close()
		}
		if err != nil {
			slog.Warn("query failed", "query", name, "err", err)
			out[name] = -1
			return
		}
		out[name] = time.Since(t)
	}
	q := url.Values{"query": {p95}, "start": {start}, "end": {end}, "step": {"15"}}
	timed("promql_range", "http://"+l.prom+"/api/v1/query_range?"+q.Encode(), nil)

	var ex struct {
		Data []struct {
			Exemplars []struct {
				Labels map[string]string `json:"labels"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	q = url.Values{"query": {`webstore_payment_duration_bucket`}, "start": {start}, "end": {end}}
	timed("query_exemplars", "http://"+l.prom+"/api/v1/query_exemplars?"+q.Encode(), &ex)
	for _, s := range ex.Data {
		for _, e := range s.Exemplars {
			if id := e.Labels["trace_id"]; id != "" {
				traceID = id
			}
		}
	}

	q = url.Values{"q": {`{ duration > 100ms }`}, "start": {start}, "end": {end}, "limit": {"20"}}
	timed("traceql_search", "http://"+l.tempo+"/api/search?"+q.Encode(), nil)
	if traceID != "" {
		timed("trace_by_id", "http://"+l.tempo+"/api/traces/"+traceID, nil)
	} else {
		out["trace_by_id"] = -1
	}
	q = url.Values{"query": {p95}, "start": {strconv.FormatInt(now.Add(-5*time.Minute).Unix(), 10)}, "end": {end}}
	timed("analyze", "http://"+l.prom+"/api/lookout/analyze?"+q.Encode(), nil)
	return out
}
