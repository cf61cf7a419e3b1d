// Time ranges: Grafana-style relative expressions (now, now-15m, now-1h/h),
// absolute times (ISO 8601, epoch milliseconds or seconds) and durations
// (250ms, 1.5s, 5m, 1h30m).

export interface TimeRange {
  from: string; // raw expression, as in the URL: "now-1h", "1700000000000", "2026-11-24T20:00:00Z"
  to: string;
}

export interface ResolvedRange {
  start: number; // epoch ms
  end: number; // epoch ms
}

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  y: 31_536_000_000,
};

/** parseDuration parses "250ms", "1.5s", "5m", "1h30m" into milliseconds; throws on bad input. */
export function parseDuration(s: string): number {
  const str = s.trim();
  if (str === "") throw new Error("empty duration");
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while (pos < str.length && (m = re.exec(str)) !== null) {
    total += Number(m[1]) * (UNIT_MS[m[2]!] ?? NaN);
    pos = re.lastIndex;
  }
  if (pos !== str.length || !Number.isFinite(total)) throw new Error(`bad duration "${s}": use e.g. 250ms, 1.5s, 5m, 1h30m`);
  return total;
}

const ROUND_UNITS: Record<string, (d: Date) => void> = {
  m: (d) => d.setSeconds(0, 0),
  h: (d) => d.setMinutes(0, 0, 0),
  d: (d) => d.setHours(0, 0, 0, 0),
};

/**
 * parseTime turns a time expression into epoch ms. `now` is the reference
 * time. Accepts now, now-5m, now+1h, now-1d/d (rounded down), epoch ms
 * (13 digits), epoch seconds (10 digits, with optional fraction) and ISO 8601.
 */
export function parseTime(expr: string, now: number): number {
  const s = expr.trim();
  if (s === "") throw new Error("empty time");
  if (s.startsWith("now")) {
    let rest = s.slice(3);
    let round: string | undefined;
    const slash = rest.indexOf("/");
    if (slash >= 0) {
      round = rest.slice(slash + 1);
      rest = rest.slice(0, slash);
      if (!ROUND_UNITS[round]) throw new Error(`bad rounding "/${round}" in "${expr}": use /m, /h or /d`);
    }
    let t = now;
    if (rest !== "") {
      const sign = rest[0];
      if (sign !== "-" && sign !== "+") throw new Error(`bad time "${expr}": use now-15m, now-1h, now+5m`);
      const d = parseDuration(rest.slice(1));
      t = sign === "-" ? now - d : now + d;
    }
    if (round) {
      const d = new Date(t);
      ROUND_UNITS[round]!(d);
      t = d.getTime();
    }
    return t;
  }
  if (/^\d{13}$/.test(s)) return Number(s);
  if (/^\d{9,10}(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  if (/^\d{4}-\d{2}-\d{2}/.test(s)) {
    const t = Date.parse(s.includes("T") || s.length <= 10 ? s : s.replace(" ", "T"));
    if (!Number.isNaN(t)) return t;
  }
  throw new Error(`bad time "${expr}": use now-1h, an ISO time like 2026-11-24T14:23:00Z, or epoch milliseconds`);
}

/** resolveRange resolves both ends; throws when from is not before to. */
export function resolveRange(r: TimeRange, now: number): ResolvedRange {
  const start = parseTime(r.from, now);
  const end = parseTime(r.to, now);
  if (!(start < end)) throw new Error(`time range is empty: "${r.from}" is not before "${r.to}"`);
  return { start, end };
}

/** isRelative reports whether a range moves with the clock (auto refresh applies). */
export function isRelative(r: TimeRange): boolean {
  return r.from.trim().startsWith("now") || r.to.trim().startsWith("now");
}

/**
 * stepFor picks a query_range step in seconds so that about `points` points
 * span the range, rounded up to a "nice" value and never below `minStep`.
 */
export function stepFor(range: ResolvedRange, points: number, minStep = 1): number {
  const raw = (range.end - range.start) / 1000 / Math.max(points, 1);
  const nice = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
  for (const n of nice) if (n >= raw && n >= minStep) return n;
  return Math.max(Math.ceil(raw), minStep);
}

/** formatWholeMs formats a duration given in whole milliseconds (Tempo's search results), where 0 means under 1 ms. */
export function formatWholeMs(ms: number): string {
  return ms === 0 ? "<1ms" : formatDurationMs(ms);
}

/** formatDurationMs renders a duration for humans: 820µs, 12.3ms, 7.60s, 2m05s. */
export function formatDurationMs(ms: number): string {
  if (!Number.isFinite(ms)) return "–";
  if (ms === 0) return "0";
  const a = Math.abs(ms);
  if (a < 1) return `${(ms * 1000).toFixed(a < 0.01 ? 2 : 0)}µs`;
  if (a < 10) return `${ms.toFixed(2)}ms`;
  if (a < 1000) return `${ms.toFixed(1)}ms`;
  if (a < 60_000) return `${(ms / 1000).toFixed(2)}s`;
  const m = Math.floor(a / 60_000);
  const s = Math.round((a % 60_000) / 1000);
  return `${ms < 0 ? "-" : ""}${m}m${String(s).padStart(2, "0")}s`;
}

/** formatTime renders epoch ms as local "YYYY-MM-DD HH:MM:SS.mmm". */
export function formatTime(ms: number, withMs = false): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const base = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  return withMs ? `${base}.${p(d.getMilliseconds(), 3)}` : base;
}

/** toInputValue renders epoch ms for an <input type="datetime-local">. */
export function toInputValue(ms: number): string {
  return formatTime(ms).replace(" ", "T");
}

/** describeRange names a range for the picker button. */
export function describeRange(r: TimeRange): string {
  const m = /^now-(\S+)$/.exec(r.from.trim());
  if (m && r.to.trim() === "now") return `Last ${m[1]}`;
  const now = Date.now();
  try {
    const rr = resolveRange(r, now);
    return `${formatTime(rr.start)} to ${formatTime(rr.end)}`;
  } catch {
    return `${r.from} to ${r.to}`;
  }
}

/**
 * framingFrom is the relative start that frames data which began at
 * firstMs: "now-Nm" covering it plus a minute, when it began less than
 * maxMs ago (a fresh demo); null otherwise, leaving the default range.
 */
export function framingFrom(firstMs: number, nowMs: number, maxMs = 30 * 60_000): string | null {
  const age = nowMs - firstMs;
  if (!(age >= 0) || age >= maxMs - 60_000) return null;
  return `now-${Math.max(2, Math.ceil(age / 60_000) + 1)}m`;
}
