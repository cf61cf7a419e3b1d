// Command metrics-bench compares Lookout's OTLP metrics ingestion with real
// Prometheus's own OTLP receiver on the same workload, and measures
// /api/v1/query_exemplars latency.
//
// Ingestion: both servers start fresh (temp data dir, loopback ports); the
// harness pre-encodes every OTLP/HTTP protobuf request (explicit histograms
// with exemplars, a fixed number of points per request) and sends them with
// blocking concurrent senders, counting only what each server acknowledged.
// It reports samples/s, server CPU-seconds per million samples (from
// /proc/<pid>/stat) and peak RSS (VmHWM), and the Lookout/Prometheus ratios.
//
// With -series-scaling it instead compares how both servers' memory and CPU
// grow with the number of active series (series.go).
//
// Run from the repository root:
//
//	go run ./bench/metrics -runs 3
//	go run ./bench/metrics -series-scaling 10k,100k,1M
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/lookout-dev/lookout/internal/testpeers"
)

var (
	flagSeries      = flag.Int("series", 10000, "histogram series (data point streams)")
	flagTimestamps  = flag.Int("timestamps", 12, "points per series")
	flagPerReq      = flag.Int("points-per-request", 1000, "histogram data points per OTLP request")
	flagSenders     = flag.Int("senders", 4, "concurrent blocking senders")
	flagExemplars   = flag.Int("exemplars-per-point", 2, "exemplars per histogram data point")
	flagRuns        = flag.Int("runs", 3, "runs per server; medians are reported (0: only the exemplar queries)")
	flagTarget      = flag.String("target", "both", "lookout, prometheus or both")
	flagExQuery     = flag.Bool("exemplar-query", true, "also measure query_exemplars latency over 1h with 100k exemplars")
	flagLookoutBin  = flag.String("lookout-bin", "", "lookout binary (default: go build ./cmd/lookout)")
	flagLookoutArgs = flag.String("lookout-args", "", "extra lookout flags, space-separated (e.g. \"--metrics.max-exemplars=10000\")")
	flagProfile     = flag.String("cpuprofile", "", "write a CPU profile of each server's first seconds of ingestion, and a heap profile at its end (from its /debug/pprof), to <this>-<target>-<run>.pprof and .heap (-series-scaling: only the heap profile, after a GC, at the end of each run)")
	flagCollector   = flag.String("collector-bin", "", "an OpenTelemetry Collector built with the collector builder (otlp receiver, batch processor, otlphttp exporter); enables the \"pipeline\" target (Collector -> Prometheus). Default: .cache/collector-*/src/otelcol-* if present")
)

var bounds = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// workload is the histogram data a run sends: families data point streams
// (each len(bounds)+3 TSDB series), one point per stream every interval.
type workload struct {
	families   int
	timestamps int
	perRequest int // data points (histogram families) per request
	exemplars  int // per data point
	bounds     []float64
	interval   time.Duration
}

// samplesPerPoint: one per bucket incl. +Inf, plus _sum and _count; it is
// also the number of TSDB series a family makes.
func (w workload) samplesPerPoint() int { return len(w.bounds) + 1 + 2 }

