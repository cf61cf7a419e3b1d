// A time-series chart (uPlot) with exemplar dots, hover tooltips with exact
// values, drag-to-zoom and a legend that toggles series.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h, replace } from "../lib/dom";
import { formatUnit } from "../lib/format";
import type { Labels } from "../lib/prom";
import { thin } from "../lib/thin";
import { formatTime } from "../lib/time";

/**
 * TIME_TICKS formats the time axis (uPlot's table: smallest tick step in
 * seconds, label, then the second line added when a tick starts a new year,
 * month, day, hour, minute or second). Unlike uPlot's default, a sub-minute
 * tick carries its own time and the date line stays short, so the first tick
 * of a narrow panel does not run into the next.
 */
const TIME_TICKS: (string | number | null)[][] = [
  [365 * 86400, "{YYYY}", null, null, null, null, null, null, 1],
  [28 * 86400, "{MMM}", "\n{YYYY}", null, null, null, null, null, 1],
  [86400, "{M}/{D}", "\n{YYYY}", null, null, null, null, null, 1],
  [3600, "{h}{aa}", "\n{M}/{D}/{YY}", null, "\n{M}/{D}", null, null, null, 1],
  [60, "{h}:{mm}{aa}", "\n{M}/{D}/{YY}", null, "\n{M}/{D}", null, null, null, 1],
  [1, "{h}:{mm}:{ss}", "\n{M}/{D}/{YY}", null, "\n{M}/{D}", null, null, null, 1],
  [0.001, "{h}:{mm}:{ss}.{fff}", "\n{M}/{D}/{YY}", null, "\n{M}/{D}", null, null, null, 1],
];

export interface Series {
  label: string;
  labels: Labels;
  points: [number, number | null][]; // [epoch seconds, value]
}

export interface ExemplarDot {
  time: number; // epoch seconds
  value: number;
  traceId: string;
  spanId: string;
  labels: Labels; // exemplar labels
  seriesLabels: Labels;
  found: boolean | undefined; // undefined: the backend cannot tell
}

export interface ChartOptions {
  unit?: string;
  decimals?: number;
  min?: number;
  fill?: boolean;
  onZoom?: (startMs: number, endMs: number) => void;
  onExemplar?: (ex: ExemplarDot) => void;
}

const COLORS = ["#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0", "#508642", "#cca300", "#447ebc", "#c15c17"];

export function seriesColor(i: number): string {
  return COLORS[i % COLORS.length]!;
}

/** align merges series onto one sorted x axis, filling gaps with null. */
export function align(series: Series[]): uPlot.AlignedData {
  const xs = new Set<number>();
  for (const s of series) for (const [t] of s.points) xs.add(t);
  const x = [...xs].sort((a, b) => a - b);
  const idx = new Map(x.map((t, i) => [t, i]));
  const ys = series.map((s) => {
    const y: (number | null)[] = new Array(x.length).fill(null);
    for (const [t, v] of s.points) y[idx.get(t)!] = v;
    return y;
  });
  return [x, ...ys] as uPlot.AlignedData;
}

export class TimeSeriesChart {
  readonly el: HTMLElement;
  private plotEl = h("div", { class: "ts-plot" });
  private legendEl = h("div", { class: "ts-legend" });
  private tooltip = h("div", { class: "ts-tooltip", role: "tooltip" });
  private exTip = h("div", { class: "ex-tooltip", role: "tooltip" });
  private dotLayer = h("div", { class: "ex-layer" });
  private plot: uPlot | null = null;
  private series: Series[] = [];
  private exemplars: ExemplarDot[] = [];
  private exMax = -Infinity;
  private exMin = Infinity;
  private range: [number, number] = [0, 1];
  private ro: ResizeObserver;
  private hidden = new Set<string>();

  constructor(private opts: ChartOptions) {
    this.el = h("div", { class: "ts" }, this.plotEl, this.legendEl);
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(this.plotEl);
  }

  /** setData replaces the series and exemplars; range is [startMs, endMs]. */
  setData(range: [number, number], series: Series[], exemplars: ExemplarDot[]): void {
    this.range = [range[0] / 1000, range[1] / 1000];
    this.series = series;
    this.exemplars = exemplars;
    this.exMax = exemplars.reduce((m, e) => Math.max(m, e.value), -Infinity);
    this.exMin = exemplars.reduce((m, e) => Math.min(m, e.value), Infinity);
    this.build();
    this.renderLegend();
  }

