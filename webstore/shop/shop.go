package shop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/lookout-dev/lookout/webstore/faults"
	"github.com/lookout-dev/lookout/webstore/store"
	"github.com/lookout-dev/lookout/webstore/telemetry"
)

// Service names, used as each service's service.name resource attribute.
const (
	MainService      = "main-service"
	PaymentsService  = "payments-service"
	ProviderService  = "payment-provider"
	InventoryService = "inventory-service"
)

// ErrTelemetryFlush wraps the errors of the final telemetry flush in
// Shutdown (typically: no collector listening). The shop itself stopped cleanly.
var ErrTelemetryFlush = errors.New("flush telemetry")

// Shop is a running WebStore. Its methods are safe for concurrent use.
type Shop struct {
	cfg    Config
	logger *slog.Logger
	db     *store.DB
	faults *faults.Switch

	tel      []*telemetry.Providers
	servers  []*http.Server // in shutdown order: main, inventory, payments, provider
	urls     map[string]string
	clients  []*serviceClient
	stopping chan struct{}
	wg       sync.WaitGroup

	shutdownOnce sync.Once
	shutdownErr  error
}

// Start opens the database, starts the four services and returns once all
// of them are listening. Cancelling ctx after Start returns has no effect;
// call Shutdown.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*Shop, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("webstore config: %w", err)
	}
	cfg = cfg.withDefaults()
	s := &Shop{
		cfg:      cfg,
		logger:   logger,
		faults:   faults.NewSwitch(cfg.Faults),
		urls:     map[string]string{},
		stopping: make(chan struct{}),
	}
	ok := false
	defer func() {
		if !ok {
			s.closeAll(context.WithoutCancel(ctx))
		}
	}()

	db, err := store.Open(ctx, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s.db = db

	names := []string{MainService, InventoryService, PaymentsService, ProviderService}
	addrs := []string{cfg.MainListen, cfg.InventoryListen, cfg.PaymentsListen, cfg.ProviderListen}
	tel := map[string]*telemetry.Providers{}
	for _, name := range names {
		p, err := telemetry.New(ctx, name, cfg.Telemetry, logger)
		if err != nil {
			return nil, fmt.Errorf("telemetry for %s: %w", name, err)
		}
		s.tel = append(s.tel, p)
		tel[name] = p
	}

	// Listen first so every service knows the others' real addresses.
	listeners := make([]net.Listener, len(names))
	for i, name := range names {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", addrs[i])
		if err != nil {
			for _, l := range listeners[:i] {
				_ = l.Close()
			}
			return nil, fmt.Errorf("%s: listen on %s: %w", name, addrs[i], err)
		}
		listeners[i] = ln
		s.urls[name] = "http://" + ln.Addr().String()
	}

	mainSvc, err := newMainService(s, tel[MainService])
	if err != nil {
		closeListeners(listeners)
		return nil, err
	}
	handlers := []http.Handler{
		mainSvc.routes(),
		newInventoryService(s, tel[InventoryService]).routes(),
		newPaymentsService(s, tel[PaymentsService]).routes(),
		newProviderService(s, tel[ProviderService]).routes(),
	}
	for i, name := range names {
		srv := &http.Server{
			Handler:           handlers[i],
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		}
		s.servers = append(s.servers, srv)
		s.wg.Add(1)
		go func(ln net.Listener) {
			defer s.wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("service stopped", "service", name, "err", err)
			}
		}(listeners[i])
	}
	if cfg.RestockInterval > 0 {
		s.wg.Add(1)
		go s.restockLoop(tel[InventoryService])
	}
	ok = true
	logger.Info("webstore started", "main", s.urls[MainService], "payments", s.urls[PaymentsService],
		"provider", s.urls[ProviderService], "inventory", s.urls[InventoryService], "data_dir", cfg.DataDir)
	return s, nil
}

func closeListeners(ls []net.Listener) {
	for _, l := range ls {
		if l != nil {
			_ = l.Close()
		}
	}
}

// MainURL is main-service's base URL, e.g. "http://127.0.0.1:8080".
func (s *Shop) MainURL() string { return s.urls[MainService] }

// PaymentsURL is payments-service's base URL.
func (s *Shop) PaymentsURL() string { return s.urls[PaymentsService] }

// ProviderURL is payment-provider's base URL.
func (s *Shop) ProviderURL() string { return s.urls[ProviderService] }

// InventoryURL is inventory-service's base URL.
func (s *Shop) InventoryURL() string { return s.urls[InventoryService] }

// DB is the shop's database, for inspection (e.g. its consistency Ledger).
func (s *Shop) DB() *store.DB { return s.db }

// Faults returns the current faults.
func (s *Shop) Faults() faults.Faults { return s.faults.Load() }

