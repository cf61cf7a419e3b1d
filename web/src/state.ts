// Global UI state kept in the URL: time range (from, to), auto refresh, and
// the trace open in the split view (trace, span).

import { isRelative, parseDuration, resolveRange, type ResolvedRange, type TimeRange } from "./lib/time";

type Listener = () => void;

export const DEFAULT_RANGE: TimeRange = { from: "now-30m", to: "now" };

class State {
  private rangeListeners = new Set<Listener>();
  private timer: number | undefined;

  get range(): TimeRange {
    const p = new URLSearchParams(location.search);
    return { from: p.get("from") || DEFAULT_RANGE.from, to: p.get("to") || DEFAULT_RANGE.to };
  }

  /** resolved returns the current range in epoch ms, falling back to the default on a bad URL. */
  resolved(): ResolvedRange {
    try {
      return resolveRange(this.range, Date.now());
    } catch {
      return resolveRange(DEFAULT_RANGE, Date.now());
    }
  }

  get refresh(): string {
    return new URLSearchParams(location.search).get("refresh") ?? "";
  }

  setRange(r: TimeRange): void {
    this.setParams({ from: r.from, to: r.to }, true);
    this.emit();
  }

  setRefresh(every: string): void {
    this.setParams({ refresh: every || null }, false);
    this.schedule();
  }

  /** setParams updates query parameters (null deletes) with pushState or replaceState. */
  setParams(params: Record<string, string | null>, push: boolean): void {
    const u = new URL(location.href);
    for (const [k, v] of Object.entries(params)) {
      if (v === null || v === "") u.searchParams.delete(k);
      else u.searchParams.set(k, v);
    }
    if (u.href === location.href) return;
    if (push) history.pushState(null, "", u);
    else history.replaceState(null, "", u);
    window.dispatchEvent(new Event("lookout:params"));
  }

  onRange(fn: Listener): () => void {
    this.rangeListeners.add(fn);
    return () => this.rangeListeners.delete(fn);
  }

  emit(): void {
    for (const fn of [...this.rangeListeners]) fn();
  }

  /** schedule (re)starts the auto-refresh timer; it only ticks for relative ranges. */
  schedule(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    let ms = 0;
    try {
      ms = this.refresh ? parseDuration(this.refresh) : 0;
    } catch {
      ms = 0;
    }
    if (ms >= 1000) {
      this.timer = window.setInterval(() => {
        if (isRelative(this.range) && document.visibilityState !== "hidden") this.emit();
      }, ms);
    }
  }
}

export const state = new State();

/** navigate moves to a client route, keeping the time range and refresh. */
export function navigate(path: string, extra: Record<string, string> = {}): void {
  const u = new URL(path, location.origin);
  const cur = new URLSearchParams(location.search);
  for (const k of ["from", "to", "refresh"]) {
    const v = cur.get(k);
    if (v && !u.searchParams.has(k)) u.searchParams.set(k, v);
  }
  for (const [k, v] of Object.entries(extra)) u.searchParams.set(k, v);
  history.pushState(null, "", u);
  window.dispatchEvent(new Event("lookout:navigate"));
}
