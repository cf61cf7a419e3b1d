// What the table, bar gauge and heatmap panels draw, computed from Prometheus
// answers: pure functions, unit-tested; the components only draw the result.

import { legend, type Labels, type MatrixSeries, type VectorSample } from "./prom";

export type Cell = string | number | null;

export interface Table {
  columns: string[];
  rows: Cell[][];
  /** valueColumns[i] is true when column i holds a number (a value, not a label). */
  valueColumns: boolean[];
}

export interface InstantResult {
  refId: string;
  result: VectorSample[] | [number, string];
}

function toNumber(raw: string | undefined): number | null {
  if (raw === undefined) return null;
  if (raw === "+Inf") return Infinity;
  if (raw === "-Inf") return -Infinity;
  const n = Number(raw);
  return Number.isNaN(n) ? null : n;
}

/** samplesOf reads an instant answer as samples: a scalar is one sample without labels. */
export function samplesOf(r: InstantResult["result"]): VectorSample[] {
  if (r.length === 2 && typeof r[0] === "number") return [{ metric: {}, value: r as [number, string] }];
  return r as VectorSample[];
}

const labelKey = (m: Labels) => JSON.stringify(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/**
 * tableFromVectors turns instant query answers into one table, as Grafana's
 * table panel shows targets with format "table": a column per label (__name__
 * first, the rest sorted) and a value column per target ("Value", or
 * "Value #<refId>" with several targets); samples with the same labels share
 * a row. Rows are sorted by their label cells.
 */
export function tableFromVectors(results: InstantResult[]): Table {
  const names = new Set<string>();
  const rows = new Map<string, { labels: Labels; values: (number | null)[] }>();
  results.forEach((r, i) => {
    for (const s of samplesOf(r.result)) {
      const labels = s.metric ?? {};
      for (const k of Object.keys(labels)) names.add(k);
      const key = labelKey(labels);
      let row = rows.get(key);
      if (!row) {
        row = { labels, values: results.map(() => null) };
        rows.set(key, row);
      }
      row.values[i] = toNumber(s.value?.[1]);
    }
  });
  const labelCols = [...names].sort((a, b) => (a === "__name__" ? -1 : b === "__name__" ? 1 : a < b ? -1 : a > b ? 1 : 0));
  const valueCols = results.length === 1 ? ["Value"] : results.map((r, i) => `Value #${r.refId || String.fromCharCode(65 + i)}`);
  const out: Cell[][] = [...rows.values()].map((r) => [...labelCols.map((k) => r.labels[k] ?? ""), ...r.values]);
  const n = labelCols.length;
  out.sort((a, b) => {
    for (let i = 0; i < n; i++) {
      const x = String(a[i]);
      const y = String(b[i]);
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  });
  return { columns: [...labelCols, ...valueCols], rows: out, valueColumns: [...labelCols.map(() => false), ...valueCols.map(() => true)] };
}

export interface Bar {
  label: string;
  value: number;
  /** fraction of the bar filled, 0 to 1. */
  fraction: number;
}

export interface BarSource {
  samples: VectorSample[];
  legendFormat?: string;
}

/**
 * barGauge makes one bar per series of the targets' instant answers (each
 * series' last value), labelled with its target's legend format, in label
 * order. All bars share one scale, from min (default: 0, or the lowest value
 * if negative) to max (default: the highest value), as Grafana's bar gauge
 * does without a configured range.
 */
export function barGauge(targets: BarSource[], range: { min?: number; max?: number } = {}): Bar[] {
  const bars = targets
    .flatMap((t) => t.samples.map((s) => ({ label: legend(t.legendFormat, s.metric ?? {}), value: toNumber(s.value?.[1]) })))
    .filter((b): b is { label: string; value: number } => b.value !== null && Number.isFinite(b.value));
  bars.sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  const values = bars.map((b) => b.value);
  const min = range.min ?? Math.min(0, ...values);
  const max = range.max ?? Math.max(min, ...values);
  const span = max - min;
  return bars.map((b) => ({ ...b, fraction: span > 0 ? Math.min(1, Math.max(0, (b.value - min) / span)) : b.value > min ? 1 : 0 }));
}

export interface HeatmapGrid {
  /** Sample times, epoch seconds, ascending. */
  times: number[];
  /** The buckets' upper bounds as the le label spells them, ascending ("+Inf" last). */
  buckets: string[];
  /** counts[b][t]: the count in bucket b (between its lower and upper bound) at times[t]; null where a series has no sample. */
  counts: (number | null)[][];
  /** The largest count. */
  max: number;
}

function bound(le: string): number {
  const n = toNumber(le);
  return n === null ? NaN : n;
}

/**
 * heatmapGrid turns the cumulative "_bucket" series of a Prometheus histogram
 * (format "heatmap") into a time × bucket grid of per-bucket counts: series
 * with the same le are summed, each bucket's count is its cumulative count
 * minus the next lower bucket's (negative differences, from rounding, become
 * 0). Series without an le label are ignored.
 */
export function heatmapGrid(series: MatrixSeries[]): HeatmapGrid {
  const byLe = new Map<string, Map<number, number>>();
  const times = new Set<number>();
  for (const s of series) {
    const le = s.metric?.le;
    if (le === undefined || Number.isNaN(bound(le))) continue;
    let m = byLe.get(le);
    if (!m) byLe.set(le, (m = new Map()));
    for (const [t, raw] of s.values ?? []) {
      const v = toNumber(raw);
      if (v === null || !Number.isFinite(v)) continue;
      times.add(t);
      m.set(t, (m.get(t) ?? 0) + v);
    }
  }
  const buckets = [...byLe.keys()].sort((a, b) => bound(a) - bound(b));
  const ts = [...times].sort((a, b) => a - b);
  let max = 0;
  const counts = buckets.map(() => new Array<number | null>(ts.length).fill(null));
  ts.forEach((t, ti) => {
    let below = 0;
    buckets.forEach((le, bi) => {
      const c = byLe.get(le)!.get(t);
      if (c === undefined) return;
      const n = Math.max(0, c - below);
      below = Math.max(below, c);
      counts[bi]![ti] = n;
      if (n > max) max = n;
    });
  });
  return { times: ts, buckets, counts, max };
}