// metricsWorkload is the ingestion comparison's workload, from the flags.
func metricsWorkload() workload {
	return workload{families: *flagSeries, timestamps: *flagTimestamps, perRequest: *flagPerReq,
		exemplars: *flagExemplars, bounds: bounds, interval: 10 * time.Second}
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	if *flagSeriesSizes != "" {
		if err := seriesScaling(); err != nil {
			log.Fatal(err)
		}
		return
	}
	tmp, err := os.MkdirTemp("", "lookout-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	lookoutBin := *flagLookoutBin
	if lookoutBin == "" && *flagTarget != "prometheus" {
		lookoutBin = filepath.Join(tmp, "lookout")
		if err := buildLookout(lookoutBin); err != nil {
			log.Fatal(err)
		}
	}
	var promBin string
	if *flagTarget != "lookout" {
		promBin, err = testpeers.Install("prometheus", testpeers.PrometheusModule+"/cmd/prometheus", testpeers.PrometheusVersion)
		if err != nil {
			log.Fatal(err)
		}
	}

	w := metricsWorkload()
	reqs := buildRequests(time.Now().Add(-time.Duration(w.timestamps)*w.interval), w, false)
	totalPoints := w.families * w.timestamps
	fmt.Printf("workload: %d histogram series x %d timestamps = %d points, %d samples, %d exemplars; %d points/request (%d requests), %d senders\n",
		w.families, w.timestamps, totalPoints, totalPoints*w.samplesPerPoint(), totalPoints*w.exemplars, w.perRequest, len(reqs), *flagSenders)

	results := map[string][]result{}
	for run := range *flagRuns {
		for _, target := range targets() {
			s := start(target, tmp, lookoutBin, promBin, run)
			r := ingest(s, reqs)
			s.stop()
			fmt.Printf("run %d %-10s %s\n", run+1, target, r)
			results[target] = append(results[target], r)
		}
	}
	fmt.Println()
	med := map[string]result{}
	for _, target := range targets() {
		if len(results[target]) == 0 {
			continue // -runs 0: exemplar queries only
		}
		med[target] = median(results[target])
		fmt.Printf("median %-10s %s\n", target, med[target])
	}
	if l, p := med["lookout"], med["prometheus"]; l.samples > 0 && p.samples > 0 {
		fmt.Printf("ratios lookout/prometheus: samples/s %.2f, CPU-s per million samples %.2f, peak RSS %.2f\n",
			l.rate()/p.rate(), l.cpuPerMillion()/p.cpuPerMillion(), float64(l.rssKB)/float64(p.rssKB))
	}
	if l, c := med["lookout"], med["pipeline"]; l.samples > 0 && c.samples > 0 {
		fmt.Printf("ratios lookout/pipeline (Collector + Prometheus, end to end): samples/s %.2f, CPU-s per million samples %.2f, peak RSS %.2f\n",
			l.rate()/c.rate(), l.cpuPerMillion()/c.cpuPerMillion(), float64(l.rssKB)/float64(c.rssKB))
	}

	if *flagExQuery {
		fmt.Println()
		for _, target := range []string{"lookout", "prometheus"} {
			if *flagTarget != "both" && *flagTarget != target {
				continue
			}
			s := start(target, tmp, lookoutBin, promBin, 99)
			exemplarQueryBench(s)
			s.stop()
		}
	}
}

// buildLookout builds ./cmd/lookout to path.
func buildLookout(path string) error {
	cmd := exec.Command("go", "build", "-o", path, "./cmd/lookout")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/lookout (run from the repository root): %w", err)
	}
	return nil
}

func targets() []string {
	switch *flagTarget {
	case "both":
		if collectorBin() != "" {
			return []string{"lookout", "prometheus", "pipeline"}
		}
		return []string{"lookout", "prometheus"}
	default:
		return []string{*flagTarget}
	}
}

// collectorBin finds the Collector for the pipeline target, or "".
func collectorBin() string {
	if *flagCollector != "" {
		return *flagCollector
	}
	m, _ := filepath.Glob(".cache/collector-*/src/otelcol-*")
	for _, f := range m {
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			abs, _ := filepath.Abs(f)
			return abs
		}
	}
	return ""
}

type result struct {
	samples int64
	wall    time.Duration
	cpu     time.Duration
	rssKB   int64
	errs    int64
}

func (r result) rate() float64 { return float64(r.samples) / r.wall.Seconds() }
func (r result) cpuPerMillion() float64 {
	return r.cpu.Seconds() / (float64(r.samples) / 1e6)
}

func (r result) String() string {
	return fmt.Sprintf("%9.0f samples/s  %5.2f CPU-s/M samples  peak RSS %4d MB  (%d samples in %v, %d failed requests)",
		r.rate(), r.cpuPerMillion(), r.rssKB/1024, r.samples, r.wall.Round(time.Millisecond), r.errs)
}

func median(rs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	rate := pick(result.rate)
	cpm := pick(result.cpuPerMillion)
	rss := pick(func(r result) float64 { return float64(r.rssKB) })
	const n = 1e6
	return result{samples: n, wall: time.Duration(n / rate * float64(time.Second)), cpu: time.Duration(cpm * float64(time.Second)), rssKB: int64(rss)}
}

