// /services: request rate, error ratio and latency per service and
// operation over the selected range, from whatever each service sends
// (lib/services.ts picks the source and says which), with a filter and
// sortable columns. A clicked row (or service name) shows its latency
// quantiles with exemplar dots, which open their trace beside the page, its
// request and error rates, and its error ratio. The selection and the filter
// live in the URL (service, op, q).

import { fetchExemplars, fetchSeries, markFound } from "../components/data";
import { TimeSeriesChart } from "../components/timeseries";
import { compareWindow } from "../lib/analyze";
import { h, replace } from "../lib/dom";
import { query, type VectorSample } from "../lib/prom";
import {
  cells,
  chartQueries,
  chartWindow,
  DEFAULT_SORT,
  emptyHelp,
  filterRows,
  mergeSources,
  NUMERIC_KEYS,
  parseTable,
  rowId,
  scaleExemplars,
  selectRow,
  selectService,
  serviceSources,
  sortRows,
  sourceById,
  SOURCES,
  tableQuery,
  tableWindow,
  type Selection,
  type ServiceRow,
  type Sort,
  type SortKey,
} from "../lib/services";
import { formatTime, stepFor, type ResolvedRange } from "../lib/time";
import { state } from "../state";
import type { AppContext, View } from "./view";

const COLUMNS: { key: SortKey; title: string; num?: boolean }[] = [
  { key: "service", title: "Service" },
  { key: "source", title: "Source" },
  { key: "operation", title: "Operation" },
  { key: "rate", title: "Rate", num: true },
  { key: "errors", title: "Errors", num: true },
  { key: "p50", title: "p50", num: true },
  { key: "p95", title: "p95", num: true },
  { key: "p99", title: "p99", num: true },
];

/** ChartPanel is one titled chart of the detail section. */
interface ChartPanel {
  el: HTMLElement;
  chart: TimeSeriesChart;
  status: HTMLElement;
}

export class ServicesView implements View {
  readonly el = h("div", { class: "services-page" });
  private filter = h("input", { type: "search", class: "svc-filter", placeholder: "Filter by service, operation or source", "aria-label": "Filter services and operations" });
  private summary = h("div", { class: "svc-summary muted" });
  private errors = h("div", { class: "svc-errors" });
  private tableBox = h("div", { class: "svc-table-box" });
  private detail = h("section", { class: "svc-detail", hidden: true, "aria-live": "polite" });
  private rows: ServiceRow[] = [];
  private loaded = false;
  private sort: Sort = DEFAULT_SORT;
  private abort: AbortController | null = null;
  private chartAbort: AbortController | null = null;
  private latency: ChartPanel;
  private requests: ChartPanel;
  private ratio: ChartPanel;
  /** The selection the charts show, and the p95 query a "Why?" asks about. */
  private shown: { sel: Selection; p95: string } | null = null;
  /** The URL's service and op the charts were last drawn for. */
  private drawnFor = "";
  /** Back and forward move between selections; the shell only rebuilds the page for a new path. */
  private onPop = () => {
    if (location.pathname !== "/services") return;
    this.filter.value = new URLSearchParams(location.search).get("q") ?? "";
    this.renderTable();
    if (selectionKey() !== this.drawnFor) void this.loadCharts(state.resolved());
  };

