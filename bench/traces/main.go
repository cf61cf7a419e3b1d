// Command traces benchmarks Lookout's trace store and Tempo API on this
// machine: sustained durable ingest (requests decoded from OTLP protobuf,
// as a receiver would, then stored with synced commits), GET /api/traces/<id>
// latency over HTTP at the stored scale, TraceQL search latency over the
// last hour, and the data directory's disk use as du counts it, by kind of
// file and by table of the store's key layout, against the OTLP protobuf
// bytes it sent. It prints one report; RESULTS.md and BENCHMARKS.md record
// the runs.
//
//	go run ./bench/traces -spans 1000000 -hours 1
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/ingest"
	"github.com/lookout-dev/lookout/internal/spanmetrics"
	"github.com/lookout-dev/lookout/internal/tempoapi"
	"github.com/lookout-dev/lookout/internal/traceql"
	"github.com/lookout-dev/lookout/internal/tracestore"
)

func main() {
	dir := flag.String("dir", "", "data directory (default: a new temp dir, removed afterwards)")
	total := flag.Int("spans", 1_000_000, "spans to ingest")
	hours := flag.Float64("hours", 1, "spread span start times over this many hours before now")
	perTrace := flag.Int("spans-per-trace", 5, "spans per trace")
	batch := flag.Int("batch", 500, "spans per request")
	workers := flag.Int("workers", 4, "concurrent ingest requests")
	gets := flag.Int("gets", 2000, "GET /api/traces/<id> samples")
	searches := flag.Int("searches", 20, "samples per search query")
	skipIngest := flag.Bool("skip-ingest", false, "reuse the data in -dir")
	cpuProfile := flag.String("cpuprofile", "", "write an ingest CPU profile to this file")
	searchProfile := flag.String("search-cpuprofile", "", "write a search CPU profile to this file")
	cacheMiB := flag.Int64("cache-mib", 0, "Pebble block cache in MiB (0: the store's default)")
	settle := flag.Duration("settle", 0, "wait this long after ingest (background compactions) before measuring reads")
	spanMetrics := flag.Bool("spanmetrics", false, "derive span metrics from the ingested spans, as lookout does by default (flushed every 15 s into a counting sink)")
	compact := flag.Bool("compact", false, "compact the store before the final disk figure")
	sampling := flag.String("sampling", "", "a --traces.sampling policy (e.g. share=10%): after ingest one sampling pass, timed, decides every trace (no exemplars pin any), before the reads and the disk figure")
	flag.Parse()

	if *dir == "" {
		d, err := os.MkdirTemp("", "lookout-bench-traces-")
		check(err)
		defer os.RemoveAll(d)
		*dir = d
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := tracestore.DefaultOptions()
	opts.SizeLimit = -1
	if *cacheMiB > 0 {
		opts.CacheSize = *cacheMiB << 20
	}
	var shift atomic.Int64 // the store's clock offset, ns
	if *sampling != "" {
		p, err := tracestore.ParseSamplingPolicy(*sampling)
		check(err)
		opts.Sampling = &p
		// Open as if sampling had been on since before the first span, so
		// that the pass decides every ingested trace.
		shift.Store(-int64(time.Duration(*hours*float64(time.Hour)) + p.Window + time.Minute))
		opts.Now = func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }
	}
	store, err := tracestore.Open(*dir, opts, logger, nil)
	check(err)
	defer store.Close()
	shift.Store(0)

	now := time.Now()
	span0 := now.Add(-time.Duration(*hours * float64(time.Hour)))
	var sample []pcommon.TraceID
	var otlpBytes, ingested int64 // unknown with -skip-ingest
	if !*skipIngest {
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			check(err)
			check(pprof.StartCPUProfile(f))
		}
		var sink ingest.TracesSink = store
		stopDerive := func() {}
		if *spanMetrics {
			var points countingMetrics
			d, err := spanmetrics.New(store, &points, spanmetrics.DefaultOptions(), logger, nil)
			check(err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()
			sink = d
			stopDerive = func() {
				cancel()
				check(<-done)
				fmt.Printf("span metrics: %d data points flushed\n", points.n.Load())
			}
		}
		sample, otlpBytes, ingested = ingestSpans(sink, *total, *perTrace, *batch, *workers, span0, now)
		stopDerive()
		if *cpuProfile != "" {
			pprof.StopCPUProfile()
		}
	} else {
		res, err := store.Search(context.Background(), tracestore.SearchRequest{Limit: *gets, Start: span0})
		check(err)
		for _, m := range res.Traces {
			sample = append(sample, m.TraceID)
		}
	}
	printMem("after ingest")
	if !*skipIngest {
		diskReport("after ingest", *dir, store, otlpBytes, ingested, true)
	}
	if opts.Sampling != nil {
		// Decide every ingested trace now: the store's clock moves past
		// the last span's window.
		shift.Store(int64(opts.Sampling.Window + time.Minute))
		cpu0, t0 := cpuTime(), time.Now()
		if *searchProfile != "" {
			f, err := os.Create(*searchProfile + ".sampling")
			check(err)
			check(pprof.StartCPUProfile(f))
		}
		check(store.RunSampling(context.Background()))
		if *searchProfile != "" {
			pprof.StopCPUProfile()
		}
		fmt.Printf("sampling pass (%s): %s, %.2f CPU-s\n", opts.Sampling, time.Since(t0).Round(time.Millisecond), (cpuTime() - cpu0).Seconds())
		var kept []pcommon.TraceID
		for _, id := range sample {
			if ok, err := store.HasTrace(context.Background(), id); err == nil && ok {
				kept = append(kept, id)
			}
		}
		fmt.Printf("sampling kept %d of %d sampled trace IDs\n", len(kept), len(sample))
		sample = kept
	}
	time.Sleep(*settle)

	srv := httptest.NewServer(tempoapi.NewHandler(tempoapi.Options{Traces: store, QueryTimeout: time.Minute}))
	defer srv.Close()
	benchGets(srv.URL, sample, *gets)
	if *searchProfile != "" {
		f, err := os.Create(*searchProfile)
		check(err)
		check(pprof.StartCPUProfile(f))
	}
	benchSearch(srv.URL, now, *searches)
	benchMetrics(srv.URL, now, *searches)
	if *searchProfile != "" {
		pprof.StopCPUProfile()
	}
	printMem("at end")
	diskReport("at end", *dir, store, otlpBytes, ingested, !*compact)
	if *compact {
		cpu0, t0 := cpuTime(), time.Now()
		check(store.Compact(context.Background()))
		took, cpu := time.Since(t0), cpuTime()-cpu0
		settleFiles(*dir)
		diskReport(fmt.Sprintf("after compaction (%s, %.2f CPU-s)", took.Round(time.Millisecond), cpu.Seconds()), *dir, store, otlpBytes, ingested, true)
	}
}