type request struct {
	body   []byte
	points int // histogram data points in body
	// perPoint is the samples each point makes; round is the timestamp's
	// index.
	perPoint, round int
	// remoteWrite marks a snappy-compressed remote-write 1.0 message
	// (Prometheus's prompb.WriteRequest) instead of an OTLP/HTTP protobuf.
	remoteWrite bool
}

// chunk is one request's share of the workload: points first..first+n-1
// at timestamp index ts.
type chunk struct {
	ts, first, n int
	now, start   time.Time
}

// buildRequests encodes the whole workload up front so the generator's own
// work is not part of the measurement. Requests go timestamp by timestamp,
// so no series receives an older sample after a newer one. remoteWrite
// selects remote write 1.0 over OTLP/HTTP; both carry the same series
// (named as Lookout's and Prometheus's OTLP translation name them) and
// values.
func buildRequests(base time.Time, w workload, remoteWrite bool) []request {
	rng := rand.New(rand.NewPCG(1, 2))
	var out []request
	for ts := range w.timestamps {
		for first := 0; first < w.families; first += w.perRequest {
			c := chunk{ts: ts, first: first, n: min(w.perRequest, w.families-first),
				now: base.Add(time.Duration(ts) * w.interval), start: base.Add(-time.Minute)}
			var b []byte
			var err error
			if remoteWrite {
				b, err = encodeRemoteWrite(w, c)
			} else {
				b, err = encodeOTLP(w, c, rng)
			}
			if err != nil {
				log.Fatal(err)
			}
			out = append(out, request{body: b, points: c.n, perPoint: w.samplesPerPoint(), round: ts, remoteWrite: remoteWrite})
		}
	}
	return out
}

// bucketCounts is point i's count per bucket (not cumulative, +Inf last)
// at timestamp index ts, and their total.
func bucketCounts(w workload, ts, i int) ([]uint64, uint64) {
	counts := make([]uint64, len(w.bounds)+1)
	var total uint64
	for b := range counts {
		counts[b] = uint64(ts+1) * uint64(1+(i+b)%5)
		total += counts[b]
	}
	return counts, total
}

// service is the service.name (job) of the request holding point first.
func service(w workload, first int) string { return fmt.Sprintf("svc-%d", first/w.perRequest) }

func route(i int) string { return fmt.Sprintf("/api/r%d", i%100) }

func encodeOTLP(w workload, c chunk, rng *rand.Rand) ([]byte, error) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", service(w, c.first))
	rm.Resource().Attributes().PutStr("service.instance.id", "bench-1")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("bench.request.duration")
	m.SetUnit("s")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i := range c.n {
		dp := h.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("route", route(c.first+i))
		dp.Attributes().PutStr("series", strconv.Itoa(c.first+i))
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(c.start))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(c.now))
		dp.ExplicitBounds().FromRaw(w.bounds)
		counts, total := bucketCounts(w, c.ts, i)
		dp.BucketCounts().FromRaw(counts)
		dp.SetCount(total)
		dp.SetSum(float64(total) * 0.3)
		vals := make([]float64, w.exemplars)
		for e := range vals {
			vals[e] = rng.Float64() * 12
		}
		slices.Sort(vals)
		for e, v := range vals {
			ex := dp.Exemplars().AppendEmpty()
			ex.SetDoubleValue(v)
			ex.SetTimestamp(pcommon.NewTimestampFromTime(c.now.Add(-time.Duration(e+1) * time.Millisecond)))
			var tid [16]byte
			var sid [8]byte
			for k := range tid {
				tid[k] = byte(rng.Uint32())
			}
			for k := range sid {
				sid[k] = byte(rng.Uint32())
			}
			ex.SetTraceID(tid)
			ex.SetSpanID(sid)
		}
	}
	return pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
}

