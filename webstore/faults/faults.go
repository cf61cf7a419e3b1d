package faults

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// Limits that keep a fault setting within what the simulation can honour.
const (
	// MaxLatency bounds every latency setting so a typo cannot wedge a service for hours.
	MaxLatency = 5 * time.Minute
	// MaxQuantityMultiplier bounds the simulated quantity bug.
	MaxQuantityMultiplier = 10000
)

// Faults is the set of simulated failures. The zero value means "no faults".
type Faults struct {
	// ProviderLatency is added to every payment-provider call.
	ProviderLatency time.Duration
	// ProviderJitter adds a uniformly random extra latency in [0, ProviderJitter).
	ProviderJitter time.Duration
	// ProviderTimeoutRate is the probability (0..1) that the provider never answers,
	// so the payments-service call times out.
	ProviderTimeoutRate float64
	// PaymentFailureRate is the probability (0..1) that the provider declines a charge.
	PaymentFailureRate float64
	// GetProductLatency is added to every get_product database query.
	GetProductLatency time.Duration
	// QuantityMultiplier multiplies every requested quantity (the seed's "500x"
	// UI bug). 0 and 1 both mean off.
	QuantityMultiplier int
}

// jsonFaults is the wire shape: durations as Go duration strings.
type jsonFaults struct {
	ProviderLatency     string  `json:"provider_latency"`
	ProviderJitter      string  `json:"provider_jitter"`
	ProviderTimeoutRate float64 `json:"provider_timeout_rate"`
	PaymentFailureRate  float64 `json:"payment_failure_rate"`
	GetProductLatency   string  `json:"get_product_latency"`
	QuantityMultiplier  int     `json:"quantity_multiplier"`
}

// Multiplier returns the effective quantity multiplier (at least 1).
func (f Faults) Multiplier() int {
	if f.QuantityMultiplier < 1 {
		return 1
	}
	return f.QuantityMultiplier
}

// Normalize returns f with QuantityMultiplier set to its effective value.
func (f Faults) Normalize() Faults {
	f.QuantityMultiplier = f.Multiplier()
	return f
}

// Validate reports whether every setting is within range.
func (f Faults) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"provider_latency", f.ProviderLatency},
		{"provider_jitter", f.ProviderJitter},
		{"get_product_latency", f.GetProductLatency},
	} {
		if d.v < 0 || d.v > MaxLatency {
			errs = append(errs, fmt.Errorf("%s must be between 0s and %s, got %s", d.name, MaxLatency, d.v))
		}
	}
	for _, r := range []struct {
		name string
		v    float64
	}{
		{"provider_timeout_rate", f.ProviderTimeoutRate},
		{"payment_failure_rate", f.PaymentFailureRate},
	} {
		// The negated form also rejects NaN.
		if !(r.v >= 0 && r.v <= 1) {
			errs = append(errs, fmt.Errorf("%s must be between 0 and 1, got %v", r.name, r.v))
		}
	}
	if f.QuantityMultiplier < 0 || f.QuantityMultiplier > MaxQuantityMultiplier {
		errs = append(errs, fmt.Errorf("quantity_multiplier must be between 1 and %d, got %d", MaxQuantityMultiplier, f.QuantityMultiplier))
	}
	return errors.Join(errs...)
}

// MarshalJSON encodes f with durations as Go duration strings ("7s").
func (f Faults) MarshalJSON() ([]byte, error) {
	f = f.Normalize()
	return json.Marshal(jsonFaults{
		ProviderLatency:     f.ProviderLatency.String(),
		ProviderJitter:      f.ProviderJitter.String(),
		ProviderTimeoutRate: f.ProviderTimeoutRate,
		PaymentFailureRate:  f.PaymentFailureRate,
		GetProductLatency:   f.GetProductLatency.String(),
		QuantityMultiplier:  f.QuantityMultiplier,
	})
}

// UnmarshalJSON decodes a complete or partial JSON object: fields that are
// absent keep their current value in f, so decoding into an existing value
// merges. Unknown fields are rejected.
func (f *Faults) UnmarshalJSON(b []byte) error {
	p, err := decodePatch(b)
	if err != nil {
		return err
	}
	*f = p.Apply(*f)
	return nil
}

// Patch is a partial update of [Faults]; nil fields are left unchanged.
type Patch struct {
	ProviderLatency     *time.Duration
	ProviderJitter      *time.Duration
	ProviderTimeoutRate *float64
	PaymentFailureRate  *float64
	GetProductLatency   *time.Duration
	QuantityMultiplier  *int
}

