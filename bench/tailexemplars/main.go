// Command tailexemplars replays a jittered slow-payment incident through the
// OpenTelemetry Go SDK into Lookout, once with the SDK's default exemplar
// reservoir and once with tailexemplar's, and reports how many of the
// slowest requests Lookout can show as exemplars.
//
// The stream: -intervals export intervals of -requests payments each, spread
// over -series series (country), each payment in its own sampled
// process_payment span. Payments take a log-normal time (median 120 ms);
// during the incident (-incident-intervals in the middle of the run) a
// -slow-share of them wait for a slow provider, -provider-latency plus a
// uniform jitter in [0, -provider-jitter), as webstore's faults do. The
// durations go to webstore.payment.duration (WebStore's buckets) through
// the real OTLP/gRPC exporter into a Lookout started in-process; the
// MeterProvider is flushed at the end of every interval. Afterwards
// /api/v1/query_exemplars over the run gives the exemplars Lookout holds.
//
// Reported per run and reservoir: exemplars in Lookout; how many of the
// slowest 1% and 0.1% of payments are among them, next to the most any
// reservoir keeping one exemplar per bucket could show (the number of
// series × bucket × interval cells holding one of them); in how many
// intervals the slowest payment is an exemplar; whether the run's slowest is.
//
//	go run ./bench/tailexemplars
//	go run ./bench/tailexemplars -runs 5 -slow-share 0.02
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lookout-dev/lookout/internal/app"
	"github.com/lookout-dev/lookout/tailexemplar"
	"github.com/lookout-dev/lookout/webstore/shop"
)

var (
	flagIntervals = flag.Int("intervals", 30, "export intervals (10 s each in WebStore; here one flush each)")
	flagRequests  = flag.Int("requests", 2000, "payments per interval")
	flagSeries    = flag.Int("series", 3, "series (country values) the payments spread over")
	flagIncident  = flag.Int("incident-intervals", 10, "intervals of the incident, in the middle of the run")
	flagSlowShare = flag.Float64("slow-share", 0.08, "share of payments that wait for the slow provider during the incident")
	flagLatency   = flag.Duration("provider-latency", 2*time.Second, "the slow provider's latency")
	flagJitter    = flag.Duration("provider-jitter", 6*time.Second, "uniform extra latency in [0, this) of the slow provider")
	flagRuns      = flag.Int("runs", 3, "runs; each replays a new stream (seed+run) with every reservoir")
	flagSeed      = flag.Uint64("seed", 1, "random seed of the first run's stream")
	flagModes     = flag.String("reservoirs", "sdk,tail", "reservoirs to compare: sdk (the SDK's default) and tail")
)

const metricName = "webstore.payment.duration"

// payment is one request of the stream.
type payment struct {
	interval, series int
	seconds          float64
}

// stream draws the run's payments, interval by interval.
func stream(seed uint64) [][]payment {
	rng := rand.New(rand.NewPCG(seed, 0x7a11))
	incidentStart := (*flagIntervals - *flagIncident) / 2
	out := make([][]payment, *flagIntervals)
	for i := range out {
		incident := i >= incidentStart && i < incidentStart+*flagIncident
		for range *flagRequests {
			p := payment{interval: i, series: rng.IntN(*flagSeries)}
			p.seconds = 0.120 * math.Exp(0.5*rng.NormFloat64())
			if incident && rng.Float64() < *flagSlowShare {
				p.seconds = flagLatency.Seconds() + rng.Float64()*flagJitter.Seconds()
			}
			// Milliseconds, as a span's duration would be rounded: ties happen.
			p.seconds = math.Round(p.seconds*1000) / 1000
			out[i] = append(out[i], p)
		}
	}
	return out
}

