// /d/<uid>: a Grafana-model dashboard: variables, a 24-column grid of
// timeseries, stat, table, bar gauge, heatmap, text and alertlist panels
// (others get a placeholder naming their type; at most MAX_PANELS are drawn);
// exemplar dots open traces beside it, and a shift-dragged region or a dot's
// "Compare with normal" asks the "Why?" panel about the panel's first query.

import { AlertList } from "../components/alertlist";
import { BarGaugePanel } from "../components/bargauge";
import { fetchExemplars, fetchSeries, markFound } from "../components/data";
import { HeatmapChart } from "../components/heatmap";
import { TablePanel } from "../components/table";
import { TimeSeriesChart } from "../components/timeseries";
import { compareWindow } from "../lib/analyze";
import { ALL, autoValue, customOptions, defaultValues, flattenPanels, interpolate, MAX_PANELS, parseLabelValues, variableQuery, type Dashboard, type Panel, type Target, type Variable } from "../lib/dashboard";
import { h, replace } from "../lib/dom";
import { formatUnit } from "../lib/format";
import { getJSON } from "../lib/http";
import { barGauge, heatmapGrid, samplesOf, tableFromVectors } from "../lib/panels";
import { labelValues, query, queryRange, type VectorSample } from "../lib/prom";
import { quantileName, quantileOf } from "../lib/quantile";
import { stepFor, type ResolvedRange } from "../lib/time";
import { state } from "../state";
import type { AppContext, View } from "./view";

interface PanelRuntime {
  panel: Panel;
  el: HTMLElement;
  refresh(range: ResolvedRange): Promise<void>;
  destroy(): void;
}

export class DashboardView implements View {
  readonly el = h("div", { class: "dashboard" });
  private dash: Dashboard | null = null;
  private panels: PanelRuntime[] = [];
  // No prototype: variable names are the dashboard author's (e.g. "__proto__").
  private values: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  private varBar = h("div", { class: "var-bar" });
  private firstRender = true;

  constructor(
    private uid: string,
    private ctx: AppContext,
  ) {
    replace(this.el, h("p", { class: "muted" }, "Loading dashboard…"));
    void this.load();
  }

  private async load(): Promise<void> {
    try {
      const body = await getJSON<{ dashboard: Dashboard }>(`/api/dashboards/uid/${encodeURIComponent(this.uid)}`);
      this.dash = body.dashboard;
    } catch (e) {
      replace(this.el, h("div", { class: "error-box", role: "alert" }, `Cannot load dashboard "${this.uid}": ${(e as Error).message}`), h("p", null, h("a", { href: "/" }, "All dashboards")));
      return;
    }
    const d = this.dash;
    document.title = `${d.title} · Lookout`;
    const p = new URLSearchParams(location.search);
    if (!p.has("from") && d.time) state.setParams({ from: d.time.from, to: d.time.to }, false);
    if (!p.has("refresh") && d.refresh) {
      state.setParams({ refresh: d.refresh }, false);
      state.schedule();
    }
    for (const v of this.variables()) {
      const sel = p.getAll(`var-${v.name}`);
      this.values[v.name] = sel.length ? sel : defaultValues(v);
    }
    const grid = h("div", { class: "grid" });
    const all = flattenPanels(d);
    this.panels = all.slice(0, MAX_PANELS).map((panel) => this.makePanel(panel));
    for (const pr of this.panels) grid.appendChild(pr.el);
    const hidden = all.length - this.panels.length;
    replace(
      this.el,
      h("div", { class: "dash-head" }, h("h1", { class: "dash-title" }, String(d.title)), d.description ? h("p", { class: "muted dash-desc" }, String(d.description)) : null),
      this.varBar,
      hidden > 0 ? h("div", { class: "notice", role: "status" }, `${hidden} more panels not shown: Lookout draws the first ${MAX_PANELS} panels of a dashboard.`) : null,
      grid,
    );
    void this.loadVariables();
    this.refresh();
  }

