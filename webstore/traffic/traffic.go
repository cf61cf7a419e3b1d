package traffic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lookout-dev/lookout/webstore/faults"
)

// Scenarios and the faults each applies for the length of a run. "normal"
// leaves the shop's faults as they are. "slow-paypal" slows only PayPal
// charges, so the spike's cause is an attribute value (payment_method=paypal)
// rather than a span; the session mix sends PayPal in 18% of checkouts.
var Scenarios = map[string]*faults.Faults{
	"normal":           nil,
	"slow-payments":    {ProviderLatency: 7 * time.Second, ProviderJitter: time.Second, QuantityMultiplier: 1},
	"slow-paypal":      {ProviderLatency: 7 * time.Second, ProviderJitter: time.Second, ScopePaymentMethod: "paypal", QuantityMultiplier: 1},
	"slow-db":          {GetProductLatency: 5500 * time.Millisecond, QuantityMultiplier: 1},
	"big-orders":       {QuantityMultiplier: 500},
	"payment-failures": {PaymentFailureRate: 0.3, ProviderTimeoutRate: 0.05, QuantityMultiplier: 1},
}

// ScenarioNames lists the scenarios in a stable (alphabetical) order.
func ScenarioNames() []string {
	names := make([]string, 0, len(Scenarios))
	for n := range Scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Config describes a traffic run.
type Config struct {
	// Target is main-service's base URL.
	Target string
	// Rate is shopper sessions started per second.
	Rate float64
	// Duration bounds the run when Requests is 0.
	Duration time.Duration
	// Requests, when positive, is the number of sessions to run.
	Requests int
	// Scenario is one of ScenarioNames().
	Scenario string
	// MaxInFlight bounds concurrent sessions; sessions due while at the
	// bound are skipped and counted.
	MaxInFlight int
	// AllowRemote permits a Target that is not a loopback address.
	AllowRemote bool
	// ProgressInterval is the time between progress lines. Default 5s.
	ProgressInterval time.Duration
	// Client sends the requests. Default: a client with a 60s timeout.
	Client *http.Client
}

// DefaultConfig is `webstore traffic` with no flags.
func DefaultConfig() Config {
	return Config{
		Target:           "http://127.0.0.1:8080",
		Rate:             5,
		Duration:         time.Minute,
		Scenario:         "normal",
		MaxInFlight:      200,
		ProgressInterval: 5 * time.Second,
	}
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.Target)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, fmt.Errorf("target %q: want a URL such as http://127.0.0.1:8080", c.Target))
	case !c.AllowRemote && !isLoopback(u.Hostname()):
		errs = append(errs, fmt.Errorf("target %q is not a loopback address; pass --allow-remote to send traffic to it", c.Target))
	}
	if !(c.Rate > 0 && c.Rate <= 10000) {
		errs = append(errs, fmt.Errorf("rate must be between 0 and 10000 sessions/s, got %v", c.Rate))
	}
	if c.Requests < 0 {
		errs = append(errs, fmt.Errorf("requests must not be negative, got %d", c.Requests))
	}
	if c.Requests == 0 && c.Duration <= 0 {
		errs = append(errs, errors.New("give a positive duration or a number of requests"))
	}
	if _, ok := Scenarios[c.Scenario]; !ok {
		errs = append(errs, fmt.Errorf("unknown scenario %q: use one of %s", c.Scenario, strings.Join(ScenarioNames(), ", ")))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("max in flight must not be negative, got %d", c.MaxInFlight))
	}
	return errors.Join(errs...)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Percentiles summarises latencies.
type Percentiles struct {
	Count         int
	P50, P95, P99 time.Duration
	Max           time.Duration
}

// Summary is the outcome of a run.
type Summary struct {
	Scenario string
	Elapsed  time.Duration
	// Sessions started, and sessions skipped because MaxInFlight were running.
	Sessions, Skipped int
	// Requests sent; Errors are transport failures and 5xx answers.
	Requests, Errors int
	// Checkouts counts checkout answers by outcome: completed, declined,
	// timeout, out_of_stock, invalid, error.
	Checkouts map[string]int
	// CheckoutLatency is over all checkout requests; RequestLatency over all requests.
	CheckoutLatency, RequestLatency Percentiles
}

// String renders the summary for people.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s: %d sessions in %s (%d skipped), %d requests, %d errors\n",
		s.Scenario, s.Sessions, s.Elapsed.Round(time.Millisecond), s.Skipped, s.Requests, s.Errors)
	keys := make([]string, 0, len(s.Checkouts))
	for k := range s.Checkouts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(&b, "checkouts:")
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, s.Checkouts[k])
	}
	fmt.Fprintf(&b, "\ncheckout latency: %s\nrequest latency:  %s\n", s.CheckoutLatency, s.RequestLatency)
	return b.String()
}