  constructor(private ctx: AppContext) {
    document.title = "Services · Lookout";
    const onZoom = (a: number, b: number) => state.setRange({ from: String(a), to: String(b) });
    this.latency = panel("Latency", "latency", {
      unit: "s",
      min: 0,
      onZoom,
      onExemplar: (ex) => this.ctx.openTrace(ex.traceId, ex.spanId),
      onWhy: (start, end) => this.shown && this.ctx.openWhy({ query: this.shown.p95, start, end }),
      onCompare: (ex) => this.shown && this.ctx.openWhy({ query: this.shown.p95, ...compareWindow(ex.time, Date.now()) }),
    });
    this.requests = panel("Requests and errors / s", "requests", { unit: "reqps", min: 0, onZoom });
    this.ratio = panel("Error ratio", "error-ratio", { unit: "percentunit", min: 0, onZoom });
    this.filter.value = new URLSearchParams(location.search).get("q") ?? "";
    this.filter.addEventListener("input", () => {
      state.setParams({ q: this.filter.value || null }, false);
      this.renderTable();
    });
    replace(
      this.el,
      h("h1", null, "Services"),
      h(
        "p",
        { class: "muted svc-intro" },
        "Request rate, error ratio and latency per service (the job label, from service.name) and operation, averaged over the selected range (at least 5 minutes), from whatever each service sends: HTTP metrics of the stable or the older conventions, RPC metrics, or else span metrics. Click a row or a service for its charts.",
      ),
      h("div", { class: "svc-toolbar" }, this.filter, this.summary),
      this.errors,
      this.tableBox,
      this.detail,
    );
    replace(this.tableBox, h("p", { class: "muted" }, "Loading…"));
    window.addEventListener("popstate", this.onPop);
    this.refresh();
  }

  refresh(): void {
    this.abort?.abort();
    this.abort = new AbortController();
    void this.load(this.abort.signal);
  }

  private async load(signal: AbortSignal): Promise<void> {
    const range = state.resolved();
    const win = tableWindow(range.end - range.start);
    this.el.classList.add("loading");
    const answers = await Promise.allSettled(SOURCES.map((src) => query(tableQuery(src, win), range.end, signal)));
    if (signal.aborted) return;
    this.el.classList.remove("loading");
    const all: ServiceRow[] = [];
    const failed: string[] = [];
    answers.forEach((a, i) => {
      const src = SOURCES[i]!;
      if (a.status === "rejected") {
        failed.push(`${src.label}: ${(a.reason as Error).message}`);
        return;
      }
      const result = a.value.result;
      if (Array.isArray(result) && (result.length === 0 || typeof result[0] === "object")) all.push(...parseTable(src, result as VectorSample[]));
    });
    this.rows = mergeSources(all);
    this.loaded = true;
    replace(this.errors, ...failed.map((f) => h("div", { class: "error-box", role: "alert" }, `Cannot read ${f}`)));
    this.el.dataset.rows = String(this.rows.length);
    this.renderTable();
    await this.loadCharts(range);
  }

  /** selection reads the URL's service and op against the current rows. */
  private selection(): Selection | null | undefined {
    const p = new URLSearchParams(location.search);
    const service = p.get("service");
    if (service === null) return undefined;
    const op = p.get("op");
    if (op === null) return selectService(this.rows, service);
    const r = this.rows.find((x) => x.service === service && rowId(x) === op);
    return r ? selectRow(r) : null;
  }

  private select(service: string, op: string | null): void {
    state.setParams({ service, op }, true);
    this.renderTable();
    void this.loadCharts(state.resolved()).then(() => this.detail.scrollIntoView({ block: "nearest" }));
  }

  private unselect(): void {
    state.setParams({ service: null, op: null }, true);
    this.drawnFor = selectionKey();
    this.chartAbort?.abort();
    this.shown = null;
    this.detail.hidden = true;
    this.renderTable();
  }