  /** variables are the dashboard's variables that take values (a datasource variable does not). */
  private variables(): Variable[] {
    return (this.dash?.templating?.list ?? []).filter((v) => ["query", "custom", "interval", "textbox", "constant"].includes(v.type));
  }

  /** select makes a variable's selection current, in the URL too, and re-queries. */
  private select(v: Variable, values: string[]): void {
    this.values[v.name] = values;
    const u = new URL(location.href);
    u.searchParams.delete(`var-${v.name}`);
    for (const x of values) u.searchParams.append(`var-${v.name}`, x);
    history.replaceState(null, "", u);
    this.refresh();
  }

  private async loadVariables(): Promise<void> {
    const range = state.resolved();
    const shown = this.variables().filter((v) => v.type !== "constant" && v.hide !== 2);
    const controls = await Promise.all(shown.map((v) => this.control(v, range)));
    replace(this.varBar, ...controls);
  }

  /** control is a variable's input: a select of its options, or a text box. */
  private async control(v: Variable, range: ResolvedRange): Promise<HTMLElement> {
    const label = String(v.label || v.name);
    const selected = this.values[v.name] ?? defaultValues(v);
    if (v.type === "textbox") {
      const input = h("input", { type: "text", "aria-label": label, name: `var-${v.name}`, value: selected[0] ?? "" });
      input.addEventListener("change", () => this.select(v, [input.value]));
      return h("label", { class: "var" }, h("span", null, label), input);
    }
    let opts: { text: string; value: string }[] = [];
    let err = "";
    if (v.type === "custom") opts = customOptions(v);
    else if (v.type === "interval") opts = [...(v.auto ? [{ text: "auto", value: autoValue(v) }] : []), ...customOptions(v)];
    else {
      const lv = parseLabelValues(variableQuery(v));
      try {
        opts = (lv ? ((await labelValues(lv.label, lv.match ? [lv.match] : [], range.start, range.end)) ?? []) : []).map((o) => ({ text: o, value: o }));
      } catch (e) {
        err = (e as Error).message;
      }
    }
    const select = h(
      "select",
      { "aria-label": label, name: `var-${v.name}`, on: { change: () => this.select(v, [select.value || ALL]) } },
      v.includeAll ? h("option", { value: ALL, selected: selected.includes(ALL) }, "All") : null,
      // A multi-value selection from the URL (var-x=a&var-x=b) stays in effect and is shown as one entry.
      selected.length > 1 ? h("option", { value: selected.join("|"), selected: true, disabled: true }, selected.join(" + ")) : null,
      ...opts.map((o) => h("option", { value: o.value, selected: selected.length === 1 && selected[0] === o.value }, o.text)),
    );
    return h("label", { class: "var" }, h("span", null, label), select, err ? h("span", { class: "inline-error" }, err) : null);
  }

  refresh(): void {
    const range = state.resolved();
    const started = performance.now();
    const jobs = this.panels.map((p) => p.refresh(range).catch(() => undefined));
    void Promise.all(jobs).then(() => {
      if (this.firstRender) {
        this.firstRender = false;
        this.el.dataset.firstRenderMs = String(Math.round(performance.now()));
        this.el.dataset.firstRefreshMs = String(Math.round(performance.now() - started));
      }
      this.el.dataset.rendered = String(Number(this.el.dataset.rendered ?? 0) + 1);
    });
  }

  destroy(): void {
    for (const p of this.panels) p.destroy();
  }

  private interp(expr: string, range: ResolvedRange, step: number): string {
    return interpolate(expr, { values: this.values, variables: this.dash?.templating?.list ?? [], stepSeconds: step, rangeSeconds: (range.end - range.start) / 1000 });
  }

  /**
   * instant runs each target as an instant query at the range's end (what
   * stat, table and bar gauge panels show): much cheaper for the server than
   * a range query.
   */
  private instant(targets: Target[], range: ResolvedRange, signal: AbortSignal) {
    const step = stepFor(range, 100, 1);
    return Promise.all(targets.map(async (t) => (await query(this.interp(t.expr!, range, step), range.end, signal)).result));
  }

