package analysis

import (
	"encoding/binary"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// node describes one span of a test trace: offsets from the trace start.
type node struct {
	service, name string
	kind          ptrace.SpanKind
	start, dur    time.Duration
	err           string
	attrs         map[string]any
	children      []node
}

var t0 = time.Date(2026, 11, 24, 14, 23, 0, 0, time.UTC)

// build turns a node tree into one trace with ID seed, each service in its
// own ResourceSpans as an SDK exporter would send it.
func build(seed uint64, root node) ptrace.Traces {
	td := ptrace.NewTraces()
	res := map[string]ptrace.SpanSlice{}
	var tid pcommon.TraceID
	binary.BigEndian.PutUint64(tid[8:], seed)
	next := uint64(1)
	var add func(n node, parent pcommon.SpanID)
	add = func(n node, parent pcommon.SpanID) {
		ss, ok := res[n.service]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", n.service)
			ss = rs.ScopeSpans().AppendEmpty().Spans()
			res[n.service] = ss
		}
		sp := ss.AppendEmpty()
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], seed<<16|next)
		next++
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		sp.SetParentSpanID(parent)
		sp.SetName(n.name)
		sp.SetKind(n.kind)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(n.start)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(n.start + n.dur)))
		if n.err != "" {
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Status().SetMessage(n.err)
		}
		if err := sp.Attributes().FromRaw(n.attrs); err != nil {
			panic(err)
		}
		for _, c := range n.children {
			add(c, sid)
		}
	}
	add(root, pcommon.SpanID{})
	return td
}

const ms = time.Millisecond

// checkout is the WebStore's checkout tree: main-service's POST /checkout
// with validate_cart, check_inventory (→ inventory-service, → SQL
// db.query.get_product), process_payment (→ payments-service →
// payment_provider_api → the simulated provider) and create_order.
func checkout(providerDur, dbDur time.Duration, quantity int, providerErr string) node {
	inv := 10*ms + dbDur
	pay := 20*ms + providerDur
	return node{service: "main-service", name: "POST /checkout", kind: ptrace.SpanKindServer, dur: 5*ms + inv + pay + 15*ms + 10*ms,
		attrs: map[string]any{"http.response.status_code": 200, "server.port": 8080},
		children: []node{
			{service: "main-service", name: "validate_cart", start: 1 * ms, dur: 3 * ms, attrs: map[string]any{"quantity": quantity, "cart.items": 1}},
			{service: "main-service", name: "check_inventory", start: 5 * ms, dur: inv, children: []node{
				{service: "main-service", name: "db.query.get_product", kind: ptrace.SpanKindClient, start: 6 * ms, dur: dbDur, attrs: map[string]any{"db.system.name": "sqlite"}},
				{service: "main-service", name: "GET", kind: ptrace.SpanKindClient, start: 7*ms + dbDur, dur: 2 * ms, children: []node{
					{service: "inventory-service", name: "GET /inventory/{id}", kind: ptrace.SpanKindServer, start: 7*ms + dbDur, dur: 1 * ms},
				}},
			}},
			{service: "main-service", name: "process_payment", start: 5*ms + inv, dur: pay, err: providerErr, attrs: map[string]any{"order.amount": float64(quantity) * 29.99}, children: []node{
				{service: "main-service", name: "POST", kind: ptrace.SpanKindClient, start: 6*ms + inv, dur: pay - 2*ms, err: providerErr, children: []node{
					{service: "payments-service", name: "POST /payments", kind: ptrace.SpanKindServer, start: 6*ms + inv, dur: pay - 3*ms, err: providerErr, children: []node{
						{service: "payments-service", name: "payment_provider_api", start: 10*ms + inv, dur: providerDur, err: providerErr, children: []node{
							{service: "payments-service", name: "POST", kind: ptrace.SpanKindClient, start: 10*ms + inv, dur: providerDur, err: providerErr, children: []node{
								{service: "payment-provider", name: "POST /charge", kind: ptrace.SpanKindServer, start: 11*ms + inv, dur: providerDur - 2*ms, err: providerErr},
							}},
						}},
					}},
				}},
			}},
			{service: "main-service", name: "create_order", start: 5*ms + inv + pay, dur: 15 * ms, children: []node{
				{service: "main-service", name: "db.query.insert_order", kind: ptrace.SpanKindClient, start: 6*ms + inv + pay, dur: 12 * ms},
			}},
		},
	}
}

