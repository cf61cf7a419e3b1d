package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/lookout-dev/lookout/internal/app"
	"github.com/lookout-dev/lookout/webstore/shop"
)

// loopbackConfig is Lookout's default configuration on loopback ports
// chosen by the system, with a temporary data directory.
func loopbackConfig(t *testing.T) app.Config {
	t.Helper()
	lc := app.DefaultConfig()
	lc.DataDir = t.TempDir()
	lc.OTLPGRPCListen, lc.OTLPHTTPListen = "127.0.0.1:0", "127.0.0.1:0"
	lc.PrometheusListen, lc.TempoListen, lc.UIListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	return lc
}

// startStack runs Lookout with lc and the real shop exporting to it over
// OTLP/gRPC every 2 s. The test's cleanup stops the shop, then Lookout;
// cleanups the test registers later (e.g. stopping traffic) run first.
func startStack(t *testing.T, lc app.Config, logger *slog.Logger) (*app.App, *shop.Shop) {
	t.Helper()
	lookout, err := app.New(lc, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	lookoutDone := make(chan error, 1)
	go func() { lookoutDone <- lookout.Run(ctx) }()
	<-lookout.Ready()

	sc := shop.DefaultConfig()
	sc.DataDir = t.TempDir()
	sc.MainListen, sc.PaymentsListen, sc.ProviderListen, sc.InventoryListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	sc.Telemetry.Endpoint = "http://" + lookout.OTLPGRPCAddr()
	sc.Telemetry.Protocol = "grpc"
	sc.Telemetry.MetricInterval = 2 * time.Second
	s, err := shop.Start(ctx, sc, logger)
	if err != nil {
		cancel()
		<-lookoutDone
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		_ = s.Shutdown(sctx)
		cancel()
		if err := <-lookoutDone; err != nil {
			t.Errorf("lookout: %v", err)
		}
	})
	return lookout, s
}
