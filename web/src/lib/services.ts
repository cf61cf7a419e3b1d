// The Services page's pure parts: which metrics carry a service's requests
// (the source table, in order of preference), the PromQL that reads them,
// the merge of what each source answered into one row per service and
// operation, and the scaling of millisecond histograms into seconds.
//
// A service is Prometheus's job label (the resource's service.name). Each
// source is one way an app reports its server requests: the stable HTTP
// conventions, the older ones (milliseconds, what FastAPI's and other older
// instrumentations send by default), the two RPC conventions, and the span
// metrics derived from server spans. Per service, one source per family
// (HTTP, RPC) is used, the preferred one when an app sends two (an app
// migrating to the stable conventions sends both); span metrics only for a
// service that sends none of the others.

import { durationLiteral } from "./dashboard";
import { formatUnit } from "./format";
import type { Labels, VectorSample } from "./prom";

export type SourceId = "http" | "http-old" | "rpc" | "rpc-old" | "spans";
export type Family = "http" | "rpc" | "spans";

/** What a source's grouping labels name: the operation as shown, and how to select it again. */
export interface Operation {
  operation: string;
  /** HTTP request method, "" for other sources. */
  method: string;
  /** Span kind (SPAN_KIND_…) for span metrics, "" for other sources. */
  kind: string;
}

export interface Source {
  id: SourceId;
  family: Family;
  /** label is the tag shown beside the service, e.g. "HTTP (older, ms)". */
  label: string;
  /** count lists the spellings of the request counter (a histogram's _count, or a counter). */
  count: string[];
  /** bucket lists the spellings of the duration histogram's _bucket series. */
  bucket: string[];
  /** toSeconds multiplies the histogram's values (quantiles, exemplars) into seconds. */
  toSeconds: number;
  /** groupBy are the labels besides job that tell operations apart. */
  groupBy: string[];
  /** errors is the matcher that selects failed requests. */
  errors: string;
  /** operationOf names an operation from its grouping labels. */
  operationOf(l: Labels): Operation;
}

/** Server-error gRPC codes: UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS. */
export const GRPC_SERVER_ERROR_CODES = ["2", "4", "12", "13", "14", "15"];

const rpcOperation = (l: Labels): Operation => ({
  operation: l.rpc_service && l.rpc_method && !l.rpc_method.includes("/") ? `${l.rpc_service}/${l.rpc_method}` : l.rpc_method || l.rpc_service || "",
  method: "",
  kind: "",
});

/**
 * SOURCES in order of preference. Names are as Lookout's default OTLP
 * translation writes them (no unit suffixes), then as Prometheus's default
 * strategy does (_seconds, _milliseconds, _total).
 */
