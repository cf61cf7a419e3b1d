package shop

import (
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/webstore/telemetry"
)

// span is a received span with its service.
type span struct {
	service  string
	name     string
	kind     ptrace.SpanKind
	traceID  pcommon.TraceID
	spanID   pcommon.SpanID
	parentID pcommon.SpanID
	status   ptrace.StatusCode
	attrs    pcommon.Map
}

func flattenSpans(ts []ptrace.Traces) []span {
	var out []span
	for _, t := range ts {
		for i := 0; i < t.ResourceSpans().Len(); i++ {
			rs := t.ResourceSpans().At(i)
			svc, _ := rs.Resource().Attributes().Get("service.name")
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < ss.Len(); k++ {
					s := ss.At(k)
					out = append(out, span{
						service: svc.Str(), name: s.Name(), kind: s.Kind(), traceID: s.TraceID(),
						spanID: s.SpanID(), parentID: s.ParentSpanID(), status: s.Status().Code(), attrs: s.Attributes(),
					})
				}
			}
		}
	}
	return out
}

// testLogger writes slog output to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// TestEndToEndTelemetry runs checkouts against the four services exporting
// to an in-process OTLP/gRPC receiver and checks the trace tree and the
// exemplars that link webstore.payment.duration to process_payment.
func TestEndToEndTelemetry(t *testing.T) {
	sink := startOTLPSink(t)
	cfg := testConfig(t)
	cfg.Telemetry = telemetry.Config{
		Endpoint:       sink.addr,
		Protocol:       telemetry.ProtocolGRPC,
		MetricInterval: time.Hour, // the test flushes explicitly
	}
	s, err := Start(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()

	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	// A known trace ID, sent as W3C trace context, so the test can find its trace.
	const traceHex = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodPost, s.MainURL()+"/checkout",
		strings.NewReader(`{"items":[{"product_id":1,"quantity":2},{"product_id":12,"quantity":1}],"country":"DE","payment_method":"paypal"}`))
	req.Header.Set("traceparent", "00-"+traceHex+"-00f067aa0ba902b7-01")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("checkout: HTTP %d: %s", resp.StatusCode, body)
	}

	if err := s.ForceFlush(context.Background()); err != nil {
		t.Fatalf("flush: %v", err)
	}
	traces, metrics := sink.snapshot()

	// --- The span tree across the four services, under one trace ID.
	var want pcommon.TraceID
	if _, err := hex.Decode(want[:], []byte(traceHex)); err != nil {
		t.Fatal(err)
	}
	byID := map[pcommon.SpanID]span{}
	children := map[pcommon.SpanID][]span{}
	var root span
	for _, sp := range flattenSpans(traces) {
		if sp.traceID != want {
			continue
		}
		byID[sp.spanID] = sp
		children[sp.parentID] = append(children[sp.parentID], sp)
		if sp.name == "POST /checkout" && sp.kind == ptrace.SpanKindServer {
			root = sp
		}
	}
	if root.name == "" {
		t.Fatalf("no POST /checkout server span in trace %s; got %d spans in it, %d in all", traceHex, len(byID), sink.spanCount())
	}
	if root.service != MainService {
		t.Errorf("POST /checkout is from %q, want %q", root.service, MainService)
	}
	child := func(parent span, name, service string) span {
		t.Helper()
		for _, c := range children[parent.spanID] {
			if c.name == name {
				if c.service != service {
					t.Errorf("span %q is from %q, want %q", name, c.service, service)
				}
				return c
			}
		}
		var names []string
		for _, c := range children[parent.spanID] {
			names = append(names, c.name+"@"+c.service)
		}
		t.Fatalf("span %q (%s) has no child %q; children: %v", parent.name, parent.service, name, names)
		return span{}
	}
	validate := child(root, "validate_cart", MainService)
	if q, ok := validate.attrs.Get("cart.quantity"); !ok || q.Int() != 3 {
		t.Errorf("validate_cart cart.quantity = %v (present %v), want 3 (2 + 1 items)", q.AsRaw(), ok)
	}
	child(validate, "db.query.get_product", MainService)
	inv := child(root, "check_inventory", MainService)
	invClient := child(inv, "POST /reservations", MainService)
	child(invClient, "POST /reservations", InventoryService)
	pay := child(root, "process_payment", MainService)
	payClient := child(pay, "POST /payments", MainService)
	payServer := child(payClient, "POST /payments", PaymentsService)
	provClient := child(payServer, "payment_provider_api", PaymentsService)
	if provClient.kind != ptrace.SpanKindClient {
		t.Errorf("payment_provider_api kind = %v, want client", provClient.kind)
	}
	child(provClient, "POST /v1/charges", ProviderService)
	child(root, "create_order", MainService)
	gets := 0
	for _, c := range children[validate.spanID] {
		if c.name == "db.query.get_product" {
			gets++
		}
	}
	if gets != 2 {
		t.Errorf("validate_cart has %d db.query.get_product spans, want 2 (one per product)", gets)
	}
	services := map[string]bool{}
	for _, sp := range byID {
		services[sp.service] = true
	}
	for _, svc := range []string{MainService, InventoryService, PaymentsService, ProviderService} {
		if !services[svc] {
			t.Errorf("trace has no span from %s", svc)
		}
	}

	// --- Exemplars of webstore.payment.duration point at process_payment.
	pd := findHistogram(t, metrics, MainService, PaymentDurationName)
	if pd.unit != "s" {
		t.Errorf("%s unit = %q, want s", PaymentDurationName, pd.unit)
	}
	checkExemplar(t, pd, want, pay.spanID, "process_payment", "DE", "paypal")
	if got := pd.points[0].ExplicitBounds().AsRaw(); len(got) == 0 || got[0] > 0.005 || got[len(got)-1] < 10 {
		t.Errorf("%s bounds %v do not cover 5ms..10s", PaymentDurationName, got)
	}
	ca := findHistogram(t, metrics, MainService, CheckoutAmountName)
	if ca.unit != "USD" {
		t.Errorf("%s unit = %q, want USD", CheckoutAmountName, ca.unit)
	}
	checkExemplar(t, ca, want, root.spanID, "POST /checkout", "DE", "paypal")
	if got, want := ca.points[0].Sum(), 2*199.99+45.99; got < want-0.001 || got > want+0.001 {
		t.Errorf("%s sum = %v, want %v", CheckoutAmountName, got, want)
	}
	// The orders counter counts the completed checkout.
	if !hasSumPoint(metrics, MainService, OrdersName, "status", OutcomeCompleted) {
		t.Errorf("no %s{status=%s} data point", OrdersName, OutcomeCompleted)
	}
	// otelhttp's server and client duration histograms are exported too.
	findHistogram(t, metrics, MainService, "http.server.request.duration")
	findHistogram(t, metrics, MainService, "http.client.request.duration")
	findHistogram(t, metrics, PaymentsService, "http.client.request.duration")
}

