// Dots bound to their quantile: on a histogram_quantile(q, …) panel an
// exemplar is shown by default only when its bucket is at or above the bucket
// that holds the quantile at the exemplar's step, so a P95 panel's dots are
// P95-or-worse requests.

import type { Labels } from "./prom";

/**
 * quantileOf returns q when the whole expression is one histogram_quantile(q, …)
 * call with a literal q in [0, 1], else null.
 */
export function quantileOf(expr: string): number | null {
  const m = /^\s*histogram_quantile\s*\(\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*,/i.exec(expr);
  if (!m) return null;
  const open = expr.indexOf("(", m.index);
  const close = matchingParen(expr, open);
  if (close < 0 || expr.slice(close + 1).trim() !== "") return null;
  const q = Number(m[1]);
  return q >= 0 && q <= 1 ? q : null;
}

/** quantileName names a quantile as percentiles are named: 0.95 → "p95", 0.999 → "p99.9". */
export function quantileName(q: number): string {
  return `p${Number((q * 100).toFixed(3))}`;
}

/** matchingParen is the index of the parenthesis closing the one at open, skipping strings; -1 if none. */
function matchingParen(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === '"' || c === "'" || c === "`") {
      for (i++; i < s.length && s[i] !== c; i++) if (s[i] === "\\" && c !== "`") i++;
      continue;
    }
    if (c === "(") depth++;
    else if (c === ")" && --depth === 0) return i;
  }
  return -1;
}

export interface QuantileSeries {
  labels: Labels;
  points: [number, number | null][]; // [unix seconds, value], sorted by time
}

export interface BucketExemplar {
  time: number; // unix seconds
  seriesLabels: Labels; // the bucket series' labels, with its `le`
}

/**
 * inQuantileTail tells whether an exemplar's bucket is at or above the
 * quantile's bucket at the exemplar's step: its upper bound `le` is at least
 * the quantile's value there (the quantile's bucket is the first whose bound
 * reaches the value). The step is the first point at or after the exemplar
 * (the first evaluation whose window holds it), else the last point. The
 * quantile series are those whose labels the exemplar's series carries;
 * when several match, the lowest value counts. An exemplar that cannot be
 * judged (no `le`, no matching series or value) counts as in the tail.
 */
export function inQuantileTail(ex: BucketExemplar, series: readonly QuantileSeries[]): boolean {
  const le = parseBound(ex.seriesLabels.le);
  if (le === null) return true;
  let v: number | null = null;
  for (const s of series) {
    if (!carries(ex.seriesLabels, s.labels)) continue;
    const p = valueAtOrAfter(s.points, ex.time);
    if (p !== null && Number.isFinite(p)) v = v === null ? p : Math.min(v, p);
  }
  return v === null || le >= v;
}

function parseBound(s: string | undefined): number | null {
  if (s === undefined || s.trim() === "") return null;
  const t = s.trim();
  if (t === "+Inf" || t === "Inf") return Infinity;
  const n = Number(t);
  return Number.isNaN(n) ? null : n;
}

/** carries: every label of want other than __name__ has the same value in have. */
function carries(have: Labels, want: Labels): boolean {
  for (const [k, v] of Object.entries(want)) {
    if (k !== "__name__" && have[k] !== v) return false;
  }
  return true;
}

function valueAtOrAfter(points: readonly [number, number | null][], t: number): number | null {
  if (points.length === 0) return null;
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid]![0] < t) lo = mid + 1;
    else hi = mid;
  }
  return points[Math.min(lo, points.length - 1)]![1];
}
