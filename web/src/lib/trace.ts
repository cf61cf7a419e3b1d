// Trace model: parses the Tempo HTTP API's OTLP/JSON (v2 {"trace":{"resourceSpans"}}
// or v1 {"batches"}), builds the span tree, lays out the waterfall rows and
// marks the critical path.

export type AnyValue = string | number | boolean | null | AnyValue[] | { [k: string]: AnyValue };

export interface KV {
  key: string;
  value: AnyValue;
}

export interface SpanEvent {
  name: string;
  time: number; // ns relative to the trace start
  attributes: KV[];
}

export interface SpanLink {
  traceId: string;
  spanId: string;
  attributes: KV[];
}

export type StatusCode = "unset" | "ok" | "error";

export interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  service: string;
  kind: string; // server, client, internal, producer, consumer, unspecified
  start: number; // ns relative to the trace start
  end: number; // ns relative to the trace start
  duration: number; // ns
  startEpochMs: number;
  attributes: KV[];
  events: SpanEvent[];
  links: SpanLink[];
  resource: KV[];
  scope: string;
  status: StatusCode;
  statusMessage: string;
  children: Span[];
  parent: Span | null;
  depth: number;
  critical: boolean;
  hasError: boolean; // this span or a descendant has status error
}

export interface Trace {
  traceId: string;
  spans: Span[]; // in tree (display) order
  roots: Span[];
  byId: Map<string, Span>;
  duration: number; // ns
  startEpochMs: number;
  services: string[];
}

type Json = Record<string, unknown>;

const KINDS = ["unspecified", "internal", "server", "client", "producer", "consumer"];

function isObj(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function str(v: unknown): string {
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : "";
}

/** toHexId turns an OTLP/JSON id (hex, or base64 as jsonpb writes bytes) into lower-case hex. */
export function toHexId(id: unknown): string {
  const s = str(id).trim();
  if (s === "") return "";
  if (/^[0-9a-fA-F]+$/.test(s) && (s.length === 32 || s.length === 16)) return s.toLowerCase();
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(s) && (s.length === 24 || s.length === 12)) {
    try {
      const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
      let out = "";
      for (let i = 0; i < bin.length; i++) out += bin.charCodeAt(i).toString(16).padStart(2, "0");
      return out;
    } catch {
      /* fall through */
    }
  }
  return s.toLowerCase();
}

/** anyValue converts an OTLP/JSON AnyValue. */
export function anyValue(v: unknown): AnyValue {
  if (!isObj(v)) return null;
  if ("stringValue" in v) return str(v.stringValue);
  if ("boolValue" in v) return Boolean(v.boolValue);
  if ("intValue" in v) {
    const n = Number(v.intValue);
    return Number.isSafeInteger(n) ? n : str(v.intValue);
  }
  if ("doubleValue" in v) return Number(v.doubleValue);
  if ("bytesValue" in v) return str(v.bytesValue);
  if ("arrayValue" in v) return arr(isObj(v.arrayValue) ? v.arrayValue.values : undefined).map(anyValue);
  if ("kvlistValue" in v) {
    const o: { [k: string]: AnyValue } = {};
    for (const kv of attrs(isObj(v.kvlistValue) ? v.kvlistValue.values : undefined)) o[kv.key] = kv.value;
    return o;
  }
  return null;
}

function attrs(v: unknown): KV[] {
  const out: KV[] = [];
  for (const a of arr(v)) if (isObj(a)) out.push({ key: str(a.key), value: anyValue(a.value) });
  return out;
}

/** formatValue renders an attribute value as text. */
export function formatValue(v: AnyValue): string {
  if (v === null) return "null";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}

function nanos(v: unknown): bigint {
  const s = str(v);
  if (!/^\d+$/.test(s)) return 0n;
  return BigInt(s);
}

function kindOf(v: unknown): string {
  if (typeof v === "number") return KINDS[v] ?? "unspecified";
  const s = str(v).toLowerCase().replace(/^span_kind_/, "");
  return KINDS.includes(s) ? s : "unspecified";
}

function statusOf(v: unknown): { code: StatusCode; message: string } {
  if (!isObj(v)) return { code: "unset", message: "" };
  const c = v.code;
  const s = typeof c === "number" ? c : str(c).toUpperCase();
  const code: StatusCode = s === 2 || s === "STATUS_CODE_ERROR" || s === "ERROR" ? "error" : s === 1 || s === "STATUS_CODE_OK" || s === "OK" ? "ok" : "unset";
  return { code, message: str(v.message) };
}

