import { describe, expect, it } from "vitest";
import { barFor, parseTrace, toHexId, visibleRows, type Span, type Trace } from "./trace";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const T0 = 1_732_458_225_000_000_000n;

interface S {
  id: string;
  parent?: string;
  name: string;
  service?: string;
  start: number; // ms after T0
  end: number;
  error?: boolean;
}

function otlp(spans: S[], shape: "v2" | "v1" = "v2"): unknown {
  const byService = new Map<string, S[]>();
  for (const s of spans) {
    const svc = s.service ?? "main-service";
    byService.set(svc, [...(byService.get(svc) ?? []), s]);
  }
  const batches = [...byService].map(([svc, ss]) => ({
    resource: { attributes: [{ key: "service.name", value: { stringValue: svc } }] },
    scopeSpans: [
      {
        scope: { name: "webstore", version: "1.0" },
        spans: ss.map((s) => ({
          traceId: TRACE,
          spanId: s.id.padStart(16, "0"),
          parentSpanId: s.parent ? s.parent.padStart(16, "0") : "",
          name: s.name,
          kind: 2,
          startTimeUnixNano: String(T0 + BigInt(s.start) * 1_000_000n),
          endTimeUnixNano: String(T0 + BigInt(s.end) * 1_000_000n),
          attributes: [{ key: "http.route", value: { stringValue: "/checkout" } }, { key: "n", value: { intValue: "42" } }],
          status: s.error ? { code: 2, message: "boom" } : {},
        })),
      },
    ],
  }));
  return shape === "v2" ? { trace: { resourceSpans: batches } } : { batches };
}

// The seed's slow checkout: process_payment → payment_provider_api is the slow path.
const CHECKOUT: S[] = [
  { id: "1", name: "POST /checkout", start: 0, end: 8200 },
  { id: "2", parent: "1", name: "validate_cart", start: 10, end: 60 },
  { id: "3", parent: "1", name: "check_inventory", start: 60, end: 160 },
  { id: "4", parent: "1", name: "process_payment", start: 170, end: 7970 },
  { id: "5", parent: "4", name: "payment_provider_api", service: "payments-service", start: 200, end: 7800 },
  { id: "6", parent: "1", name: "create_order", start: 8000, end: 8150 },
  { id: "7", parent: "1", name: "audit_log", start: 7000, end: 7100 }, // parallel with process_payment
];

const span = (t: Trace, id: string): Span => t.byId.get(id.padStart(16, "0"))!;

describe("parseTrace", () => {
  it("builds the tree in start order with services, attributes and status", () => {
    const t = parseTrace(otlp(CHECKOUT));
    expect(t.traceId).toBe(TRACE);
    expect(t.spans.map((s) => s.name)).toEqual(["POST /checkout", "validate_cart", "check_inventory", "process_payment", "payment_provider_api", "audit_log", "create_order"]);
    expect(t.spans.map((s) => s.depth)).toEqual([0, 1, 1, 1, 2, 1, 1]);
    expect(t.duration).toBe(8200 * 1e6);
    expect(t.services.sort()).toEqual(["main-service", "payments-service"]);
    const pp = span(t, "5");
    expect(pp.service).toBe("payments-service");
    expect(pp.duration).toBe(7600 * 1e6);
    expect(pp.kind).toBe("server");
    expect(pp.attributes).toContainEqual({ key: "n", value: 42 });
    expect(pp.scope).toBe("webstore 1.0");
  });

  it("reads the v1 batches shape and base64 ids", () => {
    const body = otlp(CHECKOUT.slice(0, 2), "v1") as { batches: { scopeSpans: { spans: { spanId: string; traceId: string }[] }[] }[] };
    body.batches[0]!.scopeSpans[0]!.spans[0]!.traceId = "S/kvNXezTaajzpKdDg5HNg==";
    const t = parseTrace(body);
    expect(t.spans).toHaveLength(2);
    expect(t.spans[0]!.traceId).toBe(TRACE);
  });

  it("marks errors and propagates them to ancestors", () => {
    const t = parseTrace(otlp([{ id: "1", name: "root", start: 0, end: 10 }, { id: "2", parent: "1", name: "mid", start: 1, end: 9 }, { id: "3", parent: "2", name: "leaf", start: 2, end: 3, error: true }]));
    expect(span(t, "3").status).toBe("error");
    expect(span(t, "3").statusMessage).toBe("boom");
    expect(span(t, "1").hasError && span(t, "2").hasError).toBe(true);
    expect(span(t, "1").status).toBe("unset");
  });

  it("treats orphans as roots and survives parent cycles", () => {
    const t = parseTrace(otlp([{ id: "a", parent: "b", name: "x", start: 0, end: 5 }, { id: "b", parent: "a", name: "y", start: 1, end: 2 }, { id: "c", parent: "zz", name: "orphan", start: 3, end: 4 }]));
    expect(t.spans).toHaveLength(3);
    expect(t.roots.length).toBeGreaterThanOrEqual(2);
  });

  it("rejects bodies without spans", () => {
    expect(() => parseTrace({})).toThrow(/no spans/);
    expect(() => parseTrace({ trace: { resourceSpans: [] } })).toThrow(/no spans/);
    expect(() => parseTrace("<script>")).toThrow(/no spans/);
  });

  it("keeps nanosecond precision for epoch timestamps", () => {
    const body = otlp([{ id: "1", name: "r", start: 0, end: 1 }]) as { trace: { resourceSpans: { scopeSpans: { spans: { endTimeUnixNano: string }[] }[] }[] } };
    body.trace.resourceSpans[0]!.scopeSpans[0]!.spans[0]!.endTimeUnixNano = String(T0 + 1234n);
    expect(parseTrace(body).spans[0]!.duration).toBe(1234);
  });
});

