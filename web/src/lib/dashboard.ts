// The Grafana dashboard JSON model (the subset Lookout renders) and template
// variable interpolation for Prometheus queries.

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
}

export interface Panel {
  id?: number;
  type: string;
  title?: string;
  description?: string;
  gridPos?: GridPos;
  targets?: Target[];
  fieldConfig?: { defaults?: { unit?: string; decimals?: number; min?: number; max?: number; custom?: { stacking?: { mode?: string }; fillOpacity?: number } } };
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

/** flattenPanels lists a dashboard's panels in layout order, expanding rows (collapsed or not). */
export function flattenPanels(d: Dashboard): Panel[] {
  const out: Panel[] = [];
  for (const p of d.panels ?? []) {
    if (p.type === "row") {
      out.push(p);
      for (const c of p.panels ?? []) out.push(c);
    } else out.push(p);
  }
  return out.sort((a, b) => (a.gridPos?.y ?? 0) - (b.gridPos?.y ?? 0) || (a.gridPos?.x ?? 0) - (b.gridPos?.x ?? 0));
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

/**
 * interpolate substitutes $var, ${var}, ${var:regex}, [[var]] and the built-ins
 * $__rate_interval, $__interval, $__range in a PromQL expression.
 */
export function interpolate(expr: string, ctx: InterpolateContext): string {
  const builtins: Record<string, string> = {
    __rate_interval: durationLiteral(Math.max(ctx.stepSeconds + 15, 60)),
    __interval: durationLiteral(ctx.stepSeconds),
    __range: durationLiteral(ctx.rangeSeconds),
    __range_s: String(Math.round(ctx.rangeSeconds)),
  };
  const byName = new Map(ctx.variables.map((v) => [v.name, v]));
  const sub = (name: string): string | undefined => {
    if (name in builtins) return builtins[name];
    const v = byName.get(name);
    if (!v) return undefined;
    return formatVariable(v, ctx.values[name] ?? [ALL]);
  };
  return expr.replace(/\$\{([a-zA-Z0-9_]+)(?::[a-z]+)?\}|\[\[([a-zA-Z0-9_]+)\]\]|\$([a-zA-Z_][a-zA-Z0-9_]*)/g, (m, a?: string, b?: string, c?: string) => {
    const name = a ?? b ?? c ?? "";
    return sub(name) ?? m;
  });
}
