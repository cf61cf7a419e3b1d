package faults

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits that keep a fault setting within what the simulation can honour.
const (
	// MaxLatency bounds every latency setting so a typo cannot wedge a service for hours.
	MaxLatency = 5 * time.Minute
	// MaxQuantityMultiplier bounds the simulated quantity bug.
	MaxQuantityMultiplier = 10000
	// MaxScopeLen bounds a scope value (a payment method or a country code).
	MaxScopeLen = 64
)

// Faults is the set of simulated failures. The zero value means "no faults".
//
// The payment-provider faults (ProviderLatency, ProviderJitter,
// ProviderTimeoutRate and PaymentFailureRate) can be scoped to some charges
// with ScopePaymentMethod and ScopeCountry, so that a spike has an attribute
// value as its cause; see [Faults.ProviderFaultsApply]. The other faults
// always apply to every request.
type Faults struct {
	// ProviderLatency is added to every payment-provider call in scope.
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
	// ScopePaymentMethod, when not empty, limits the payment-provider faults
	// to charges whose payment_method equals it (e.g. "paypal").
	ScopePaymentMethod string
	// ScopeCountry, when not empty, limits the payment-provider faults to
	// charges whose country equals it (e.g. "DE"). With both scopes set a
	// charge must match both.
	ScopeCountry string
}

// jsonFaults is the wire shape: durations as Go duration strings.
type jsonFaults struct {
	ProviderLatency     string  `json:"provider_latency"`
	ProviderJitter      string  `json:"provider_jitter"`
	ProviderTimeoutRate float64 `json:"provider_timeout_rate"`
	PaymentFailureRate  float64 `json:"payment_failure_rate"`
	GetProductLatency   string  `json:"get_product_latency"`
	QuantityMultiplier  int     `json:"quantity_multiplier"`
	// The scopes are always written, empty or not, so that a complete
	// value POSTed back (as traffic does to restore faults) also clears them.
	ScopePaymentMethod string `json:"scope_payment_method"`
	ScopeCountry       string `json:"scope_country"`
}

// Multiplier returns the effective quantity multiplier (at least 1).
func (f Faults) Multiplier() int {
	if f.QuantityMultiplier < 1 {
		return 1
	}
	return f.QuantityMultiplier
}

// ProviderFaultsApply reports whether the payment-provider faults apply to a
// charge with this payment method and country: they do unless a scope is set
// and the charge's value differs from it. Values are compared exactly; the
// shop sends payment methods in lower case and countries in upper case.
func (f Faults) ProviderFaultsApply(paymentMethod, country string) bool {
	return (f.ScopePaymentMethod == "" || f.ScopePaymentMethod == paymentMethod) &&
		(f.ScopeCountry == "" || f.ScopeCountry == country)
}

// Scope describes the charges the payment-provider faults are limited to as
// attribute=value pairs, e.g. "payment_method=paypal" or
// "payment_method=paypal country=DE"; it is "" when they apply to every charge.
func (f Faults) Scope() string {
	var parts []string
	if f.ScopePaymentMethod != "" {
		parts = append(parts, "payment_method="+f.ScopePaymentMethod)
	}
	if f.ScopeCountry != "" {
		parts = append(parts, "country="+f.ScopeCountry)
	}
	return strings.Join(parts, " ")
}

// providerFaults reports whether f sets any payment-provider fault.
func (f Faults) providerFaults() bool {
	return f.ProviderLatency != 0 || f.ProviderJitter != 0 || f.ProviderTimeoutRate != 0 || f.PaymentFailureRate != 0
}

// Overlay returns base with the faults that incident sets laid over it, as
// for an incident switched on in a running shop. Fields incident leaves at
// zero keep base's value. One value holds one scope, so when either side's
// provider faults are scoped and incident sets any, the provider faults and
// their scope all come from incident for its length.
func Overlay(base, incident Faults) Faults {
	out := base
	if incident.providerFaults() && (base.Scope() != "" || incident.Scope() != "") {
		out.ProviderLatency, out.ProviderJitter = incident.ProviderLatency, incident.ProviderJitter
		out.ProviderTimeoutRate, out.PaymentFailureRate = incident.ProviderTimeoutRate, incident.PaymentFailureRate
		out.ScopePaymentMethod, out.ScopeCountry = incident.ScopePaymentMethod, incident.ScopeCountry
	} else {
		if incident.ProviderLatency != 0 {
			out.ProviderLatency, out.ProviderJitter = incident.ProviderLatency, incident.ProviderJitter
		}
		if incident.ProviderTimeoutRate != 0 {
			out.ProviderTimeoutRate = incident.ProviderTimeoutRate
		}
		if incident.PaymentFailureRate != 0 {
			out.PaymentFailureRate = incident.PaymentFailureRate
		}
	}
	if incident.GetProductLatency != 0 {
		out.GetProductLatency = incident.GetProductLatency
	}
	if incident.QuantityMultiplier > 1 {
		out.QuantityMultiplier = incident.QuantityMultiplier
	}
	return out
}