var services = []string{"main-service", "payments-service", "inventory-service", "payment-provider", "frontend", "db-proxy", "auth", "search"}
var routes = []string{"/checkout", "/products", "/products/{id}", "/cart", "/orders/{id}", "/login"}
var names = []string{"POST /checkout", "GET /products", "validate_cart", "check_inventory", "process_payment", "payment_provider_api", "create_order", "db.query.get_product"}

// template builds a telemetrygen-like request: one resource per service,
// spans of perTrace-span traces with a handful of attributes.
func template(spans, perTrace int, rng *rand.Rand) []byte {
	td := ptrace.NewTraces()
	bySvc := map[int]ptrace.SpanSlice{}
	for i := 0; i < spans; i++ {
		svc := rng.IntN(len(services))
		ss, ok := bySvc[svc]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", services[svc])
			rs.Resource().Attributes().PutStr("telemetry.sdk.language", "go")
			rs.Resource().Attributes().PutStr("host.name", fmt.Sprintf("host-%d", svc))
			sc := rs.ScopeSpans().AppendEmpty()
			sc.Scope().SetName("bench")
			ss = sc.Spans()
			bySvc[svc] = ss
		}
		sp := ss.AppendEmpty()
		t, k := i/perTrace, i%perTrace
		sp.SetTraceID(pcommon.TraceID{byte(t >> 8), byte(t)})
		sp.SetSpanID(pcommon.SpanID{byte(t >> 8), byte(t), byte(k + 1), 1})
		if k > 0 {
			sp.SetParentSpanID(pcommon.SpanID{byte(t >> 8), byte(t), byte(k), 1})
			sp.SetKind(ptrace.SpanKindClient)
		} else {
			sp.SetKind(ptrace.SpanKindServer)
		}
		sp.SetName(names[rng.IntN(len(names))])
		d := time.Duration(rng.ExpFloat64() * float64(50*time.Millisecond))
		sp.SetStartTimestamp(pcommon.Timestamp(k * 1000))
		sp.SetEndTimestamp(pcommon.Timestamp(k*1000) + pcommon.Timestamp(d))
		if rng.IntN(50) == 0 {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
		a := sp.Attributes()
		a.PutStr("http.request.method", []string{"GET", "POST"}[rng.IntN(2)])
		a.PutInt("http.response.status_code", int64([]int{200, 200, 200, 404, 500}[rng.IntN(5)]))
		a.PutStr("country", []string{"US", "DE", "FR", "JP"}[rng.IntN(4)])
		a.PutStr("url.path", fmt.Sprintf("/api/v1/items/%d", rng.IntN(1000)))
		a.PutStr("http.route", routes[rng.IntN(len(routes))])
	}
	b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	check(err)
	return b
}

