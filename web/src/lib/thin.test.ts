import { describe, expect, it } from "vitest";
import { thin, type Placed } from "./thin";

const p = (x: number, value: number, id = `${x}/${value}`): Placed<string> => ({ x, value, item: id });

describe("thin", () => {
  it("keeps the highest value per pixel column", () => {
    const out = thin([p(0, 1), p(2, 5), p(5, 3), p(6, 2), p(11, 9)], { columnPx: 6 });
    expect(out.map((o) => o.value)).toEqual([5, 9]);
  });

  it("keeps several per column when asked, highest first", () => {
    const out = thin([p(1, 1), p(2, 4), p(3, 3), p(4, 2)], { columnPx: 6, perColumn: 2 });
    expect(out.map((o) => o.value).sort()).toEqual([3, 4]);
  });

  it("caps the total, keeping the highest values, sorted by x", () => {
    const pts = Array.from({ length: 100 }, (_, i) => p(i * 10, i % 7));
    const out = thin(pts, { columnPx: 6, max: 5 });
    expect(out).toHaveLength(5);
    expect(out.every((o) => o.value === 6 || o.value === 5)).toBe(true);
    expect(out.map((o) => o.x)).toEqual([...out.map((o) => o.x)].sort((a, b) => a - b));
  });

  it("never returns thousands of dots for dense data", () => {
    const pts = Array.from({ length: 50_000 }, (_, i) => p((i * 7919) % 800, Math.sin(i) * 100));
    const out = thin(pts, { columnPx: 6, width: 800 });
    expect(out.length).toBeLessThanOrEqual(Math.ceil(800 / 6));
    // Each kept dot is the maximum of its column.
    for (const o of out) {
      const col = Math.floor(o.x / 6);
      const max = Math.max(...pts.filter((q) => Math.floor(q.x / 6) === col).map((q) => q.value));
      expect(o.value).toBe(max);
    }
  });

  it("drops non-finite points and handles empty input", () => {
    expect(thin([])).toEqual([]);
    expect(thin([p(NaN, 1), p(1, Infinity), p(2, 3)]).map((o) => o.value)).toEqual([3]);
  });
});
