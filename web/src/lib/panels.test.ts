import { describe, expect, it } from "vitest";
import { barGauge, heatmapGrid, tableFromVectors } from "./panels";

describe("tableFromVectors", () => {
  it("makes a row per sample, labels as columns, the value last", () => {
    const t = tableFromVectors([
      {
        refId: "A",
        result: [
          { metric: { http_route: "/pay", code: "500" }, value: [1700000000, "2"] },
          { metric: { http_route: "/cart", code: "200", __name__: "reqs" }, value: [1700000000, "12.5"] },
        ],
      },
    ]);
    expect(t.columns).toEqual(["__name__", "code", "http_route", "Value"]);
    expect(t.rows).toEqual([
      ["", "500", "/pay", 2],
      ["reqs", "200", "/cart", 12.5],
    ]);
    expect(t.valueColumns).toEqual([false, false, false, true]);
  });
  it("joins several targets on equal labels, one value column each", () => {
    const t = tableFromVectors([
      { refId: "A", result: [{ metric: { route: "/a" }, value: [1, "1"] }, { metric: { route: "/b" }, value: [1, "NaN"] }] },
      { refId: "B", result: [{ metric: { route: "/a" }, value: [1, "+Inf"] }] },
    ]);
    expect(t.columns).toEqual(["route", "Value #A", "Value #B"]);
    expect(t.rows).toEqual([
      ["/a", 1, Infinity],
      ["/b", null, null],
    ]);
  });
  it("takes a scalar as one row, and nothing as no rows", () => {
    expect(tableFromVectors([{ refId: "A", result: [1, "3"] }]).rows).toEqual([[3]]);
    expect(tableFromVectors([{ refId: "A", result: [] }])).toEqual({ columns: ["Value"], rows: [], valueColumns: [true] });
  });
});

describe("barGauge", () => {
  const samples = [
    { metric: { route: "/b" }, value: [1, "5"] as [number, string] },
    { metric: { route: "/a" }, value: [1, "10"] as [number, string] },
    { metric: { route: "/c" }, value: [1, "NaN"] as [number, string] },
  ];
  it("makes one bar per series, filled from 0 to the largest value", () => {
    expect(barGauge([{ samples, legendFormat: "{{route}}" }])).toEqual([
      { label: "/a", value: 10, fraction: 1 },
      { label: "/b", value: 5, fraction: 0.5 },
    ]);
  });
  it("uses the configured min and max, clamping", () => {
    expect(barGauge([{ samples, legendFormat: "{{route}}" }], { min: 4, max: 8 }).map((b) => b.fraction)).toEqual([1, 0.25]);
  });
  it("puts the bars of several targets on one scale; handles negative and zero values", () => {
    expect(barGauge([{ samples: [{ metric: { n: "a" }, value: [1, "-2"] }], legendFormat: "{{n}}" }, { samples: [{ metric: { n: "b" }, value: [1, "2"] }], legendFormat: "{{n}}" }]).map((b) => b.fraction)).toEqual([0, 1]);
    expect(barGauge([{ samples: [{ metric: {}, value: [1, "0"] }] }])[0]!.fraction).toBe(0);
  });
});

describe("heatmapGrid", () => {
  const bucket = (le: string, values: [number, string][], extra: Record<string, string> = {}) => ({ metric: { __name__: "http_server_request_duration_bucket", le, ...extra }, values });
  it("turns cumulative buckets into per-bucket counts, sorted by bound", () => {
    const g = heatmapGrid([
      bucket("+Inf", [[10, "10"], [20, "14"]]),
      bucket("0.5", [[10, "7"], [20, "7"]]),
      bucket("0.1", [[10, "2"], [20, "3"]]),
      { metric: { __name__: "no_le" }, values: [[10, "99"]] },
    ]);
    expect(g.buckets).toEqual(["0.1", "0.5", "+Inf"]);
    expect(g.times).toEqual([10, 20]);
    expect(g.counts).toEqual([
      [2, 3],
      [5, 4],
      [3, 7],
    ]);
    expect(g.max).toBe(7);
  });
  it("sums series with the same le and leaves missing samples empty", () => {
    const g = heatmapGrid([bucket("1", [[10, "1"]], { job: "a" }), bucket("1", [[10, "2"], [20, "1"]], { job: "b" }), bucket("+Inf", [[10, "2.9999"]])]);
    expect(g.counts).toEqual([
      [3, 1],
      [0, null],
    ]);
  });
  it("is empty without buckets", () => {
    expect(heatmapGrid([])).toEqual({ times: [], buckets: [], counts: [], max: 0 });
  });
});
