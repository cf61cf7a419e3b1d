// Command lookout receives OpenTelemetry data over OTLP and serves it through
// the Prometheus and Tempo HTTP APIs and a web UI. It runs with no arguments;
// see `lookout -h` for flags.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/lookout-dev/lookout/internal/buildinfo"

	"github.com/lookout-dev/lookout/internal/app"
)

// defaultGOGC matches Prometheus's default runtime.gogc.
const defaultGOGC = 75

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg := app.DefaultConfig()
	fs := flag.NewFlagSet("lookout", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		b := buildinfo.Get()
		fmt.Printf("lookout %s (revision %s, %s, %s)\n", b.Version, cmp.Or(b.Revision, "unknown"), cmp.Or(b.Date, "date unknown"), runtime.Version())
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "lookout: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "lookout: invalid flags:\n%v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.SlogLevel()}))
	if os.Getenv("GOMEMLIMIT") == "" && cfg.MemoryLimit > 0 {
		// The garbage collector works harder as the heap nears the limit,
		// as with GOMEMLIMIT; the receivers refuse new data above 90% of it.
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	if os.Getenv("GOGC") == "" {
		// Prometheus's server runs with GOGC=75 unless told otherwise; so
		// does Lookout, trading a little CPU for a smaller heap.
		debug.SetGCPercent(defaultGOGC)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("lookout starting", "version", buildinfo.Get().Version)
	a, err := app.New(cfg, logger)
	if err != nil {
		logger.Error("lookout failed to start", "err", err)
		return 1
	}
	if err := a.Run(ctx); err != nil {
		logger.Error("lookout stopped with an error", "err", err)
		return 1
	}
	return 0
}
