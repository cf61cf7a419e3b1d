// Client of the Prometheus HTTP API under /prometheus/api/v1.

import { getJSON, qs } from "./http";

const BASE = "/prometheus/api/v1";

interface Envelope<T> {
  status: "success" | "error";
  data: T;
  error?: string;
  errorType?: string;
  warnings?: string[];
}

export type Labels = Record<string, string>;

export interface MatrixSeries {
  metric: Labels;
  values: [number, string][];
}

export interface VectorSample {
  metric: Labels;
  value: [number, string];
}

export interface Exemplar {
  labels: Labels;
  value: string;
  timestamp: number; // seconds
}

export interface ExemplarSeries {
  seriesLabels: Labels;
  exemplars: Exemplar[];
}

export interface Alert {
  labels: Labels;
  annotations: Labels;
  state: string;
  activeAt?: string;
  value?: string;
}

export interface RuleGroup {
  name: string;
  file: string;
  rules: {
    name: string;
    query: string;
    type: string;
    state?: string;
    health?: string;
    lastError?: string;
    duration?: number;
    labels?: Labels;
    annotations?: Labels;
    alerts?: Alert[];
  }[];
}

async function call<T>(path: string, params: Record<string, string | number | undefined | string[]>, signal?: AbortSignal): Promise<T> {
  const q = qs(params);
  const body = await getJSON<Envelope<T>>(q ? `${BASE}${path}?${q}` : `${BASE}${path}`, signal);
  if (body.status !== "success") throw new Error(body.error || "query failed");
  return body.data;
}

export function queryRange(expr: string, start: number, end: number, step: number, signal?: AbortSignal) {
  return call<{ resultType: string; result: MatrixSeries[] }>("/query_range", { query: expr, start: start / 1000, end: end / 1000, step }, signal);
}

export function query(expr: string, time: number, signal?: AbortSignal) {
  return call<{ resultType: string; result: VectorSample[] | [number, string] }>("/query", { query: expr, time: time / 1000 }, signal);
}

export function queryExemplars(expr: string, start: number, end: number, signal?: AbortSignal) {
  return call<ExemplarSeries[] | null>("/query_exemplars", { query: expr, start: start / 1000, end: end / 1000 }, signal);
}

export function labelValues(label: string, match: string[], start?: number, end?: number, signal?: AbortSignal) {
  return call<string[] | null>(`/label/${encodeURIComponent(label)}/values`, {
    "match[]": match,
    start: start !== undefined ? start / 1000 : undefined,
    end: end !== undefined ? end / 1000 : undefined,
  }, signal);
}

/** headMinTime returns the oldest sample time in the TSDB head (epoch ms), or null when it holds none. */
export async function headMinTime(signal?: AbortSignal): Promise<number | null> {
  const d = await call<{ headStats?: { numSeries?: number; minTime?: number } }>("/status/tsdb", {}, signal);
  const t = d.headStats?.minTime;
  return d.headStats?.numSeries && typeof t === "number" && Number.isFinite(t) ? t : null;
}

export function alerts(signal?: AbortSignal) {
  return call<{ alerts: Alert[] }>("/alerts", {}, signal);
}

export function rules(signal?: AbortSignal) {
  return call<{ groups: RuleGroup[] }>("/rules", {}, signal);
}

// The label names under which exemplars carry trace and span ids, in the
// order they are read: Prometheus's OTLP translation writes trace_id and
// span_id, Grafana's older convention traceID and spanID. The server reads
// the same names (TraceLabels and SpanLabels in internal/traceid).
const TRACE_ID_LABELS: readonly string[] = ["trace_id", "traceID"];
const SPAN_ID_LABELS: readonly string[] = ["span_id", "spanID"];

/** exemplarIds reads the trace and span id of an exemplar from the first of its id labels present, lower-cased; "" when none is. */
export function exemplarIds(l: Labels): { traceId: string; spanId: string } {
  return { traceId: firstLabel(l, TRACE_ID_LABELS).toLowerCase(), spanId: firstLabel(l, SPAN_ID_LABELS).toLowerCase() };
}

function firstLabel(l: Labels, names: readonly string[]): string {
  for (const n of names) {
    const v = l[n];
    if (v !== undefined) return v;
  }
  return "";
}

/** isExemplarIdLabel says whether exemplarIds reads a label of this name. */
export function isExemplarIdLabel(name: string): boolean {
  return TRACE_ID_LABELS.includes(name) || SPAN_ID_LABELS.includes(name);
}

/** seriesName renders a label set as name{k="v", ...}. */
export function seriesName(m: Labels): string {
  const { __name__: name = "", ...rest } = m;
  const inner = Object.keys(rest)
    .sort()
    .map((k) => `${k}="${rest[k]}"`)
    .join(", ");
  return inner ? `${name}{${inner}}` : name || "{}";
}

/** legend applies a Grafana legendFormat ("{{job}} {{route}}") to a label set. */
export function legend(format: string | undefined, m: Labels): string {
  if (!format || format === "__auto") return seriesName(m);
  return format.replace(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g, (_, k: string) => m[k] ?? "");
}

/** traceIdOf reads a trace id sent as text (16 to 32 hex digits, any case); "" when it is not one. */
export function traceIdOf(s: unknown): string {
  const x = typeof s === "string" ? s.trim().toLowerCase() : "";
  return /^[0-9a-f]{16,32}$/.test(x) ? x : "";
}

/** parseEvidenceIds splits an alert's evidence_trace_ids annotation into hex ids. */
export function parseEvidenceIds(s: string | undefined): string[] {
  if (!s) return [];
  return s.split(/[\s,]+/).map(traceIdOf).filter(Boolean);
}
