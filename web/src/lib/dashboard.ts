// The Grafana dashboard JSON model (the subset Lookout renders), its layout
// (rows expanded), and template variable interpolation for Prometheus queries.

import { parseDuration } from "./time";

export interface GridPos {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Target {
  refId?: string;
  expr?: string;
  legendFormat?: string;
  exemplar?: boolean;
  instant?: boolean;
  range?: boolean;
  hide?: boolean;
  format?: string; // "time_series" (default), "table" or "heatmap"
}

export interface Panel {
  id?: number;
  type: string;
  title?: string;
  description?: string;
  gridPos?: GridPos;
  targets?: Target[];
  fieldConfig?: {
    defaults?: {
      unit?: string;
      decimals?: number;
      min?: number;
      max?: number;
      custom?: { stacking?: { mode?: string }; fillOpacity?: number };
      thresholds?: { steps?: { color: string; value: number | null }[] };
    };
  };
  options?: Record<string, unknown>;
  panels?: Panel[]; // collapsed rows hold their panels here
  collapsed?: boolean;
}

export interface Variable {
  name: string;
  label?: string;
  type: string;
  query?: string | { query?: string };
  definition?: string;
  includeAll?: boolean;
  multi?: boolean;
  allValue?: string;
  current?: { text?: string | string[]; value?: string | string[] };
  options?: { text: string; value: string }[];
  hide?: number;
  auto?: boolean; // interval: offer "auto"
  auto_count?: number; // interval: auto aims at this many intervals in the range
  auto_min?: string; // interval: auto is never shorter
}

export interface Dashboard {
  uid: string;
  title: string;
  description?: string;
  tags?: string[];
  panels?: Panel[];
  templating?: { list?: Variable[] };
  time?: { from: string; to: string };
  refresh?: string;
}

export const ALL = "$__all";

/** MAX_PANELS bounds the panels a dashboard renders; the rest are counted in a notice. */
export const MAX_PANELS = 200;

const DEFAULT_POS: GridPos = { x: 0, y: 0, w: 12, h: 8 };

function byPosition(a: Panel, b: Panel): number {
  return (a.gridPos?.y ?? 0) - (b.gridPos?.y ?? 0) || (a.gridPos?.x ?? 0) - (b.gridPos?.x ?? 0);
}

/**
 * flattenPanels lists a dashboard's panels in layout order with their grid
 * positions, rows expanded. A collapsed row holds its panels itself, with the
 * positions they had when it was open: they are placed under the row and
 * everything below moves down by their height, as Grafana does on expanding.
 */
export function flattenPanels(d: Dashboard): Panel[] {
  const out: Panel[] = [];
  let shift = 0;
  for (const p of [...(d.panels ?? [])].sort(byPosition)) {
    const gp = { ...DEFAULT_POS, ...p.gridPos };
    gp.y += shift;
    out.push({ ...p, gridPos: gp });
    const kids = p.type === "row" ? [...(p.panels ?? [])].sort(byPosition) : [];
    if (kids.length === 0) continue;
    const below = gp.y + Math.max(gp.h, 1);
    const top = Math.min(...kids.map((k) => k.gridPos?.y ?? 0));
    let bottom = below;
    for (const k of kids) {
      const kg = { ...DEFAULT_POS, ...k.gridPos };
      kg.y = below + (kg.y - top);
      out.push({ ...k, gridPos: kg });
      bottom = Math.max(bottom, kg.y + Math.max(kg.h, 1));
    }
    shift += bottom - below;
  }
  return out;
}

/** variableQuery returns the query string of a query variable. */
export function variableQuery(v: Variable): string {
  if (typeof v.query === "string") return v.query;
  return v.query?.query ?? v.definition ?? "";
}

/** parseLabelValues understands label_values(label) and label_values(selector, label). */
export function parseLabelValues(q: string): { label: string; match?: string } | null {
  const m = /^\s*label_values\(\s*(?:(.+?)\s*,\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(q);
  if (!m) return null;
  return m[1] ? { label: m[2]!, match: m[1] } : { label: m[2]! };
}

/** escapeRegex escapes regex metacharacters, then quotes for a PromQL double-quoted string. */
export function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/\\/g, "\\\\").replace(/"/g, '\\"');
}

export interface InterpolateContext {
  values: Record<string, string[]>; // selected values per variable ([ALL] for All)
  variables: Variable[];
  stepSeconds: number;
  rangeSeconds: number;
}

/** formatVariable renders a variable's selection for a Prometheus regex matcher. */
export function formatVariable(v: Variable | undefined, selected: string[]): string {
  if (selected.length === 0 || selected.includes(ALL)) return v?.allValue ?? ".*";
  if (selected.length === 1) return escapeRegex(selected[0]!);
  return `(${selected.map(escapeRegex).join("|")})`;
}

/** durationLiteral renders seconds as a PromQL duration. */
export function durationLiteral(seconds: number): string {
  const s = Math.max(1, Math.round(seconds));
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

/** autoValue is the value of an interval variable's "auto" option, as Grafana names it. */
export function autoValue(v: Variable): string {
  return `$__auto_interval_${v.name}`;
}

// Intervals "auto" rounds to, in seconds.
const NICE_INTERVALS = [1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800];

/**
 * autoInterval is an interval variable's "auto" value: the range divided into
 * `count` intervals (Grafana's auto_count, default 30), rounded to the nearest
 * nice interval and never below `min` (auto_min, default 10s).
 */
export function autoInterval(rangeSeconds: number, count = 30, min = "10s"): string {
  const raw = rangeSeconds / Math.max(1, count);
  let nice = NICE_INTERVALS[NICE_INTERVALS.length - 1]!;
  for (let i = 0; i < NICE_INTERVALS.length - 1; i++) {
    const a = NICE_INTERVALS[i]!;
    const b = NICE_INTERVALS[i + 1]!;
    if (raw < (a + b) / 2) {
      nice = a;
      break;
    }
  }
  let minSeconds = 0;
  try {
    minSeconds = parseDuration(min) / 1000;
  } catch {
    /* a bad auto_min is ignored, as Grafana does */
  }
  return durationLiteral(Math.max(nice, minSeconds));
}

/** customOptions lists a custom or interval variable's options: its query split at commas, "text : value" pairs allowed. */
export function customOptions(v: Variable): { text: string; value: string }[] {
  return variableQuery(v)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const m = /^(.*\S)\s+:\s+(\S.*)$/.exec(s);
      return m ? { text: m[1]!, value: m[2]! } : { text: s, value: s };
    });
}

/** defaultValues is a variable's selection before the user picks: its saved current value, or the type's default. */
export function defaultValues(v: Variable): string[] {
  const c = v.current?.value;
  const saved = Array.isArray(c) ? c.filter((x) => typeof x === "string") : typeof c === "string" && c !== "" ? [c] : [];
  switch (v.type) {
    case "constant":
      return [variableQuery(v)];
    case "textbox":
      return [saved[0] ?? variableQuery(v)];
    case "interval": {
      if (saved[0] && saved[0] !== ALL) return [saved[0]];
      const first = customOptions(v)[0]?.value;
      return [v.auto || !first ? autoValue(v) : first];
    }
    default:
      return saved.length ? saved : [ALL];
  }
}

/** escapeString escapes backslashes and double quotes for a PromQL double-quoted string. */
export function escapeString(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
}

/**
 * interpolate substitutes $var, ${var}, ${var:format}, [[var]] and the built-ins
 * $__rate_interval, $__interval, $__range, $__range_s and $__auto_interval_<var>
 * in a PromQL expression. Query and custom variables become regexes (for =~);
 * an interval variable its interval ("auto" computed from the range); a
 * constant its value; a textbox its text, escaped for a PromQL string.
 */
export function interpolate(expr: string, ctx: InterpolateContext): string {
  const builtins: Record<string, string> = {
    __rate_interval: durationLiteral(Math.max(ctx.stepSeconds + 15, 60)),
    __interval: durationLiteral(ctx.stepSeconds),
    __range: durationLiteral(ctx.rangeSeconds),
    __range_s: String(Math.round(ctx.rangeSeconds)),
  };
  const auto = (v: Variable) => autoInterval(ctx.rangeSeconds, v.auto_count ?? 30, v.auto_min ?? "10s");
  for (const v of ctx.variables) if (v.type === "interval") builtins[`__auto_interval_${v.name}`] = auto(v);
  const byName = new Map(ctx.variables.map((v) => [v.name, v]));
  const sub = (name: string): string | undefined => {
    if (Object.hasOwn(builtins, name)) return builtins[name];
    const v = byName.get(name);
    if (!v) return undefined;
    const selected = (Object.hasOwn(ctx.values, name) ? ctx.values[name] : undefined) ?? defaultValues(v);
    switch (v.type) {
      case "constant":
        return variableQuery(v);
      case "textbox":
        return escapeString(selected[0] ?? "");
      case "interval": {
        const x = selected[0];
        return !x || x === ALL || x === "auto" || x === autoValue(v) ? auto(v) : x;
      }
      default:
        return formatVariable(v, selected);
    }
  };
  return expr.replace(/\$\{([a-zA-Z0-9_]+)(?::[a-z]+)?\}|\[\[([a-zA-Z0-9_]+)\]\]|\$([a-zA-Z_][a-zA-Z0-9_]*)/g, (m, a?: string, b?: string, c?: string) => {
    const name = a ?? b ?? c ?? "";
    return sub(name) ?? m;
  });
}