  private makePanel(panel: Panel): PanelRuntime {
    const gp = panel.gridPos ?? { x: 0, y: 0, w: 12, h: 8 };
    const el = h("section", {
      class: `panel panel-${panel.type}`,
      dataset: { panelTitle: String(panel.title ?? ""), panelType: String(panel.type) },
      style: { gridColumn: `${gp.x + 1} / span ${gp.w}`, gridRow: `${gp.y + 1} / span ${Math.max(gp.h, 1)}` },
    });
    if (panel.type === "row") {
      el.appendChild(h("h2", { class: "row-title" }, String(panel.title ?? "")));
      return { panel, el, refresh: async () => {}, destroy: () => {} };
    }
    const status = h("div", { class: "panel-status" });
    const header = h("header", { class: "panel-head" }, h("h3", { class: "panel-title", title: String(panel.description ?? "") }, String(panel.title ?? "")));
    const body = h("div", { class: "panel-body" });
    el.append(header, body, status);
    const unit = panel.fieldConfig?.defaults?.unit;
    const decimals = panel.fieldConfig?.defaults?.decimals;
    const targets = (panel.targets ?? []).filter((t) => t.expr && !t.hide);
    let abort: AbortController | null = null;
    const begin = () => {
      abort?.abort();
      abort = new AbortController();
      el.classList.add("loading");
      return abort.signal;
    };
    const fail = (e: unknown) => {
      if ((e as Error).name === "AbortError") return;
      el.classList.remove("loading");
      status.className = "panel-status error";
      status.textContent = (e as Error).message;
    };
    const done = (msg = "") => {
      el.classList.remove("loading");
      status.className = "panel-status";
      status.textContent = msg;
    };

    if (panel.type === "timeseries" || panel.type === "graph") {
      const wantEx = targets.some((t) => t.exemplar);
      const exToggle = h("input", { type: "checkbox", checked: wantEx, class: "ex-toggle" });
      const explore = h("a", { class: "panel-explore", title: "Open this panel's first query in Explore", href: "/explore" }, "Explore");
      // The link is filled in when about to be followed, with the variables then selected.
      const fillExplore = () => {
        const r = state.resolved();
        const t = targets[0];
        if (t?.expr) explore.setAttribute("href", `/explore?${new URLSearchParams({ expr: this.interp(t.expr, r, stepFor(r, 300, 5)) })}`);
      };
      explore.addEventListener("mousedown", fillExplore);
      explore.addEventListener("focus", fillExplore);
      // On a histogram_quantile panel the dots default to the quantile's
      // tail: a P95 panel shows P95-or-worse requests, the rest on demand.
      const q = targets[0]?.expr ? quantileOf(targets[0].expr) : null;
      const tailToggle = q === null ? null : h("input", { type: "checkbox", checked: true, class: "ex-tail-toggle" });
      header.appendChild(
        h(
          "span",
          { class: "panel-tools" },
          explore,
          h("label", { class: "toggle", title: "Show exemplars as dots" }, exToggle, " Exemplars"),
          tailToggle && q !== null ? h("label", { class: "toggle", title: `Show only exemplars at or above the ${quantileName(q)}'s bucket at their time` }, tailToggle, ` ${quantileName(q)}+ only`) : null,
        ),
      );
      let lastRange: ResolvedRange | null = null;
      let lastStep = 15;
      // "Why?" asks about the first query as the panel last ran it: variables
      // and $__interval-style built-ins substituted for that range and step.
      const first = targets[0]?.expr;
      const whyQuery = () => (first && lastRange ? this.interp(first, lastRange, lastStep) : null);
      const why = (start: number, end: number) => {
        const query = whyQuery();
        if (query) this.ctx.openWhy({ query, start, end });
      };
      const chart = new TimeSeriesChart({
        unit,
        decimals,
        min: panel.fieldConfig?.defaults?.min,
        fill: (panel.fieldConfig?.defaults?.custom?.fillOpacity ?? 0) > 0,
        onZoom: (a, b) => state.setRange({ from: String(a), to: String(b) }),
        onExemplar: (ex) => this.ctx.openTrace(ex.traceId, ex.spanId),
        onWhy: first ? why : undefined,
        onCompare: first
          ? (ex) => {
              const w = compareWindow(ex.time, Date.now());
              why(w.start, w.end);
            }
          : undefined,
      });
      body.appendChild(chart.el);
      if (tailToggle) {
        chart.setTailOnly(true);
        tailToggle.addEventListener("change", () => chart.setTailOnly(tailToggle.checked));
      }
      const loadExemplars = async (range: ResolvedRange, step: number, signal: AbortSignal) => {
        if (!exToggle.checked) return [];
        const exprs = targets.filter((t) => t.exemplar || !wantEx).map((t) => this.interp(t.expr!, range, step));
        return fetchExemplars(exprs, range, signal);
      };
      exToggle.addEventListener("change", () => {
        if (!lastRange) return;
        const range = lastRange;
        const signal = begin();
        loadExemplars(range, lastStep, signal)
          .then((ex) => {
            chart.setExemplars(ex);
            el.dataset.exemplars = String(ex.length);
            done();
            void markFound(ex, signal).then((ok) => ok && chart.redrawDots());
          })
          .catch(fail);
      });
      return {
        panel,
        el,
        refresh: async (range) => {
          const signal = begin();
          const width = Math.max(200, body.clientWidth || 600);
          const step = stepFor(range, Math.min(width, 1200) / 4, 5);
          lastRange = range;
          lastStep = step;
          try {
            const [series, ex] = await Promise.all([
              fetchSeries(targets.map((t) => ({ expr: this.interp(t.expr!, range, step), legendFormat: t.legendFormat })), range, step, signal),
              loadExemplars(range, step, signal),
            ]);
            chart.setData([range.start, range.end], series, ex);
            el.dataset.exemplars = String(ex.length);
            done(series.length === 0 ? "No data" : "");
            void markFound(ex, signal).then((ok) => ok && chart.redrawDots());
          } catch (e) {
            fail(e);
          }
        },
        destroy: () => {
          abort?.abort();
          chart.destroy();
        },
      };
    }

    if (panel.type === "stat") {
      const value = h("div", { class: "stat-value" });
      body.appendChild(value);
      return {
        panel,
        el,
        refresh: async (range) => {
          const signal = begin();
          // A stat shows the value at the end of the range (the first render waits for it).
          try {
            const [res] = await this.instant(targets.slice(0, 1), range, signal);
            const v = res ? instantValue(res) : null;
            value.textContent = v === null ? "No data" : formatUnit(v, unit ?? "short", decimals);
            value.style.color = v === null ? "" : thresholdColor(panel, v);
            done();
          } catch (e) {
            fail(e);
          }
        },
        destroy: () => abort?.abort(),
      };
    }

    if (panel.type === "alertlist") {
      const list = new AlertList({ onOpenTrace: (id) => this.ctx.openTrace(id), max: Number((panel.options as { maxItems?: number } | undefined)?.maxItems ?? 20) });
      body.appendChild(list.el);
      return {
        panel,
        el,
        refresh: async () => {
          const signal = begin();
          await list.load(signal);
          done();
        },
        destroy: () => abort?.abort(),
      };
    }

    if (panel.type === "text") {
      const content = (panel.options as { content?: string } | undefined)?.content ?? "";
      body.appendChild(h("pre", { class: "text-panel" }, content));
      return { panel, el, refresh: async () => {}, destroy: () => {} };
    }

    const fmt = (v: number) => formatUnit(v, unit ?? "short", decimals);

    if (panel.type === "table") {
      const table = new TablePanel(fmt);
      body.appendChild(table.el);
      return {
        panel,
        el,
        refresh: async (range) => {
          const signal = begin();
          // A table shows each target's instant answer at the end of the range.
          try {
            const answers = await this.instant(targets, range, signal);
            const results = answers.map((result, i) => ({ refId: targets[i]!.refId ?? String.fromCharCode(65 + i), result }));
            const data = tableFromVectors(results);
            table.setData(data);
            el.dataset.rows = String(data.rows.length);
            done(data.rows.length === 0 ? "No data" : "");
          } catch (e) {
            fail(e);
          }
        },
        destroy: () => abort?.abort(),
      };
    }

    if (panel.type === "bargauge") {
      const bars = new BarGaugePanel(fmt, (v) => thresholdColor(panel, v));
      body.appendChild(bars.el);
      return {
        panel,
        el,
        refresh: async (range) => {
          const signal = begin();
          try {
            const answers = await this.instant(targets, range, signal);
            const sources = answers.map((result, i) => ({ samples: samplesOf(result), legendFormat: targets[i]!.legendFormat }));
            const d = panel.fieldConfig?.defaults;
            const data = barGauge(sources, { min: d?.min, max: d?.max });
            bars.setData(data);
            el.dataset.bars = String(data.length);
            done(data.length === 0 ? "No data" : "");
          } catch (e) {
            fail(e);
          }
        },
        destroy: () => abort?.abort(),
      };
    }

    if (panel.type === "heatmap") {
      const yUnit = (panel.options as { yAxis?: { unit?: string } } | undefined)?.yAxis?.unit ?? unit;
      const chart = new HeatmapChart((le) => (le === "+Inf" ? "+Inf" : formatUnit(Number(le), yUnit ?? "short")), (v) => formatUnit(v, "short"));
      body.appendChild(chart.el);
      return {
        panel,
        el,
        refresh: async (range) => {
          const signal = begin();
          const width = Math.max(200, body.clientWidth || 600);
          const step = stepFor(range, Math.min(width, 1200) / 8, 5);
          try {
            const answers = await Promise.all(targets.map((t) => queryRange(this.interp(t.expr!, range, step), range.start, range.end, step, signal)));
            const grid = heatmapGrid(answers.flatMap((a) => a.result));
            chart.setData(grid);
            done(grid.buckets.length === 0 ? "No histogram buckets (series with an le label)" : "");
          } catch (e) {
            fail(e);
          }
        },
        destroy: () => {
          abort?.abort();
          chart.destroy();
        },
      };
    }

    el.classList.add("panel-unsupported");
    body.appendChild(h("p", { class: "muted unsupported" }, `Panel type '${String(panel.type)}' is not supported by Lookout`));
    return { panel, el, refresh: async () => {}, destroy: () => {} };
  }
}

/** instantValue reads the first sample of an instant query (vector or scalar). */
export function instantValue(result: VectorSample[] | [number, string]): number | null {
  const raw = Array.isArray(result) && result.length === 2 && typeof result[0] === "number" ? (result as [number, string])[1] : (result as VectorSample[])[0]?.value[1];
  if (raw === undefined) return null;
  const n = Number(raw);
  return Number.isFinite(n) ? n : null;
}

function thresholdColor(panel: Panel, v: number): string {
  const steps = panel.fieldConfig?.defaults?.thresholds?.steps ?? [];
  let color = "";
  for (const s of Array.isArray(steps) ? steps : []) if (s.value === null || v >= s.value) color = String(s.color);
  const named: Record<string, string> = { green: "#73bf69", orange: "#ff9830", red: "#f2495c", yellow: "#fade2a", blue: "#5794f2" };
  // Only a named colour or a plain colour literal reaches the style.
  return Object.hasOwn(named, color) ? named[color]! : /^(#[0-9a-fA-F]{3,8}|rgba?\([0-9., ]+\)|[a-zA-Z]+)$/.test(color) ? color : "";
}
