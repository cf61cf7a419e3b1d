// Command webstore runs the instrumented WebStore shop (serve) and a shopper
// traffic generator (traffic). See docs/webstore.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lookout-dev/lookout/webstore/shop"
	"github.com/lookout-dev/lookout/webstore/traffic"
)

const usage = `webstore: an e-commerce shop instrumented with OpenTelemetry (traces, metrics, exemplars).

Usage:
  webstore serve   [flags]   run main-service, payments-service, payment-provider and inventory-service
  webstore traffic [flags]   send realistic shopper sessions to a running shop
  webstore demo    [flags]   Lookout + the shop + traffic + a scheduled incident, in one process

Run "webstore <command> -h" for the flags of a command.
Telemetry goes to OTLP as set by the standard OTEL_* environment variables
(default: OTLP/gRPC to 127.0.0.1:4317).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr, logger)
	case "traffic":
		err = runTraffic(ctx, args[1:], stdout, stderr)
	case "demo":
		err = runDemo(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "webstore: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "webstore %s: %v\n", args[0], err)
		return 1
	}
}

var errUsage = errors.New("usage error")

// ServeFlags registers the serve flags on fs, filling cfg. The demo command reuses it.
func ServeFlags(fs *flag.FlagSet, cfg *shop.Config) {
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory of the SQLite database (created and seeded on first start)")
	listenFlags(fs, cfg)
	fs.DurationVar(&cfg.Faults.ProviderLatency, "provider-latency", cfg.Faults.ProviderLatency, "fault: extra payment-provider latency (e.g. 7s)")
	fs.DurationVar(&cfg.Faults.ProviderJitter, "provider-jitter", cfg.Faults.ProviderJitter, "fault: extra random payment-provider latency in [0, jitter)")
	fs.Float64Var(&cfg.Faults.ProviderTimeoutRate, "provider-timeout-rate", cfg.Faults.ProviderTimeoutRate, "fault: share (0..1) of provider calls that hang until the payment timeout")
	fs.Float64Var(&cfg.Faults.PaymentFailureRate, "payment-failure-rate", cfg.Faults.PaymentFailureRate, "fault: share (0..1) of charges the provider declines")
	fs.DurationVar(&cfg.Faults.GetProductLatency, "get-product-latency", cfg.Faults.GetProductLatency, "fault: extra latency of every get_product query")
	fs.IntVar(&cfg.Faults.QuantityMultiplier, "quantity-multiplier", cfg.Faults.QuantityMultiplier, "fault: multiply every ordered quantity (the \"500x\" UI bug); 1 = off")
	fs.StringVar(&cfg.Faults.ScopePaymentMethod, "scope-payment-method", cfg.Faults.ScopePaymentMethod, "fault scope: apply the payment-provider faults only to this payment method (e.g. paypal)")
	fs.StringVar(&cfg.Faults.ScopeCountry, "scope-country", cfg.Faults.ScopeCountry, "fault scope: apply the payment-provider faults only to this country (e.g. DE)")
	fs.DurationVar(&cfg.PaymentTimeout, "payment-timeout", cfg.PaymentTimeout, "how long payments-service waits for the provider")
	fs.DurationVar(&cfg.RestockInterval, "restock-interval", cfg.RestockInterval, "how often stock below half its target is restocked; 0 disables")
}

// listenFlags registers the four services' listen addresses on fs.
func listenFlags(fs *flag.FlagSet, cfg *shop.Config) {
	fs.StringVar(&cfg.MainListen, "main-listen", cfg.MainListen, "main-service listen address")
	fs.StringVar(&cfg.PaymentsListen, "payments-listen", cfg.PaymentsListen, "payments-service listen address")
	fs.StringVar(&cfg.ProviderListen, "provider-listen", cfg.ProviderListen, "payment-provider listen address")
	fs.StringVar(&cfg.InventoryListen, "inventory-listen", cfg.InventoryListen, "inventory-service listen address")
}

func serve(ctx context.Context, args []string, stderr io.Writer, logger *slog.Logger) error {
	cfg := shop.DefaultConfig()
	fs := flag.NewFlagSet("webstore serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ServeFlags(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "webstore serve: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	s, err := shop.Start(ctx, cfg, logger)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "webstore is serving on %s (faults: POST %s/admin/faults); Ctrl-C stops it\n", s.MainURL(), s.MainURL())
	<-ctx.Done()
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = s.Shutdown(sctx)
	if onlyTelemetryFlush(err) {
		// Telemetry that could not be delivered at exit is worth a warning,
		// not a failed exit: the shop itself stopped cleanly.
		logger.Warn("some telemetry was not delivered at shutdown", "err", err)
		return nil
	}
	return err
}

// onlyTelemetryFlush reports whether err, as returned by Shutdown (a join of
// errors), is made only of telemetry-flush errors.
func onlyTelemetryFlush(err error) bool {
	if err == nil {
		return false
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return errors.Is(err, shop.ErrTelemetryFlush)
	}
	for _, e := range j.Unwrap() {
		if !errors.Is(e, shop.ErrTelemetryFlush) {
			return false
		}
	}
	return true
}

// TrafficFlags registers the traffic flags on fs, filling cfg.
func TrafficFlags(fs *flag.FlagSet, cfg *traffic.Config) {
	fs.StringVar(&cfg.Target, "target", cfg.Target, "main-service base URL")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "shopper sessions started per second")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to run (ignored when --requests is set)")
	fs.IntVar(&cfg.Requests, "requests", cfg.Requests, "stop after this many sessions (0: use --duration)")
	fs.StringVar(&cfg.Scenario, "scenario", cfg.Scenario, "one of "+strings.Join(traffic.ScenarioNames(), ", "))
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", cfg.MaxInFlight, "most sessions running at once; more are skipped and counted")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", cfg.AllowRemote, "allow a target that is not on loopback")
}

func runTraffic(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := traffic.DefaultConfig()
	fs := flag.NewFlagSet("webstore traffic", flag.ContinueOnError)
	fs.SetOutput(stderr)
	TrafficFlags(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "webstore traffic: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	sum, err := traffic.Run(ctx, cfg, stderr)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	fmt.Fprint(stdout, sum.String())
	return nil
}