// countingMetrics is the span metrics' metrics sink: it counts points.
type countingMetrics struct{ n atomic.Int64 }

func (c *countingMetrics) ConsumeMetrics(_ context.Context, md pmetric.Metrics) (ingest.Result, error) {
	c.n.Add(int64(md.DataPointCount()))
	return ingest.Result{}, nil
}

// ingestSpans stores total spans and returns a sample of their trace IDs,
// the OTLP protobuf bytes of the requests it sent and the spans stored.
func ingestSpans(store ingest.TracesSink, total, perTrace, batch, workers int, from, to time.Time) ([]pcommon.TraceID, int64, int64) {
	rng := rand.New(rand.NewPCG(1, 1))
	var templates [][]byte
	for range 16 {
		templates = append(templates, template(batch, perTrace, rng))
	}
	requests := (total + batch - 1) / batch
	// The protobuf size of each template's requests: stamp sets only
	// fixed-width fields (IDs, timestamps) but makes zero timestamps,
	// which protobuf omits, non-zero. The first request of each template
	// checks it.
	var marshaler ptrace.ProtoMarshaler
	var un ptrace.ProtoUnmarshaler
	sizes := make([]int, len(templates))
	for i, t := range templates {
		td, err := un.UnmarshalTraces(t)
		check(err)
		stamp(td, int64(i), uint64(from.UnixNano()))
		sizes[i] = marshaler.TracesSize(td)
	}
	var next, spans, otlpBytes atomic.Int64
	var mu sync.Mutex
	var sample []pcommon.TraceID
	span := to.Sub(from)
	start := time.Now()
	cpu0 := cpuTime()
	var wg sync.WaitGroup
	progressDone := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-t.C:
				fmt.Fprintf(os.Stderr, "  %d spans, %.0f spans/s\n", spans.Load(), float64(spans.Load())/time.Since(start).Seconds())
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r := next.Add(1) - 1
				if r >= int64(requests) {
					return
				}
				// Decode like a receiver, then give every trace a unique ID
				// and a start time spread evenly over [from, to].
				td, err := un.UnmarshalTraces(templates[r%int64(len(templates))])
				check(err)
				n := stamp(td, r, uint64(from.UnixNano())+uint64(float64(span)*float64(r)/float64(requests)))
				if r%int64(max(requests/4000, 1)) == 0 {
					mu.Lock()
					sample = append(sample, td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID())
					mu.Unlock()
				}
				size := sizes[r%int64(len(templates))]
				if r < int64(len(templates)) {
					if n := marshaler.TracesSize(td); n != size {
						panic(fmt.Sprintf("request %d marshals to %d bytes, not %d", r, n, size))
					}
				}
				otlpBytes.Add(int64(size))
				res, err := store.ConsumeTraces(context.Background(), td)
				check(err)
				if res.Rejected > 0 {
					panic(res.Message)
				}
				spans.Add(int64(n))
			}
		}()
		_ = w
	}
	wg.Wait()
	close(progressDone)
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	fmt.Printf("ingest: %d spans in %d requests of %d spans (%d-span traces), %d concurrent, synced commits: %.1fs, %.0f spans/s; %.2f CPU-s per million spans (incl. protobuf decode) = %.0f spans/s per fully available core\n",
		spans.Load(), requests, batch, perTrace, workers, el.Seconds(), float64(spans.Load())/el.Seconds(),
		cpu.Seconds()/float64(spans.Load())*1e6, float64(spans.Load())/cpu.Seconds())
	fmt.Printf("OTLP protobuf ingested: %.1f MiB, %.1f B/span\n", float64(otlpBytes.Load())/(1<<20), float64(otlpBytes.Load())/float64(spans.Load()))
	return sample, otlpBytes.Load(), spans.Load()
}