type histogram struct {
	unit   string
	points []pmetric.HistogramDataPoint
}

func findHistogram(t *testing.T, ms []pmetric.Metrics, service, name string) histogram {
	t.Helper()
	var h histogram
	for _, md := range ms {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			if svc, _ := rm.Resource().Attributes().Get("service.name"); svc.Str() != service {
				continue
			}
			for j := 0; j < rm.ScopeMetrics().Len(); j++ {
				mets := rm.ScopeMetrics().At(j).Metrics()
				for k := 0; k < mets.Len(); k++ {
					m := mets.At(k)
					if m.Name() != name || m.Type() != pmetric.MetricTypeHistogram {
						continue
					}
					h.unit = m.Unit()
					for p := 0; p < m.Histogram().DataPoints().Len(); p++ {
						h.points = append(h.points, m.Histogram().DataPoints().At(p))
					}
				}
			}
		}
	}
	if len(h.points) == 0 {
		t.Fatalf("no %s histogram from %s", name, service)
	}
	return h
}

// checkExemplar asserts that a data point with the given attributes carries
// an exemplar of the given trace and span.
func checkExemplar(t *testing.T, h histogram, traceID pcommon.TraceID, spanID pcommon.SpanID, spanName, country, method string) {
	t.Helper()
	for _, dp := range h.points {
		c, ok1 := dp.Attributes().Get("country")
		m, ok2 := dp.Attributes().Get("payment_method")
		if !ok1 || !ok2 || c.Str() != country || m.Str() != method {
			continue
		}
		for i := 0; i < dp.Exemplars().Len(); i++ {
			ex := dp.Exemplars().At(i)
			if ex.TraceID() == traceID && ex.SpanID() == spanID {
				return
			}
		}
		var got []string
		for i := 0; i < dp.Exemplars().Len(); i++ {
			ex := dp.Exemplars().At(i)
			got = append(got, ex.TraceID().String()+"/"+ex.SpanID().String())
		}
		t.Fatalf("data point {country=%s, payment_method=%s} has no exemplar for %s %s/%s; exemplars: %v",
			country, method, spanName, traceID, spanID, got)
	}
	t.Fatalf("no data point with country=%s payment_method=%s", country, method)
}

