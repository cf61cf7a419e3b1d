import { describe, expect, it } from "vitest";
import { doubleOf, isTraceQLMetrics, labelsOf, labelValue, parseQueryInstant, parseQueryRange, stepParam, valueAt, type QueryRangeResponse } from "./traceqlmetrics";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";
const str = (key: string, v: string) => ({ key, value: { stringValue: v } });

describe("isTraceQLMetrics", () => {
  it.each([
    ["{} | rate()", true],
    ["{ } | rate() by (resource.service.name)", true],
    ['{ resource.service.name = "checkout" } | count_over_time()', true],
    ["{}|avg_over_time(duration)", true],
    ["{} | sum_over_time(span.bytes)", true],
    ["{} | max_over_time(duration)", true],
    ["{} | min_over_time(duration)", true],
    ["{ status = error } | quantile_over_time(duration, .5, .95)", true],
    ["{} |\n  histogram_over_time(duration)", true],
    ["{} | compare({ status = error })", true],
    ["{} | rate () ", true],
    // Spanset pipelines and PromQL are not.
    ["{} | count() > 2", false],
    ["{} | avg(duration) > 1s", false],
    ["{} | select(span.http.route)", false],
    ["rate(http_server_request_duration_count[5m])", false],
    ["sum by (le) (rate(webstore_payment_duration_bucket[5m]))", false],
    ["count_over_time(up[5m])", false],
    ["{} | rated()", false],
  ])("%j → %s", (q, want) => {
    expect(isTraceQLMetrics(q)).toBe(want);
  });
});

describe("labelValue", () => {
  it.each([
    [{ stringValue: "checkout" }, "checkout"],
    [{ stringValue: "" }, ""],
    [{ intValue: "200" }, "200"],
    [{ intValue: 7 }, "7"],
    [{ doubleValue: 0.95 }, "0.95"],
    [{ doubleValue: 0.004194304 }, "0.004194304"],
    [{ doubleValue: "NaN" }, "NaN"],
    [{ doubleValue: "Infinity" }, "Infinity"],
    [{ boolValue: true }, "true"],
    [{ boolValue: false }, "false"],
    [{}, ""],
    [undefined, ""],
  ])("%j → %j", (v, want) => {
    expect(labelValue(v)).toBe(want);
  });

  it("reads every pair of a label set", () => {
    expect(labelsOf([str("a", "x"), { key: "p", value: { doubleValue: 0.5 } }, { key: "n" }])).toEqual({ a: "x", p: "0.5", n: "" });
    expect(labelsOf(undefined)).toEqual({});
  });
});

describe("doubleOf", () => {
  it.each([
    [undefined, 0],
    [0.5, 0.5],
    ["0.25", 0.25],
    ["Infinity", Infinity],
    ["-Infinity", -Infinity],
    ["NaN", NaN],
    ["", NaN],
    [true, NaN],
  ])("%j → %s", (v, want) => {
    expect(doubleOf(v)).toBe(want);
  });
});

describe("valueAt", () => {
  const pts: [number, number | null][] = [
    [60, 1],
    [120, 2],
    [180, null],
  ];
  it.each([
    [10, 1], // before the first sample: the first
    [60, 1], // on a sample: that one
    [61, 2], // inside (60, 120]: the step ending at 120
    [119.9, 2],
    [150, NaN], // its step has no value
    [180, NaN],
    [180.5, NaN], // after the last sample: in no step
  ])("at %s → %s", (t, want) => {
    expect(valueAt(pts, t)).toBe(want);
  });
  it("is NaN after a series' last value", () => {
    expect(valueAt([[60, 3]], 60)).toBe(3);
    expect(valueAt([[60, 3]], 61)).toBe(NaN);
  });
  it("is NaN on an empty series", () => expect(valueAt([], 5)).toBe(NaN));
});

