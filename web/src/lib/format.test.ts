import { describe, expect, it } from "vitest";
import { isSafeHref } from "./dom";
import { formatSample, formatUnit } from "./format";

describe("formatUnit", () => {
  it.each([
    [7.6, "s", undefined, "7.60s"],
    [0.25, "s", undefined, "250.0ms"],
    [2.345, "reqps", 2, "2.35 req/s"],
    [0.0312, "percentunit", 1, "3.1%"],
    [15000, "currencyUSD", undefined, "$15.0 K"],
    [123.456, "currencyUSD", undefined, "$123.46"],
    [1536, "bytes", undefined, "1.5 KiB"],
    [3, "none", 0, "3"],
    [null, "s", undefined, "–"],
  ] as const)("%s %s", (v, unit, dec, want) => expect(formatUnit(v, unit, dec)).toBe(want));
});

describe("isSafeHref", () => {
  it.each([
    ["/d/service-health", true],
    ["?from=now-1h", true],
    ["#x", true],
    ["//evil.example/x", false],
    ["javascript:alert(1)", false],
    ["https://evil.example/", false],
    ["data:text/html,<script>", false],
  ])("%s", (href, ok) => expect(isSafeHref(href)).toBe(ok));
});

describe("formatSample", () => {
  it.each([
    ["9.666666666666668e+00", "9.67"],
    ["0.05", "0.050"],
    ["NaN", "NaN"],
    ["+Inf", "+Inf"],
    ["", ""],
  ])("%s reads as %s", (s, want) => {
    expect(formatSample(s)).toBe(want);
  });
});