  private renderTable(): void {
    if (!this.loaded) return;
    const p = new URLSearchParams(location.search);
    const selService = p.get("service");
    const selOp = p.get("op");
    const sources = serviceSources(this.rows);
    const services = [...sources.keys()];
    replace(
      this.summary,
      this.rows.length ? `${services.length} service${services.length === 1 ? "" : "s"}, ${this.rows.length} operation${this.rows.length === 1 ? "" : "s"}` : "",
    );
    if (this.rows.length === 0) {
      replace(this.tableBox, emptyState(state.resolved()));
      return;
    }
    const shown = sortRows(filterRows(this.rows, this.filter.value), this.sort);
    const head = h(
      "tr",
      null,
      ...COLUMNS.map((c) => {
        const active = this.sort.key === c.key;
        return h(
          "th",
          { class: c.num ? "num" : "", "aria-sort": active ? (this.sort.desc ? "descending" : "ascending") : "none", dataset: { key: c.key } },
          h(
            "button",
            {
              type: "button",
              class: "sort-btn",
              on: {
                click: () => {
                  this.sort = active ? { key: c.key, desc: !this.sort.desc } : { key: c.key, desc: NUMERIC_KEYS.includes(c.key) };
                  this.renderTable();
                },
              },
            },
            c.title,
            active ? (this.sort.desc ? " ▼" : " ▲") : "",
          ),
        );
      }),
    );
    const body = shown.map((r) => {
      const c = cells(r);
      const id = rowId(r);
      const selected = selService === r.service && (selOp === id || selOp === null);
      const open = () => this.select(r.service, id);
      return h(
        "tr",
        {
          class: `svc-row${selected ? (selOp === null ? " service-selected" : " selected") : ""}`,
          tabindex: "0",
          "aria-selected": String(selected && selOp !== null),
          dataset: { service: r.service, source: r.source, operation: r.operation, method: r.method },
          on: {
            click: open,
            keydown: (e) => {
              if (e.key === "Enter" || e.key === " ") {
                e.preventDefault();
                open();
              }
            },
          },
        },
        h(
          "td",
          { class: "svc-service" },
          h(
            "button",
            {
              type: "button",
              class: "linkish svc-name",
              title: "All operations of this service",
              on: {
                click: (e) => {
                  e.stopPropagation();
                  this.select(r.service, null);
                },
              },
            },
            c.service,
          ),
        ),
        h("td", null, h("span", { class: `chip src-tag src-${r.source}`, title: sourceById(r.source).count[0]! }, c.source)),
        h("td", { class: "svc-op" }, c.method ? h("span", { class: "svc-method" }, c.method) : null, h("span", { class: "mono svc-op-name" }, c.operation), c.kind ? h("span", { class: "chip" }, c.kind) : null),
        numCell("rate", r.rate, c.rate),
        numCell("errors", r.errorRatio, c.errors, r.errorRatio !== null && r.errorRatio >= 0.01 ? "err" : ""),
        numCell("p50", r.p50, c.p50),
        numCell("p95", r.p95, c.p95),
        numCell("p99", r.p99, c.p99),
      );
    });
    replace(
      this.tableBox,
      h("table", { class: "data svc-table" }, h("thead", null, head), h("tbody", null, ...body)),
      shown.length === 0 ? h("p", { class: "muted svc-no-match" }, "No service or operation matches “", this.filter.value, "”.") : null,
    );
  }