type server struct {
	name     string
	run      int
	cmd      *exec.Cmd
	otlpURL  string
	queryURL string
	done     chan struct{}
	// behind is the Prometheus a pipeline's Collector forwards to; its CPU
	// and memory count too, and ingestion ends when it has every sample.
	behind *server
	logs   *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var readyLine = regexp.MustCompile(`msg="lookout ready".* otlp_http=(\S+) prometheus=(\S+)`)

func start(target, tmp, lookoutBin, promBin string, run int) *server {
	dir := filepath.Join(tmp, fmt.Sprintf("%s-%d", target, run))
	s := &server{name: target, run: run + 1, done: make(chan struct{})}
	switch target {
	case "lookout":
		s.cmd = exec.Command(lookoutBin, "--data-dir", dir, "--web.enable-pprof",
			"--otlp.grpc-listen", "", "--otlp.http-listen", "127.0.0.1:0", "--prometheus.listen", "127.0.0.1:0",
			"--tempo.listen", "", "--ui.listen", "")
		s.cmd.Args = append(s.cmd.Args, strings.Fields(*flagLookoutArgs)...)
		stderr, err := s.cmd.StderrPipe()
		if err != nil {
			log.Fatal(err)
		}
		if err := s.cmd.Start(); err != nil {
			log.Fatal(err)
		}
		ready := make(chan []string, 1)
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
					ready <- m
				}
			}
		}()
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		select {
		case m := <-ready:
			s.otlpURL = "http://" + m[1] + "/v1/metrics"
			s.queryURL = "http://" + m[2]
		case <-s.done:
			log.Fatal("lookout exited before ready")
		case <-time.After(time.Minute):
			log.Fatal("lookout not ready after 1m")
		}
	case "pipeline":
		prom := start("prometheus", tmp, lookoutBin, promBin, run+1000)
		cdir := dir + "-collector"
		if err := os.MkdirAll(cdir, 0o755); err != nil {
			log.Fatal(err)
		}
		addr := freePort()
		cfg := filepath.Join(cdir, "config.yaml")
		conf := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
processors:
  batch:
    timeout: 1s
    send_batch_size: 8192
