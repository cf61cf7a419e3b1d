package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lookout-dev/lookout/internal/app"
	"github.com/lookout-dev/lookout/webstore/faults"
	"github.com/lookout-dev/lookout/webstore/shop"
	"github.com/lookout-dev/lookout/webstore/traffic"
)

// demoConfig is `webstore demo`: Lookout, the shop, traffic and a scheduled
// incident, all in one process.
type demoConfig struct {
	DataDir   string
	Lookout   app.Config
	Shop      shop.Config
	Traffic   traffic.Config
	Scenario  string        // incident kind: a traffic scenario name, or "none"
	Start     time.Duration // first incident after start; 0 disables incidents
	Every     time.Duration // incident period
	Length    time.Duration // incident length
	AlertPoll time.Duration
}

func defaultDemoConfig() demoConfig {
	lc := app.DefaultConfig()
	sc := shop.DefaultConfig()
	tc := traffic.DefaultConfig()
	tc.Rate = 4
	tc.Duration = 100 * 365 * 24 * time.Hour // until Ctrl-C
	tc.ProgressInterval = 15 * time.Second
	return demoConfig{
		DataDir: "./demo-data", Lookout: lc, Shop: sc, Traffic: tc,
		Scenario: "slow-payments", Start: 2 * time.Minute, Every: 12 * time.Minute, Length: 3 * time.Minute,
		AlertPoll: 10 * time.Second,
	}
}

func demoFlags(fs *flag.FlagSet, c *demoConfig) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for all demo state (lookout/ and webstore/ inside)")
	fs.StringVar(&c.Lookout.UIListen, "ui.listen", c.Lookout.UIListen, "Lookout web UI")
	fs.StringVar(&c.Lookout.PrometheusListen, "prometheus.listen", c.Lookout.PrometheusListen, "Lookout's Prometheus HTTP API")
	fs.StringVar(&c.Lookout.TempoListen, "tempo.listen", c.Lookout.TempoListen, "Lookout's Tempo HTTP API")
	fs.StringVar(&c.Lookout.OTLPGRPCListen, "otlp.grpc-listen", c.Lookout.OTLPGRPCListen, "Lookout's OTLP/gRPC receiver (the shop exports here)")
	fs.StringVar(&c.Lookout.OTLPHTTPListen, "otlp.http-listen", c.Lookout.OTLPHTTPListen, "Lookout's OTLP/HTTP receiver")
	fs.StringVar(&c.Lookout.Rules, "rules", c.Lookout.Rules, "Prometheus rule files (glob); empty uses the built-in rules/webstore.yml")
	listenFlags(fs, &c.Shop)
	fs.Float64Var(&c.Traffic.Rate, "rate", c.Traffic.Rate, "shopper sessions started per second")
	fs.StringVar(&c.Scenario, "scenario", c.Scenario, "incident to replay: "+strings.Join(incidentScenarios(), ", ")+", or none")
	fs.DurationVar(&c.Start, "incident-start", c.Start, "when the first incident starts; 0 disables incidents")
	fs.DurationVar(&c.Every, "incident-every", c.Every, "time from one incident's start to the next")
	fs.DurationVar(&c.Length, "incident-duration", c.Length, "how long each incident lasts")
}

func (c demoConfig) validate() error {
	var errs []error
	if c.Scenario != "none" {
		if f, ok := traffic.Scenarios[c.Scenario]; !ok || f == nil {
			errs = append(errs, fmt.Errorf("--scenario %q: want one of %s, none", c.Scenario, strings.Join(incidentScenarios(), ", ")))
		}
	}
	if c.Start < 0 || c.Length < 0 || c.Every < 0 {
		errs = append(errs, errors.New("incident durations must not be negative"))
	}
	if c.Start > 0 && c.Scenario != "none" && (c.Length == 0 || c.Every < c.Length) {
		errs = append(errs, fmt.Errorf("--incident-every (%s) must be at least --incident-duration (%s), which must be positive", c.Every, c.Length))
	}
	return errors.Join(errs...)
}