// webstoreCheckout mirrors the span tree the WebStore actually emits (taken
// from a run of `webstore serve`): payments-service's payment_provider_api is
// the otelhttp client span, its child the simulated provider's server span.
func webstoreCheckout(provider time.Duration, multiplier int, totalCents int) node {
	attrs := map[string]any{"cart.lines": 1 + totalCents%3, "cart.total_cents": totalCents}
	if multiplier > 1 {
		attrs["webstore.quantity_multiplier"] = multiplier
	}
	pay := provider + 2*ms
	return node{service: "main-service", name: "POST /checkout", kind: ptrace.SpanKindServer, dur: pay + 5*ms,
		attrs: map[string]any{"checkout.amount_cents": totalCents, "http.response.status_code": 201, "network.peer.port": 60150},
		children: []node{
			{service: "main-service", name: "validate_cart", start: 0, dur: ms / 4, attrs: attrs},
			{service: "main-service", name: "check_inventory", start: ms / 2, dur: ms / 2, children: []node{
				{service: "main-service", name: "POST /reservations", kind: ptrace.SpanKindClient, start: ms / 2, dur: ms / 2, children: []node{
					{service: "inventory-service", name: "POST /reservations", kind: ptrace.SpanKindServer, start: ms / 2, dur: ms / 4},
				}},
			}},
			{service: "main-service", name: "process_payment", start: 2 * ms, dur: pay, attrs: map[string]any{"payment.amount_cents": totalCents}, children: []node{
				{service: "main-service", name: "POST /payments", kind: ptrace.SpanKindClient, start: 2 * ms, dur: pay, children: []node{
					{service: "payments-service", name: "POST /payments", kind: ptrace.SpanKindServer, start: 2 * ms, dur: pay, children: []node{
						{service: "payments-service", name: "payment_provider_api", kind: ptrace.SpanKindClient, start: 3 * ms, dur: provider, children: []node{
							{service: "payment-provider", name: "POST /v1/charges", kind: ptrace.SpanKindServer, start: 3 * ms, dur: provider,
								attrs: map[string]any{"provider.simulated_latency_ms": provider.Milliseconds()}},
						}},
					}},
				}},
			}},
			{service: "main-service", name: "create_order", start: pay + 3*ms, dur: ms / 4},
		},
	}
}

// TestWalkCriticalPath checks the critical-path split on a tree with
// overlapping children: the parent only waits for the child that ends last.
func TestWalkCriticalPath(t *testing.T) {
	td := build(9, node{service: "s", name: "root", dur: 100 * ms, children: []node{
		{service: "s", name: "fast", start: 10 * ms, dur: 20 * ms},
		{service: "s", name: "slow", start: 10 * ms, dur: 80 * ms},
	}})
	tr := buildTrees([]ptrace.Traces{td})[0]
	p := newProfile(tr, idLike)
	if p.top.name != "slow" || p.duration != 100*ms {
		t.Fatalf("top %s duration %v, want slow 100ms", p.top.name, p.duration)
	}
	if got := p.self[opKey{"s", "root"}]; got != 20*ms {
		t.Errorf("root self time %v, want 20ms (10ms before, 10ms after the children)", got)
	}
	if got := p.self[opKey{"s", "fast"}]; got != 20*ms {
		t.Errorf("fast self time %v, want 20ms", got)
	}
	for _, s := range tr.spans {
		if s.name == "fast" && s.critical != 0 {
			t.Errorf("fast: critical %v, want 0 (hidden behind slow)", s.critical)
		}
		if s.name == "root" && s.critical != 20*ms {
			t.Errorf("root: critical %v, want 20ms", s.critical)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		7600 * ms: "7.6 s", 130 * ms: "130 ms", 850 * time.Microsecond: "850 µs", time.Second: "1.0 s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
