// Fetching what panels draw: series from query_range, exemplars from
// query_exemplars (with Lookout's found-check), and thresholds.

import { exemplarIds, legend, queryExemplars, queryRange } from "../lib/prom";
import { tracesFound } from "../lib/tempo";
import type { ResolvedRange } from "../lib/time";
import type { ExemplarDot, Series } from "./timeseries";

export interface QueryTarget {
  expr: string;
  legendFormat?: string;
  exemplar?: boolean;
}

/** fetchSeries runs query_range for each target; errors name the target's query. */
export async function fetchSeries(targets: QueryTarget[], range: ResolvedRange, step: number, signal?: AbortSignal): Promise<Series[]> {
  const results = await Promise.all(
    targets.map(async (t, target) => {
      const data = await queryRange(t.expr, range.start, range.end, step, signal);
      return data.result.map((r) => ({
        label: legend(t.legendFormat, r.metric),
        labels: r.metric,
        target,
        points: r.values.map(([ts, v]) => [ts, parseValue(v)] as [number, number | null]),
      }));
    }),
  );
  return results.flat();
}

export function parseValue(v: string): number | null {
  const n = Number(v);
  return Number.isFinite(n) ? n : v === "+Inf" ? Infinity : v === "-Inf" ? -Infinity : null;
}

/**
 * fetchExemplars asks query_exemplars for each expression. The dots come back
 * with found=undefined; markFound fills it in afterwards, off the first-render path.
 */
export async function fetchExemplars(exprs: string[], range: ResolvedRange, signal?: AbortSignal): Promise<ExemplarDot[]> {
  const lists = await Promise.all(exprs.map((e) => queryExemplars(e, range.start, range.end, signal).catch(() => null)));
  const dots: ExemplarDot[] = [];
  const seen = new Set<string>();
  for (const list of lists) {
    for (const s of list ?? []) {
      for (const ex of s.exemplars ?? []) {
        const value = Number(ex.value);
        const { traceId, spanId } = exemplarIds(ex.labels ?? {});
        const key = `${traceId}/${spanId}/${ex.timestamp}/${ex.value}`;
        if (!Number.isFinite(value) || seen.has(key)) continue;
        seen.add(key);
        dots.push({ time: Number(ex.timestamp), value, traceId, spanId, labels: ex.labels ?? {}, seriesLabels: s.seriesLabels ?? {}, found: undefined });
      }
    }
  }
  return dots;
}

/**
 * markFound asks Lookout which of the dots' traces it holds and sets each
 * dot's found flag. On a backend without the extension the flags stay undefined.
 */
export async function markFound(dots: ExemplarDot[], signal?: AbortSignal): Promise<boolean> {
  if (dots.length === 0) return false;
  try {
    const found = await tracesFound(dots.map((d) => d.traceId), signal);
    if (!found) return false;
    for (const d of dots) d.found = d.traceId ? (found.get(d.traceId) ?? undefined) : false;
    return true;
  } catch {
    return false; // the check is an extra; dots stay "unknown"
  }
}