interface RawSpan {
  raw: Json;
  resource: KV[];
  service: string;
  scope: string;
}

/** parseTrace builds a Trace from a Tempo API response (v2 or v1 shape). Throws on a body with no spans. */
export function parseTrace(body: unknown, wantTraceId = ""): Trace {
  let batches: unknown[] = [];
  if (isObj(body)) {
    if (isObj(body.trace)) batches = arr(body.trace.resourceSpans ?? body.trace.batches);
    else if (Array.isArray(body.batches)) batches = body.batches;
    else if (Array.isArray(body.resourceSpans)) batches = body.resourceSpans;
  }
  const raws: RawSpan[] = [];
  for (const b of batches) {
    if (!isObj(b)) continue;
    const resource = attrs(isObj(b.resource) ? b.resource.attributes : undefined);
    const service = formatValue(resource.find((kv) => kv.key === "service.name")?.value ?? "unknown_service");
    for (const ss of arr(b.scopeSpans ?? b.instrumentationLibrarySpans)) {
      if (!isObj(ss)) continue;
      const sc = isObj(ss.scope) ? ss.scope : isObj(ss.instrumentationLibrary) ? ss.instrumentationLibrary : {};
      const scope = [str(sc.name), str(sc.version)].filter(Boolean).join(" ");
      for (const sp of arr(ss.spans)) if (isObj(sp)) raws.push({ raw: sp, resource, service, scope });
    }
  }
  if (raws.length === 0) throw new Error("the trace has no spans");

  let min = -1n;
  let max = 0n;
  for (const r of raws) {
    const s = nanos(r.raw.startTimeUnixNano);
    const e = nanos(r.raw.endTimeUnixNano);
    if (min < 0n || s < min) min = s;
    if (e > max) max = e;
    if (s > max) max = s;
  }
  const base = min < 0n ? 0n : min;
  const spans: Span[] = raws.map(({ raw, resource, service, scope }) => {
    const s = nanos(raw.startTimeUnixNano);
    let e = nanos(raw.endTimeUnixNano);
    if (e < s) e = s;
    const st = statusOf(raw.status);
    const start = Number(s - base);
    const end = Number(e - base);
    return {
      traceId: toHexId(raw.traceId),
      spanId: toHexId(raw.spanId),
      parentSpanId: toHexId(raw.parentSpanId),
      name: str(raw.name),
      service,
      kind: kindOf(raw.kind),
      start,
      end,
      duration: end - start,
      startEpochMs: Number(s / 1_000_000n),
      attributes: attrs(raw.attributes),
      events: arr(raw.events)
        .filter(isObj)
        .map((ev) => ({ name: str(ev.name), time: Number(nanos(ev.timeUnixNano) - base), attributes: attrs(ev.attributes) })),
      links: arr(raw.links)
        .filter(isObj)
        .map((l) => ({ traceId: toHexId(l.traceId), spanId: toHexId(l.spanId), attributes: attrs(l.attributes) })),
      resource,
      scope,
      status: st.code,
      statusMessage: st.message,
      children: [],
      parent: null,
      depth: 0,
      critical: false,
      hasError: st.code === "error",
    };
  });
  return buildTrace(spans, wantTraceId || spans[0]!.traceId, Number(max - base), Number(base / 1_000_000n));
}

/** buildTrace links spans into a tree, orders them, and marks the critical path. */
export function buildTrace(spans: Span[], traceId: string, duration: number, startEpochMs: number): Trace {
  const byId = new Map<string, Span>();
  for (const s of spans) if (!byId.has(s.spanId)) byId.set(s.spanId, s);
  const roots: Span[] = [];
  for (const s of spans) {
    const p = s.parentSpanId ? byId.get(s.parentSpanId) : undefined;
    if (p && p !== s && !isAncestor(s, p)) {
      s.parent = p;
      p.children.push(s);
    } else {
      roots.push(s);
    }
  }
  const byStart = (a: Span, b: Span) => a.start - b.start || a.end - b.end || (a.name < b.name ? -1 : 1);
  roots.sort(byStart);
  const ordered: Span[] = [];
  const stack: Span[] = [...roots].reverse();
  for (const r of roots) r.depth = 0;
  while (stack.length) {
    const s = stack.pop()!;
    ordered.push(s);
    s.children.sort(byStart);
    for (let i = s.children.length - 1; i >= 0; i--) {
      const c = s.children[i]!;
      c.depth = s.depth + 1;
      stack.push(c);
    }
  }
  // Propagate hasError to ancestors (reverse pre-order visits children first).
  for (let i = ordered.length - 1; i >= 0; i--) {
    const s = ordered[i]!;
    if (s.hasError && s.parent) s.parent.hasError = true;
  }
  markCriticalPath(roots);
  const services = [...new Set(ordered.map((s) => s.service))];
  return { traceId, spans: ordered, roots, byId, duration, startEpochMs, services };
}