func hasSumPoint(ms []pmetric.Metrics, service, name, key, value string) bool {
	for _, md := range ms {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			if svc, _ := rm.Resource().Attributes().Get("service.name"); svc.Str() != service {
				continue
			}
			for j := 0; j < rm.ScopeMetrics().Len(); j++ {
				mets := rm.ScopeMetrics().At(j).Metrics()
				for k := 0; k < mets.Len(); k++ {
					m := mets.At(k)
					if m.Name() != name || m.Type() != pmetric.MetricTypeSum {
						continue
					}
					for p := 0; p < m.Sum().DataPoints().Len(); p++ {
						if v, ok := m.Sum().DataPoints().At(p).Attributes().Get(key); ok && v.Str() == value {
							return true
						}
					}
				}
			}
		}
	}
	return false
}

// TestValidateCartQuantity checks that validate_cart carries the number of
// items sold after the quantity multiplier (the big-orders scenario), next
// to the multiplier itself.
func TestValidateCartQuantity(t *testing.T) {
	sink := startOTLPSink(t)
	cfg := testConfig(t)
	cfg.Telemetry = telemetry.Config{Endpoint: sink.addr, Protocol: telemetry.ProtocolGRPC, MetricInterval: time.Hour}
	cfg.Faults.QuantityMultiplier = 500
	s := startShop(t, cfg)
	c := newAPIClient(t, s.MainURL())
	// Products 7 and 10 have 5,000 units each: 500 of each fit.
	status, body := c.do("POST", "/checkout", `{"items":[{"product_id":7,"quantity":1},{"product_id":10,"quantity":1}],"country":"US","payment_method":"card"}`)
	if status != http.StatusCreated {
		t.Fatalf("checkout: HTTP %d %v", status, body)
	}
	if err := s.ForceFlush(context.Background()); err != nil {
		t.Fatalf("flush: %v", err)
	}
	traces, _ := sink.snapshot()
	var found bool
	for _, sp := range flattenSpans(traces) {
		if sp.name != "validate_cart" {
			continue
		}
		found = true
		if q, ok := sp.attrs.Get("cart.quantity"); !ok || q.Type() != pcommon.ValueTypeInt || q.Int() != 1000 {
			t.Errorf("cart.quantity = %v (present %v), want the int 1000", q.AsRaw(), ok)
		}
		if m, ok := sp.attrs.Get("webstore.quantity_multiplier"); !ok || m.Int() != 500 {
			t.Errorf("webstore.quantity_multiplier = %v (present %v), want 500", m.AsRaw(), ok)
		}
	}
	if !found {
		t.Fatalf("no validate_cart span among %d spans", sink.spanCount())
	}
}