describe("critical path", () => {
  it("follows the slow payment, not the parallel or earlier work", () => {
    const t = parseTrace(otlp(CHECKOUT));
    const critical = t.spans.filter((s) => s.critical).map((s) => s.name);
    expect(critical).toEqual(["POST /checkout", "validate_cart", "check_inventory", "process_payment", "payment_provider_api", "create_order"]);
    expect(span(t, "7").critical).toBe(false);
  });

  it("takes a child that ends after its parent (clock skew)", () => {
    const t = parseTrace(otlp([{ id: "1", name: "root", start: 0, end: 100 }, { id: "2", parent: "1", name: "late", start: 50, end: 120 }]));
    expect(span(t, "2").critical).toBe(true);
  });

  it("of parallel children, only the last to finish is critical", () => {
    const t = parseTrace(otlp([{ id: "1", name: "root", start: 0, end: 100 }, { id: "2", parent: "1", name: "a", start: 10, end: 90 }, { id: "3", parent: "1", name: "b", start: 10, end: 60 }, { id: "4", parent: "1", name: "c", start: 0, end: 5 }]));
    expect(["2", "3", "4"].map((id) => span(t, id).critical)).toEqual([true, false, true]);
  });

  it("handles a 5,000-span chain without recursion limits", () => {
    const chain: S[] = Array.from({ length: 5000 }, (_, i) => ({ id: (i + 1).toString(16), parent: i ? i.toString(16) : undefined, name: `s${i}`, start: i, end: 20000 - i }));
    const t = parseTrace(otlp(chain));
    expect(t.spans.every((s) => s.critical)).toBe(true);
    expect(t.spans[4999]!.depth).toBe(4999);
  });
});

describe("waterfall layout", () => {
  it("collapses and expands subtrees", () => {
    const t = parseTrace(otlp(CHECKOUT));
    expect(visibleRows(t, new Set())).toHaveLength(7);
    const rows = visibleRows(t, new Set([span(t, "4").spanId]));
    expect(rows.map((r) => r.span.name)).toEqual(["POST /checkout", "validate_cart", "check_inventory", "process_payment", "audit_log", "create_order"]);
    expect(rows[3]!.collapsed).toBe(true);
    expect(rows[3]!.hiddenCount).toBe(1);
    const all = visibleRows(t, new Set([span(t, "1").spanId]));
    expect(all).toHaveLength(1);
    expect(all[0]!.hiddenCount).toBe(6);
  });

  it("collapsing a leaf changes nothing", () => {
    const t = parseTrace(otlp(CHECKOUT));
    const rows = visibleRows(t, new Set([span(t, "2").spanId]));
    expect(rows).toHaveLength(7);
    expect(rows[1]!.collapsed).toBe(false);
  });

  it("places bars to scale", () => {
    const t = parseTrace(otlp(CHECKOUT));
    const b = barFor(span(t, "5"), t.duration);
    expect(b.left).toBeCloseTo(200 / 8200);
    expect(b.width).toBeCloseTo(7600 / 8200);
    const tiny = barFor({ ...span(t, "2"), start: 0, duration: 0 }, t.duration, 0.002);
    expect(tiny.width).toBe(0.002);
    expect(barFor(span(t, "1"), 0)).toEqual({ left: 0, width: 1 });
  });
});

describe("toHexId", () => {
  it.each([
    ["4BF92F3577B34DA6A3CE929D0E0E4736", TRACE],
    ["S/kvNXezTaajzpKdDg5HNg==", TRACE],
    ["APBnqgupArc=", "00f067aa0ba902b7"],
    ["00f067aa0ba902b7", "00f067aa0ba902b7"],
    ["", ""],
  ])("%s", (id, want) => expect(toHexId(id)).toBe(want));
});