// incidentScenarios lists the traffic scenarios that set faults, in
// traffic.ScenarioNames order: the ones the demo can replay as an incident.
func incidentScenarios() []string {
	var names []string
	for _, n := range traffic.ScenarioNames() {
		if traffic.Scenarios[n] != nil {
			names = append(names, n)
		}
	}
	return names
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := defaultDemoConfig()
	fs := flag.NewFlagSet("webstore demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	demoFlags(fs, &c)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "webstore demo: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	if err := c.validate(); err != nil {
		fmt.Fprintf(stderr, "webstore demo: %v\n", err)
		return errUsage
	}
	c.Lookout.DataDir = filepath.Join(c.DataDir, "lookout")
	c.Shop.DataDir = filepath.Join(c.DataDir, "webstore")
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return err
	}
	// Logs go to a file so the terminal shows the story; errors still
	// reach stderr.
	logFile, err := os.OpenFile(filepath.Join(c.DataDir, "demo.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	logger := slog.New(teeHandler{
		slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}),
		// Failed checkouts are the point of an incident: they are logged
		// as warnings to the file, not to the terminal.
		slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}),
	})
	say := func(format string, a ...any) {
		fmt.Fprintf(stdout, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}

	lookout, err := app.New(c.Lookout, logger.With("component", "lookout"))
	if err != nil {
		return fmt.Errorf("start lookout: %w", err)
	}
	// Lookout outlives the shop so the shop's last telemetry reaches it:
	// on Ctrl-C traffic stops first, then the shop (flushing), then Lookout.
	lookoutCtx, stopLookout := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLookout()
	lookoutDone := make(chan error, 1)
	go func() { lookoutDone <- lookout.Run(lookoutCtx) }()
	select {
	case <-lookout.Ready():
	case err := <-lookoutDone:
		return fmt.Errorf("lookout: %w", err)
	}
	say("lookout up: OTLP %s (gRPC) %s (HTTP), Prometheus API http://%s, Tempo API http://%s",
		lookout.OTLPGRPCAddr(), lookout.OTLPHTTPAddr(), lookout.PrometheusAddr(), lookout.TempoAddr())

	if c.Shop.Telemetry.Endpoint == "" && os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" &&
		os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") == "" {
		c.Shop.Telemetry.Endpoint = "http://" + lookout.OTLPGRPCAddr()
		c.Shop.Telemetry.Protocol = "grpc"
	}
	if c.Shop.Telemetry.MetricInterval == 0 && os.Getenv("OTEL_METRIC_EXPORT_INTERVAL") == "" {
		c.Shop.Telemetry.MetricInterval = 5 * time.Second
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := shop.Start(runCtx, c.Shop, logger.With("component", "webstore"))
	if err != nil {
		stopLookout()
		<-lookoutDone
		return fmt.Errorf("start webstore: %w", err)
	}
	say("webstore up: main-service %s, payments-service %s, payment-provider %s, inventory-service %s",
		s.MainURL(), s.PaymentsURL(), s.ProviderURL(), s.InventoryURL())
	ui := "http://" + lookout.UIAddr()
	say("open %s/d/service-health  (also %s/services, %s/d/http-metrics, %s/explore, %s/search, %s/alerts)", ui, ui, ui, ui, ui, ui)
	if c.Start > 0 && c.Scenario != "none" {
		say("incident %q starts in %s and lasts %s, every %s (--incident-start 0 disables)", c.Scenario, c.Start, c.Length, c.Every)
	}

	var wg sync.WaitGroup
	c.Traffic.Target = s.MainURL()
	c.Traffic.Scenario = "normal"
	wg.Go(func() {
		sum, err := traffic.Run(runCtx, c.Traffic, prefixWriter{w: stdout, prefix: "traffic: "})
		if err != nil && !errors.Is(err, context.Canceled) && runCtx.Err() == nil {
			logger.Error("traffic stopped", "err", err)
		}
		say("traffic: %s", strings.TrimSpace(sum.String()))
	})
	if c.Start > 0 && c.Scenario != "none" {
		wg.Go(func() { runIncidents(runCtx, c, s, say) })
	}
	wg.Go(func() { watchAlerts(runCtx, "http://"+lookout.PrometheusAddr(), c.AlertPoll, say) })

	var runErr error
	select {
	case <-ctx.Done():
		say("stopping (Ctrl-C)")
	case runErr = <-lookoutDone:
		lookoutDone <- runErr
		say("lookout stopped: %v", runErr)
	}
	cancel()
	wg.Wait()
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	shopErr := s.Shutdown(sctx)
	if onlyTelemetryFlush(shopErr) {
		shopErr = nil
	}
	stopLookout()
	lookoutErr := <-lookoutDone
	if errors.Is(lookoutErr, context.Canceled) {
		lookoutErr = nil
	}
	if err := errors.Join(shopErr, lookoutErr); err != nil {
		return err
	}
	say("stopped cleanly; data kept in %s", c.DataDir)
	return nil
}