// stamp gives every trace of request r a unique ID, whose lower 8 bytes
// look random as real IDs' do (samplers decide on them), and moves its
// spans to start at base; it returns the number of spans.
func stamp(td ptrace.Traces, r int64, base uint64) int {
	n := 0
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				id := sp.TraceID()
				binary.BigEndian.PutUint64(id[8:], mix(uint64(r)))
				id[2] = 0xbe
				sp.SetTraceID(id)
				d := sp.EndTimestamp() - sp.StartTimestamp()
				sp.SetStartTimestamp(pcommon.Timestamp(base) + sp.StartTimestamp())
				sp.SetEndTimestamp(sp.StartTimestamp() + d)
				n++
			}
		}
	}
	return n
}

func benchGets(base string, ids []pcommon.TraceID, n int) {
	if len(ids) == 0 {
		return
	}
	rng := rand.New(rand.NewPCG(2, 2))
	var lat []time.Duration
	client := &http.Client{}
	for i := 0; i < n; i++ {
		id := ids[rng.IntN(len(ids))]
		t0 := time.Now()
		resp, err := client.Get(base + "/api/traces/" + id.String())
		check(err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			panic(fmt.Sprintf("GET trace %s: %d", id, resp.StatusCode))
		}
		lat = append(lat, time.Since(t0))
	}
	fmt.Printf("GET /api/traces/<id> over HTTP (JSON), %d random stored traces: %s\n", n, pct(lat))
}

func benchSearch(base string, now time.Time, n int) {
	queries := []string{
		`{}`,
		`{ resource.service.name = "payments-service" && status = error }`,
		`{ span.http.response.status_code = 500 && name = "POST /checkout" }`,
		`{ duration > 400ms }`,
		`{ kind = server } >> { status = error }`,
		`{ name = "no-such-span" }`,
		// Every minute has long, failing and validate_cart spans, so block
		// summaries cannot skip: this reads every record of the hour.
		`{ name = "validate_cart" && duration > 300ms && status = error }`,
	}
	for _, q := range queries {
		if _, err := traceql.Parse(q); err != nil {
			panic(err)
		}
		found, lat, cpu := timeQuery(base, "/api/search", q, "&limit=20", now, n, `"traceID"`)
		fmt.Printf("search last hour, limit 20, %-70s %2d found: %s; CPU %s per query\n", q, found, pct(lat), cpu)
	}
}

// timeQuery asks path n times for q over the last hour and returns how
// often count occurs in the last answer, the latencies and the CPU time
// per query.
func timeQuery(base, path, q, params string, now time.Time, n int, count string) (int, []time.Duration, time.Duration) {
	var lat []time.Duration
	found := 0
	cpu0 := cpuTime()
	for range n {
		t0 := time.Now()
		resp, err := http.Get(fmt.Sprintf("%s%s?q=%s&start=%d&end=%d%s", base, path, url.QueryEscape(q), now.Add(-time.Hour).Unix(), now.Unix(), params))
		check(err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			panic(string(body))
		}
		lat = append(lat, time.Since(t0))
		found = strings.Count(string(body), count)
	}
	return found, lat, ((cpuTime() - cpu0) / time.Duration(n)).Round(100 * time.Microsecond)
}

// benchMetrics times TraceQL metrics queries over the last hour through
// GET /api/metrics/query_range, with Tempo's default step (15 s for an
// hour) and exemplars.
func benchMetrics(base string, now time.Time, n int) {
	queries := []string{
		`{} | quantile_over_time(duration, .5, .95, .99) by (resource.service.name)`,
		`{} | rate() by (span.http.route)`,
		`{ status = error } | rate() by (resource.service.name)`,
		`{ span.http.response.status_code = 500 } | count_over_time() by (name)`,
		`{} | histogram_over_time(duration)`,
		`{ kind = server } >> { status = error } | rate()`,
	}
	for _, q := range queries {
		if _, err := traceql.ParseMetrics(q); err != nil {
			panic(err)
		}
		series, lat, cpu := timeQuery(base, "/api/metrics/query_range", q, "", now, n, `"samples"`)
		fmt.Printf("metrics last hour, %-78s %3d series: %s; CPU %s per query\n", q, series, pct(lat), cpu)
	}
}

