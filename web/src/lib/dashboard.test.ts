import { describe, expect, it } from "vitest";
import { ALL, autoInterval, customOptions, defaultValues, escapeRegex, flattenPanels, interpolate, parseLabelValues, type Dashboard, type Variable } from "./dashboard";
import { exemplarIds, isExemplarIdLabel, legend, parseEvidenceIds, seriesName } from "./prom";
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

describe("interval, constant and textbox variables", () => {
  const interval: Variable = { name: "interval", type: "interval", query: "1m,5m,10m", auto: true, auto_count: 30, auto_min: "10s", current: { value: "$__auto_interval_interval" } };
  const constant: Variable = { name: "ns", type: "constant", query: "shop.prod" };
  const textbox: Variable = { name: "route", type: "textbox", query: ".*" };
  const variables = [interval, constant, textbox];
  const ctx = (values: Record<string, string[]>, rangeSeconds = 3600) => ({ values, variables, stepSeconds: 30, rangeSeconds });
  const expr = 'rate(x{ns="$ns", route=~"${route}"}[$interval])';
  it("replaces an interval by the selection, raw", () => {
    expect(interpolate(expr, ctx({ interval: ["5m"], route: ["/a"] }))).toBe('rate(x{ns="shop.prod", route=~"/a"}[5m])');
  });
  it("computes auto from the range: count intervals, rounded, at least auto_min", () => {
    expect(interpolate("[$interval]", ctx({ interval: ["$__auto_interval_interval"] }))).toBe("[2m]");
    expect(interpolate("[$interval] [$__auto_interval_interval]", ctx({}, 300))).toBe("[10s] [10s]");
    expect(interpolate("[$interval]", ctx({ interval: ["auto"] }, 86400))).toBe("[1h]");
  });
  it("uses defaults: saved current value, the textbox's query, the constant", () => {
    expect(interpolate(expr, ctx({}))).toBe('rate(x{ns="shop.prod", route=~".*"}[2m])');
    expect(defaultValues({ name: "i", type: "interval", query: "1m,5m" })).toEqual(["1m"]);
    expect(defaultValues({ name: "i", type: "interval", query: "1m,5m", auto: true })).toEqual(["$__auto_interval_i"]);
    expect(defaultValues({ name: "t", type: "textbox", query: "x", current: { value: "y" } })).toEqual(["y"]);
    expect(defaultValues({ name: "q", type: "query" })).toEqual([ALL]);
  });
  it("inserts a textbox's text as typed, escaped only for the PromQL string", () => {
    expect(interpolate('x{r=~"$route"}', ctx({ route: ['a\\d+"}) or vector(1'] }))).toBe('x{r=~"a\\\\d+\\"}) or vector(1"}');
  });
  it("is not fooled by variable names from Object.prototype", () => {
    const v: Variable[] = [{ name: "constructor", type: "custom", query: "a" }, { name: "__proto__", type: "textbox", query: "p" }];
    expect(interpolate("$constructor $__proto__ $toString", { values: {}, variables: v, stepSeconds: 15, rangeSeconds: 60 })).toBe(".* p $toString");
  });
  it("rounds auto intervals to nice values", () => {
    expect(autoInterval(30 * 60)).toBe("1m");
    expect(autoInterval(7 * 86400, 30, "1m")).toBe("6h");
    expect(autoInterval(60, 30, "bogus")).toBe("2s");
  });
  it("reads custom options with text : value pairs", () => {
    expect(customOptions({ name: "c", type: "custom", query: "GET, Post : POST,," })).toEqual([
      { text: "GET", value: "GET" },
      { text: "Post", value: "POST" },
    ]);
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
  it("places a collapsed row's panels under it and moves what follows down", () => {
    const d: Dashboard = {
      uid: "x",
      title: "x",
      panels: [
        { type: "row", title: "open", gridPos: { x: 0, y: 0, w: 24, h: 1 }, panels: [] },
        { type: "stat", title: "s", gridPos: { x: 0, y: 1, w: 6, h: 4 } },
        { type: "row", title: "closed", collapsed: true, gridPos: { x: 0, y: 5, w: 24, h: 1 }, panels: [{ type: "heatmap", title: "h", gridPos: { x: 0, y: 20, w: 12, h: 9 } }, { type: "table", title: "t", gridPos: { x: 12, y: 22, w: 12, h: 3 } }] },
        { type: "row", title: "last", gridPos: { x: 0, y: 6, w: 24, h: 1 } },
        { type: "stat", title: "u", gridPos: { x: 0, y: 7, w: 6, h: 2 } },
      ],
    };
    expect(flattenPanels(d).map((p) => `${p.title}@${p.gridPos!.x},${p.gridPos!.y}`)).toEqual(["open@0,0", "s@0,1", "closed@0,5", "h@0,6", "t@12,8", "last@0,15", "u@0,16"]);
  });
  it("reads exemplar ids in every spelling", () => {
    expect(exemplarIds({ trace_id: "AB", span_id: "CD" })).toEqual({ traceId: "ab", spanId: "cd" });
    expect(exemplarIds({ traceID: "ab" })).toEqual({ traceId: "ab", spanId: "" });
  });
  it("reads exemplar ids under the server's label names only", () => {
    // internal/traceid's TraceLabels and SpanLabels: the server finds no trace under other spellings.
    expect(exemplarIds({ traceId: "ab", TraceID: "cd", spanId: "ef", SpanID: "01" })).toEqual({ traceId: "", spanId: "" });
    expect(exemplarIds({ traceID: "AB", trace_id: "CD", spanID: "01" })).toEqual({ traceId: "cd", spanId: "01" });
    expect(["trace_id", "traceID", "span_id", "spanID", "traceId", "le"].filter(isExemplarIdLabel)).toEqual(["trace_id", "traceID", "span_id", "spanID"]);
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
