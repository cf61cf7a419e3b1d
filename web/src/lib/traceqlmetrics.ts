// Client of the Tempo API's TraceQL metrics endpoints (GET /tempo/api/metrics/
// query_range and /query), and the reading of their JSON into what the
// time-series chart plots: series of [epoch seconds, value] points named as
// PromQL series are, and exemplar dots. The JSON is protobuf's (jsonpb): a
// zero value is left out, 64-bit integers are strings, a double that is not
// finite is the string "NaN", "Infinity" or "-Infinity", and label values are
// OTLP AnyValues. Tempo gives rate() exemplars no value (NaN): such a dot is
// drawn on its series at its time, as are the dots of histogram_over_time's
// bucket series, whose y axis counts spans while the exemplar's value is a
// duration.

import { getJSON, qs } from "./http";
import { seriesName, type Labels } from "./prom";

const BASE = "/tempo/api/metrics";

/**
 * METRICS_FUNCTION recognises a TraceQL metrics query as Grafana's Tempo data
 * source does: a pipeline stage calling one of the metrics functions.
 */
const METRICS_FUNCTION = /\|\s*(rate|count_over_time|avg_over_time|sum_over_time|max_over_time|min_over_time|quantile_over_time|histogram_over_time|compare)\s*\(/;

/** isTraceQLMetrics says whether a query is a TraceQL metrics query (and not PromQL). */
export function isTraceQLMetrics(q: string): boolean {
  return METRICS_FUNCTION.test(q);
}

/** AnyValue is an OTLP attribute value as jsonpb writes it. */
export interface AnyValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number | string;
  boolValue?: boolean;
  [other: string]: unknown;
}

export interface KeyValue {
  key: string;
  value?: AnyValue;
}

/** The wire shapes of Tempo's QueryRangeResponse and QueryInstantResponse. */
export interface WireSample {
  timestampMs?: string | number;
  value?: number | string;
}

export interface WireExemplar {
  labels?: KeyValue[];
  value?: number | string;
  timestampMs?: string | number;
}

export interface WireSeries {
  labels?: KeyValue[];
  samples?: WireSample[];
  exemplars?: WireExemplar[];
}

export interface QueryRangeResponse {
  series?: WireSeries[] | null;
  metrics?: Record<string, unknown>;
}

export interface QueryInstantResponse {
  series?: { labels?: KeyValue[]; value?: number | string }[] | null;
  metrics?: Record<string, unknown>;
}

/** MetricsSeries is one series as the chart plots it (the chart's Series). */
export interface MetricsSeries {
  label: string;
  labels: Labels;
  points: [number, number | null][]; // [epoch seconds, value]
}

/** MetricsExemplar is one dot as the chart draws it (the chart's ExemplarDot). */
export interface MetricsExemplar {
  time: number; // epoch seconds
  value: number;
  traceId: string;
  spanId: string;
  labels: Labels;
  seriesLabels: Labels;
  found: boolean | undefined;
}

export interface MetricsRange {
  series: MetricsSeries[];
  exemplars: MetricsExemplar[];
}

export interface MetricsInstantRow {
  label: string;
  labels: Labels;
  value: number | null;
}

/** The exemplar labels that carry the trace and span ID (TraceQL's intrinsics). */
const TRACE_ID = "trace:id";
const SPAN_ID = "span:id";

/** The label histogram_over_time names a series' bucket with (its upper bound in seconds). */
const BUCKET = "__bucket";

/**
 * doubleOf reads a jsonpb double: a number, or "NaN", "Infinity", "-Infinity"
 * (or any numeric string); an absent value is protobuf's zero. NaN for
 * anything else.
 */
export function doubleOf(v: unknown): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === "number") return v;
  if (typeof v === "string") {
    if (v === "Infinity" || v === "+Inf") return Infinity;
    if (v === "-Infinity" || v === "-Inf") return -Infinity;
    if (v.trim() === "") return NaN;
    return Number(v);
  }
  return NaN;
}

/** labelValue renders an AnyValue as a label value: strings as they are, numbers and booleans as JSON writes them. */
export function labelValue(v: AnyValue | undefined): string {
  if (!v) return "";
  if (v.stringValue !== undefined) return String(v.stringValue);
  if (v.intValue !== undefined) return String(v.intValue);
  if (v.doubleValue !== undefined) return String(doubleOf(v.doubleValue));
  if (v.boolValue !== undefined) return String(v.boolValue);
  // Protobuf leaves a zero out: {"intValue": "0"} may arrive as {}.
  const rest = Object.entries(v).filter(([, x]) => x !== undefined);
  return rest.length === 0 ? "" : JSON.stringify(Object.fromEntries(rest));
}

/** labelsOf turns jsonpb key/value pairs into a label set. */
export function labelsOf(kvs: KeyValue[] | undefined | null): Labels {
  const out: Labels = {};
  for (const kv of kvs ?? []) if (kv && typeof kv.key === "string") out[kv.key] = labelValue(kv.value);
  return out;
}