// cpuTime is the CPU time (user+system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func pct(lat []time.Duration) string {
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[min(int(q*float64(len(lat))), len(lat)-1)] }
	return fmt.Sprintf("p50 %s p95 %s p99 %s max %s", p(.5).Round(10*time.Microsecond), p(.95).Round(10*time.Microsecond),
		p(.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
}

func printMem(when string) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	var rss, hwm string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			rss = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			hwm = strings.TrimSpace(v)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("memory %s: RSS %s, peak RSS %s, Go heap in use %d MiB\n", when, rss, hwm, ms.HeapInuse>>20)
}

// fileUsage is the space of some files: allocated is what du counts
// (blocks, including Pebble's preallocated WAL space), apparent their
// lengths.
type fileUsage struct {
	files               int
	allocated, apparent int64
}

func (u *fileUsage) add(o fileUsage) {
	u.files += o.files
	u.allocated += o.allocated
	u.apparent += o.apparent
}

// Kinds of files in a Pebble directory, in the order diskReport prints them.
var fileKinds = []string{"sstables", "WAL", "MANIFEST", "OPTIONS", "other"}

func fileKind(name string) string {
	switch {
	case strings.HasSuffix(name, ".sst"):
		return "sstables"
	case strings.HasSuffix(name, ".log"):
		return "WAL"
	case strings.HasPrefix(name, "MANIFEST-"):
		return "MANIFEST"
	case strings.HasPrefix(name, "OPTIONS-"):
		return "OPTIONS"
	}
	return "other"
}

// du sums the files under dir by kind, as du does: allocated blocks, not
// apparent size.
func du(dir string) map[string]fileUsage {
	out := map[string]fileUsage{}
	check(filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted by Pebble since the directory was read
		}
		if err != nil {
			return err
		}
		u := fileUsage{files: 1, apparent: info.Size(), allocated: info.Size()}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			u.allocated = st.Blocks * 512
		}
		k := out[fileKind(e.Name())]
		k.add(u)
		out[fileKind(e.Name())] = k
		return nil
	}))
	return out
}

// settleFiles waits, up to 10 s, until the files under dir stop changing:
// Pebble deletes the files a compaction made obsolete in the background.
func settleFiles(dir string) {
	prev := du(dir)["sstables"]
	for range 50 {
		time.Sleep(200 * time.Millisecond)
		cur := du(dir)["sstables"]
		if cur == prev {
			return
		}
		prev = cur
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// diskReport prints dir's real usage, its ratio to the OTLP protobuf bytes
// ingested (when known) and, with detail, the usage by kind of file and
// the store's tables' live bytes.
func diskReport(when, dir string, store *tracestore.Store, otlpBytes, spans int64, detail bool) {
	files := du(dir)
	var all fileUsage
	for _, u := range files {
		all.add(u)
	}
	line := fmt.Sprintf("disk %s: %s (du), %s apparent", when, mib(all.allocated), mib(all.apparent))
	if otlpBytes > 0 {
		line += fmt.Sprintf("; %.1f B/span, %.2f× the OTLP protobuf ingested (%s)",
			float64(all.allocated)/float64(spans), float64(all.allocated)/float64(otlpBytes), mib(otlpBytes))
	}
	fmt.Println(line)
	if !detail {
		return
	}
	for _, k := range fileKinds {
		if u, ok := files[k]; ok {
			fmt.Printf("  %-9s %3d files %10s du %10s apparent\n", k, u.files, mib(u.allocated), mib(u.apparent))
		}
	}
	usage, err := store.TableUsage()
	check(err)
	var sum uint64
	for _, t := range usage {
		sum += t.Bytes
	}
	fmt.Printf("  tables (live sstable bytes by key prefix, Pebble's estimate; %s in all):\n", mib(int64(sum)))
	for _, t := range usage {
		line := fmt.Sprintf("    %c %-22s %10s %5.1f%%", t.Prefix, t.Name, mib(int64(t.Bytes)), 100*float64(t.Bytes)/float64(max(sum, 1)))
		if spans > 0 {
			line += fmt.Sprintf(" %6.1f B/span %5.3f× OTLP", float64(t.Bytes)/float64(spans), float64(t.Bytes)/float64(otlpBytes))
		}
		fmt.Println(line)
	}
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}

// mix is SplitMix64's finalizer, a bijection: distinct inputs stay distinct.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
