package tailexemplar_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/lookout-dev/lookout/internal/app"
	"github.com/lookout-dev/lookout/tailexemplar"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLookoutQueryExemplars exports a histogram with View through the SDK's
// OTLP/gRPC exporter into a Lookout started in-process, one export per
// interval, and reads /api/v1/query_exemplars: every bucket series must hold,
// for every interval in which its bucket had measurements, exactly the
// largest of them (the latest of equal ones), and nothing else.
func TestLookoutQueryExemplars(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Lookout")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := app.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.OTLPGRPCListen, cfg.PrometheusListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.OTLPHTTPListen, cfg.TempoListen, cfg.UIListen = "", "", ""
	cfg.ShutdownTimeout = 10 * time.Second
	lookout, err := app.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- lookout.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("lookout: %v", err)
		}
	})
	<-lookout.Ready()

	exp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(lookout.OTLPGRPCAddr()), otlpmetricgrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "tail-e2e"))),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithView(tailexemplar.View("tail.e2e.duration")),
	)
	defer mp.Shutdown(context.Background())
	bounds := []float64{0.1, 0.25, 0.5, 1, 2.5, 5}
	h, err := mp.Meter("t").Float64Histogram("tail.e2e.duration", metric.WithExplicitBucketBoundaries(bounds...))
	if err != nil {
		t.Fatal(err)
	}

	// want maps the trace ID of each (series, bucket, interval)'s largest
	// measurement to its bucket's le and value.
	type kept struct {
		country, le string
		value       float64
	}
	want := map[string]kept{}
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Now()
	for range 6 { // intervals
		type key struct {
			country string
			bucket  int
		}
		largest := map[key]string{}
		values := map[string]float64{}
		for range 400 {
			country := []string{"US", "DE"}[rng.IntN(2)]
			// Mostly fast, a slow tail; ms resolution makes ties.
			v := float64(int(rng.ExpFloat64()*150)) / 1000
			if rng.IntN(50) == 0 {
				v = 5 + float64(rng.IntN(3000))/1000
			}
			var tid trace.TraceID
			for i := range tid {
				tid[i] = byte(rng.Uint32())
			}
			sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
			h.Record(trace.ContextWithSpanContext(ctx, sc), v, metric.WithAttributes(attribute.String("country", country)))
			id := hex.EncodeToString(tid[:])
			values[id] = v
			k := key{country, sort.SearchFloat64s(bounds, v)}
			if cur, ok := largest[k]; !ok || v >= values[cur] {
				largest[k] = id
			}
		}
		for k, id := range largest {
			le := "+Inf"
			if k.bucket < len(bounds) {
				le = fmt.Sprint(bounds[k.bucket])
			}
			want[id] = kept{k.country, le, values[id]}
		}
		if err := mp.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
		// Exemplar timestamps are in milliseconds: keep intervals apart.
		time.Sleep(5 * time.Millisecond)
	}

	client, err := promapi.NewClient(promapi.Config{Address: "http://" + lookout.PrometheusAddr()})
	if err != nil {
		t.Fatal(err)
	}
	api := promv1.NewAPI(client)
	// The exemplar index is written off the request path: poll until all
	// arrived, or a minute passed.
	var got map[string]kept
	var extra []string
	for deadline := time.Now().Add(time.Minute); ; {
		res, err := api.QueryExemplars(ctx, `tail_e2e_duration_bucket{job="tail-e2e"}`, start.Add(-time.Minute), time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		got, extra = map[string]kept{}, nil
		for _, series := range res {
			for _, e := range series.Exemplars {
				id := string(e.Labels["trace_id"])
				k := kept{string(series.SeriesLabels["country"]), string(series.SeriesLabels["le"]), float64(e.Value)}
				if _, dup := got[id]; dup {
					extra = append(extra, fmt.Sprintf("%s twice", id))
				}
				got[id] = k
			}
		}
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for id, w := range want {
		if g, ok := got[id]; !ok {
			t.Errorf("largest measurement %+v (trace %s) is not an exemplar", w, id)
		} else if g != w {
			t.Errorf("trace %s: exemplar %+v, want %+v", id, g, w)
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			extra = append(extra, fmt.Sprintf("%s %+v", id, g))
		}
	}
	if len(extra) > 0 {
		t.Errorf("exemplars that are not the largest of their bucket and interval: %v", extra)
	}
	t.Logf("%d exemplars, each the largest of its series, bucket and interval", len(got))
}