// Describe renders f for people, e.g. "payment provider +7s–8s for
// payment_method=paypal" or "get_product query +5.5s"; "none" when f sets no
// fault.
func (f Faults) Describe() string {
	var provider, other []string
	switch {
	case f.ProviderJitter > 0:
		provider = append(provider, fmt.Sprintf("payment provider +%s–%s", f.ProviderLatency, f.ProviderLatency+f.ProviderJitter))
	case f.ProviderLatency > 0:
		provider = append(provider, fmt.Sprintf("payment provider +%s", f.ProviderLatency))
	}
	if f.PaymentFailureRate > 0 {
		provider = append(provider, fmt.Sprintf("%.0f%% payments declined", 100*f.PaymentFailureRate))
	}
	if f.ProviderTimeoutRate > 0 {
		provider = append(provider, fmt.Sprintf("%.0f%% provider timeouts", 100*f.ProviderTimeoutRate))
	}
	if f.GetProductLatency > 0 {
		other = append(other, fmt.Sprintf("get_product query +%s", f.GetProductLatency))
	}
	if f.QuantityMultiplier > 1 {
		other = append(other, fmt.Sprintf("quantities x%d", f.QuantityMultiplier))
	}
	var parts []string
	if len(provider) > 0 {
		p := strings.Join(provider, ", ")
		if sc := f.Scope(); sc != "" {
			p += " for " + sc
		}
		parts = append(parts, p)
	}
	parts = append(parts, other...)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
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
	for _, sc := range []struct{ name, v string }{
		{"scope_payment_method", f.ScopePaymentMethod},
		{"scope_country", f.ScopeCountry},
	} {
		if len(sc.v) > MaxScopeLen || !utf8.ValidString(sc.v) || strings.IndexFunc(sc.v, notPrintable) >= 0 {
			errs = append(errs, fmt.Errorf("%s must be at most %d printable characters without spaces, got %q", sc.name, MaxScopeLen, sc.v))
		}
	}
	return errors.Join(errs...)
}

// notPrintable also rejects spaces: no payment method or country has one.
func notPrintable(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }

// ValidateScope reports whether the scope values are among the known payment
// methods and countries. The lists belong to the shop, which imports this
// package, so the shop passes them in; an empty scope is always valid.
func (f Faults) ValidateScope(paymentMethods, countries []string) error {
	var errs []error
	for _, sc := range []struct {
		name, v string
		known   []string
	}{
		{"scope_payment_method", f.ScopePaymentMethod, paymentMethods},
		{"scope_country", f.ScopeCountry, countries},
	} {
		if sc.v != "" && !slices.Contains(sc.known, sc.v) {
			errs = append(errs, fmt.Errorf("unknown %s %q: use one of %s, or \"\" for all", sc.name, sc.v, strings.Join(sc.known, ", ")))
		}
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
		ScopePaymentMethod:  f.ScopePaymentMethod,
		ScopeCountry:        f.ScopeCountry,
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
	ScopePaymentMethod  *string
	ScopeCountry        *string
}

type jsonPatch struct {
	ProviderLatency     *string  `json:"provider_latency"`
	ProviderJitter      *string  `json:"provider_jitter"`
	ProviderTimeoutRate *float64 `json:"provider_timeout_rate"`
	PaymentFailureRate  *float64 `json:"payment_failure_rate"`
	GetProductLatency   *string  `json:"get_product_latency"`
	QuantityMultiplier  *int     `json:"quantity_multiplier"`
	ScopePaymentMethod  *string  `json:"scope_payment_method"`
	ScopeCountry        *string  `json:"scope_country"`
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
	p.ScopePaymentMethod = jp.ScopePaymentMethod
	p.ScopeCountry = jp.ScopeCountry
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
	if p.ScopePaymentMethod != nil {
		f.ScopePaymentMethod = *p.ScopePaymentMethod
	}
	if p.ScopeCountry != nil {
		f.ScopeCountry = *p.ScopeCountry
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
