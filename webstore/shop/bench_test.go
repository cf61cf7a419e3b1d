package shop

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lookout-dev/lookout/webstore/telemetry"
)

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCheckout measures POST /checkout end to end through the four
// services (real loopback HTTP, real SQLite), with telemetry off (no-op
// providers) and on (traces, metrics and exemplars exported over OTLP/gRPC
// to an in-process receiver). Compare the two with benchstat.
func BenchmarkCheckout(b *testing.B) {
	for _, mode := range []string{"off", "on"} {
		b.Run("telemetry="+mode, func(b *testing.B) {
			cfg := testConfig(b)
			if mode == "on" {
				// The receiver runs in its own process: its CPU is the
				// backend's, not the shop's.
				addr := startOTLPSinkProcess(b)
				cfg.Telemetry = telemetry.Config{Endpoint: addr, Protocol: telemetry.ProtocolGRPC, MetricInterval: 10 * time.Second}
			}
			s, err := Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Shutdown(context.Background())
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()
			var next atomic.Int64
			url := s.MainURL() + "/checkout"
			b.ReportAllocs()
			// Enough concurrent shoppers to keep both cores busy, so the
			// throughput reflects CPU cost rather than loopback latency.
			b.SetParallelism(8)
			cpu0 := cpuTime(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					// Spread lines over the catalog so stock lasts.
					p := next.Add(1)%40 + 1
					body := fmt.Sprintf(`{"items":[{"product_id":%d,"quantity":1}],"country":"US","payment_method":"card"}`, p)
					resp, err := client.Post(url, "application/json", strings.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						b.Errorf("checkout: HTTP %d", resp.StatusCode)
						return
					}
				}
			})
			b.StopTimer()
			// Process CPU per checkout: robust to a busy machine; it
			// includes the exporters' background work.
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