  /** setExemplars replaces only the dots (e.g. after the exemplar toggle). */
  setExemplars(exemplars: ExemplarDot[]): void {
    this.exemplars = exemplars;
    this.exMax = exemplars.reduce((m, e) => Math.max(m, e.value), -Infinity);
    this.exMin = exemplars.reduce((m, e) => Math.min(m, e.value), Infinity);
    if (this.plot) this.build();
  }

  /** redrawDots re-places the dots after their found flags changed. */
  redrawDots(): void {
    this.plot?.redraw(false, false);
  }

  private size(): { width: number; height: number } {
    const r = this.plotEl.getBoundingClientRect();
    return { width: Math.max(120, Math.floor(r.width)), height: Math.max(80, Math.floor(r.height)) };
  }

  private build(): void {
    this.plot?.destroy();
    const unit = this.opts.unit ?? "short";
    const fmt = (v: number | null) => formatUnit(v, unit, this.opts.decimals);
    const data = align(this.series);
    const self = this;
    const opts: uPlot.Options = {
      ...this.size(),
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: false }, points: { size: 6 } },
      select: { show: true, left: 0, top: 0, width: 0, height: 0 },
      scales: {
        x: { time: true, range: () => this.range },
        y: {
          range: (_u, min, max) => {
            let lo = min ?? 0;
            let hi = max ?? 1;
            // Exemplar dots must be inside the plot, whatever their value.
            if (Number.isFinite(self.exMax)) hi = Math.max(hi, self.exMax);
            if (Number.isFinite(self.exMin)) lo = Math.min(lo, self.exMin);
            if (self.opts.min !== undefined) lo = Math.min(self.opts.min, lo);
            if (!Number.isFinite(lo)) lo = 0;
            if (!Number.isFinite(hi) || hi <= lo) hi = lo + 1;
            return [lo, hi + (hi - lo) * 0.08];
          },
        },
      },
      axes: [
        { stroke: "#8e9aaf", grid: { stroke: "#2a3142", width: 1 }, ticks: { stroke: "#2a3142" }, space: 60, values: TIME_TICKS },
        { stroke: "#8e9aaf", grid: { stroke: "#2a3142", width: 1 }, ticks: { stroke: "#2a3142" }, size: (_u, vals) => Math.max(40, Math.max(0, ...(vals ?? []).map((v) => String(v).length)) * 7 + 16), values: (_u, vals) => vals.map((v) => (v === 0 ? "0" : fmt(v))) },
      ],
      series: [
        {},
        ...this.series.map((s, i) => ({
          label: s.label,
          stroke: seriesColor(i),
          width: 1.5,
          fill: this.opts.fill ? seriesColor(i) + "22" : undefined,
          spanGaps: false,
          show: !this.hidden.has(s.label),
          points: { show: false },
        })),
      ],
      hooks: {
        setCursor: [(u) => this.showTooltip(u, fmt)],
        setSelect: [
          (u) => {
            if (u.select.width < 5) return;
            const a = u.posToVal(u.select.left, "x");
            const b = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            this.opts.onZoom?.(Math.floor(a * 1000), Math.ceil(b * 1000));
          },
        ],
        draw: [(u) => this.placeDots(u, fmt)],
      },
    };
    this.plot = new uPlot(opts, data, this.plotEl);
    this.plot.over.appendChild(this.dotLayer);
    this.plot.over.appendChild(this.tooltip);
    this.plot.over.appendChild(this.exTip);
    this.plot.over.addEventListener("mouseleave", () => this.tooltip.classList.remove("show"));
  }

  private showTooltip(u: uPlot, fmt: (v: number | null) => string): void {
    const idx = u.cursor.idx;
    if (idx === null || idx === undefined || u.cursor.left === undefined || u.cursor.left < 0) {
      this.tooltip.classList.remove("show");
      return;
    }
    const t = u.data[0][idx]!;
    const rows: { label: string; v: number; color: string }[] = [];
    this.series.forEach((s, i) => {
      if (this.hidden.has(s.label)) return;
      const v = u.data[i + 1]?.[idx];
      if (v !== null && v !== undefined) rows.push({ label: s.label, v, color: seriesColor(i) });
    });
    rows.sort((a, b) => b.v - a.v);
    replace(
      this.tooltip,
      h("div", { class: "tt-time" }, formatTime(t * 1000)),
      rows.length === 0 ? h("div", { class: "muted" }, "no value") : null,
      ...rows.slice(0, 12).map((r) =>
        h("div", { class: "tt-row" }, h("span", { class: "swatch", style: { background: r.color } }), h("span", { class: "tt-label" }, r.label), h("span", { class: "tt-value" }, fmt(r.v))),
      ),
      rows.length > 12 ? h("div", { class: "muted" }, `+${rows.length - 12} more`) : null,
    );
    const left = u.cursor.left;
    const w = u.over.clientWidth;
    this.tooltip.style.left = left > w / 2 ? "" : `${left + 12}px`;
    this.tooltip.style.right = left > w / 2 ? `${w - left + 12}px` : "";
    this.tooltip.style.top = `${Math.max(0, (u.cursor.top ?? 0) - 10)}px`;
    this.tooltip.classList.add("show");
  }

  private placeDots(u: uPlot, fmt: (v: number | null) => string): void {
    const width = u.over.clientWidth;
    const height = u.over.clientHeight;
    const placed = [];
    for (const e of this.exemplars) {
      const x = u.valToPos(e.time, "x");
      const y = u.valToPos(e.value, "y");
      if (x < 0 || x > width || y < 0 || y > height) continue;
      placed.push({ x, value: e.value, item: { e, y } });
    }
    const kept = thin(placed, { columnPx: 6, perColumn: 1, width });
    const dots = kept.map(({ x, item: { e, y } }) => {
      const missing = e.found === false;
      const b = h("button", {
        class: `exemplar-dot${missing ? " missing" : ""}`,
        type: "button",
        "aria-label": `Exemplar ${fmt(e.value)} at ${formatTime(e.time * 1000)}, trace ${e.traceId}${missing ? " (trace never received)" : ""}`,
        dataset: { traceId: e.traceId, spanId: e.spanId, value: String(e.value) },
        style: { left: `${x}px`, top: `${y}px` },
        on: {
          click: (ev) => {
            ev.stopPropagation();
            this.opts.onExemplar?.(e);
          },
          mouseenter: () => this.showExemplar(e, x, y, fmt),
          focus: () => this.showExemplar(e, x, y, fmt),
          mouseleave: () => this.exTip.classList.remove("show"),
          blur: () => this.exTip.classList.remove("show"),
          mousedown: (ev) => ev.stopPropagation(),
        },
      });
      return b;
    });
    replace(this.dotLayer, ...dots);
    this.dotLayer.dataset.total = String(this.exemplars.length);
    this.dotLayer.dataset.shown = String(dots.length);
  }

  private showExemplar(e: ExemplarDot, x: number, y: number, fmt: (v: number | null) => string): void {
    const labels = Object.entries(e.labels).filter(([k]) => !["trace_id", "span_id", "traceID", "spanID", "traceId", "spanId"].includes(k));
    const series = Object.entries(e.seriesLabels).filter(([k]) => k !== "__name__" && k !== "le");
    replace(
      this.exTip,
      h("div", { class: "tt-time" }, e.found === false ? "Exemplar (trace never received)" : "Exemplar"),
      kv("Value", fmt(e.value)),
      kv("Time", formatTime(e.time * 1000, true)),
      kv("Trace ID", e.traceId || "–"),
      kv("Span ID", e.spanId || "–"),
      ...labels.map(([k, v]) => kv(k, v)),
      ...series.map(([k, v]) => kv(k, v)),
      h("div", { class: "muted" }, e.found === false ? "Lookout never received this trace; click for details." : "Click to open the trace beside the dashboard."),
    );
    const w = this.plot?.over.clientWidth ?? 0;
    this.exTip.style.left = x > w / 2 ? "" : `${x + 12}px`;
    this.exTip.style.right = x > w / 2 ? `${w - x + 12}px` : "";
    this.exTip.style.top = `${Math.max(0, y - 20)}px`;
    this.exTip.classList.add("show");
    this.tooltip.classList.remove("show");
  }

  private renderLegend(): void {
    replace(
      this.legendEl,
      ...this.series.map((s, i) =>
        h(
          "button",
          {
            type: "button",
            class: `legend-item${this.hidden.has(s.label) ? " off" : ""}`,
            title: s.label,
            on: {
              click: () => {
                if (this.hidden.has(s.label)) this.hidden.delete(s.label);
                else this.hidden.add(s.label);
                this.plot?.setSeries(i + 1, { show: !this.hidden.has(s.label) });
                this.renderLegend();
              },
            },
          },
          h("span", { class: "swatch", style: { background: seriesColor(i) } }),
          s.label || "{}",
        ),
      ),
    );
  }

  resize(): void {
    if (!this.plot) return;
    const s = this.size();
    if (s.width !== this.plot.width || s.height !== this.plot.height) this.plot.setSize(s);
  }

  destroy(): void {
    this.ro.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }
}

function kv(k: string, v: string): HTMLElement {
  return h("div", { class: "tt-row" }, h("span", { class: "tt-label" }, k), h("span", { class: "tt-value mono" }, v));
}