func (p Percentiles) String() string {
	return fmt.Sprintf("n=%d p50=%s p95=%s p99=%s max=%s", p.Count, round(p.P50), round(p.P95), round(p.P99), round(p.Max))
}

// round keeps three significant figures or so: 1.234s, 87ms, 412µs.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// maxSamples bounds the latencies kept per kind; beyond it a uniform
// reservoir sample is kept.
const maxSamples = 100000

// stats collects a run's counts; it is safe for concurrent use.
type stats struct {
	mu        sync.Mutex
	s         Summary
	inFlight  int
	checkouts latencies
	requests  latencies
}

type latencies struct {
	seen int
	d    []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.seen++
	if len(l.d) < maxSamples {
		l.d = append(l.d, d)
		return
	}
	if i := rand.IntN(l.seen); i < maxSamples {
		l.d[i] = d
	}
}

func (l *latencies) percentiles() Percentiles {
	if len(l.d) == 0 {
		return Percentiles{}
	}
	d := slices.Clone(l.d)
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[int(q*float64(len(d)-1))] }
	return Percentiles{Count: l.seen, P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: d[len(d)-1]}
}

func (st *stats) request(d time.Duration, status int, err error, checkout bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s.Requests++
	if err != nil || status >= 500 {
		st.s.Errors++
	}
	st.requests.add(d)
	if !checkout {
		return
	}
	st.checkouts.add(d)
	outcome := "error"
	switch {
	case err != nil:
	case status == http.StatusCreated:
		outcome = "completed"
	case status == http.StatusPaymentRequired:
		outcome = "declined"
	case status == http.StatusGatewayTimeout:
		outcome = "timeout"
	case status == http.StatusConflict:
		outcome = "out_of_stock"
	case status >= 400 && status < 500:
		outcome = "invalid"
	}
	st.s.Checkouts[outcome]++
}

func (st *stats) snapshot(elapsed time.Duration) Summary {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.s
	s.Elapsed = elapsed
	s.Checkouts = map[string]int{}
	for k, v := range st.s.Checkouts {
		s.Checkouts[k] = v
	}
	s.CheckoutLatency = st.checkouts.percentiles()
	s.RequestLatency = st.requests.percentiles()
	return s
}

// Run sends sessions until the duration passes, Requests sessions have run
// or ctx is cancelled, then waits for running sessions and returns the
// summary. progress (may be nil) gets a line every ProgressInterval.
func Run(ctx context.Context, cfg Config, progress io.Writer) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = 5 * time.Second
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 200
	}
	if progress == nil {
		progress = io.Discard
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	sh := &shopper{client: client, base: strings.TrimRight(cfg.Target, "/")}

	// Learn the catalog first: it also checks that the target is a WebStore.
	products, err := sh.catalog(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("target %s does not look like WebStore main-service: %w", cfg.Target, err)
	}
	sh.products = products

	if f := Scenarios[cfg.Scenario]; f != nil {
		prev, err := sh.getFaults(ctx)
		if err != nil {
			return Summary{}, fmt.Errorf("read faults: %w", err)
		}
		if err := sh.setFaults(ctx, *f); err != nil {
			return Summary{}, fmt.Errorf("apply scenario %s: %w", cfg.Scenario, err)
		}
		fmt.Fprintf(progress, "scenario %s: faults applied; they are restored when the run ends\n", cfg.Scenario)
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := sh.setFaults(rctx, prev); err != nil {
				fmt.Fprintf(progress, "could not restore the previous faults: %v\n", err)
			} else {
				fmt.Fprintf(progress, "previous faults restored\n")
			}
		}()
	}

	st := &stats{s: Summary{Scenario: cfg.Scenario, Checkouts: map[string]int{}}}
	sh.stats = st
	start := time.Now()
	runCtx := ctx
	if cfg.Requests == 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	prog := time.NewTicker(cfg.ProgressInterval)
	defer prog.Stop()
	var wg sync.WaitGroup
	started := 0
	launch := func() {
		started++
		st.mu.Lock()
		if st.inFlight >= cfg.MaxInFlight {
			st.s.Skipped++
			st.mu.Unlock()
			return
		}
		st.inFlight++
		st.s.Sessions++
		st.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sh.session(ctx)
			st.mu.Lock()
			st.inFlight--
			st.mu.Unlock()
		}()
	}
	// Sessions use ctx, not runCtx, so the last ones finish after the deadline.
	// Each tick starts every session due by now, so a ticker that falls
	// behind on a busy machine does not lower the rate.
loop:
	for cfg.Requests == 0 || started < cfg.Requests {
		select {
		case <-runCtx.Done():
			break loop
		case <-prog.C:
			printProgress(progress, st.snapshot(time.Since(start)), st)
		case <-tick.C:
			due := int(time.Since(start).Seconds()*cfg.Rate) + 1
			for started < due && (cfg.Requests == 0 || started < cfg.Requests) {
				launch()
			}
		}
	}
	wg.Wait()
	sum := st.snapshot(time.Since(start))
	printProgress(progress, sum, st)
	return sum, ctx.Err()
}

