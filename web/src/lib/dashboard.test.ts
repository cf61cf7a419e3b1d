import { describe, expect, it } from "vitest";
import { ALL, escapeRegex, flattenPanels, interpolate, parseLabelValues, type Variable } from "./dashboard";
import { exemplarIds, legend, parseEvidenceIds, seriesName } from "./prom";
import { buildTraceQL } from "./tempo";

const vars: Variable[] = [
  { name: "job", type: "query", includeAll: true, multi: true, allValue: ".*" },
  { name: "country", type: "query", includeAll: true, multi: true },
];

describe("interpolate", () => {
  const ctx = (values: Record<string, string[]>) => ({ values, variables: vars, stepSeconds: 30, rangeSeconds: 3600 });
  it("substitutes All, single and multi values as regexes", () => {
    expect(interpolate('x{job=~"$job", country=~"${country}"}', ctx({ job: [ALL], country: ["US"] }))).toBe('x{job=~".*", country=~"US"}');
    expect(interpolate('x{country=~"[[country]]"}', ctx({ country: ["US", "DE"] }))).toBe('x{country=~"(US|DE)"}');
  });
  it("escapes regex and string metacharacters in values", () => {
    expect(interpolate('x{job=~"$job"}', ctx({ job: ['a.b"c'] }))).toBe('x{job=~"a\\\\.b\\"c"}');
    expect(escapeRegex("(x)")).toBe("\\\\(x\\\\)");
  });
  it("fills the built-in intervals", () => {
    expect(interpolate("rate(x[$__rate_interval]) + rate(x[$__interval]) + $__range", ctx({}))).toBe("rate(x[1m]) + rate(x[30s]) + 1h");
  });
  it("leaves unknown variables alone", () => {
    expect(interpolate("x{a=\"$nope\"}", ctx({}))).toBe('x{a="$nope"}');
  });
});

describe("helpers", () => {
  it("parses label_values queries", () => {
    expect(parseLabelValues("label_values(webstore_payment_duration_bucket, country)")).toEqual({ label: "country", match: "webstore_payment_duration_bucket" });
    expect(parseLabelValues("label_values(job)")).toEqual({ label: "job" });
    expect(parseLabelValues('label_values(up{job="a"}, instance)')).toEqual({ label: "instance", match: 'up{job="a"}' });
    expect(parseLabelValues("query_result(up)")).toBeNull();
  });
  it("flattens rows and sorts by position", () => {
    const d = { uid: "x", title: "x", panels: [{ type: "timeseries", title: "b", gridPos: { x: 12, y: 0, w: 12, h: 8 } }, { type: "row", title: "r", gridPos: { x: 0, y: 8, w: 24, h: 1 }, panels: [{ type: "stat", title: "c", gridPos: { x: 0, y: 9, w: 6, h: 4 } }] }, { type: "timeseries", title: "a", gridPos: { x: 0, y: 0, w: 12, h: 8 } }] };
    expect(flattenPanels(d).map((p) => p.title)).toEqual(["a", "b", "r", "c"]);
  });
  it("reads exemplar ids in every spelling", () => {
    expect(exemplarIds({ trace_id: "AB", span_id: "CD" })).toEqual({ traceId: "ab", spanId: "cd" });
    expect(exemplarIds({ traceID: "ab" })).toEqual({ traceId: "ab", spanId: "" });
  });
  it("formats legends and series names", () => {
    expect(legend("{{job}} {{ http_route }}", { job: "main", http_route: "/checkout" })).toBe("main /checkout");
    expect(seriesName({ __name__: "up", b: "2", a: "1" })).toBe('up{a="1", b="2"}');
  });
  it("parses evidence trace ids", () => {
    expect(parseEvidenceIds(`${"a".repeat(32)}, ${"B".repeat(32)},bogus,<script>`)).toEqual(["a".repeat(32), "b".repeat(32)]);
    expect(parseEvidenceIds(undefined)).toEqual([]);
  });
  it("builds TraceQL from the search form, quoting values", () => {
    expect(buildTraceQL({})).toBe("{}");
    expect(buildTraceQL({ service: "main-service", spanName: 'say "hi"', minDuration: "1s" })).toBe('{ resource.service.name = "main-service" && name = "say \\"hi\\"" && duration >= 1s }');
  });
});
