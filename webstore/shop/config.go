package shop

import (
	"errors"
	"fmt"
	"time"

	"github.com/lookout-dev/lookout/webstore/faults"
	"github.com/lookout-dev/lookout/webstore/telemetry"
)

// Config says where the shop listens, where it keeps its data and how it behaves.
type Config struct {
	// DataDir holds the SQLite database (created and seeded on first start).
	DataDir string
	// MainListen, PaymentsListen, ProviderListen and InventoryListen are the
	// services' listen addresses; "127.0.0.1:0" picks a free port.
	MainListen, PaymentsListen, ProviderListen, InventoryListen string
	// Faults are the simulated failures at start; change them later with SetFaults.
	Faults faults.Faults
	// Telemetry configures OTLP export (zero fields defer to OTEL_* variables).
	Telemetry telemetry.Config
	// PaymentTimeout is how long payments-service waits for the provider. Default 10s.
	PaymentTimeout time.Duration
	// ProviderBaseLatency and ProviderBaseJitter are the provider's normal
	// latency, before faults: base + uniform [0, jitter). Defaults 40ms and 80ms
	// in DefaultConfig; zero in a zero Config.
	ProviderBaseLatency, ProviderBaseJitter time.Duration
	// RestockInterval is how often inventory-service tops up products below
	// half their target stock. Zero disables restocking. Default 10s.
	RestockInterval time.Duration
}

// DefaultConfig returns the configuration of `webstore serve` with no flags.
func DefaultConfig() Config {
	return Config{
		DataDir:             "./webstore-data",
		MainListen:          "127.0.0.1:8080",
		PaymentsListen:      "127.0.0.1:8081",
		ProviderListen:      "127.0.0.1:8082",
		InventoryListen:     "127.0.0.1:8083",
		Faults:              faults.Faults{QuantityMultiplier: 1},
		PaymentTimeout:      10 * time.Second,
		ProviderBaseLatency: 40 * time.Millisecond,
		ProviderBaseJitter:  80 * time.Millisecond,
		RestockInterval:     10 * time.Second,
	}
}

// Validate reports every field that is wrong.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir must be set"))
	}
	for _, l := range []struct{ name, addr string }{
		{"main listen", c.MainListen}, {"payments listen", c.PaymentsListen},
		{"provider listen", c.ProviderListen}, {"inventory listen", c.InventoryListen},
	} {
		if l.addr == "" {
			errs = append(errs, fmt.Errorf("%s address must be set", l.name))
		}
	}
	if err := validateFaults(c.Faults); err != nil {
		errs = append(errs, fmt.Errorf("faults: %w", err))
	}
	if err := c.Telemetry.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.PaymentTimeout < 0 || c.ProviderBaseLatency < 0 || c.ProviderBaseJitter < 0 || c.RestockInterval < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	return errors.Join(errs...)
}

// validateFaults checks f's ranges and that its scopes name a payment method
// and a country the shop knows, so a typo cannot scope a fault to nothing.
func validateFaults(f faults.Faults) error {
	return errors.Join(f.Validate(), f.ValidateScope(PaymentMethods, Countries))
}

func (c Config) withDefaults() Config {
	if c.PaymentTimeout == 0 {
		c.PaymentTimeout = 10 * time.Second
	}
	return c
}
