// The heatmap panel: a time × bucket grid of a Prometheus histogram drawn on a
// canvas, darker to brighter orange as a bucket's count grows, bucket bounds
// on the left, times below; hovering a cell shows its bucket, time and count.

import { h, replace } from "../lib/dom";
import type { HeatmapGrid } from "../lib/panels";
import { formatTime } from "../lib/time";

const LEFT = 64; // px for the bucket labels
const BOTTOM = 18; // px for the time labels

/** cellColor shades a count from dark (few) to bright orange (the most), on a square-root scale as Grafana's default. */
export function cellColor(count: number, max: number): string {
  const f = max > 0 ? Math.sqrt(Math.min(1, count / max)) : 0;
  const mix = (a: number, b: number) => Math.round(a + (b - a) * f);
  return `rgb(${mix(60, 255)}, ${mix(30, 152)}, ${mix(20, 48)})`;
}

export class HeatmapChart {
  readonly el: HTMLElement;
  private canvas = h("canvas", { class: "heatmap-canvas" });
  private tip = h("div", { class: "ts-tooltip heatmap-tip", role: "tooltip" });
  private grid: HeatmapGrid | null = null;
  private ro: ResizeObserver;

  constructor(private formatBound: (le: string) => string, private formatCount: (v: number) => string) {
    this.el = h("div", { class: "heatmap" }, this.canvas, this.tip);
    this.ro = new ResizeObserver(() => this.draw());
    this.ro.observe(this.el);
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => this.tip.classList.remove("show"));
  }

  setData(grid: HeatmapGrid): void {
    this.grid = grid;
    this.el.dataset.buckets = String(grid.buckets.length);
    this.el.dataset.cells = String(grid.counts.reduce((n, row) => n + row.filter((c) => c !== null && c > 0).length, 0));
    this.draw();
  }

  private area(): { w: number; h: number; cw: number; ch: number } {
    const w = Math.max(120, Math.floor(this.el.clientWidth));
    const hgt = Math.max(60, Math.floor(this.el.clientHeight));
    const g = this.grid;
    const cols = Math.max(1, g?.times.length ?? 1);
    const rows = Math.max(1, g?.buckets.length ?? 1);
    return { w, h: hgt, cw: (w - LEFT) / cols, ch: (hgt - BOTTOM) / rows };
  }

  private draw(): void {
    const g = this.grid;
    if (!g) return;
    const { w, h: hgt, cw, ch } = this.area();
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(hgt * dpr);
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${hgt}px`;
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, hgt);
    const plotH = hgt - BOTTOM;
    g.counts.forEach((row, b) => {
      const y = plotH - (b + 1) * ch;
      row.forEach((c, t) => {
        if (c === null || c <= 0) return;
        ctx.fillStyle = cellColor(c, g.max);
        ctx.fillRect(LEFT + t * cw, y, Math.max(1, cw - (cw > 4 ? 1 : 0)), Math.max(1, ch - (ch > 4 ? 1 : 0)));
      });
    });
    // Labels are drawn as canvas text: never markup.
    ctx.fillStyle = "#8e9aaf";
    ctx.font = "11px sans-serif";
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    const every = Math.max(1, Math.ceil(14 / ch));
    g.buckets.forEach((le, b) => {
      if (b % every === 0) ctx.fillText(this.formatBound(le), LEFT - 4, plotH - (b + 0.5) * ch);
    });
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const step = Math.max(1, Math.ceil(90 / cw));
    for (let t = 0; t < g.times.length; t += step) ctx.fillText(formatTime(g.times[t]! * 1000).slice(-8), LEFT + (t + 0.5) * cw, plotH + 3);
  }

  private hover(e: MouseEvent): void {
    const g = this.grid;
    if (!g || g.times.length === 0) return;
    const r = this.canvas.getBoundingClientRect();
    const { h: hgt, cw, ch } = this.area();
    const x = e.clientX - r.left;
    const y = e.clientY - r.top;
    const t = Math.floor((x - LEFT) / cw);
    const b = Math.floor((hgt - BOTTOM - y) / ch);
    const c = g.counts[b]?.[t];
    if (t < 0 || c === undefined) {
      this.tip.classList.remove("show");
      return;
    }
    const lower = b > 0 ? this.formatBound(g.buckets[b - 1]!) : "0";
    replace(
      this.tip,
      h("div", { class: "tt-time" }, formatTime(g.times[t]! * 1000)),
      h("div", null, `${lower} – ${this.formatBound(g.buckets[b]!)}`),
      h("div", null, c === null ? "no sample" : `count ${this.formatCount(c)}`),
    );
    this.tip.style.left = `${Math.min(x + 12, r.width - 170)}px`;
    this.tip.style.top = `${Math.max(0, y - 10)}px`;
    this.tip.classList.add("show");
  }

  destroy(): void {
    this.ro.disconnect();
  }
}
