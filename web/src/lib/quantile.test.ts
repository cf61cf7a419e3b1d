import { describe, expect, it } from "vitest";
import { inQuantileTail, quantileName, quantileOf, type QuantileSeries } from "./quantile";

describe("quantileOf", () => {
  it.each([
    ["histogram_quantile(0.95, sum by (le) (rate(x_bucket[5m])))", 0.95],
    ["  histogram_quantile ( .5 , sum by (le, job) (rate(x_bucket{job=~\"$job\"}[5m])) )  ", 0.5],
    ["histogram_quantile(1, rate(x_bucket{a=\")(\"}[1m]))", 1],
    ["histogram_quantile(9.9e-1, rate(x_bucket[1m]))", 0.99],
  ])("%s → %s", (expr, q) => expect(quantileOf(expr)).toBe(q));

  it.each([
    "histogram_quantile(0.95, rate(x_bucket[5m])) * 1000", // not the whole expression
    "histogram_quantile(0.95, rate(x_bucket[5m])) / histogram_quantile(0.5, rate(x_bucket[5m]))",
    "max(histogram_quantile(0.95, rate(x_bucket[5m])))",
    "histogram_quantile($q, rate(x_bucket[5m]))", // no literal quantile
    "histogram_quantile(1.5, rate(x_bucket[5m]))",
    "histogram_quantile(0.95, rate(x_bucket[5m])",
    "rate(x_count[5m])",
  ])("%s → null", (expr) => expect(quantileOf(expr)).toBeNull());
});

describe("quantileName", () => {
  it.each([
    [0.95, "p95"],
    [0.5, "p50"],
    [0.999, "p99.9"],
    [0.99, "p99"],
  ])("%s → %s", (q, name) => expect(quantileName(q)).toBe(name));
});

describe("inQuantileTail", () => {
  // p95 per job at 10 s steps: 0.3 s until t=30, then 7.5 s.
  const series: QuantileSeries[] = [
    { labels: { job: "a" }, points: [[10, 0.3], [20, 0.3], [30, 0.3], [40, 7.5], [50, 7.5]] },
    { labels: { job: "b" }, points: [[10, 2], [20, 2], [30, 2], [40, 2], [50, null]] },
  ];
  const ex = (time: number, le: string | undefined, job = "a") => ({ time, seriesLabels: { __name__: "x_bucket", job, ...(le === undefined ? {} : { le }) } });

  it.each([
    ["a bucket above the quantile", ex(15, "0.5"), true],
    ["the quantile's own bucket (le equals the value)", ex(15, "0.3"), true],
    ["a bucket below the quantile", ex(15, "0.25"), false],
    ["the step at or after the exemplar counts: 7.5 s from t=40", ex(35, "5"), false],
    ["+Inf is in every tail", ex(35, "+Inf"), true],
    ["another series' quantile: job b at 2 s", ex(15, "1", "b"), false],
    ["job b, at or above 2 s", ex(15, "2.5", "b"), true],
    ["no value at the step: kept", ex(45, "0.1", "b"), true],
    ["after the last point: the last point", ex(99, "5"), false],
    ["no le: kept", ex(15, undefined), true],
    ["no matching series: kept", ex(15, "0.1", "c"), true],
  ])("%s", (_, e, want) => expect(inQuantileTail(e, series)).toBe(want));

  it("agrees with a brute-force reference on generated data", () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const bounds = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, Infinity];
    for (let c = 0; c < 200; c++) {
      const jobs = ["a", "b", "c"].slice(0, 1 + Math.floor(rnd() * 3));
      const s: QuantileSeries[] = jobs.map((job) => ({
        labels: { job },
        points: Array.from({ length: 20 }, (_, i) => [i * 15, rnd() < 0.1 ? null : rnd() * 8] as [number, number | null]),
      }));
      const job = ["a", "b", "c", "d"][Math.floor(rnd() * 4)]!;
      const le = bounds[Math.floor(rnd() * bounds.length)]!;
      const t = rnd() * 320;
      const e = { time: t, seriesLabels: { job, le: le === Infinity ? "+Inf" : String(le) } };
      // Reference: the first point at or after t (else the last) of job's series.
      const mine = s.find((x) => x.labels.job === job);
      let want = true;
      if (mine) {
        const p = mine.points.find(([ts]) => ts >= t) ?? mine.points[mine.points.length - 1]!;
        if (p[1] !== null) want = le >= p[1];
      }
      expect(inQuantileTail(e, s)).toBe(want);
    }
  });
});
