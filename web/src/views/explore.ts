// /explore: a query box with the exemplar toggle; graph and table; errors
// inline. PromQL goes to Prometheus; a TraceQL metrics query (isTraceQLMetrics)
// goes to the Tempo API, whose exemplars are dots too. For PromQL a
// shift-dragged region or a dot's "Compare with normal" asks the "Why?" panel
// about the query the graph shows; the analysis takes PromQL only, so a
// TraceQL chart does not offer them.

import { fetchExemplars, fetchSeries, markFound, parseValue } from "../components/data";
import { TimeSeriesChart } from "../components/timeseries";
import { compareWindow } from "../lib/analyze";
import { durationLiteral } from "../lib/dashboard";
import { h, replace } from "../lib/dom";
import { exampleQuery } from "../lib/examples";
import { labelValues, query, seriesName, type VectorSample } from "../lib/prom";
import { quantileName, quantileOf } from "../lib/quantile";
import { formatTime, stepFor, type ResolvedRange } from "../lib/time";
import { isTraceQLMetrics, queryInstant as traceqlInstant, queryRange as traceqlRange } from "../lib/traceqlmetrics";
import { state } from "../state";
import type { AppContext, View } from "./view";

/** At most this many exemplars are asked of a TraceQL metrics query; 0 when the toggle is off. */
const TRACEQL_EXEMPLARS = 100;

export class ExploreView implements View {
  readonly el = h("div", { class: "explore" });
  private input = h("textarea", { class: "promql mono", rows: 3, spellcheck: "false", "aria-label": "PromQL or TraceQL metrics query", placeholder: "histogram_quantile(0.95, sum by (le) (rate(webstore_payment_duration_bucket[5m])))\nor TraceQL metrics: { status = error } | rate() by (resource.service.name)" });
  private exToggle = h("input", { type: "checkbox", checked: true, class: "ex-toggle" });
  /** Shown for a histogram_quantile query: only the dots at or above the quantile's bucket. */
  private tailToggle = h("input", { type: "checkbox", checked: true, class: "ex-tail-toggle" });
  private tailLabel = h("label", { class: "toggle", hidden: true }, this.tailToggle, h("span", { class: "tail-name" }));
  private error = h("div", { class: "inline-error query-error", role: "alert" });
  private table = h("div", { class: "result-table" });
  private tableTitle = h("h2", { class: "table-title" }, "Table (instant, at the end of the range)");
  private chart: TimeSeriesChart;
  private abort: AbortController | null = null;
  /** The expression the graph shows, as sent to Prometheus. */
  private shown = "";