// runIncidents switches the scenario's faults on and off on schedule and
// puts the shop's faults back when it ends.
func runIncidents(ctx context.Context, c demoConfig, s *shop.Shop, say func(string, ...any)) {
	base := s.Faults()
	defer func() {
		if err := s.SetFaults(base); err != nil {
			say("could not restore faults: %v", err)
		}
	}()
	incident := *traffic.Scenarios[c.Scenario]
	wait := c.Start
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if err := s.SetFaults(mergeFaults(base, incident)); err != nil {
			say("incident: could not set faults: %v", err)
			return
		}
		say("INCIDENT ON: %s for %s (%s)", c.Scenario, c.Length, describeFaults(incident))
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.Length):
		}
		if err := s.SetFaults(base); err != nil {
			say("incident: could not restore faults: %v", err)
			return
		}
		say("incident off: %s; next in %s", c.Scenario, c.Every-c.Length)
		wait = c.Every - c.Length
	}
}

// mergeFaults lays the incident's faults over the base ones, scope included
// (see faults.Overlay).
func mergeFaults(base, in faults.Faults) faults.Faults { return faults.Overlay(base, in) }

// describeFaults renders an incident's faults for the terminal, e.g.
// "payment provider +7s–8s for payment_method=paypal".
func describeFaults(f faults.Faults) string { return f.Describe() }

// watchAlerts polls Lookout's own /api/v1/alerts, as any client would, and
// prints each change of an alert's state (counting its series) with the
// evidence of its highest-valued firing series.
func watchAlerts(ctx context.Context, promURL string, every time.Duration, say func(string, ...any)) {
	client := &http.Client{Timeout: 10 * time.Second}
	seen := map[string]string{}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		alerts, err := fetchAlerts(ctx, client, promURL)
		if err != nil {
			continue
		}
		type group struct {
			state    string
			n        int
			evidence string
		}
		groups := map[string]*group{}
		for _, a := range alerts {
			name := a.Labels["alertname"]
			g := groups[name]
			if g == nil {
				g = &group{}
				groups[name] = g
			}
			if a.State == "firing" || g.state == "" {
				g.state = a.State
			}
			g.n++
			if g.evidence == "" && a.State == "firing" && a.Annotations["evidence_summary"] != "" {
				g.evidence = a.Annotations["evidence_summary"]
				if ids := a.Annotations["evidence_trace_ids"]; ids != "" {
					first, _, _ := strings.Cut(ids, ",")
					g.evidence += "; e.g. trace " + first
				}
			}
		}
		now := map[string]string{}
		names := make([]string, 0, len(groups))
		for name := range groups {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			g := groups[name]
			key := g.state
			if g.evidence != "" {
				key += "+evidence"
			}
			now[name] = key
			if seen[name] == key {
				continue
			}
			msg := fmt.Sprintf("ALERT %s is %s (%d series)", name, strings.ToUpper(g.state), g.n)
			if g.evidence != "" {
				msg += ": " + g.evidence
			}
			say("%s", msg)
		}
		for name := range seen {
			if _, ok := now[name]; !ok {
				say("ALERT %s resolved", name)
			}
		}
		seen = now
	}
}

type promAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

func fetchAlerts(ctx context.Context, client *http.Client, promURL string) ([]promAlert, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, promURL+"/api/v1/alerts", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Alerts []promAlert `json:"alerts"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	return body.Data.Alerts, nil
}

// prefixWriter prefixes each line written through it with a time and a tag.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(b), "\n"), "\n") {
		if _, err := fmt.Fprintf(p.w, "%s  %s%s\n", time.Now().Format("15:04:05"), p.prefix, line); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// teeHandler sends each record to every handler that is enabled for it.
type teeHandler []slog.Handler

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}