export const SOURCES: readonly Source[] = [
  {
    id: "http",
    family: "http",
    label: "HTTP (stable)",
    count: ["http_server_request_duration_count", "http_server_request_duration_seconds_count"],
    bucket: ["http_server_request_duration_bucket", "http_server_request_duration_seconds_bucket"],
    toSeconds: 1,
    groupBy: ["http_route", "http_request_method"],
    errors: 'http_response_status_code=~"5.."',
    operationOf: (l) => ({ operation: l.http_route ?? "", method: l.http_request_method ?? "", kind: "" }),
  },
  {
    id: "http-old",
    family: "http",
    label: "HTTP (older, ms)",
    count: ["http_server_duration_count", "http_server_duration_milliseconds_count"],
    bucket: ["http_server_duration_bucket", "http_server_duration_milliseconds_bucket"],
    toSeconds: 0.001,
    // Java's and Go's older instrumentations send the route template as
    // http.route; Python's (FastAPI, Flask) as http.target.
    groupBy: ["http_route", "http_target", "http_method"],
    errors: 'http_status_code=~"5.."',
    operationOf: (l) => ({ operation: l.http_route || l.http_target || "", method: l.http_method ?? "", kind: "" }),
  },
  {
    id: "rpc",
    family: "rpc",
    label: "RPC",
    count: ["rpc_server_call_duration_count", "rpc_server_call_duration_seconds_count"],
    bucket: ["rpc_server_call_duration_bucket", "rpc_server_call_duration_seconds_bucket"],
    toSeconds: 1,
    groupBy: ["rpc_service", "rpc_method"],
    errors: 'error_type!=""',
    operationOf: rpcOperation,
  },
  {
    id: "rpc-old",
    family: "rpc",
    label: "RPC (older, ms)",
    count: ["rpc_server_duration_count", "rpc_server_duration_milliseconds_count"],
    bucket: ["rpc_server_duration_bucket", "rpc_server_duration_milliseconds_bucket"],
    toSeconds: 0.001,
    groupBy: ["rpc_service", "rpc_method"],
    errors: `rpc_grpc_status_code=~"${GRPC_SERVER_ERROR_CODES.join("|")}"`,
    operationOf: rpcOperation,
  },
  {
    id: "spans",
    family: "spans",
    label: "span metrics",
    count: ["traces_span_metrics_calls", "traces_span_metrics_calls_total"],
    bucket: ["traces_span_metrics_duration_bucket", "traces_span_metrics_duration_milliseconds_bucket"],
    toSeconds: 0.001,
    groupBy: ["span_name", "span_kind"],
    errors: 'status_code="STATUS_CODE_ERROR"',
    operationOf: (l) => ({ operation: l.span_name ?? "", method: "", kind: l.span_kind ?? "" }),
  },
];

const BY_ID = new Map(SOURCES.map((s) => [s.id, s]));

/** sourceById returns a source of SOURCES. */
export function sourceById(id: SourceId): Source {
  return BY_ID.get(id)!;
}

/** Span kinds whose spans are a service's own requests: the ones span metrics are read for when a service has any. */
export const ENTRY_KINDS = ["SPAN_KIND_SERVER", "SPAN_KIND_CONSUMER"];

/** QUANTILES are the latency quantiles of the table and the chart. */
export const QUANTILES = [
  { stat: "p50", q: 0.5 },
  { stat: "p95", q: 0.95 },
  { stat: "p99", q: 0.99 },
] as const;

/** STAT_LABEL tags each part of a source's combined table query. */
export const STAT_LABEL = "lookout_stat";

/** promString quotes a label value for PromQL (JSON's escapes are a subset of PromQL's). */
export function promString(s: string): string {
  return JSON.stringify(s);
}

/** matcher renders label="value", the value quoted. */
export function matcher(label: string, value: string): string {
  return `${label}=${promString(value)}`;
}

/**
 * tableWindow is the rate window of the table, in seconds: the whole
 * selected range (the table summarises it), and at least 5 minutes, so that
 * even a short range holds two samples of an app that exports once a minute
 * (OpenTelemetry SDKs' default).
 */
export function tableWindow(rangeMs: number): number {
  return Math.max(300, Math.round(rangeMs / 1000));
}

/**
 * chartWindow is the rate window of the charts for a step in seconds, as
 * Grafana's $__rate_interval with a 60 s scrape interval (OpenTelemetry
 * SDKs' default export interval): max(step + 60 s, 4 minutes).
 */
export function chartWindow(stepSec: number): number {
  return Math.max(stepSec + 60, 240);
}

/** selector renders name{m1, m2}. */
function selector(name: string, matchers: string[]): string {
  return matchers.length ? `${name}{${matchers.join(", ")}}` : name;
}

/**
 * rates is the per-second rate of every spelling of a metric, joined with
 * `or` rather than a __name__ regex: if two spellings of one series exist
 * (a changed translation strategy), `or` keeps one instead of failing.
 */
function rates(names: string[], matchers: string[], windowSec: number): string {
  return names.map((n) => `rate(${selector(n, matchers)}[${durationLiteral(windowSec)}])`).join(" or ");
}

function sumBy(labels: string[], expr: string): string {
  return labels.length ? `sum by (${labels.join(", ")}) (${expr})` : `sum(${expr})`;
}

