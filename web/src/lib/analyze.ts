// Client of Lookout's "Why?" analysis, GET /prometheus/api/lookout/analyze:
// given a panel's PromQL and a time region, the server compares the traces
// behind the region's exemplars (the spike) with traces of a normal period
// (the baseline) and answers with a one-line verdict and findings of three
// kinds: spans whose self time grew, attribute values the spike shares more
// often (or, for numeric attributes, medians that moved), and errors. This
// file builds the request, checks the answer's shape so the panel renders
// only what it understands (unknown finding kinds are counted, not shown),
// and formats each finding's numbers by kind: seconds for span self time,
// percentages for shares, plain numbers for medians.

import { formatUnit } from "./format";
import { getJSON, qs } from "./http";
import { traceIdOf } from "./prom";
import { formatDurationMs } from "./time";

export const ANALYZE_PATH = "/prometheus/api/lookout/analyze";

/** AnalyzeRequest is one question: why does the query look different in [start, end]? Times are epoch ms. */
export interface AnalyzeRequest {
  query: string;
  start: number;
  end: number;
  /** The normal period to compare with; the server picks one when absent. */
  baselineStart?: number;
  baselineEnd?: number;
  /** The exemplar value above which a trace counts as part of the spike; the server's default when absent. */
  threshold?: number;
  /** At most this many findings (the server's default when absent). */
  limit?: number;
}

export type FindingKind = "span" | "attribute" | "error";
const KINDS: readonly FindingKind[] = ["span", "attribute", "error"];

/**
 * Finding is one difference between spike and baseline. spikeValue and
 * baselineValue are mean self time in seconds for a span, shares (0–1) for
 * an attribute value or an error, and medians for a numeric attribute; null
 * when the server left one out.
 */
export interface Finding {
  kind: FindingKind;
  service?: string;
  span?: string;
  attribute?: string;
  /** The attribute's value, or for an error its commonest message. */
  value?: string;
  numeric: boolean;
  spikeValue: number | null;
  baselineValue: number | null;
  /** Share (0–1) of the spike's traces that hold this span finding. */
  coverage?: number;
  score?: number;
  /**
   * What an attribute's share was compared with when the server says so:
   * "baseline", or "rest" (the region's own traces that were not slow).
   */
  against?: string;
  /** Example traces, lower-case hex, without duplicates. */
  traceIDs: string[];
}

export interface Analysis {
  verdict: string;
  threshold?: number;
  spike: { traces?: number; exemplars?: number };
  baseline: { traces?: number };
  findings: Finding[];
  /** How many findings were of a kind this UI does not know (left out of findings). */
  unknownKinds: number;
}

/** analyzeURL builds the request URL; times go as Unix seconds. */
export function analyzeURL(r: AnalyzeRequest): string {
  const sec = (ms: number | undefined) => (ms === undefined ? undefined : ms / 1000);
  return `${ANALYZE_PATH}?${qs({
    query: r.query,
    start: sec(r.start),
    end: sec(r.end),
    baseline_start: sec(r.baselineStart),
    baseline_end: sec(r.baselineEnd),
    threshold: r.threshold,
    limit: r.limit,
  })}`;
}

/** analyze asks the server; errors carry the server's message (HttpError for non-2xx answers). */
export async function analyze(r: AnalyzeRequest, signal?: AbortSignal): Promise<Analysis> {
  return parseAnalysis(await getJSON<unknown>(analyzeURL(r), signal));
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function optNumber(v: unknown, what: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`bad analysis answer: ${what} is not a number`);
  return v;
}

function optCount(v: unknown, what: string): number | undefined {
  const n = optNumber(v, what);
  if (n !== undefined && (n < 0 || !Number.isInteger(n))) throw new Error(`bad analysis answer: ${what} is not a count`);
  return n;
}

function optString(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  return undefined;
}

/**
 * parseAnalysis checks an answer of the analyze endpoint and returns its
 * data. A Prometheus-style error answer throws its message; a malformed
 * answer throws saying which field is wrong.
 */