exporters:
  otlphttp:
    endpoint: %s/api/v1/otlp
    # One consumer keeps batches in time order; with the default 10,
    # Prometheus refuses reordered batches as out of order (HTTP 400) and the
    # exporter drops them.
    sending_queue:
      num_consumers: 1
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlphttp]
`, addr, prom.queryURL)
		if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
			log.Fatal(err)
		}
		s.cmd = exec.Command(collectorBin(), "--config=file:"+cfg)
		logs := &lockedBuffer{}
		s.logs = logs
		s.cmd.Stdout, s.cmd.Stderr = logs, logs
		if err := s.cmd.Start(); err != nil {
			log.Fatal(err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		s.otlpURL = "http://" + addr + "/v1/metrics"
		s.behind = prom
		deadline := time.Now().Add(time.Minute)
		for {
			resp, err := http.Post(s.otlpURL, "application/json", strings.NewReader("{}"))
			if err == nil {
				resp.Body.Close()
				break
			}
			select {
			case <-s.done:
				log.Fatalf("collector exited: %s", logs.String())
			default:
			}
			if time.Now().After(deadline) {
				log.Fatalf("collector not ready after 1m: %s", logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	case "prometheus":
		if err := os.MkdirAll(dir, 0o755); err != nil {
			log.Fatal(err)
		}
		cfg := filepath.Join(dir, "prometheus.yml")
		if err := os.WriteFile(cfg, []byte("otlp:\n  translation_strategy: UnderscoreEscapingWithoutSuffixes\n"), 0o644); err != nil {
			log.Fatal(err)
		}
		addr := freePort()
		s.cmd = exec.Command(promBin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr, "--enable-feature=exemplar-storage", "--web.enable-otlp-receiver",
			"--web.enable-remote-write-receiver", "--log.level=warn")
		if err := s.cmd.Start(); err != nil {
			log.Fatal(err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		s.otlpURL = "http://" + addr + "/api/v1/otlp/v1/metrics"
		s.queryURL = "http://" + addr
		deadline := time.Now().Add(time.Minute)
		for {
			resp, err := http.Get(s.queryURL + "/-/ready")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				log.Fatal("prometheus not ready after 1m")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return s
}

func (s *server) stop() {
	if s.behind != nil {
		defer s.behind.stop()
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ingest sends every request with blocking senders and measures the server.
func ingest(s *server, reqs []request) result {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *flagSenders}}
	cpu0 := procCPU(s.cmd.Process.Pid)
	var behind0 time.Duration
	var landed0 float64
	if s.behind != nil {
		behind0 = procCPU(s.behind.cmd.Process.Pid)
		landed0 = samplesAppended(s.behind)
	}
	profiled := profile(s)
	defer func() { <-profiled }()
	t0 := time.Now()
	samples, failed := sendAll(s, client, reqs)
	if s.behind != nil {
		// The Collector acknowledges before it forwards: wait until
		// Prometheus's appended-sample count reaches what was sent (plus
		// target_info) or stops growing for 3s, and count what landed.
		deadline := time.Now().Add(2 * time.Minute)
		last, lastChange := 0.0, time.Now()
		for {
			n := samplesAppended(s.behind) - landed0
			if n != last {
				last, lastChange = n, time.Now()
			}
			if n >= float64(samples) || (n > 0 && time.Since(lastChange) > 3*time.Second) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if last < float64(samples) {
			log.Printf("pipeline: %.0f of %d samples reached Prometheus", last, samples)
			samples = int64(last)
		}
		if time.Since(lastChange) > 3*time.Second {
			// Don't bill the idle wait as ingestion time.
			t0 = t0.Add(3 * time.Second)
		}
	}
	wall := time.Since(t0)
	cpu := procCPU(s.cmd.Process.Pid) - cpu0
	if *flagProfile != "" && s.behind == nil {
		fetch(s, "/debug/pprof/heap", "heap")
		fetch(s, "/debug/pprof/heap?debug=1", "heap.txt") // with runtime.MemStats
	}
	rss := peakRSS(s.cmd.Process.Pid)
	if s.behind != nil {
		cpu += procCPU(s.behind.cmd.Process.Pid) - behind0
		rss += peakRSS(s.behind.cmd.Process.Pid)
	}
	return result{samples: samples, wall: wall, cpu: cpu, rssKB: rss, errs: failed}
}

// sendAll sends reqs in order with -senders blocking senders and returns
// the samples s acknowledged and the number of failed requests.
func sendAll(s *server, client *http.Client, reqs []request) (acked, failed int64) {
	var next, ackedN, failedN atomic.Int64
	var wg sync.WaitGroup
	for range *flagSenders {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(reqs) {
					return
				}
				n, err := s.post(client, reqs[i])
				if err != nil {
					if failedN.Add(1) < 3 {
						log.Printf("%s: %v", s.name, err)
					}
					continue
				}
				ackedN.Add(n)
			}
		})
	}
	wg.Wait()
	return ackedN.Load(), failedN.Load()
}

// post sends one request and returns the samples s acknowledged: all of
// them for a remote write answered 2xx, those not refused in an OTLP
// answer's partial success.
func (s *server) post(client *http.Client, r request) (int64, error) {
	u, ctype := s.otlpURL, "application/x-protobuf"
	if r.remoteWrite {
		u = s.queryURL + "/api/v1/write"
	}
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(r.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", ctype)
	if r.remoteWrite {
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return 0, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	points := int64(r.points)
	if !r.remoteWrite {
		er := pmetricotlp.NewExportResponse()
		if er.UnmarshalProto(body) == nil {
			points -= er.PartialSuccess().RejectedDataPoints()
		}
	}
	return points * int64(r.perPoint), nil
}

// profile fetches a 2 s CPU profile of s while it ingests, when -cpuprofile
// is set. The returned channel closes when the profile is written.
func profile(s *server) <-chan struct{} {
	done := make(chan struct{})
	if *flagProfile == "" || s.behind != nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		fetch(s, "/debug/pprof/profile?seconds=2", "pprof")
	}()
	return done
}

// fetch writes a profile from s's /debug/pprof to <-cpuprofile>-<target>-<run>.<ext>.
func fetch(s *server, path, ext string) {
	resp, err := http.Get(s.queryURL + path)
	if err != nil {
		log.Printf("%s: %s: %v", s.name, path, err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", resp.Status, b)
	}
	if err == nil {
		err = os.WriteFile(fmt.Sprintf("%s-%s-%d.%s", *flagProfile, s.name, s.run, ext), b, 0o644)
	}
	if err != nil {
		log.Printf("%s: %s: %v", s.name, path, err)
	}
}

// samplesAppended reads prometheus_tsdb_head_samples_appended_total from a
// Prometheus's own /metrics.
func samplesAppended(s *server) float64 {
	return metricValue(s, "prometheus_tsdb_head_samples_appended_total")
}

// metricValue sums the samples of metric name on s's own /metrics.
func metricValue(s *server, name string) float64 {
	resp, err := http.Get(s.queryURL + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var total float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "{")) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			total += v
		}
	}
	return total
}

// procCPU returns user+system CPU time of pid.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

func peakRSS(pid int) int64 { return procStatusKB(pid, "VmHWM") }

// procStatusKB reads a kB field of /proc/<pid>/status, such as VmRSS.
func procStatusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		log.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// exemplarQueryBench stores 100k exemplars spread over the last hour (1000
// bucket series x 100 timestamps) and times query_exemplars over that hour.
func exemplarQueryBench(s *server) {
	const services, routes, steps = 10, 10, 100
	end := time.Now().Add(-time.Minute)
	begin := end.Add(-time.Hour)
	rng := rand.New(rand.NewPCG(3, 4))
	stored := 0
	for st := range steps {
		now := begin.Add(time.Duration(st) * 36 * time.Second)
		md := pmetric.NewMetrics()
		for svc := range services {
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", svc))
			m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName("bench.exemplar.duration")
			h := m.SetEmptyHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			for r := range routes {
				dp := h.DataPoints().AppendEmpty()
				dp.Attributes().PutStr("route", fmt.Sprintf("/r%d", r))
				dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
				dp.ExplicitBounds().FromRaw(bounds[:9]) // 10 bucket series per data point
				counts := make([]uint64, 10)
				for b := range counts {
					counts[b] = uint64(st + 1)
				}
				dp.BucketCounts().FromRaw(counts)
				dp.SetCount(uint64(10 * (st + 1)))
				dp.SetSum(float64(st))
				// One exemplar per bucket: 10 per point.
				for b := range 10 {
					ex := dp.Exemplars().AppendEmpty()
					lo := 0.0
					if b > 0 {
						lo = bounds[b-1]
					}
					hi := 20.0
					if b < 9 {
						hi = bounds[b]
					}
					ex.SetDoubleValue(lo + (hi-lo)*0.5)
					ex.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Millisecond)))
					var tid [16]byte
					for k := range tid {
						tid[k] = byte(rng.Uint32())
					}
					ex.SetTraceID(tid)
					stored++
				}
			}
		}
		b, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		resp, err := http.Post(s.otlpURL, "application/x-protobuf", bytes.NewReader(b))
		if err != nil {
			log.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			log.Fatalf("%s: exemplar load: status %d", s.name, resp.StatusCode)
		}
	}
	for _, q := range []struct{ name, query string }{
		{"one service (10k exemplars)", `bench_exemplar_duration_bucket{job="svc-3"}`},
		{"one route of one service (1k exemplars)", `bench_exemplar_duration_bucket{job="svc-3",route="/r7"}`},
		{"all (100k exemplars)", `bench_exemplar_duration_bucket`},
	} {
		params := url.Values{"query": {q.query}, "start": {strconv.FormatInt(begin.Add(-time.Minute).Unix(), 10)}, "end": {strconv.FormatInt(end.Unix()+1, 10)}}
		u := s.queryURL + "/api/v1/query_exemplars?" + params.Encode()
		const n = 200
		lat := make([]time.Duration, 0, n)
		count := 0
		profiled := make(chan struct{})
		if *flagProfile != "" && strings.Contains(q.name, "10k") {
			go func() {
				defer close(profiled)
				fetch(s, "/debug/pprof/profile?seconds=2", "query.pprof")
			}()
		} else {
			close(profiled)
		}
		for i := range n + 10 {
			t0 := time.Now()
			resp, err := http.Get(u)
			if err != nil {
				log.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			d := time.Since(t0)
			if i < 10 {
				if i == 0 {
					count = countExemplars(body)
				}
				continue // warm-up
			}
			lat = append(lat, d)
		}
		<-profiled
		slices.Sort(lat)
		fmt.Printf("query_exemplars %-10s %-42s returned %6d of %d stored: p50 %7.2f ms  p99 %7.2f ms\n",
			s.name, q.name, count, stored, ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func countExemplars(body []byte) int {
	var out struct {
		Data []struct {
			Exemplars []json.RawMessage `json:"exemplars"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return -1
	}
	n := 0
	for _, d := range out.Data {
		n += len(d.Exemplars)
	}
	return n
}