  constructor(private ctx: AppContext) {
    document.title = "Explore · Lookout";
    this.chart = new TimeSeriesChart({
      onZoom: (a, b) => state.setRange({ from: String(a), to: String(b) }),
      onExemplar: (ex) => this.ctx.openTrace(ex.traceId, ex.spanId),
      onWhy: (start, end) => {
        if (this.shown) this.ctx.openWhy({ query: this.shown, start, end });
      },
      onCompare: (ex) => {
        if (this.shown) this.ctx.openWhy({ query: this.shown, ...compareWindow(ex.time, Date.now()) });
      },
    });
    const p = new URLSearchParams(location.search);
    this.input.value = p.get("expr") ?? "";
    if (p.get("exemplars") === "false") this.exToggle.checked = false;
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey || !e.shiftKey)) {
        e.preventDefault();
        this.run(true);
      }
    });
    this.exToggle.addEventListener("change", () => this.run(false));
    this.tailToggle.addEventListener("change", () => this.chart.setTailOnly(this.tailToggle.checked));
    replace(
      this.el,
      h("h1", null, "Explore"),
      h(
        "form",
        { class: "query-row", on: { submit: (e) => (e.preventDefault(), this.run(true)) } },
        this.input,
        h("div", { class: "query-actions" }, h("button", { type: "submit", class: "btn primary run-query" }, "Run query"), h("label", { class: "toggle" }, this.exToggle, " Exemplars"), this.tailLabel, h("span", { class: "muted small" }, "Enter runs, Shift+Enter adds a line")),
      ),
      this.error,
      h("section", { class: "panel explore-graph" }, h("div", { class: "panel-body" }, this.chart.el)),
      this.tableTitle,
      this.table,
    );
    if (this.input.value.trim()) this.run(false);
    else void this.openExample();
  }

  /** openExample fills an empty Explore with a query over what Lookout holds, and runs it. */
  private async openExample(): Promise<void> {
    const range = state.resolved();
    try {
      const names = (await labelValues("__name__", [], range.start, range.end)) ?? [];
      const q = exampleQuery(names);
      if (!q || this.input.value.trim()) return; // nothing to show, or the user typed meanwhile
      this.input.value = q;
      this.run(false);
    } catch {
      // no example: the placeholder still shows one
    }
  }

  private run(push: boolean): void {
    const expr = this.input.value.trim();
    state.setParams({ expr: expr || null, exemplars: this.exToggle.checked ? null : "false" }, push);
    if (!expr) {
      this.error.textContent = "Type a PromQL expression, e.g. rate(http_server_request_duration_count[5m]), or a TraceQL metrics query, e.g. { } | rate() by (resource.service.name)";
      return;
    }
    void this.query(expr);
  }

  refresh(): void {
    const expr = this.input.value.trim();
    if (expr) void this.query(expr);
  }

  private async query(expr: string): Promise<void> {
    this.abort?.abort();
    this.abort = new AbortController();
    const signal = this.abort.signal;
    const range = state.resolved();
    const step = stepFor(range, 500, 1);
    const e2 = expr.replaceAll("$__rate_interval", durationLiteral(Math.max(step + 15, 60))).replaceAll("$__interval", durationLiteral(step));
    this.error.textContent = "";
    this.el.classList.add("loading");
    try {
      if (isTraceQLMetrics(expr)) {
        await this.queryTraceQL(expr, range, step, signal);
        return;
      }
      this.el.dataset.source = "prometheus";
      this.chart.setAnalysis(true);
      this.tableTitle.textContent = "Table (instant, at the end of the range)";
      const [series, ex, inst] = await Promise.all([
        fetchSeries([{ expr: e2 }], range, step, signal),
        this.exToggle.checked ? fetchExemplars([e2], range, signal) : Promise.resolve([]),
        query(e2, range.end, signal),
      ]);
      const q = quantileOf(e2);
      this.tailLabel.hidden = q === null;
      if (q !== null) {
        this.tailLabel.title = `Show only exemplars at or above the ${quantileName(q)}'s bucket at their time`;
        this.tailLabel.querySelector(".tail-name")!.textContent = ` ${quantileName(q)}+ only`;
      }
      this.chart.setTailOnly(q !== null && this.tailToggle.checked);
      this.chart.setData([range.start, range.end], series, ex);
      this.shown = e2;
      this.el.dataset.exemplars = String(ex.length);
      void markFound(ex, signal).then((ok) => ok && this.chart.redrawDots());
      this.renderTable(inst.result, range.end);
    } catch (e) {
      if ((e as Error).name === "AbortError") return;
      this.error.textContent = (e as Error).message;
      this.chart.setData([range.start, range.end], [], []);
      this.shown = "";
      replace(this.table);
    } finally {
      this.el.classList.remove("loading");
    }
  }

  /**
   * queryTraceQL charts a TraceQL metrics query from the Tempo API at the same
   * step as PromQL, with its exemplars as dots, and fills the table with the
   * instant query: one value per series over the whole range.
   */
  private async queryTraceQL(q: string, range: ResolvedRange, step: number, signal: AbortSignal): Promise<void> {
    this.el.dataset.source = "tempo";
    const want = this.exToggle.checked ? TRACEQL_EXEMPLARS : 0;
    const [res, rows] = await Promise.all([traceqlRange(q, range.start, range.end, step, want, signal), traceqlInstant(q, range.start, range.end, signal)]);
    const ex = want > 0 ? res.exemplars : [];
    this.tailLabel.hidden = true;
    this.chart.setTailOnly(false);
    this.chart.setAnalysis(false);
    this.chart.setData([range.start, range.end], res.series, ex);
    this.shown = "";
    this.el.dataset.exemplars = String(ex.length);
    void markFound(ex, signal).then((ok) => ok && this.chart.redrawDots());
    this.tableTitle.textContent = "Table (instant, over the whole range)";
    this.renderRows(
      rows.map((r) => [r.label, String(r.value ?? "NaN")]),
      `No series from ${formatTime(range.start)} to ${formatTime(range.end)}.`,
    );
  }

  private renderTable(result: VectorSample[] | [number, string], at: number): void {
    if (!Array.isArray(result) || (result.length === 2 && typeof result[0] === "number")) {
      const sc = result as [number, string];
      replace(this.table, h("p", null, `scalar ${sc[1]} at ${formatTime(sc[0] * 1000)}`));
      return;
    }
    const rows = result as VectorSample[];
    this.renderRows(
      rows.map((r) => [seriesName(r.metric), String(parseValue(r.value[1]) ?? r.value[1])]),
      `No series at ${formatTime(at)}.`,
    );
  }

  /** renderRows shows [series, value] rows, the first 1000 of them, or `empty` when there are none. */
  private renderRows(rows: [string, string][], empty: string): void {
    if (rows.length === 0) {
      replace(this.table, h("p", { class: "muted" }, empty));
      return;
    }
    replace(
      this.table,
      h(
        "table",
        { class: "data" },
        h("thead", null, h("tr", null, h("th", null, "Series"), h("th", null, "Value"))),
        h("tbody", null, ...rows.slice(0, 1000).map(([name, value]) => h("tr", null, h("td", { class: "mono" }, name), h("td", { class: "mono num" }, value)))),
      ),
      rows.length > 1000 ? h("p", { class: "muted" }, `showing 1000 of ${rows.length} series`) : null,
    );
  }

  destroy(): void {
    this.abort?.abort();
    this.chart.destroy();
  }
}