func printProgress(w io.Writer, s Summary, st *stats) {
	st.mu.Lock()
	inFlight := st.inFlight
	st.mu.Unlock()
	fmt.Fprintf(w, "[%6s] sessions %d (in flight %d, skipped %d) | requests %d, errors %d | checkouts ok %d, failed %d | checkout p50 %s p95 %s p99 %s\n",
		s.Elapsed.Round(time.Second), s.Sessions, inFlight, s.Skipped, s.Requests, s.Errors,
		s.Checkouts["completed"], s.CheckoutLatency.Count-s.Checkouts["completed"],
		round(s.CheckoutLatency.P50), round(s.CheckoutLatency.P95), round(s.CheckoutLatency.P99))
}

// shopper sends one session's requests.
type shopper struct {
	client   *http.Client
	base     string
	products []int64
	stats    *stats
}

// weighted picks from a realistic mix.
type weighted struct {
	value  string
	weight int
}

var countries = []weighted{
	{"US", 40}, {"GB", 10}, {"DE", 9}, {"FR", 7}, {"CA", 6}, {"JP", 5}, {"AU", 4}, {"NL", 3},
	{"ES", 3}, {"IT", 3}, {"SE", 2}, {"BR", 3}, {"MX", 2}, {"IN", 2}, {"IE", 1},
}

var paymentMethods = []weighted{
	{"card", 60}, {"paypal", 18}, {"apple_pay", 10}, {"google_pay", 8}, {"bank_transfer", 4},
}

func pick(ws []weighted) string {
	total := 0
	for _, w := range ws {
		total += w.weight
	}
	n := rand.IntN(total)
	for _, w := range ws {
		if n < w.weight {
			return w.value
		}
		n -= w.weight
	}
	return ws[len(ws)-1].value
}

// session browses, maybe fills a cart and maybe checks out.
func (sh *shopper) session(ctx context.Context) {
	if _, err := sh.do(ctx, http.MethodGet, "/products?limit=50", nil, nil, false); err != nil {
		return
	}
	for range 1 + rand.IntN(3) {
		id := sh.products[rand.IntN(len(sh.products))]
		if _, err := sh.do(ctx, http.MethodGet, "/products/"+strconv.FormatInt(id, 10), nil, nil, false); err != nil {
			return
		}
	}
	if rand.Float64() >= 0.7 { // window shoppers leave
		return
	}
	var cart struct {
		CartID string `json:"cart_id"`
	}
	if st, err := sh.do(ctx, http.MethodPost, "/carts", nil, &cart, false); err != nil || st != http.StatusCreated {
		return
	}
	for range 1 + rand.IntN(3) {
		id := sh.products[rand.IntN(len(sh.products))]
		body := map[string]int64{"product_id": id, "quantity": int64(1 + rand.IntN(3))}
		if _, err := sh.do(ctx, http.MethodPost, "/carts/"+cart.CartID+"/items", body, nil, false); err != nil {
			return
		}
	}
	if rand.Float64() >= 0.85 { // abandoned carts
		return
	}
	checkout := map[string]string{"cart_id": cart.CartID, "country": pick(countries), "payment_method": pick(paymentMethods)}
	if rand.Float64() < 0.01 {
		checkout["country"] = "XX" // a broken client now and then
	}
	_, _ = sh.do(ctx, http.MethodPost, "/checkout", checkout, nil, true)
}

// do sends one request and records it; it returns the status code.
func (sh *shopper) do(ctx context.Context, method, path string, in, out any, checkout bool) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, sh.base+path, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := sh.client.Do(req)
	if err != nil {
		if ctx.Err() == nil { // not our own cancellation
			sh.stats.request(time.Since(start), 0, err, checkout)
		}
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	sh.stats.request(time.Since(start), resp.StatusCode, err, checkout)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

// catalog lists the product IDs.
func (sh *shopper) catalog(ctx context.Context) ([]int64, error) {
	var out struct {
		Products []struct {
			ID int64 `json:"id"`
		} `json:"products"`
	}
	if err := sh.getJSON(ctx, "/products?limit=1000", &out); err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(out.Products))
	for _, p := range out.Products {
		ids = append(ids, p.ID)
	}
	if len(ids) == 0 {
		return nil, errors.New("the catalog is empty")
	}
	return ids, nil
}

func (sh *shopper) getJSON(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sh.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := sh.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(out)
}

func (sh *shopper) getFaults(ctx context.Context) (faults.Faults, error) {
	var f faults.Faults
	err := sh.getJSON(ctx, "/admin/faults", &f)
	return f, err
}

func (sh *shopper) setFaults(ctx context.Context, f faults.Faults) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sh.base+"/admin/faults", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := sh.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("POST /admin/faults: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}