export function parseAnalysis(body: unknown): Analysis {
  if (!isObj(body)) throw new Error("bad analysis answer: not a JSON object");
  if (body.status === "error") throw new Error(typeof body.error === "string" && body.error ? body.error : "analysis failed");
  if (body.status !== "success") throw new Error(`bad analysis answer: status ${JSON.stringify(body.status)}`);
  const d = body.data;
  if (!isObj(d)) throw new Error("bad analysis answer: no data");
  if (typeof d.verdict !== "string") throw new Error("bad analysis answer: no verdict");
  const spike = isObj(d.spike) ? d.spike : {};
  const baseline = isObj(d.baseline) ? d.baseline : {};
  if (d.findings !== undefined && d.findings !== null && !Array.isArray(d.findings)) throw new Error("bad analysis answer: findings is not a list");
  const raw: unknown[] = Array.isArray(d.findings) ? d.findings : [];
  const findings: Finding[] = [];
  let unknownKinds = 0;
  raw.forEach((f, i) => {
    if (!isObj(f)) throw new Error(`bad analysis answer: findings[${i}] is not an object`);
    const kind = KINDS.find((k) => k === f.kind);
    if (!kind) {
      unknownKinds++;
      return;
    }
    const ids = Array.isArray(f.traceIDs) ? f.traceIDs.map(traceIdOf).filter(Boolean) : [];
    findings.push({
      kind,
      service: optString(f.service),
      span: optString(f.span),
      attribute: optString(f.attribute),
      value: optString(f.value),
      numeric: f.numeric === true,
      spikeValue: optNumber(f.spikeValue, `findings[${i}].spikeValue`) ?? null,
      baselineValue: optNumber(f.baselineValue, `findings[${i}].baselineValue`) ?? null,
      coverage: optNumber(f.coverage, `findings[${i}].coverage`),
      score: optNumber(f.score, `findings[${i}].score`),
      against: optString(f.against),
      traceIDs: [...new Set(ids)],
    });
  });
  return {
    verdict: d.verdict,
    threshold: optNumber(d.threshold, "threshold"),
    spike: { traces: optCount(spike.traces, "spike.traces"), exemplars: optCount(spike.exemplars, "spike.exemplars") },
    baseline: { traces: optCount(baseline.traces, "baseline.traces") },
    findings,
    unknownKinds,
  };
}

/** groupFindings splits findings by kind, keeping the server's order (best first) within each. */
export function groupFindings(fs: Finding[]): Record<FindingKind, Finding[]> {
  const out: Record<FindingKind, Finding[]> = { span: [], attribute: [], error: [] };
  for (const f of fs) out[f.kind].push(f);
  return out;
}

/**
 * baselineValueOf is the baseline value worth showing: none when the
 * baseline held no traces (the server still sends 0 there), unless the
 * finding was compared with the region's other traces instead.
 */
export function baselineValueOf(a: Pick<Analysis, "baseline">, f: Finding): number | null {
  if (a.baseline.traces === 0 && f.against !== "rest") return null;
  return f.baselineValue;
}

/** formatShare renders a 0–1 share as a percentage: whole percent, one decimal below 10%, "<0.1%" for a tiny non-zero share. */
export function formatShare(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  const pct = v * 100;
  if (pct === 0) return "0%";
  if (Math.abs(pct) < 0.1) return "<0.1%";
  // Below 10% one decimal, dropped when it is 0 (0.07 * 100 is 7.000000000000001).
  const s = Math.abs(pct) < 10 ? pct.toFixed(1).replace(/\.0$/, "") : pct.toFixed(0);
  return `${s}%`;
}

/** formatFindingValue renders a spike or baseline value as its kind means it. */
export function formatFindingValue(f: Pick<Finding, "kind" | "numeric">, v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (f.kind === "span") return v === 0 ? "0s" : formatUnit(v, "s");
  if (f.kind === "attribute" && f.numeric) return formatUnit(v, "none");
  return formatShare(v);
}

/** findingName names what a finding is about: "service · span", "attribute=value", or the failing span. */
export function findingName(f: Finding): string {
  switch (f.kind) {
    case "span":
    case "error":
      return [f.service, f.span].filter((x) => x).join(" · ") || "(unnamed span)";
    case "attribute":
      return f.numeric || f.value === undefined ? (f.attribute ?? "(unnamed attribute)") : `${f.attribute ?? "(unnamed attribute)"}=${f.value}`;
  }
}

/**
 * barWidths gives the spike and baseline bars' widths in percent of the
 * larger value. A value above zero keeps at least 1% so that it stays
 * visible beside a much larger one; missing or negative values are 0.
 */
export function barWidths(spike: number | null, baseline: number | null): { spike: number; baseline: number } {
  const a = spike !== null && Number.isFinite(spike) && spike > 0 ? spike : 0;
  const b = baseline !== null && Number.isFinite(baseline) && baseline > 0 ? baseline : 0;
  const max = Math.max(a, b);
  const w = (v: number) => (v === 0 ? 0 : Math.max(1, (v / max) * 100));
  return { spike: w(a), baseline: w(b) };
}

/** COMPARE_BEFORE_MS and COMPARE_AFTER_MS frame an exemplar for "Compare with normal". */
export const COMPARE_BEFORE_MS = 2 * 60_000;
export const COMPARE_AFTER_MS = 60_000;

/**
 * compareWindow is the region "Compare with normal" asks about for an
 * exemplar at timeSec (epoch seconds): two minutes before it to one minute
 * after, the end clamped to now (nowMs) unless that would leave an empty
 * region, so end is always after start.
 */
export function compareWindow(timeSec: number, nowMs: number): { start: number; end: number } {
  const t = timeSec * 1000;
  const start = Math.floor(t - COMPARE_BEFORE_MS);
  let end = Math.ceil(Math.min(t + COMPARE_AFTER_MS, nowMs));
  if (end <= start) end = Math.ceil(t + COMPARE_AFTER_MS);
  return { start, end };
}

/** regionLength renders a region's length for the panel header, e.g. "3m00s". */
export function regionLength(r: Pick<AnalyzeRequest, "start" | "end">): string {
  return formatDurationMs(r.end - r.start);
}
