// Client of the Tempo HTTP API under /tempo/api, plus Lookout's extensions
// (absent on a real Tempo: a 404 there means "unknown", not an error).

import { getJSON, HttpError, qs } from "./http";
import { parseTrace, type Trace } from "./trace";

const BASE = "/tempo/api";

export class TraceNotFound extends Error {
  constructor(readonly traceId: string) {
    super(`trace ${traceId} was never received by the trace store`);
  }
}

/** getTrace fetches a trace by hex id: v2 first, then the v1 endpoint. */
export async function getTrace(traceId: string, signal?: AbortSignal): Promise<Trace> {
  const id = encodeURIComponent(traceId);
  let body: unknown;
  try {
    body = await getJSON(`${BASE}/v2/traces/${id}`, signal);
  } catch (e) {
    if (!(e instanceof HttpError) || (e.status !== 404 && e.status !== 405 && e.status !== 501)) throw e;
    try {
      body = await getJSON(`${BASE}/traces/${id}`, signal);
    } catch (e2) {
      if (e2 instanceof HttpError && e2.status === 404) throw new TraceNotFound(traceId);
      throw e2;
    }
  }
  try {
    return parseTrace(body, traceId);
  } catch {
    throw new TraceNotFound(traceId);
  }
}

// Traces known to be stored stay stored (Lookout keeps what an exemplar points
// at), so positive answers are remembered for the page's lifetime; negative
// ones are asked again, since spans may still be arriving.
const knownFound = new Set<string>();
let foundUnsupported = false; // a backend without the extension (real Tempo) is asked once

/** tracesFound asks which trace ids the store holds; null when the backend lacks the extension. */
export async function tracesFound(ids: string[], signal?: AbortSignal): Promise<Map<string, boolean> | null> {
  if (foundUnsupported) return null;
  const out = new Map<string, boolean>();
  const uniq = [...new Set(ids.filter(Boolean))];
  const ask = uniq.filter((id) => !knownFound.has(id));
  for (const id of uniq) if (knownFound.has(id)) out.set(id, true);
  const chunks: string[][] = [];
  for (let i = 0; i < ask.length; i += 100) chunks.push(ask.slice(i, i + 100));
  try {
    await Promise.all(
      chunks.map(async (chunk) => {
        const body = await getJSON<{ found?: Record<string, boolean> }>(`${BASE}/lookout/traces/found?${qs({ ids: chunk.join(",") })}`, signal);
        for (const id of chunk) {
          const f = Boolean(body.found?.[id]);
          out.set(id, f);
          if (f) knownFound.add(id);
        }
      }),
    );
  } catch (e) {
    if (e instanceof HttpError && (e.status === 404 || e.status === 405 || e.status === 501)) {
      foundUnsupported = true;
      return null;
    }
    throw e;
  }
  return out;
}

export interface SearchHit {
  traceID: string;
  rootServiceName?: string;
  rootTraceName?: string;
  startTimeUnixNano?: string;
  durationMs?: number;
  spanSets?: { spans?: { spanID: string; name?: string; durationNanos?: string }[]; matched?: number }[];
  spanSet?: { spans?: { spanID: string; name?: string; durationNanos?: string }[]; matched?: number };
}

export interface SearchParams {
  q: string;
  start: number; // epoch ms
  end: number;
  limit: number;
  minDuration?: string;
  maxDuration?: string;
}

export async function search(p: SearchParams, signal?: AbortSignal): Promise<SearchHit[]> {
  const body = await getJSON<{ traces?: SearchHit[] }>(
    `${BASE}/search?${qs({
      q: p.q,
      start: Math.floor(p.start / 1000),
      end: Math.ceil(p.end / 1000),
      limit: p.limit,
      minDuration: p.minDuration,
      maxDuration: p.maxDuration,
    })}`,
    signal,
  );
  return body.traces ?? [];
}

/** tagValues lists values of a tag (v2 first, then v1). */
export async function tagValues(tag: string, signal?: AbortSignal): Promise<string[]> {
  try {
    const b = await getJSON<{ tagValues?: { value?: string }[] }>(`${BASE}/v2/search/tag/${encodeURIComponent(tag)}/values`, signal);
    return (b.tagValues ?? []).map((v) => String(v.value ?? "")).filter(Boolean).sort();
  } catch (e) {
    if (!(e instanceof HttpError) || e.status !== 404) throw e;
    const b = await getJSON<{ tagValues?: string[] }>(`${BASE}/search/tag/${encodeURIComponent(tag.replace(/^(resource|span)\./, ""))}/values`, signal);
    return (b.tagValues ?? []).map(String).sort();
  }
}

export interface TraceExemplars {
  traceReceived?: boolean;
  series: { seriesLabels: Record<string, string>; exemplars: { labels: Record<string, string>; value: string; timestamp: number }[] }[];
}

/** exemplarsForTrace uses Lookout's reverse link (metric series whose exemplars point at a trace); null on a backend without it. */
export async function exemplarsForTrace(traceId: string, signal?: AbortSignal): Promise<TraceExemplars | null> {
  try {
    const b = await getJSON<Partial<TraceExemplars>>(`${BASE}/lookout/exemplars?${qs({ traceID: traceId })}`, signal);
    return { traceReceived: b.traceReceived, series: Array.isArray(b.series) ? b.series : [] };
  } catch (e) {
    if (e instanceof HttpError && (e.status === 404 || e.status === 405 || e.status === 501)) return null;
    throw e;
  }
}

/** traceqlString quotes a value for a TraceQL string literal. */
export function traceqlString(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

export interface SearchForm {
  service?: string;
  spanName?: string;
  minDuration?: string;
  maxDuration?: string;
}

/** buildTraceQL turns the search form into a TraceQL query. */
export function buildTraceQL(f: SearchForm): string {
  const conds: string[] = [];
  if (f.service) conds.push(`resource.service.name = ${traceqlString(f.service)}`);
  if (f.spanName) conds.push(`name = ${traceqlString(f.spanName)}`);
  if (f.minDuration) conds.push(`duration >= ${f.minDuration}`);
  if (f.maxDuration) conds.push(`duration <= ${f.maxDuration}`);
  return `{ ${conds.join(" && ")} }`.replace("{  }", "{}");
}
