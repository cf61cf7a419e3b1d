import { describe, expect, it } from "vitest";
import { slowest } from "./slowest";

/** A brute-force model of Tempo's search: the newest matches, up to limit. */
function store(n: number, seed: number) {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const traces = Array.from({ length: n }, (_, i) => ({ id: `t${i}`, start: i, durationMs: Math.round(Math.exp(rnd() * 8)) }));
  const find = (limit: number) => async (min: number | undefined) =>
    traces
      .filter((t) => min === undefined || t.durationMs >= min)
      .sort((a, b) => b.start - a.start)
      .slice(0, limit);
  return { traces, find };
}

describe("slowest", () => {
  it.each([
    [50, 100],
    [1_000, 100],
    [20_000, 100],
    [20_000, 20],
  ])("of %d traces with limit %d, lists the true slowest down to its exact bound", async (n, limit) => {
    const { traces, find } = store(n, n + limit);
    const got = await slowest(find(limit), limit);
    expect(got.exactFromMs).not.toBeNull();
    const truth = traces.filter((t) => t.durationMs >= got.exactFromMs!).sort((a, b) => b.durationMs - a.durationMs);
    // Every trace at or above the bound is listed, slowest first.
    expect(got.results.slice(0, truth.length).map((t) => t.durationMs)).toEqual(truth.slice(0, limit).map((t) => t.durationMs));
    expect(got.results.length).toBe(Math.min(limit, n));
    // The slowest trace of all is always found.
    expect(got.results[0]!.durationMs).toBe(Math.max(...traces.map((t) => t.durationMs)));
  });

  it("stops when the backend ignores minDuration", async () => {
    const all = Array.from({ length: 100 }, (_, i) => ({ id: `x${i}`, durationMs: i }));
    const got = await slowest(async () => all.slice(0, 20), 20);
    expect(got.rounds).toBe(2);
    expect(got.exactFromMs).toBeNull();
  });
});