// result is one replay's figures.
type result struct {
	requests, exported, exemplars int
	top1, top1Found, top1Bound    int
	top01, top01Found, top01Bound int
	intervalsMaxFound             int
	runMaxFound                   bool
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	modes := strings.Split(*flagModes, ",")
	for _, m := range modes {
		if m != "sdk" && m != "tail" {
			log.Fatalf("-reservoirs: unknown reservoir %q: want sdk or tail", m)
		}
	}
	ctx := context.Background()
	fmt.Printf("%d intervals x %d payments over %d series; incident: %d intervals, %.1f%% of payments wait %s + [0, %s)\n\n",
		*flagIntervals, *flagRequests, *flagSeries, *flagIncident, 100**flagSlowShare, *flagLatency, *flagJitter)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\treservoir\tpayments\texemplars\tslowest 1% found\tof at most\tslowest 0.1% found\tof at most\tintervals' slowest found\trun's slowest found\t")
	type total struct{ exemplars, top1, top1Found, top01, top01Found, intervalsMaxFound, runsMaxFound int }
	totals := map[string]*total{}
	for run := range *flagRuns {
		payments := stream(*flagSeed + uint64(run))
		for _, mode := range modes {
			r, err := replay(ctx, mode, payments)
			if err != nil {
				log.Fatalf("run %d, %s: %v", run+1, mode, err)
			}
			if r.exemplars < r.exported {
				log.Printf("run %d, %s: Lookout holds %d of the %d exemplars exported", run+1, mode, r.exemplars, r.exported)
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d/%d (%.1f%%)\t%d\t%d/%d (%.1f%%)\t%d\t%d/%d\t%v\t\n", run+1, mode, r.requests, r.exemplars,
				r.top1Found, r.top1, pct(r.top1Found, r.top1), r.top1Bound,
				r.top01Found, r.top01, pct(r.top01Found, r.top01), r.top01Bound,
				r.intervalsMaxFound, *flagIntervals, r.runMaxFound)
			t := totals[mode]
			if t == nil {
				t = &total{}
				totals[mode] = t
			}
			t.exemplars += r.exemplars
			t.top1 += r.top1
			t.top1Found += r.top1Found
			t.top01 += r.top01
			t.top01Found += r.top01Found
			t.intervalsMaxFound += r.intervalsMaxFound
			if r.runMaxFound {
				t.runsMaxFound++
			}
		}
	}
	for _, mode := range modes {
		t := totals[mode]
		fmt.Fprintf(tw, "all\t%s\t\t%d\t%d/%d (%.1f%%)\t\t%d/%d (%.1f%%)\t\t%d/%d\t%d/%d\t\n", mode, t.exemplars,
			t.top1Found, t.top1, pct(t.top1Found, t.top1), t.top01Found, t.top01, pct(t.top01Found, t.top01),
			t.intervalsMaxFound, *flagIntervals**flagRuns, t.runsMaxFound, *flagRuns)
	}
	tw.Flush()
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// replay sends payments through the SDK with the reservoir mode into a new
// Lookout and scores the exemplars Lookout then holds.
func replay(ctx context.Context, mode string, payments [][]payment) (result, error) {
	dir, err := os.MkdirTemp("", "tailexemplars-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	cfg := app.DefaultConfig()
	cfg.DataDir = dir
	cfg.OTLPGRPCListen, cfg.PrometheusListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.OTLPHTTPListen, cfg.TempoListen, cfg.UIListen = "", "", ""
	lookout, err := app.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return result{}, fmt.Errorf("start lookout: %w", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- lookout.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			log.Printf("lookout: %v", err)
		}
	}()
	<-lookout.Ready()

	exp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(lookout.OTLPGRPCAddr()), otlpmetricgrpc.WithInsecure())
	if err != nil {
		return result{}, err
	}
	counting := &countingExporter{Exporter: exp, ids: map[string]bool{}}
	opts := []sdkmetric.Option{
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "main-service"))),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(counting, sdkmetric.WithInterval(time.Hour))),
	}
	if mode == "tail" {
		opts = append(opts, sdkmetric.WithView(tailexemplar.View(metricName)))
	}
	mp := sdkmetric.NewMeterProvider(opts...)
	defer mp.Shutdown(context.Background())
	tp := sdktrace.NewTracerProvider() // sampled spans, exported nowhere: their IDs are what counts
	defer tp.Shutdown(context.Background())
	tracer := tp.Tracer("payments")
	h, err := mp.Meter("webstore").Float64Histogram(metricName, metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(shop.PaymentDurationBuckets...))
	if err != nil {
		return result{}, err
	}
	seriesOpts := make([]metric.RecordOption, *flagSeries)
	for i := range seriesOpts {
		seriesOpts[i] = metric.WithAttributeSet(attribute.NewSet(
			attribute.String("country", fmt.Sprintf("C%02d", i)), attribute.String("payment_method", "card")))
	}

	traceIDs := make([][]string, len(payments))
	start := time.Now()
	for i, interval := range payments {
		for _, p := range interval {
			pctx, span := tracer.Start(ctx, "process_payment")
			h.Record(pctx, p.seconds, seriesOpts[p.series])
			span.End()
			traceIDs[i] = append(traceIDs[i], span.SpanContext().TraceID().String())
		}
		if err := mp.ForceFlush(ctx); err != nil {
			return result{}, fmt.Errorf("export: %w", err)
		}
		// Exemplar timestamps are in milliseconds; Prometheus refuses one
		// not later than its series' last. Keep intervals apart.
		time.Sleep(10 * time.Millisecond)
	}

	// The exemplar index is written off the request path: poll until it
	// holds every exported exemplar, or 30 s passed.
	client, err := promapi.NewClient(promapi.Config{Address: "http://" + lookout.PrometheusAddr()})
	if err != nil {
		return result{}, err
	}
	api := promv1.NewAPI(client)
	exemplars := map[string]bool{}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		res, err := api.QueryExemplars(ctx, `webstore_payment_duration_bucket{job="main-service"}`, start.Add(-time.Minute), time.Now().Add(time.Minute))
		if err != nil {
			return result{}, fmt.Errorf("query_exemplars: %w", err)
		}
		clear(exemplars)
		for _, s := range res {
			for _, e := range s.Exemplars {
				exemplars[string(e.Labels["trace_id"])] = true
			}
		}
		if len(exemplars) >= counting.distinct() || time.Now().After(deadline) {
			break
		}
	}
	return score(payments, traceIDs, exemplars, counting.distinct()), nil
}