/** hexId reads an ID as Tempo writes it (hex, leading zeros dropped) at its full width; "" when it is not hex. */
function hexId(s: string | undefined, width: number): string {
  const x = (s ?? "").trim().toLowerCase();
  return /^[0-9a-f]{1,32}$/.test(x) ? x.padStart(width, "0") : "";
}

/**
 * valueAt is the series' value at time t (epoch seconds): that of the first
 * sample at or after t; NaN when the series has no value there or ends
 * before t. Tempo's steps are right-closed, (ts-step, ts], and stamped at
 * their end, as Prometheus's are: the first sample at or after t is the step
 * that counted t.
 */
export function valueAt(points: [number, number | null][], t: number): number {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid]![0] < t) lo = mid + 1;
    else hi = mid;
  }
  return points[lo]?.[1] ?? NaN;
}

/**
 * parseQueryRange reads a query_range answer. Each series' samples become its
 * points, sorted by time (a sample without a value is 0; a non-finite one a
 * gap); each exemplar with a trace ID becomes a dot at its time and value,
 * or on its series when it has no finite value or belongs to a bucket of
 * histogram_over_time. Dots that cannot be placed are dropped, and the same
 * dot on the same series is kept once.
 */
export function parseQueryRange(body: QueryRangeResponse | null | undefined): MetricsRange {
  const series: MetricsSeries[] = [];
  const exemplars: MetricsExemplar[] = [];
  const seen = new Set<string>();
  for (const s of body?.series ?? []) {
    const labels = labelsOf(s.labels);
    const points: [number, number | null][] = (s.samples ?? [])
      .map((x): [number, number | null] => {
        const v = doubleOf(x.value);
        return [Number(x.timestampMs ?? 0) / 1000, Number.isNaN(v) ? null : v];
      })
      .filter(([t]) => Number.isFinite(t))
      .sort((a, b) => a[0] - b[0]);
    const label = seriesName(labels);
    series.push({ label, labels, points });
    const onSeries = BUCKET in labels;
    for (const ex of s.exemplars ?? []) {
      const exLabels = labelsOf(ex.labels);
      const traceId = hexId(exLabels[TRACE_ID], 32);
      const time = Number(ex.timestampMs ?? NaN) / 1000;
      if (!traceId || !Number.isFinite(time)) continue;
      const spanId = hexId(exLabels[SPAN_ID], 16);
      const own = doubleOf(ex.value);
      const value = onSeries || !Number.isFinite(own) ? valueAt(points, time) : own;
      if (!Number.isFinite(value)) continue;
      const key = `${label}/${traceId}/${spanId}/${time}/${value}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const { [TRACE_ID]: _t, [SPAN_ID]: _s, ...rest } = exLabels;
      // A measured value the dot is not drawn at stays readable in its popup.
      if (Number.isFinite(own) && own !== value) rest["exemplar value"] = String(own);
      exemplars.push({ time, value, traceId, spanId, labels: rest, seriesLabels: labels, found: undefined });
    }
  }
  return { series, exemplars };
}

/** parseQueryInstant reads a /api/metrics/query answer into table rows (a value left out is 0). */
export function parseQueryInstant(body: QueryInstantResponse | null | undefined): MetricsInstantRow[] {
  return (body?.series ?? []).map((s) => {
    const labels = labelsOf(s.labels);
    const v = doubleOf(s.value);
    return { label: seriesName(labels), labels, value: Number.isNaN(v) ? null : v };
  });
}

/** stepParam renders a step in seconds as the API's duration ("15s"). */
export function stepParam(seconds: number): string {
  return `${Math.max(1, Math.round(seconds))}s`;
}

/**
 * queryRange runs a TraceQL metrics query over [start, end] (epoch ms) at
 * step seconds, asking for at most `exemplars` exemplars (0 for none).
 * A refused query throws the server's message (an HttpError).
 */
export async function queryRange(q: string, start: number, end: number, step: number, exemplars: number, signal?: AbortSignal): Promise<MetricsRange> {
  const body = await getJSON<QueryRangeResponse>(
    `${BASE}/query_range?${qs({ q, start: Math.floor(start / 1000), end: Math.ceil(end / 1000), step: stepParam(step), exemplars: Math.max(0, Math.floor(exemplars)) })}`,
    signal,
  );
  return parseQueryRange(body);
}

/** queryInstant runs a TraceQL metrics query as one value per series over the whole of [start, end] (epoch ms). */
export async function queryInstant(q: string, start: number, end: number, signal?: AbortSignal): Promise<MetricsInstantRow[]> {
  const body = await getJSON<QueryInstantResponse>(`${BASE}/query?${qs({ q, start: Math.floor(start / 1000), end: Math.ceil(end / 1000) })}`, signal);
  return parseQueryInstant(body);
}
