// Command webstore-bench is a whole-system benchmark of WebStore: it runs
// the shop in-process, drives it with the traffic generator at a fixed rate
// (realistic sessions: browse, cart, checkout), once with telemetry off and
// once with telemetry on (OTLP/gRPC to a counting receiver in a child
// process), and reports process CPU per session and latency percentiles.
//
//	go run ./bench/webstore -rate 100 -duration 20s
//
// -cpuprofile PREFIX writes a CPU profile of each run to PREFIX-<n>-<mode>.prof.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/lookout-dev/lookout/webstore/shop"
	"github.com/lookout-dev/lookout/webstore/telemetry"
	"github.com/lookout-dev/lookout/webstore/traffic"
)

func main() {
	sink := flag.Bool("sink", false, "internal: run as the counting OTLP receiver")
	rate := flag.Float64("rate", 100, "shopper sessions per second")
	duration := flag.Duration("duration", 20*time.Second, "length of each run")
	modes := flag.String("modes", "off,on", "telemetry modes to run, in order")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of each run to `prefix`-<n>-<mode>.prof")
	flag.Parse()
	if *sink {
		runSink()
		return
	}
	for i, mode := range strings.Split(*modes, ",") {
		profile := ""
		if *cpuProfile != "" {
			profile = fmt.Sprintf("%s-%d-%s.prof", *cpuProfile, i+1, mode)
		}
		if err := runOnce(mode, *rate, *duration, profile); err != nil {
			fmt.Fprintf(os.Stderr, "webstore-bench %s: %v\n", mode, err)
			os.Exit(1)
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runOnce(mode string, rate float64, duration time.Duration, profile string) error {
	dir, err := os.MkdirTemp("", "webstore-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := shop.DefaultConfig()
	cfg.DataDir = dir
	cfg.MainListen, cfg.PaymentsListen, cfg.ProviderListen, cfg.InventoryListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	switch mode {
	case "off":
		cfg.Telemetry = telemetry.Config{Disabled: true}
	case "on":
		addr, stop, err := startSinkProcess()
		if err != nil {
			return err
		}
		defer stop()
		cfg.Telemetry = telemetry.Config{Endpoint: addr, Protocol: telemetry.ProtocolGRPC}
	default:
		return fmt.Errorf("unknown mode %q: want off or on", mode)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	s, err := shop.Start(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer s.Shutdown(context.Background())
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cpu0, t0 := cpuTime(), time.Now()
	sum, err := traffic.Run(ctx, traffic.Config{
		Target: s.MainURL(), Rate: rate, Duration: duration, Scenario: "normal", MaxInFlight: 1000, ProgressInterval: time.Hour,
	}, nil)
	if err != nil {
		return err
	}
	if err := s.ForceFlush(ctx); err != nil && mode == "on" {
		return fmt.Errorf("flush: %w", err)
	}
	cpu, wall := cpuTime()-cpu0, time.Since(t0)
	fmt.Printf("telemetry=%s rate=%.0f/s duration=%s: sessions=%d requests=%d checkouts=%v errors=%d\n",
		mode, rate, duration, sum.Sessions, sum.Requests, sum.Checkouts, sum.Errors)
	fmt.Printf("  cpu=%.2fs (%.0f%% of one core) cpu/session=%.0fµs cpu/request=%.0fµs\n",
		cpu.Seconds(), 100*cpu.Seconds()/wall.Seconds(),
		float64(cpu.Microseconds())/float64(max(sum.Sessions, 1)), float64(cpu.Microseconds())/float64(max(sum.Requests, 1)))
	fmt.Printf("  checkout latency %s\n  request latency  %s\n", sum.CheckoutLatency, sum.RequestLatency)
	return nil
}

// startSinkProcess re-executes this binary as the receiver, so its CPU is
// not counted as the shop's.
func startSinkProcess() (string, func(), error) {
	cmd := exec.Command(os.Args[0], "-sink")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("receiver process: %w", err)
	}
	return strings.TrimSpace(addr), stop, nil
}

type traceSink struct {
	ptraceotlp.UnimplementedGRPCServer
	spans *atomic.Int64
}

func (t *traceSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	t.spans.Add(int64(req.Traces().SpanCount()))
	return ptraceotlp.NewExportResponse(), nil
}

type metricSink struct {
	pmetricotlp.UnimplementedGRPCServer
	points *atomic.Int64
}

func (m *metricSink) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	m.points.Add(int64(req.Metrics().DataPointCount()))
	return pmetricotlp.NewExportResponse(), nil
}

// runSink serves a counting OTLP/gRPC receiver until stdin closes, then
// prints what it received to stderr.
func runSink() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var spans, points atomic.Int64
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, &traceSink{spans: &spans})
	pmetricotlp.RegisterGRPCServer(srv, &metricSink{points: &points})
	go func() { _ = srv.Serve(ln) }()
	fmt.Println(ln.Addr().String())
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-done:
	case <-sig:
	}
	srv.GracefulStop()
	fmt.Fprintf(os.Stderr, "  receiver: %d spans, %d metric data points\n", spans.Load(), points.Load())
}
