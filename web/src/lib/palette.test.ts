import { describe, expect, it } from "vitest";
import { seriesColor } from "./palette";

describe("seriesColor", () => {
  it("gives twenty series twenty different colours, then repeats", () => {
    const first = Array.from({ length: 20 }, (_, i) => seriesColor(i));
    expect(new Set(first).size).toBe(20);
    expect(seriesColor(20)).toBe(seriesColor(0));
    expect(seriesColor(-1)).toBe(seriesColor(19));
  });
});
