import { describe, expect, it } from "vitest";
import { describeRange, formatDurationMs, formatWholeMs, framingFrom, isRelative, parseDuration, parseTime, resolveRange, stepFor } from "./time";

const NOW = Date.UTC(2026, 10, 24, 14, 23, 45, 500);

describe("parseDuration", () => {
  it.each([
    ["250ms", 250],
    ["1.5s", 1500],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["2d", 172_800_000],
    ["100us", 0.1],
  ])("%s", (s, want) => expect(parseDuration(s)).toBeCloseTo(want));
  it.each(["", "5", "m5", "5x", "1h 30m", "-5m"])("rejects %j", (s) => expect(() => parseDuration(s)).toThrow());
});

describe("parseTime", () => {
  it.each([
    ["now", NOW],
    ["now-15m", NOW - 15 * 60_000],
    ["now+1h", NOW + 3_600_000],
    ["now-1h30m", NOW - 5_400_000],
    ["1700000000000", 1_700_000_000_000],
    ["1700000000", 1_700_000_000_000],
    ["1700000000.25", 1_700_000_000_250],
    ["2026-11-24T14:00:00Z", Date.UTC(2026, 10, 24, 14)],
  ])("%s", (s, want) => expect(parseTime(s, NOW)).toBe(want));

  it("rounds with /h and /d", () => {
    const h = new Date(parseTime("now/h", NOW));
    expect([h.getMinutes(), h.getSeconds(), h.getMilliseconds()]).toEqual([0, 0, 0]);
    const d = new Date(parseTime("now-1d/d", NOW));
    expect([d.getHours(), d.getMinutes()]).toEqual([0, 0]);
  });

  it("reads local wall-clock times with a space", () => {
    expect(parseTime("2026-11-24 14:20:00", NOW)).toBe(new Date(2026, 10, 24, 14, 20, 0).getTime());
  });

  it.each(["", "yesterday", "now-", "now*5m", "now/q", "12345", "2026-13-45"])("rejects %j", (s) => expect(() => parseTime(s, NOW)).toThrow(/time|duration|rounding/));
});

describe("resolveRange", () => {
  it("resolves relative ranges", () => {
    expect(resolveRange({ from: "now-1h", to: "now" }, NOW)).toEqual({ start: NOW - 3_600_000, end: NOW });
  });
  it("rejects empty ranges", () => {
    expect(() => resolveRange({ from: "now", to: "now-1h" }, NOW)).toThrow(/empty/);
  });
  it("knows relative from absolute", () => {
    expect(isRelative({ from: "now-1h", to: "now" })).toBe(true);
    expect(isRelative({ from: "1700000000000", to: "1700003600000" })).toBe(false);
  });
  it("describes quick ranges", () => {
    expect(describeRange({ from: "now-30m", to: "now" })).toBe("Last 30m");
  });
});

describe("stepFor", () => {
  it("picks nice steps", () => {
    expect(stepFor({ start: 0, end: 3_600_000 }, 360)).toBe(10);
    expect(stepFor({ start: 0, end: 60_000 }, 1000)).toBe(1);
    expect(stepFor({ start: 0, end: 7 * 86_400_000 }, 500)).toBe(1800);
    expect(stepFor({ start: 0, end: 60_000 }, 1000, 15)).toBe(15);
  });
});

describe("formatDurationMs", () => {
  it.each([
    [0.0005, "0.50µs"],
    [0.25, "250µs"],
    [7.6, "7.60ms"],
    [150, "150.0ms"],
    [7600, "7.60s"],
    [125_000, "2m05s"],
  ])("%s", (ms, want) => expect(formatDurationMs(ms)).toBe(want));
});

describe("formatWholeMs", () => {
  it.each([
    [0, "<1ms"],
    [1, "1.00ms"],
    [7600, "7.60s"],
  ])("%s", (ms, want) => expect(formatWholeMs(ms)).toBe(want));
});

describe("framingFrom", () => {
  const now = Date.UTC(2026, 11, 6, 12, 0, 0);
  it.each([
    [now - 30_000, "now-2m"],
    [now - 6.5 * 60_000, "now-8m"],
    [now - 28 * 60_000, "now-29m"],
    [now - 29.5 * 60_000, null],
    [now - 3 * 3600_000, null],
    [now + 60_000, null],
    [NaN, null],
  ])("first sample at %d → %s", (first, want) => {
    expect(framingFrom(first, now)).toBe(want);
  });
});