// SetFaults replaces the current faults. Invalid faults are rejected.
func (s *Shop) SetFaults(f faults.Faults) error {
	if err := validateFaults(f); err != nil {
		return err
	}
	s.faults.Set(f)
	s.logger.Info("faults changed", "faults", faultsLogValue(s.faults.Load()))
	return nil
}

// ForceFlush exports all telemetry recorded so far.
func (s *Shop) ForceFlush(ctx context.Context) error {
	var errs []error
	for _, t := range s.tel {
		errs = append(errs, t.ForceFlush(ctx))
	}
	return errors.Join(errs...)
}

// Shutdown stops taking requests, lets running ones finish (simulated
// provider waits are cut short), flushes telemetry and closes the database.
// Calls after the first return the first call's result.
func (s *Shop) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.closeAll(ctx) })
	return s.shutdownErr
}

func (s *Shop) closeAll(ctx context.Context) error {
	var errs []error
	close(s.stopping)
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop http server: %w", err))
		}
		// The stopped service's calls are over: close its pooled connections
		// now, or the next server would wait for them (net/http counts a
		// dialed but unused connection as busy for 5s).
		for _, c := range s.clients {
			c.base.CloseIdleConnections()
		}
	}
	s.wg.Wait()
	// Flush telemetry of all services at once, and give up after
	// telemetryShutdownTimeout: an unreachable collector must not hold the
	// process for the exporters' full retry time.
	tctx, cancel := context.WithTimeout(ctx, telemetryShutdownTimeout)
	defer cancel()
	var mu sync.Mutex
	var twg sync.WaitGroup
	for _, t := range s.tel {
		twg.Add(1)
		go func() {
			defer twg.Done()
			if err := t.Shutdown(tctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%w: %s: %w", ErrTelemetryFlush, t.Service, err))
				mu.Unlock()
			}
		}()
	}
	twg.Wait()
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close database: %w", err))
		}
	}
	return errors.Join(errs...)
}

// newClient returns a client of a peer service and remembers it so
// Shutdown can close its idle connections.
func (s *Shop) newClient(base, peer string, tel *telemetry.Providers, timeout time.Duration) *serviceClient {
	c := newServiceClient(base, peer, tel, timeout)
	s.clients = append(s.clients, c)
	return c
}

// sleep waits d, or until ctx is done or the shop stops; it reports whether
// the full time passed.
func (s *Shop) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.stopping:
		return false
	}
}

func (s *Shop) restockLoop(tel *telemetry.Providers) {
	defer s.wg.Done()
	tracer := tel.TracerProvider.Tracer(instrumentationName)
	t := time.NewTicker(s.cfg.RestockInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopping:
			return
		case <-t.C:
			ctx, span := tracer.Start(context.Background(), "restock")
			n, err := s.db.Restock(ctx)
			if err != nil {
				s.logger.Warn("restock failed", "err", err)
				span.RecordError(err)
			} else if n > 0 {
				s.logger.Info("restocked", "units", n)
			}
			span.End()
		}
	}
}

func faultsLogValue(f faults.Faults) slog.Value {
	return slog.GroupValue(
		slog.Duration("provider_latency", f.ProviderLatency),
		slog.Duration("provider_jitter", f.ProviderJitter),
		slog.Float64("provider_timeout_rate", f.ProviderTimeoutRate),
		slog.Float64("payment_failure_rate", f.PaymentFailureRate),
		slog.Duration("get_product_latency", f.GetProductLatency),
		slog.Int("quantity_multiplier", f.Multiplier()),
		slog.String("scope_payment_method", f.ScopePaymentMethod),
		slog.String("scope_country", f.ScopeCountry),
	)
}

// telemetryShutdownTimeout bounds the final telemetry flush.
const telemetryShutdownTimeout = 5 * time.Second

// instrumentationName is the instrumentation scope of WebStore's own spans and metrics.
const instrumentationName = "github.com/lookout-dev/lookout/webstore"

// handle registers h on mux under pattern (e.g. "POST /checkout"), wrapped
// by otelhttp so its server span is named after the route. With telemetry
// disabled there is no wrapper at all, so "off" costs nothing.
func handle(mux *http.ServeMux, tel *telemetry.Providers, pattern string, h http.HandlerFunc) {
	if tel.Disabled {
		mux.Handle(pattern, h)
		return
	}
	mux.Handle(pattern, otelhttp.NewHandler(h, pattern,
		otelhttp.WithTracerProvider(tel.TracerProvider),
		otelhttp.WithMeterProvider(tel.MeterProvider),
		otelhttp.WithPropagators(tel.Propagator),
		// The pattern is already the semconv name "{method} {route}";
		// returning it saves otelhttp building the same string twice per request.
		otelhttp.WithSpanNameFormatter(routeSpanName),
	))
}

// routeSpanName names a server span after the mux pattern it was registered
// under (otelhttp passes that as the operation), e.g. "POST /checkout".
func routeSpanName(operation string, _ *http.Request) string { return operation }

// notFound answers unknown routes with the JSON error shape.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
}
