// Finding a time range's slowest traces with Tempo's search API, which
// returns the newest matches up to a limit and has no "order by duration":
// each round raises minDuration to the tenth-slowest trace found so far
// until a search returns fewer than the limit, at which point every trace
// at or above that duration in the range has been seen.

export interface Timed {
  id: string;
  durationMs: number;
}

export interface Slowest<T extends Timed> {
  /** results: the slowest traces found, slowest first, at most limit. */
  results: T[];
  /** exactFromMs: every trace of the range at least this slow is in results (0: all of them); null when the rounds ran out first. */
  exactFromMs: number | null;
  /** rounds: how many searches it took. */
  rounds: number;
}

/**
 * slowest runs find (a search with an optional minimum duration, answering
 * at most limit traces, newest first) up to maxRounds times.
 */
export async function slowest<T extends Timed>(find: (minDurationMs: number | undefined) => Promise<T[]>, limit: number, maxRounds = 5): Promise<Slowest<T>> {
  const seen = new Map<string, T>();
  let min: number | undefined;
  let rounds = 0;
  let exactFromMs: number | null = null;
  for (;;) {
    const got = await find(min);
    rounds++;
    for (const t of got) if (!seen.has(t.id)) seen.set(t.id, t);
    if (got.length < limit) {
      exactFromMs = min ?? 0;
      break;
    }
    if (rounds >= maxRounds) break;
    const ds = [...seen.values()].map((t) => t.durationMs).sort((a, b) => b - a);
    const next = ds[Math.min(ds.length - 1, Math.max(0, Math.floor(limit / 10) - 1))]!;
    if (min !== undefined && next <= min) break; // the search ignores its minimum: stop
    min = next;
  }
  const results = [...seen.values()].sort((a, b) => b.durationMs - a.durationMs).slice(0, limit);
  return { results, exactFromMs, rounds };
}