describe("parseQueryRange", () => {
  const ex = (value: number | string | undefined, ms: string, trace = TRACE, span = SPAN) => ({
    labels: [str("trace:id", trace), str("span:id", span)],
    value,
    timestampMs: ms,
  });

  it("reads the documented example: 0-valued samples without value, string timestamps", () => {
    const got = parseQueryRange({
      series: [
        {
          labels: [str("resource.service.name", "checkout")],
          samples: [{ timestampMs: "1700000060000", value: 0.5 }, { timestampMs: "1700000120000" }],
          exemplars: [ex(0.5, "1700000031234")],
        },
      ],
      metrics: { inspectedTraces: 12, inspectedBytes: "34567" },
    });
    expect(got.series).toEqual([
      {
        label: '{resource.service.name="checkout"}',
        labels: { "resource.service.name": "checkout" },
        points: [
          [1700000060, 0.5],
          [1700000120, 0],
        ],
      },
    ]);
    expect(got.exemplars).toEqual([{ time: 1700000031.234, value: 0.5, traceId: TRACE, spanId: SPAN, labels: {}, seriesLabels: { "resource.service.name": "checkout" }, found: undefined }]);
  });

  it.each<[string, QueryRangeResponse["series"], string[]]>([
    ["without by(): the function's name", [{ labels: [str("__name__", "rate")], samples: [] }], ["rate"]],
    ["quantiles: p as a double", [{ labels: [{ key: "p", value: { doubleValue: 0.95 } }] }, { labels: [{ key: "p", value: { doubleValue: 0.5 } }] }], ['{p="0.95"}', '{p="0.5"}']],
    [
      "quantiles by a service",
      [{ labels: [str("resource.service.name", "cart"), { key: "p", value: { doubleValue: 0.99 } }] }],
      ['{p="0.99", resource.service.name="cart"}'],
    ],
    ["histogram buckets in seconds", [{ labels: [str("__name__", "histogram_over_time"), { key: "__bucket", value: { doubleValue: 0.004194304 } }] }], ['histogram_over_time{__bucket="0.004194304"}']],
    ["int and bool labels", [{ labels: [{ key: "span.http.status_code", value: { intValue: "500" } }, { key: "span.cached", value: { boolValue: false } }] }], ['{span.cached="false", span.http.status_code="500"}']],
    ["no labels at all", [{}], ["{}"]],
  ])("names series as PromQL does: %s", (_, series, want) => {
    expect(parseQueryRange({ series }).series.map((s) => s.label)).toEqual(want);
  });

  it("sorts samples, makes NaN a gap and keeps infinities", () => {
    const got = parseQueryRange({
      series: [{ samples: [{ timestampMs: "3000", value: "NaN" }, { timestampMs: 1000, value: "Infinity" }, { timestampMs: "2000", value: 2 }] }],
    });
    expect(got.series[0]!.points).toEqual([
      [1, Infinity],
      [2, 2],
      [3, null],
    ]);
  });

  it("draws a NaN exemplar (rate) on its series' value at its time", () => {
    const got = parseQueryRange({
      series: [
        {
          labels: [str("__name__", "rate")],
          samples: [{ timestampMs: "60000", value: 0.5 }, { timestampMs: "120000", value: 1.5 }, { timestampMs: "180000" }],
          exemplars: [ex("NaN", "90000"), ex("NaN", "170000", TRACE, "1111111111111111"), ex(undefined, "60000", TRACE, "2222222222222222")],
        },
      ],
    });
    expect(got.exemplars.map((e) => [e.time, e.value, e.spanId])).toEqual([
      [90, 1.5, SPAN],
      [170, 0, "1111111111111111"],
      // A value left out is 0, a real value: drawn at 0.
      [60, 0, "2222222222222222"],
    ]);
  });

  it("drops a NaN exemplar its series has no value for, and exemplars without a trace ID", () => {
    const got = parseQueryRange({
      series: [
        {
          samples: [{ timestampMs: "60000", value: "NaN" }],
          exemplars: [ex("NaN", "30000"), { labels: [str("span:id", SPAN)], value: 1, timestampMs: "30000" }, { labels: [str("trace:id", "not-hex")], value: 1, timestampMs: "30000" }, { labels: [str("trace:id", TRACE)], value: 1 }],
        },
        { exemplars: [ex("NaN", "30000")] },
      ],
    });
    expect(got.exemplars).toEqual([]);
  });

  it("restores the leading zeros Tempo drops from IDs, and lower-cases them", () => {
    const got = parseQueryRange({ series: [{ samples: [], exemplars: [ex(2, "1000", "ABC123", "f")] }] });
    expect(got.exemplars[0]!.traceId).toBe("00000000000000000000000000abc123");
    expect(got.exemplars[0]!.spanId).toBe("000000000000000f");
  });

  it("draws histogram_over_time's dots on their bucket's series and keeps the measured value as a label", () => {
    const got = parseQueryRange({
      series: [
        {
          labels: [{ key: "__bucket", value: { doubleValue: 2 } }],
          samples: [{ timestampMs: "60000", value: 7 }],
          // A duration, or (as Lookout answers) the bucket's count in the step.
          exemplars: [ex(1.7, "45000"), ex(7, "50000", TRACE, "1111111111111111")],
        },
      ],
    });
    expect(got.exemplars.map((e) => [e.value, e.labels])).toEqual([
      [7, { "exemplar value": "1.7" }],
      [7, {}],
    ]);
  });

  it("keeps an exemplar's other labels and a repeated dot once per series", () => {
    const dup = { labels: [str("trace:id", TRACE), str("span:id", SPAN), str("span.http.route", "/pay")], value: 3, timestampMs: "5000" };
    const got = parseQueryRange({
      series: [
        { labels: [{ key: "p", value: { doubleValue: 0.5 } }], exemplars: [dup, dup] },
        { labels: [{ key: "p", value: { doubleValue: 0.9 } }], exemplars: [dup] },
      ],
    });
    expect(got.exemplars.map((e) => [e.seriesLabels.p, e.labels])).toEqual([
      ["0.5", { "span.http.route": "/pay" }],
      ["0.9", { "span.http.route": "/pay" }],
    ]);
  });

  it.each([null, undefined, {}, { series: null }])("reads an empty answer %j", (body) => {
    expect(parseQueryRange(body as QueryRangeResponse)).toEqual({ series: [], exemplars: [] });
  });
});

describe("parseQueryInstant", () => {
  it("reads values, 0 left out and NaN", () => {
    expect(
      parseQueryInstant({
        series: [
          { labels: [str("resource.service.name", "checkout")], value: 42 },
          { labels: [str("resource.service.name", "cart")] },
          { labels: [{ key: "p", value: { doubleValue: 0.95 } }], value: "NaN" },
        ],
      }),
    ).toEqual([
      { label: '{resource.service.name="checkout"}', labels: { "resource.service.name": "checkout" }, value: 42 },
      { label: '{resource.service.name="cart"}', labels: { "resource.service.name": "cart" }, value: 0 },
      { label: '{p="0.95"}', labels: { p: "0.95" }, value: null },
    ]);
    expect(parseQueryInstant({})).toEqual([]);
  });
});

describe("stepParam", () => {
  it.each([
    [15, "15s"],
    [60, "60s"],
    [0.2, "1s"],
    [3600, "3600s"],
  ])("%s → %s", (s, want) => expect(stepParam(s)).toBe(want));
});