  /** loadCharts draws the selection's charts, or hides them when nothing is selected. */
  private async loadCharts(range: ResolvedRange): Promise<void> {
    this.chartAbort?.abort();
    this.drawnFor = selectionKey();
    const sel = this.selection();
    if (sel === undefined) {
      this.shown = null;
      this.detail.hidden = true;
      return;
    }
    const p = new URLSearchParams(location.search);
    this.detail.hidden = false;
    const close = h("button", { type: "button", class: "icon-btn svc-close", title: "Close the charts", "aria-label": "Close the charts", on: { click: () => this.unselect() } }, "×");
    if (sel === null) {
      this.shown = null;
      replace(
        this.detail,
        h("div", { class: "svc-detail-head" }, h("h2", null, p.get("service") ?? ""), close),
        h("p", { class: "muted" }, "No requests of this ", p.get("op") === null ? "service" : "operation", " in the selected range."),
      );
      return;
    }
    const src = sourceById(sel.source);
    replace(
      this.detail,
      h(
        "div",
        { class: "svc-detail-head" },
        h("h2", { class: "svc-detail-title" }, h("span", null, sel.service), h("span", { class: "muted" }, " · "), h("span", { class: "mono" }, sel.title), " ", h("span", { class: `chip src-tag src-${sel.source}` }, src.label)),
        close,
      ),
      h("div", { class: "svc-charts" }, this.latency.el, this.requests.el, this.ratio.el),
    );
    this.chartAbort = new AbortController();
    const signal = this.chartAbort.signal;
    const step = stepFor(range, 300, 1);
    const q = chartQueries(sel, chartWindow(step));
    this.shown = { sel, p95: q.p95 };
    const panels: [ChartPanel, typeof q.latency][] = [
      [this.latency, q.latency],
      [this.requests, q.requests],
      [this.ratio, q.errorRatio],
    ];
    for (const [pn] of panels) pn.el.classList.add("loading");
    const [dots, ...series] = await Promise.all([
      fetchExemplars([q.exemplars], range, signal).catch(() => []),
      ...panels.map(([, targets]) => fetchSeries(targets, range, step, signal).catch((e: Error) => e)),
    ]);
    if (signal.aborted) return;
    const scaled = scaleExemplars(src, dots);
    panels.forEach(([pn], i) => {
      pn.el.classList.remove("loading");
      const s = series[i]!;
      if (s instanceof Error) {
        pn.status.textContent = s.message;
        pn.status.classList.add("error");
        pn.chart.setData([range.start, range.end], [], []);
        return;
      }
      pn.status.classList.remove("error");
      pn.status.textContent = s.length ? "" : "No data";
      pn.chart.setData([range.start, range.end], s, pn === this.latency ? scaled : []);
    });
    this.latency.el.dataset.exemplars = String(scaled.length);
    void markFound(scaled, signal).then((ok) => ok && this.latency.chart.redrawDots());
  }

  destroy(): void {
    window.removeEventListener("popstate", this.onPop);
    this.abort?.abort();
    this.chartAbort?.abort();
    for (const p of [this.latency, this.requests, this.ratio]) p.chart.destroy();
  }
}

/** selectionKey is the URL's selection (service and op) as one string. */
function selectionKey(): string {
  const p = new URLSearchParams(location.search);
  return JSON.stringify([p.get("service"), p.get("op")]);
}

function panel(title: string, id: string, opts: ConstructorParameters<typeof TimeSeriesChart>[0]): ChartPanel {
  const chart = new TimeSeriesChart(opts);
  const status = h("div", { class: "panel-status" });
  const el = h(
    "section",
    { class: `panel svc-panel svc-panel-${id}`, dataset: { panelTitle: title } },
    h("div", { class: "panel-head" }, h("h3", { class: "panel-title" }, title)),
    h("div", { class: "panel-body" }, chart.el),
    status,
  );
  return { el, chart, status };
}

function numCell(stat: string, v: number | null, text: string, cls = ""): HTMLElement {
  return h("td", { class: `num ${cls}`.trim(), dataset: { stat, value: v === null ? "" : String(v) } }, text);
}

/** emptyState says which metrics the page looks for. */
function emptyState(range: ResolvedRange): HTMLElement {
  return h(
    "div",
    { class: "svc-empty" },
    h("p", null, `No request metrics between ${formatTime(range.start)} and ${formatTime(range.end)}. The Services page reads, per service (the job label, from the resource's service.name), the first of these that a service sends:`),
    h(
      "table",
      { class: "data svc-help" },
      h("thead", null, h("tr", null, h("th", null, "Source"), h("th", null, "Metrics"), h("th", null, "Operation labels"), h("th", null, "Errors"))),
      h("tbody", null, ...emptyHelp().map((x) => h("tr", null, h("td", null, x.label), h("td", { class: "mono" }, x.metrics), h("td", { class: "mono" }, x.operation), h("td", { class: "mono" }, x.errors)))),
    ),
    h(
      "p",
      { class: "muted" },
      "Names as Lookout's default OTLP translation writes them; the suffixed names of Prometheus's default strategy (_seconds, _milliseconds, _total) are read too. Millisecond histograms are shown in seconds. Span metrics are those the OpenTelemetry Collector's spanmetrics connector writes; a service's server and consumer spans are shown when it has any. Send OTLP metrics (or traces) to Lookout's OTLP receiver and widen the time range.",
    ),
  );
}