// score computes the figures of one replay.
func score(payments [][]payment, traceIDs [][]string, exemplars map[string]bool, exported int) result {
	type ref struct {
		p  payment
		id string
	}
	var all []ref
	r := result{exported: exported, exemplars: len(exemplars)}
	for i, interval := range payments {
		var slowest ref
		for j, p := range interval {
			x := ref{p, traceIDs[i][j]}
			all = append(all, x)
			if j == 0 || p.seconds >= slowest.p.seconds {
				slowest = x
			}
		}
		if len(interval) > 0 && exemplars[slowest.id] {
			r.intervalsMaxFound++
		}
	}
	r.requests = len(all)
	// Slowest first; of equal durations the later payment first, the one a
	// reservoir keeping ties' latest shows.
	slices.Reverse(all)
	slices.SortStableFunc(all, func(a, b ref) int { return cmp.Compare(b.p.seconds, a.p.seconds) })
	r.runMaxFound = len(all) > 0 && exemplars[all[0].id]
	top := func(n int) (found, bound int) {
		type cell struct{ interval, series, bucket int }
		cells := map[cell]bool{}
		for _, x := range all[:n] {
			if exemplars[x.id] {
				found++
			}
			cells[cell{x.p.interval, x.p.series, sort.SearchFloat64s(shop.PaymentDurationBuckets, x.p.seconds)}] = true
		}
		return found, len(cells)
	}
	r.top1 = max(len(all)/100, 1)
	r.top1Found, r.top1Bound = top(r.top1)
	r.top01 = max(len(all)/1000, 1)
	r.top01Found, r.top01Bound = top(r.top01)
	return r
}

// countingExporter counts the distinct exemplars (by trace ID) it exports.
type countingExporter struct {
	sdkmetric.Exporter
	mu  sync.Mutex
	ids map[string]bool
}

func (e *countingExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	e.mu.Lock()
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok {
				for _, dp := range h.DataPoints {
					for _, ex := range dp.Exemplars {
						e.ids[fmt.Sprintf("%x", ex.TraceID)] = true
					}
				}
			}
		}
	}
	e.mu.Unlock()
	return e.Exporter.Export(ctx, rm)
}

func (e *countingExporter) distinct() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.ids)
}
