// Command lookoutdev is the lookout binary's flags and assembly plus the
// trace store, the Tempo API and the web UI, wired the way cmd/lookout wires
// them. It exists so the UI's browser tests and benchmarks can run while the
// real wiring is in flux; with a cmd/lookout that serves the UI, use that
// (web/e2e uses ../bin/lookout unless LOOKOUT_BIN says otherwise).
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
	"path/filepath"
	"syscall"

	"github.com/lookout-dev/lookout/internal/app"
	"github.com/lookout-dev/lookout/internal/tempoapi"
	"github.com/lookout-dev/lookout/internal/tracestore"
	"github.com/lookout-dev/lookout/internal/ui"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg := app.DefaultConfig()
	fs := flag.NewFlagSet("lookoutdev", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "lookoutdev: invalid flags:\n%v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.SlogLevel()}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	traces, err := tracestore.Open(filepath.Join(cfg.DataDir, "traces"), tracestore.DefaultOptions(), logger, nil)
	if err != nil {
		logger.Error("open trace store", "err", err)
		return 1
	}
	a, err := app.NewWithOptions(cfg, logger, app.Options{
		TracesSink:   traces,
		TempoHandler: tempoapi.NewHandler(tempoapi.Options{Traces: traces, Logger: logger}),
		UIHandler:    ui.NewHandler(ui.Options{Logger: logger}),
		Closers:      []io.Closer{traces},
	})
	if err != nil {
		logger.Error("lookoutdev failed to start", "err", err)
		_ = traces.Close()
		return 1
	}
	if err := a.Run(ctx); err != nil {
		logger.Error("lookoutdev stopped with an error", "err", err)
		return 1
	}
	return 0
}
