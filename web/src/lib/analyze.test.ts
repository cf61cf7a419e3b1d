import { describe, expect, it } from "vitest";
import { analyzeURL, barWidths, baselineValueOf, compareWindow, findingName, formatFindingValue, formatShare, groupFindings, parseAnalysis, type Finding } from "./analyze";

const T1 = "0af7651916cd43dd8448eb211c80319c";
const T2 = "4bf92f3577b34da6a3ce929d0e0e4736";

// The answer of the API contract (issue 15), as the server sends it.
const answer = {
  status: "success",
  data: {
    verdict: "payment_provider_api self time 0.09 s → 7.7 s in 48 of 50 slow traces; payment_method=paypal 100% vs 21%",
    threshold: 5,
    spike: { traces: 50, exemplars: 12 },
    baseline: { traces: 200 },
    findings: [
      { kind: "span", service: "payments-service", span: "payment_provider_api", spikeValue: 7.7, baselineValue: 0.09, coverage: 0.96, score: 0.93, traceIDs: [T1, T2.toUpperCase()] },
      { kind: "attribute", attribute: "payment_method", value: "paypal", spikeValue: 1.0, baselineValue: 0.21, score: 0.71, traceIDs: [T2] },
      { kind: "attribute", attribute: "quantity", numeric: true, spikeValue: 500, baselineValue: 2, score: 0.5, traceIDs: [] },
      { kind: "error", service: "payments-service", span: "payment_provider_api", value: "card declined", spikeValue: 0.3, baselineValue: 0, score: 0.3, traceIDs: [T1] },
    ],
  },
};

describe("analyzeURL", () => {
  it("sends the query and the region as Unix seconds, and only the options that are set", () => {
    const u = new URL(analyzeURL({ query: 'histogram_quantile(0.95, sum by (le) (rate(x_bucket{route=~"/pay"}[1m])))', start: 1_700_000_000_000, end: 1_700_000_180_500 }), "http://x");
    expect(u.pathname).toBe("/prometheus/api/lookout/analyze");
    expect(Object.fromEntries(u.searchParams)).toEqual({ query: 'histogram_quantile(0.95, sum by (le) (rate(x_bucket{route=~"/pay"}[1m])))', start: "1700000000", end: "1700000180.5" });
  });

  it("adds baseline, threshold and limit when asked", () => {
    const u = new URL(analyzeURL({ query: "up", start: 2000, end: 3000, baselineStart: 0, baselineEnd: 1000, threshold: 2.5, limit: 10 }), "http://x");
    expect(Object.fromEntries(u.searchParams)).toEqual({ query: "up", start: "2", end: "3", baseline_start: "0", baseline_end: "1", threshold: "2.5", limit: "10" });
  });
});

describe("parseAnalysis", () => {
  it("reads the contract's answer", () => {
    const a = parseAnalysis(answer);
    expect(a.verdict).toBe(answer.data.verdict);
    expect([a.threshold, a.spike, a.baseline, a.unknownKinds]).toEqual([5, { traces: 50, exemplars: 12 }, { traces: 200 }, 0]);
    expect(a.findings.map((f) => f.kind)).toEqual(["span", "attribute", "attribute", "error"]);
    expect(a.findings[0]).toEqual({ kind: "span", service: "payments-service", span: "payment_provider_api", attribute: undefined, value: undefined, numeric: false, spikeValue: 7.7, baselineValue: 0.09, coverage: 0.96, score: 0.93, against: undefined, traceIDs: [T1, T2] });
    expect(a.findings[2]!.numeric).toBe(true);
    expect(a.findings[3]!.value).toBe("card declined");
  });

  it("accepts absent optional fields: no threshold, counts, findings or values", () => {
    const a = parseAnalysis({ status: "success", data: { verdict: "no exemplars in this region" } });
    expect(a).toEqual({ verdict: "no exemplars in this region", threshold: undefined, spike: { traces: undefined, exemplars: undefined }, baseline: { traces: undefined }, findings: [], unknownKinds: 0 });
    const b = parseAnalysis({ status: "success", data: { verdict: "v", findings: [{ kind: "span", span: "s" }] } });
    expect(b.findings[0]).toMatchObject({ spikeValue: null, baselineValue: null, traceIDs: [], numeric: false });
  });

  it("keeps only well-formed trace IDs, once each", () => {
    const a = parseAnalysis({ status: "success", data: { verdict: "v", findings: [{ kind: "error", traceIDs: [T1, "<img src=x>", 42, T1.toUpperCase(), "", "abc"] }] } });
    expect(a.findings[0]!.traceIDs).toEqual([T1]);
  });

  it("counts findings of unknown kinds instead of failing", () => {
    const a = parseAnalysis({ status: "success", data: { verdict: "v", findings: [{ kind: "resource" }, { kind: "span", span: "s" }] } });
    expect([a.findings.length, a.unknownKinds]).toEqual([1, 1]);
  });

  it("throws the server's message for an error answer", () => {
    expect(() => parseAnalysis({ status: "error", errorType: "bad_data", error: 'invalid parameter "query": 1:5: parse error' })).toThrow('invalid parameter "query": 1:5: parse error');
    expect(() => parseAnalysis({ status: "error" })).toThrow("analysis failed");
  });

  it.each([
    ["not an object", "nope", "not a JSON object"],
    ["unknown status", { status: "partial", data: {} }, 'status "partial"'],
    ["no data", { status: "success" }, "no data"],
    ["no verdict", { status: "success", data: { findings: [] } }, "no verdict"],
    ["findings not a list", { status: "success", data: { verdict: "v", findings: {} } }, "findings is not a list"],
    ["a finding not an object", { status: "success", data: { verdict: "v", findings: [7] } }, "findings[0] is not an object"],
    ["a value as text", { status: "success", data: { verdict: "v", findings: [{ kind: "span", spikeValue: "7.7" }] } }, "findings[0].spikeValue is not a number"],
    ["a fractional count", { status: "success", data: { verdict: "v", spike: { traces: 1.5 } } }, "spike.traces is not a count"],
    ["a negative count", { status: "success", data: { verdict: "v", baseline: { traces: -1 } } }, "baseline.traces is not a count"],
    ["threshold as text", { status: "success", data: { verdict: "v", threshold: "5" } }, "threshold is not a number"],
  ])("rejects an answer with %s", (_name, body, msg) => {
    expect(() => parseAnalysis(body)).toThrow(msg);
  });
});