type jsonPatch struct {
	ProviderLatency     *string  `json:"provider_latency"`
	ProviderJitter      *string  `json:"provider_jitter"`
	ProviderTimeoutRate *float64 `json:"provider_timeout_rate"`
	PaymentFailureRate  *float64 `json:"payment_failure_rate"`
	GetProductLatency   *string  `json:"get_product_latency"`
	QuantityMultiplier  *int     `json:"quantity_multiplier"`
}

// maxPatchBytes bounds the size of a patch body.
const maxPatchBytes = 64 << 10

// DecodePatch reads one JSON object from r as a [Patch]. It rejects unknown
// fields, trailing data, bodies over 64 KiB and malformed durations.
func DecodePatch(r io.Reader) (Patch, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxPatchBytes+1))
	if err != nil {
		return Patch{}, fmt.Errorf("read faults: %w", err)
	}
	if len(b) > maxPatchBytes {
		return Patch{}, fmt.Errorf("faults body is larger than %d bytes", maxPatchBytes)
	}
	return decodePatch(b)
}

func decodePatch(b []byte) (Patch, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var jp jsonPatch
	if err := dec.Decode(&jp); err != nil {
		return Patch{}, fmt.Errorf("malformed faults JSON: %w", err)
	}
	if dec.More() {
		return Patch{}, errors.New("malformed faults JSON: trailing data after the object")
	}
	var p Patch
	var errs []error
	for _, d := range []struct {
		name string
		in   *string
		out  **time.Duration
	}{
		{"provider_latency", jp.ProviderLatency, &p.ProviderLatency},
		{"provider_jitter", jp.ProviderJitter, &p.ProviderJitter},
		{"get_product_latency", jp.GetProductLatency, &p.GetProductLatency},
	} {
		if d.in == nil {
			continue
		}
		v, err := parseDuration(*d.in)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.name, err))
			continue
		}
		*d.out = &v
	}
	p.ProviderTimeoutRate = jp.ProviderTimeoutRate
	p.PaymentFailureRate = jp.PaymentFailureRate
	p.QuantityMultiplier = jp.QuantityMultiplier
	return p, errors.Join(errs...)
}

// parseDuration accepts Go duration strings; "" and "0" mean zero.
func parseDuration(s string) (time.Duration, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a Go duration such as \"7s\" or \"250ms\": %w", err)
	}
	return d, nil
}

// Apply returns f with the fields set in p replaced.
func (p Patch) Apply(f Faults) Faults {
	if p.ProviderLatency != nil {
		f.ProviderLatency = *p.ProviderLatency
	}
	if p.ProviderJitter != nil {
		f.ProviderJitter = *p.ProviderJitter
	}
	if p.ProviderTimeoutRate != nil {
		f.ProviderTimeoutRate = *p.ProviderTimeoutRate
	}
	if p.PaymentFailureRate != nil {
		f.PaymentFailureRate = *p.PaymentFailureRate
	}
	if p.GetProductLatency != nil {
		f.GetProductLatency = *p.GetProductLatency
	}
	if p.QuantityMultiplier != nil {
		f.QuantityMultiplier = *p.QuantityMultiplier
	}
	return f
}

// Switch holds the current [Faults] and lets them change at run time.
// It is safe for concurrent use; the zero value holds no faults.
type Switch struct {
	cur atomic.Pointer[Faults]
}

// NewSwitch returns a Switch holding f.
func NewSwitch(f Faults) *Switch {
	s := &Switch{}
	s.Set(f)
	return s
}

// Load returns the current faults.
func (s *Switch) Load() Faults {
	if p := s.cur.Load(); p != nil {
		return *p
	}
	return Faults{}.Normalize()
}

// Set replaces the current faults.
func (s *Switch) Set(f Faults) {
	f = f.Normalize()
	s.cur.Store(&f)
}

// Update applies p to the current faults atomically and returns the result.
// It returns an error, and changes nothing, when the result is invalid.
func (s *Switch) Update(p Patch) (Faults, error) {
	for {
		old := s.cur.Load()
		var base Faults
		if old != nil {
			base = *old
		}
		next := p.Apply(base)
		if err := next.Validate(); err != nil {
			return base.Normalize(), err
		}
		next = next.Normalize()
		if s.cur.CompareAndSwap(old, &next) {
			return next, nil
		}
	}
}
