// A time-series chart (uPlot) with exemplar dots, hover tooltips with exact
// values, drag-to-zoom, shift-drag to select a region and ask "Why?" about
// it, and a legend that toggles series. Clicking a dot opens its trace (the
// caller's onExemplar) and pins the dot's popup, which then offers "Compare
// with normal" (onCompare).

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h, replace } from "../lib/dom";
import { formatUnit } from "../lib/format";
import { seriesColor } from "../lib/palette";
import { isExemplarIdLabel, type Labels } from "../lib/prom";
import { inQuantileTail } from "../lib/quantile";
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
  target?: number; // index of the panel query it came from
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
  /**
   * onWhy receives the region a shift-drag selected, when its "Why?" action
   * is clicked. Without it a shift-drag zooms like a plain drag.
   */
  onWhy?: (startMs: number, endMs: number) => void;
  /** onCompare is offered as "Compare with normal" in a clicked dot's popup. */
  onCompare?: (ex: ExemplarDot) => void;
}

const NO_SELECT = { left: 0, top: 0, width: 0, height: 0 };

function sameDot(a: ExemplarDot | null, b: ExemplarDot): boolean {
  return a !== null && a.traceId === b.traceId && a.spanId === b.spanId && a.time === b.time && a.value === b.value;
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
  private whyBtn = h("button", { type: "button", class: "btn small primary ts-why", title: "Compare the traces behind this region with normal traffic", hidden: true }, "Why?");
  /** The region the "Why?" action asks about, in epoch ms. */
  private region: [number, number] | null = null;
  /** Whether the drag in progress started with Shift held (a region, not a zoom). */
  private regionDrag = false;
  /** The dot whose popup stays open after a click, with its actions. */
  private pinned: ExemplarDot | null = null;
  private plot: uPlot | null = null;
  private series: Series[] = [];
  /** The exemplars given, and those shown (all, or the quantile's tail). */
  private allExemplars: ExemplarDot[] = [];
  private exemplars: ExemplarDot[] = [];
  private tailOnly = false;
  private tailTarget = 0;
  /** Whether onWhy and onCompare are offered (setAnalysis). */
  private analysis = true;
  private exMax = -Infinity;
  private exMin = Infinity;
  private range: [number, number] = [0, 1];
  private ro: ResizeObserver;
  private hidden = new Set<string>();

  constructor(private opts: ChartOptions) {
    this.el = h("div", { class: "ts" }, this.plotEl, this.legendEl);
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(this.plotEl);
    this.whyBtn.addEventListener("mousedown", (ev) => ev.stopPropagation());
    this.whyBtn.addEventListener("click", (ev) => {
      ev.stopPropagation();
      const r = this.region;
      this.clearRegion();
      if (r) this.opts.onWhy?.(r[0], r[1]);
    });
    // The pinned popup holds buttons: pressing them must not start a drag.
    this.exTip.addEventListener("mousedown", (ev) => ev.stopPropagation());
  }

  /** setData replaces the series and exemplars; range is [startMs, endMs]. */
  setData(range: [number, number], series: Series[], exemplars: ExemplarDot[]): void {
    this.range = [range[0] / 1000, range[1] / 1000];
    this.series = series;
    this.allExemplars = exemplars;
    this.applyExemplars();
    this.build();
    this.renderLegend();
  }

  /** setExemplars replaces only the dots (e.g. after the exemplar toggle). */
  setExemplars(exemplars: ExemplarDot[]): void {
    this.allExemplars = exemplars;
    this.applyExemplars();
    if (this.plot) this.build();
  }

  /**
   * setTailOnly shows only the exemplars at or above their step's quantile
   * bucket (inQuantileTail), judged against the series of panel query
   * `target` (a histogram_quantile); off shows them all.
   */
  setTailOnly(on: boolean, target = 0): void {
    this.tailOnly = on;
    this.tailTarget = target;
    this.applyExemplars();
    if (this.plot) this.build();
  }

  /**
   * setAnalysis offers or withdraws "Why?" and "Compare with normal" (when
   * their callbacks were given): a chart whose query the analysis cannot
   * take withdraws them, and a shift-drag then zooms like a plain drag.
   */
  setAnalysis(on: boolean): void {
    this.analysis = on;
    if (!on) {
      this.clearRegion();
      this.unpin();
    }
  }

  private applyExemplars(): void {
    const all = this.allExemplars;
    const quantiles = this.series.filter((s) => s.target === undefined || s.target === this.tailTarget);
    const ex = this.tailOnly ? all.filter((e) => inQuantileTail(e, quantiles)) : all;
    this.exemplars = ex;
    this.exMax = ex.reduce((m, e) => Math.max(m, e.value), -Infinity);
    this.exMin = ex.reduce((m, e) => Math.min(m, e.value), Infinity);
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
            const a = Math.floor(u.posToVal(u.select.left, "x") * 1000);
            const b = Math.ceil(u.posToVal(u.select.left + u.select.width, "x") * 1000);
            if (this.regionDrag) {
              // The selection stays drawn, with its action above it.
              this.region = [a, b];
              this.placeRegion(u);
              return;
            }
            u.setSelect(NO_SELECT, false);
            this.opts.onZoom?.(a, b);
          },
        ],
        draw: [
          (u) => {
            this.placeDots(u, fmt);
            this.placeRegion(u);
          },
        ],
      },
    };
    this.plot = new uPlot(opts, data, this.plotEl);
    this.plot.over.appendChild(this.dotLayer);
    this.plot.over.appendChild(this.tooltip);
    this.plot.over.appendChild(this.exTip);
    this.plot.over.appendChild(this.whyBtn);
    this.plot.over.addEventListener("mouseleave", () => this.tooltip.classList.remove("show"));
    // Dots, the popup and the Why? button stop their own mousedowns, so this
    // sees presses on the plot only: a new drag drops the old region and the pin.
    this.plot.over.addEventListener("mousedown", (ev) => {
      this.regionDrag = ev.shiftKey && this.opts.onWhy !== undefined && this.analysis;
      this.clearRegion();
      this.unpin();
    });
  }

  /**
   * placeRegion draws the shift-drag region and its Why? action where the
   * region's times now lie: an auto refresh rebuilds the chart and a resize
   * rescales it, and the region must survive both. A region scrolled out of
   * the time range is dropped.
   */
  private placeRegion(u: uPlot): void {
    const r = this.region;
    if (!r) return;
    const w = u.over.clientWidth;
    const left = Math.max(0, u.valToPos(r[0] / 1000, "x"));
    const right = Math.min(w, u.valToPos(r[1] / 1000, "x"));
    if (!(right - left >= 1)) {
      this.clearRegion(u);
      return;
    }
    u.setSelect({ left, width: right - left, top: 0, height: u.over.clientHeight }, false);
    this.whyBtn.dataset.start = String(r[0]);
    this.whyBtn.dataset.end = String(r[1]);
    this.whyBtn.setAttribute("aria-label", `Why? Analyze ${formatTime(r[0])} to ${formatTime(r[1])}`);
    this.whyBtn.style.left = `${(left + right) / 2}px`;
    this.whyBtn.hidden = false;
    this.el.classList.add("has-region");
  }

  /** clearRegion removes a shift-drag selection and its action. */
  private clearRegion(u: uPlot | null = this.plot): void {
    if (this.region === null) return;
    this.region = null;
    this.whyBtn.hidden = true;
    this.el.classList.remove("has-region");
    u?.setSelect(NO_SELECT, false);
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
        dataset: { traceId: e.traceId, spanId: e.spanId, value: String(e.value), time: String(e.time) },
        style: { left: `${x}px`, top: `${y}px` },
        on: {
          click: (ev) => {
            ev.stopPropagation();
            this.opts.onExemplar?.(e);
            if (this.opts.onCompare && this.analysis) {
              this.pinned = e;
              this.showExemplar(e, x, y, fmt);
            }
          },
          mouseenter: () => this.showExemplar(e, x, y, fmt),
          focus: () => this.showExemplar(e, x, y, fmt),
          mouseleave: () => this.hideExemplar(e),
          blur: () => this.hideExemplar(e),
          mousedown: (ev) => ev.stopPropagation(),
        },
      });
      return b;
    });
    replace(this.dotLayer, ...dots);
    this.dotLayer.dataset.total = String(this.allExemplars.length);
    this.dotLayer.dataset.belowQuantile = String(this.allExemplars.length - this.exemplars.length);
    this.dotLayer.dataset.shown = String(dots.length);
    // A redraw (resize, new data) moves the dots: the pinned popup follows its
    // dot, or closes when the dot is gone.
    if (this.pinned) {
      const p = kept.find(({ item }) => sameDot(this.pinned, item.e));
      if (p) this.showExemplar(p.item.e, p.x, p.item.y, fmt);
      else this.unpin();
    }
  }

  private hideExemplar(e: ExemplarDot): void {
    if (!sameDot(this.pinned, e)) this.exTip.classList.remove("show", "pinned");
  }

  /** unpin closes a clicked dot's popup. */
  private unpin(): void {
    if (!this.pinned) return;
    this.pinned = null;
    this.exTip.classList.remove("show", "pinned");
  }

  private showExemplar(e: ExemplarDot, x: number, y: number, fmt: (v: number | null) => string): void {
    // Hovering another dot replaces a pinned popup.
    if (this.pinned && !sameDot(this.pinned, e)) this.pinned = null;
    const pinned = this.pinned !== null;
    const labels = Object.entries(e.labels).filter(([k]) => !isExemplarIdLabel(k));
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
      pinned
        ? h(
            "div",
            { class: "ex-actions" },
            h("button", { type: "button", class: "btn small primary ex-compare", title: "Compare the traces from 2 minutes before to 1 minute after this exemplar with normal traffic", on: { click: (ev) => (ev.stopPropagation(), this.unpin(), this.opts.onCompare?.(e)) } }, "Compare with normal"),
            h("button", { type: "button", class: "btn small ex-close", on: { click: (ev) => (ev.stopPropagation(), this.unpin()) } }, "Close"),
          )
        : h("div", { class: "muted" }, e.found === false ? "Lookout never received this trace; click for details." : "Click to open the trace beside the dashboard."),
    );
    const w = this.plot?.over.clientWidth ?? 0;
    this.exTip.style.left = x > w / 2 ? "" : `${x + 12}px`;
    this.exTip.style.right = x > w / 2 ? `${w - x + 12}px` : "";
    this.exTip.style.top = `${Math.max(0, y - 20)}px`;
    this.exTip.classList.add("show");
    this.exTip.classList.toggle("pinned", pinned);
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