describe("formatting", () => {
  const span = { kind: "span", numeric: false } as const;
  const share = { kind: "attribute", numeric: false } as const;
  const median = { kind: "attribute", numeric: true } as const;
  const error = { kind: "error", numeric: false } as const;

  it.each([
    [span, 7.7, "7.70s"],
    [span, 0.09, "90.0ms"],
    [span, 0, "0s"],
    [share, 1, "100%"],
    [share, 0.21, "21%"],
    [share, 0.055, "5.5%"],
    [share, 0.05, "5%"],
    [share, 0.07, "7%"],
    [share, 0.999, "100%"],
    [share, 0.0004, "<0.1%"],
    [share, 0, "0%"],
    [median, 500, "500"],
    [median, 2, "2"],
    [median, 0.3333333, "0.333"],
    [error, 0.3, "30%"],
    [span, null, "–"],
    [error, Number.NaN, "–"],
  ])("%o value %s renders as %s", (f, v, want) => {
    expect(formatFindingValue(f, v)).toBe(want);
  });

  it("formatShare handles missing values", () => {
    expect(formatShare(undefined)).toBe("–");
  });

  it("names findings by kind", () => {
    const a = parseAnalysis(answer).findings;
    expect(a.map(findingName)).toEqual(["payments-service · payment_provider_api", "payment_method=paypal", "quantity", "payments-service · payment_provider_api"]);
    expect(findingName({ kind: "span", numeric: false, spikeValue: 1, baselineValue: 0, traceIDs: [] })).toBe("(unnamed span)");
  });

  it("groups findings by kind in the server's order", () => {
    const fs = parseAnalysis(answer).findings;
    const g = groupFindings([...fs].reverse());
    expect([g.span.length, g.attribute.map((f) => f.attribute), g.error.length]).toEqual([1, ["quantity", "payment_method"], 1]);
  });
});

describe("barWidths", () => {
  it.each<[number | null, number | null, { spike: number; baseline: number }]>([
    [7.7, 0.09, { spike: 100, baseline: (0.09 / 7.7) * 100 }],
    [1, 2, { spike: 50, baseline: 100 }],
    [1000, 0.001, { spike: 100, baseline: 1 }],
    [0, 0, { spike: 0, baseline: 0 }],
    [null, 3, { spike: 0, baseline: 100 }],
    [-1, 3, { spike: 0, baseline: 100 }],
  ])("spike %s, baseline %s", (a, b, want) => {
    const got = barWidths(a, b);
    expect(got.spike).toBeCloseTo(want.spike, 9);
    expect(got.baseline).toBeCloseTo(want.baseline, 9);
  });
});

describe("compareWindow", () => {
  const t = 1_700_000_000; // seconds
  it("is two minutes before the exemplar to one minute after", () => {
    expect(compareWindow(t, t * 1000 + 3_600_000)).toEqual({ start: t * 1000 - 120_000, end: t * 1000 + 60_000 });
  });
  it("ends now when the exemplar is less than a minute old", () => {
    expect(compareWindow(t, t * 1000 + 5_000)).toEqual({ start: t * 1000 - 120_000, end: t * 1000 + 5_000 });
  });
  it("keeps end after start when the exemplar lies in the future of the browser's clock", () => {
    const w = compareWindow(t, t * 1000 - 600_000);
    expect(w).toEqual({ start: t * 1000 - 120_000, end: t * 1000 + 60_000 });
    expect(w.end).toBeGreaterThan(w.start);
  });
  it("keeps fractional exemplar times on whole milliseconds", () => {
    const w = compareWindow(t + 0.0005, t * 1000 + 3_600_000);
    expect([Number.isInteger(w.start), Number.isInteger(w.end)]).toEqual([true, true]);
  });
});

describe("baselineValueOf", () => {
  const f = (against?: string): Finding => ({ kind: "attribute", numeric: false, spikeValue: 1, baselineValue: 0, against, traceIDs: [] });
  it("shows the baseline value when the baseline has traces, or when no count was sent", () => {
    expect(baselineValueOf({ baseline: { traces: 200 } }, f())).toBe(0);
    expect(baselineValueOf({ baseline: {} }, f())).toBe(0);
  });
  it("shows none when the baseline held no traces: the 0 the server sends compares nothing", () => {
    expect(baselineValueOf({ baseline: { traces: 0 } }, f())).toBeNull();
    expect(baselineValueOf({ baseline: { traces: 0 } }, f("baseline"))).toBeNull();
  });
  it("keeps a value compared with the region's other traces", () => {
    expect(baselineValueOf({ baseline: { traces: 0 } }, f("rest"))).toBe(0);
  });
});