function tag(expr: string, stat: string): string {
  return `label_replace(${expr}, "${STAT_LABEL}", "${stat}", "job", ".*")`;
}

/**
 * tableQuery is one instant query for all of a source's figures, grouped by
 * job and the source's operation labels: the request rate, the error rate
 * and the three quantiles (in the histogram's unit), each tagged with a
 * lookout_stat label so the answers can be told apart.
 */
export function tableQuery(src: Source, windowSec: number): string {
  const by = ["job", ...src.groupBy];
  const parts = [
    tag(sumBy(by, rates(src.count, [], windowSec)), "rate"),
    tag(sumBy(by, rates(src.count, [src.errors], windowSec)), "errors"),
    ...QUANTILES.map(({ stat, q }) => tag(`histogram_quantile(${q}, ${sumBy(["le", ...by], rates(src.bucket, [], windowSec))})`, stat)),
  ];
  return parts.join(" or ");
}

export interface ServiceRow {
  service: string;
  source: SourceId;
  operation: string;
  method: string;
  kind: string;
  /** matchers select this operation's series of the source (job excluded). */
  matchers: string[];
  /** rate is requests per second. */
  rate: number;
  /** errorRatio is failed / all requests; null when there were no requests. */
  errorRatio: number | null;
  /** Latency quantiles in seconds; null when unknown. */
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

function num(v: string): number | null {
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/**
 * parseTable turns a source's tableQuery answer into rows, one per job and
 * operation: quantiles scaled into seconds, and an error ratio of 0 for an
 * operation that had requests but no error series.
 */
export function parseTable(src: Source, samples: readonly VectorSample[]): ServiceRow[] {
  const acc = new Map<string, { labels: Labels; stats: Record<string, number | null> }>();
  for (const s of samples) {
    const stat = s.metric[STAT_LABEL];
    const job = s.metric.job;
    if (!stat || job === undefined) continue;
    const key = JSON.stringify([job, ...src.groupBy.map((l) => s.metric[l] ?? "")]);
    let a = acc.get(key);
    if (!a) acc.set(key, (a = { labels: s.metric, stats: {} }));
    a.stats[stat] = num(s.value[1]);
  }
  const rows: ServiceRow[] = [];
  for (const { labels, stats } of acc.values()) {
    const rate = stats.rate ?? 0;
    const errors = stats.errors ?? 0;
    const q = (stat: string) => {
      const v = stats[stat];
      return v === null || v === undefined ? null : v * src.toSeconds;
    };
    rows.push({
      service: labels.job!,
      source: src.id,
      ...src.operationOf(labels),
      matchers: src.groupBy.map((l) => matcher(l, labels[l] ?? "")),
      rate,
      errorRatio: rate > 0 ? Math.min(1, errors / rate) : null,
      p50: q("p50"),
      p95: q("p95"),
      p99: q("p99"),
    });
  }
  return rows;
}

/**
 * mergeSources keeps, per service, the rows of the preferred source of each
 * family the service reports (stable HTTP over the older HTTP conventions,
 * the newer RPC over the older), and span metrics only for a service that
 * reports neither HTTP nor RPC. Of span metrics, a service's server and
 * consumer spans are kept when it has any, all its spans otherwise.
 */
export function mergeSources(rows: readonly ServiceRow[]): ServiceRow[] {
  const rank = new Map(SOURCES.map((s, i) => [s.id, i]));
  const best = new Map<string, SourceId>(); // service + family → source
  for (const r of rows) {
    const k = `${sourceById(r.source).family}\u0000${r.service}`;
    const cur = best.get(k);
    if (cur === undefined || rank.get(r.source)! < rank.get(cur)!) best.set(k, r.source);
  }
  const hasRequests = new Set<string>();
  const hasEntrySpans = new Set<string>();
  for (const r of rows) {
    if (r.source !== "spans") hasRequests.add(r.service);
    else if (ENTRY_KINDS.includes(r.kind)) hasEntrySpans.add(r.service);
  }
  return rows.filter((r) => {
    const family = sourceById(r.source).family;
    if (best.get(`${family}\u0000${r.service}`) !== r.source) return false;
    if (family !== "spans") return true;
    if (hasRequests.has(r.service)) return false;
    return !hasEntrySpans.has(r.service) || ENTRY_KINDS.includes(r.kind);
  });
}

/** serviceSources lists each service's sources, in order of preference. */
export function serviceSources(rows: readonly ServiceRow[]): Map<string, SourceId[]> {
  const out = new Map<string, SourceId[]>();
  for (const r of rows) {
    const list = out.get(r.service) ?? [];
    if (!list.includes(r.source)) list.push(r.source);
    out.set(r.service, list);
  }
  const rank = new Map(SOURCES.map((s, i) => [s.id, i]));
  for (const list of out.values()) list.sort((a, b) => rank.get(a)! - rank.get(b)!);
  return out;
}

/** rowId names a row within its service, for the URL. */
export function rowId(r: Pick<ServiceRow, "source" | "method" | "operation" | "kind">): string {
  return [r.source, r.method, r.operation, r.kind].join("|");
}

/** Selection is what the charts show: a service's operation, or a whole service (operation absent). */
export interface Selection {
  service: string;
  source: SourceId;
  /** matchers select the series (job included). */
  matchers: string[];
  title: string;
}

/** selectRow is the selection of one row. */
export function selectRow(r: ServiceRow): Selection {
  const op = [r.method, r.operation || "(no operation)"].filter(Boolean).join(" ");
  return { service: r.service, source: r.source, matchers: [matcher("job", r.service), ...r.matchers], title: op };
}

/**
 * selectService is the selection of all of a service's operations, read
 * from its preferred source (a service reporting HTTP and RPC shows HTTP);
 * null when the rows hold nothing of the service.
 */
export function selectService(rows: readonly ServiceRow[], service: string): Selection | null {
  const source = serviceSources(rows).get(service)?.[0];
  if (!source) return null;
  const matchers = [matcher("job", service)];
  if (source === "spans") {
    const kinds = [...new Set(rows.filter((r) => r.service === service && r.source === "spans").map((r) => r.kind))].sort();
    if (kinds.every((k) => ENTRY_KINDS.includes(k))) matchers.push(`span_kind=~${promString(kinds.map(escapeRegex).join("|"))}`);
  }
  return { service, source, matchers, title: "all operations" };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A chart query with its legend. */
export interface ChartTarget {
  expr: string;
  legendFormat: string;
}

export interface ChartQueries {
  /** latency: p50, p95, p99 in seconds. */
  latency: ChartTarget[];
  /** requests: requests and errors per second. */
  requests: ChartTarget[];
  /** errorRatio: failed / all requests. */
  errorRatio: ChartTarget[];
  /** exemplars selects the histogram's buckets, for query_exemplars. */
  exemplars: string;
  /** p95 is the p95 in the histogram's own unit, the question a "Why?" asks. */
  p95: string;
}

/** chartQueries builds the range queries of a selection's charts for a rate window in seconds. */
export function chartQueries(sel: Selection, windowSec: number): ChartQueries {
  const src = sourceById(sel.source);
  const quantile = (q: number) => `histogram_quantile(${q}, ${sumBy(["le"], rates(src.bucket, sel.matchers, windowSec))})`;
  const scaled = (e: string) => (src.toSeconds === 1 ? e : `${e} / ${1 / src.toSeconds}`);
  const all = sumBy([], rates(src.count, sel.matchers, windowSec));
  const failed = sumBy([], rates(src.count, [...sel.matchers, src.errors], windowSec));
  return {
    latency: QUANTILES.map(({ stat, q }) => ({ expr: scaled(quantile(q)), legendFormat: stat })),
    requests: [
      { expr: all, legendFormat: "requests" },
      { expr: failed, legendFormat: "errors" },
    ],
    errorRatio: [{ expr: `(${failed} or vector(0)) / ${all}`, legendFormat: "error ratio" }],
    exemplars: src.bucket.map((n) => selector(n, sel.matchers)).join(" or "),
    p95: quantile(0.95),
  };
}

/** scaleExemplars returns the dots with their values in seconds. */
export function scaleExemplars<T extends { value: number }>(src: Source, dots: readonly T[]): T[] {
  return src.toSeconds === 1 ? [...dots] : dots.map((d) => ({ ...d, value: d.value * src.toSeconds }));
}

export type SortKey = "service" | "source" | "operation" | "rate" | "errors" | "p50" | "p95" | "p99";

export interface Sort {
  key: SortKey;
  desc: boolean;
}

/** DEFAULT_SORT is by service, then by rate, busiest first. */
export const DEFAULT_SORT: Sort = { key: "service", desc: false };

/** NUMERIC_KEYS sort busiest or slowest first on their first click. */
export const NUMERIC_KEYS: readonly SortKey[] = ["rate", "errors", "p50", "p95", "p99"];

function sortValue(r: ServiceRow, k: SortKey): string | number | null {
  switch (k) {
    case "service":
      return r.service;
    case "source":
      return sourceById(r.source).label;
    case "operation":
      return `${r.operation} ${r.method}`;
    case "rate":
      return r.rate;
    case "errors":
      return r.errorRatio;
    default:
      return r[k];
  }
}

/**
 * sortRows orders rows by a column (unknown values last, whichever the
 * direction), then by service, busiest first, then by operation.
 */
export function sortRows(rows: readonly ServiceRow[], s: Sort): ServiceRow[] {
  const cmp = (a: string | number | null, b: string | number | null): number => {
    if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
    const c = typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b));
    return s.desc ? -c : c;
  };
  return [...rows].sort(
    (a, b) =>
      cmp(sortValue(a, s.key), sortValue(b, s.key)) ||
      a.service.localeCompare(b.service) ||
      b.rate - a.rate ||
      a.operation.localeCompare(b.operation) ||
      a.method.localeCompare(b.method),
  );
}

/** filterRows keeps the rows whose service, operation, method or source contains every word of q (any case). */
export function filterRows(rows: readonly ServiceRow[], q: string): ServiceRow[] {
  const words = q.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return [...rows];
  return rows.filter((r) => {
    const hay = [r.service, r.operation, r.method, r.kind, sourceById(r.source).label].join(" ").toLowerCase();
    return words.every((w) => hay.includes(w));
  });
}

/** Cells are a row's texts as the table shows them. */
export interface Cells {
  service: string;
  source: string;
  operation: string;
  method: string;
  kind: string;
  rate: string;
  errors: string;
  p50: string;
  p95: string;
  p99: string;
}

/** kindName shortens a span kind for display: SPAN_KIND_CLIENT → client. */
const kindName = (k: string) => k.replace(/^SPAN_KIND_/, "").toLowerCase();

/** cells formats a row: rates in req/s, the error ratio in percent, latencies in seconds' units; labels verbatim. */
export function cells(r: ServiceRow): Cells {
  return {
    service: r.service,
    source: sourceById(r.source).label,
    operation: r.operation || "(no operation)",
    method: r.method,
    kind: r.kind && r.kind !== "SPAN_KIND_SERVER" ? kindName(r.kind) : "",
    rate: formatUnit(r.rate, "reqps"),
    errors: r.errorRatio !== null && r.errorRatio > 0 && r.errorRatio < 0.0005 ? "<0.1%" : formatUnit(r.errorRatio, "percentunit", 1),
    p50: formatUnit(r.p50, "s"),
    p95: formatUnit(r.p95, "s"),
    p99: formatUnit(r.p99, "s"),
  };
}

/** emptyHelp lists, per source, the metrics the page looks for, for the empty state. */
export function emptyHelp(): { label: string; metrics: string; operation: string; errors: string }[] {
  return SOURCES.map((s) => ({
    label: s.label,
    metrics: [s.count[0]!, s.bucket[0]!].join(", "),
    operation: s.groupBy.join(" / "),
    errors: s.errors,
  }));
}