function isAncestor(candidate: Span, of: Span): boolean {
  for (let p: Span | null = of; p; p = p.parent) if (p === candidate) return true;
  return false;
}

/**
 * markCriticalPath marks the spans on the critical path: from the root that
 * ends last, walk back in time; at each span, the child that finished last
 * before the cursor is on the path, the cursor moves to that child's start,
 * and the walk continues with the children that finished before it.
 * Children running in parallel with a critical child are not critical.
 */
export function markCriticalPath(roots: Span[]): void {
  if (roots.length === 0) return;
  let root = roots[0]!;
  for (const r of roots) if (r.end - r.start > root.end - root.start) root = r;
  const stack: Span[] = [root];
  while (stack.length) {
    const s = stack.pop()!;
    s.critical = true;
    const kids = [...s.children].sort((a, b) => b.end - a.end);
    let cursor = s.end;
    for (const c of kids) {
      if (cursor <= s.start) break;
      // A child that ends after the cursor overlaps the critical child already
      // taken (it ran in parallel); only the first (last-finishing) child may
      // end after its parent (clock skew), and it is clamped.
      if (c.end > cursor && cursor !== s.end) continue;
      if (c.start >= cursor) continue;
      stack.push(c);
      cursor = c.start;
    }
  }
}

export interface Row {
  span: Span;
  depth: number;
  collapsed: boolean;
  hiddenCount: number; // descendants hidden under a collapsed span
}

/** visibleRows lists the rows of the waterfall, skipping descendants of collapsed spans. */
export function visibleRows(trace: Trace, collapsed: ReadonlySet<string>): Row[] {
  const rows: Row[] = [];
  const stack: Span[] = [...trace.roots].reverse();
  while (stack.length) {
    const s = stack.pop()!;
    const isCollapsed = collapsed.has(s.spanId) && s.children.length > 0;
    rows.push({ span: s, depth: s.depth, collapsed: isCollapsed, hiddenCount: isCollapsed ? countDescendants(s) : 0 });
    if (!isCollapsed) for (let i = s.children.length - 1; i >= 0; i--) stack.push(s.children[i]!);
  }
  return rows;
}

function countDescendants(s: Span): number {
  let n = 0;
  const st = [...s.children];
  while (st.length) {
    const c = st.pop()!;
    n++;
    st.push(...c.children);
  }
  return n;
}

export interface Bar {
  left: number; // fraction of the trace duration [0,1]
  width: number; // fraction, at least minWidth
}

/** barFor places a span on the time axis, as fractions of the trace duration. */
export function barFor(span: Span, traceDuration: number, minWidth = 0.002): Bar {
  if (traceDuration <= 0) return { left: 0, width: 1 };
  const left = Math.min(Math.max(span.start / traceDuration, 0), 1);
  const width = Math.max(Math.min(span.duration / traceDuration, 1 - left), minWidth);
  return { left: Math.min(left, 1 - minWidth), width };
}

/** ancestorsOf lists a span's ancestors' ids, to expand them before scrolling to the span. */
export function ancestorsOf(span: Span): string[] {
  const out: string[] = [];
  for (let p = span.parent; p; p = p.parent) out.push(p.spanId);
  return out;
}

const PALETTE = ["#3274d9", "#e0752d", "#37872d", "#8f3bb8", "#c4162a", "#1f9f9b", "#a16a00", "#de64b1", "#56a64b", "#6e7d9b", "#ff9830", "#5794f2"];

/** serviceColor gives a stable colour per service name. */
export function serviceColor(service: string): string {
  let h = 2166136261;
  for (let i = 0; i < service.length; i++) {
    h ^= service.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return PALETTE[(h >>> 0) % PALETTE.length]!;
}
