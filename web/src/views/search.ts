// /search: trace search by service, span name, duration bounds, time range or
// free TraceQL; results as a duration scatter and a list; a click opens the trace.

import { h, replace } from "../lib/dom";
import { slowest } from "../lib/slowest";
import { buildTraceQL, search, tagValues, type SearchHit } from "../lib/tempo";
import { formatDurationMs, formatTime, formatWholeMs, parseDuration } from "../lib/time";
import { state } from "../state";
import type { AppContext, View } from "./view";

interface Result {
  id: string;
  service: string;
  name: string;
  start: number; // epoch ms
  durationMs: number;
  spanId?: string;
}

export class SearchView implements View {
  readonly el = h("div", { class: "search" });
  private service = h("select", { name: "service", "aria-label": "Service" }, h("option", { value: "" }, "Any service"));
  private spanName = h("input", { type: "text", name: "name", list: "span-names", "aria-label": "Span name", placeholder: "any span name" });
  private names = h("datalist", { id: "span-names" });
  private minD = h("input", { type: "text", name: "minDuration", "aria-label": "Minimum duration", placeholder: "e.g. 1s", size: 8 });
  private maxD = h("input", { type: "text", name: "maxDuration", "aria-label": "Maximum duration", placeholder: "e.g. 10s", size: 8 });
  private limit = h("input", { type: "number", name: "limit", min: "1", max: "1000", value: "100", "aria-label": "Limit", size: 5 });
  private order = h("select", { name: "order", "aria-label": "Order" }, h("option", { value: "slowest" }, "Slowest first"), h("option", { value: "newest" }, "Newest first"));
  private q = h("input", { type: "text", name: "q", class: "mono traceql", "aria-label": "TraceQL", placeholder: '{ resource.service.name = "main-service" && duration > 1s }', spellcheck: "false" });
  private error = h("div", { class: "inline-error", role: "alert" });
  private scatter = h("div", { class: "scatter", "aria-label": "Trace durations over time" });
  private list = h("div", { class: "results" });
  private summary = h("p", { class: "muted" });
  private abort: AbortController | null = null;

  constructor(private ctx: AppContext) {
    document.title = "Search traces · Lookout";
    const p = new URLSearchParams(location.search);
    this.spanName.value = p.get("name") ?? "";
    this.minD.value = p.get("minDuration") ?? "";
    this.maxD.value = p.get("maxDuration") ?? "";
    this.q.value = p.get("q") ?? "";
    if (p.get("limit")) this.limit.value = p.get("limit")!;
    if (p.get("order") === "newest") this.order.value = "newest";
    this.order.addEventListener("change", () => this.run(true));
    const wantService = p.get("service") ?? "";
    if (wantService) this.service.appendChild(h("option", { value: wantService, selected: true }, wantService));
    replace(
      this.el,
      h("h1", null, "Search traces"),
      h(
        "form",
        { class: "search-form", on: { submit: (e) => (e.preventDefault(), this.run(true)) } },
        h("label", null, "Service ", this.service),
        h("label", null, "Span name ", this.spanName, this.names),
        h("label", null, "Min duration ", this.minD),
        h("label", null, "Max duration ", this.maxD),
        h("label", null, "Limit ", this.limit),
        h("label", null, "Order ", this.order),
        h("label", { class: "wide" }, "TraceQL (overrides the fields) ", this.q),
        h("button", { type: "submit", class: "btn primary run-search" }, "Search"),
      ),
      this.error,
      this.summary,
      this.scatter,
      this.list,
    );
    void this.loadOptions(wantService);
    if (p.has("service") || p.has("name") || p.has("q") || p.has("minDuration") || p.has("maxDuration")) this.run(false);
    else void this.query(); // the time range's traces, so the page opens on something to narrow down
  }

  private async loadOptions(want: string): Promise<void> {
    const [services, names] = await Promise.all([
      tagValues("resource.service.name").catch(() => tagValues("service.name").catch(() => [] as string[])),
      tagValues("name").catch(() => [] as string[]),
    ]);
    replace(this.service, h("option", { value: "" }, "Any service"), ...[...new Set([...services, ...(want ? [want] : [])])].sort().map((s) => h("option", { value: s, selected: s === want }, s)));
    replace(this.names, ...names.slice(0, 500).map((n) => h("option", { value: n })));
  }

  private run(push: boolean): void {
    this.error.textContent = "";
    for (const [inp, label] of [[this.minD, "Min duration"], [this.maxD, "Max duration"]] as const) {
      if (inp.value.trim()) {
        try {
          parseDuration(inp.value);
        } catch (e) {
          this.error.textContent = `${label}: ${(e as Error).message}`;
          return;
        }
      }
    }
    state.setParams(
      { service: this.service.value || null, name: this.spanName.value.trim() || null, minDuration: this.minD.value.trim() || null, maxDuration: this.maxD.value.trim() || null, q: this.q.value.trim() || null, limit: this.limit.value === "100" ? null : this.limit.value, order: this.order.value === "slowest" ? null : this.order.value },
      push,
    );
    void this.query();
  }

  refresh(): void {
    if (this.list.childElementCount || this.summary.textContent) void this.query();
  }

  private async query(): Promise<void> {
    this.abort?.abort();
    this.abort = new AbortController();
    const signal = this.abort.signal;
    const range = state.resolved();
    const traceql = this.q.value.trim() || buildTraceQL({ service: this.service.value, spanName: this.spanName.value.trim(), minDuration: this.minD.value.trim(), maxDuration: this.maxD.value.trim() });
    this.summary.textContent = `Searching ${traceql} …`;
    this.el.classList.add("loading");
    try {
      const limit = Math.min(1000, Math.max(1, Number(this.limit.value) || 100));
      const userMin = this.minD.value.trim() ? parseDuration(this.minD.value) : 0;
      const find = async (minMs: number | undefined) => {
        const min = Math.max(minMs ?? 0, userMin);
        const hits = await search({ q: traceql, start: range.start, end: range.end, limit, minDuration: min > 0 ? `${Math.floor(min)}ms` : undefined, maxDuration: this.maxD.value.trim() || undefined }, signal);
        return hits.map(toResult);
      };
      let results: Result[];
      let how = "";
      if (this.order.value === "newest") {
        results = (await find(undefined)).sort((a, b) => b.durationMs - a.durationMs);
        how = "the newest, slowest first";
      } else {
        // Tempo's search answers the newest matches: find the slowest in rounds.
        const got = await slowest(find, limit);
        results = got.results;
        how = got.exactFromMs === null ? "slowest first (the slowest found in 5 searches)" : got.exactFromMs > 0 ? `slowest first; every trace of the range from ${formatWholeMs(got.exactFromMs)} up is listed` : "slowest first";
      }
      this.summary.textContent = `${results.length} trace${results.length === 1 ? "" : "s"} for ${traceql}, ${how}`;
      this.renderScatter(results, range.start, range.end);
      this.renderList(results);
      this.el.dataset.results = String(results.length);
    } catch (e) {
      if ((e as Error).name === "AbortError") return;
      this.summary.textContent = "";
      this.error.textContent = (e as Error).message;
      replace(this.list);
      replace(this.scatter);
    } finally {
      this.el.classList.remove("loading");
    }
  }

  private renderScatter(rs: Result[], start: number, end: number): void {
    if (rs.length === 0) {
      replace(this.scatter);
      return;
    }
    const maxD = Math.max(...rs.map((r) => r.durationMs), 1);
    // The x axis spans the results (padded), not the whole search range, so clustered traces spread out.
    const lo = Math.min(...rs.map((r) => r.start));
    const hi = Math.max(...rs.map((r) => r.start));
    const pad = Math.max((hi - lo) * 0.03, 1000);
    start = Math.max(start, lo - pad);
    end = Math.min(end, hi + pad);
    if (end <= start) end = start + 1;
    const dots = rs.map((r) =>
      h("button", {
        type: "button",
        class: "scatter-dot",
        title: `${r.service}: ${r.name} ${formatWholeMs(r.durationMs)} at ${formatTime(r.start)}`,
        "aria-label": `Trace ${r.id}, ${formatWholeMs(r.durationMs)}`,
        dataset: { traceId: r.id },
        style: { left: `${Math.min(100, Math.max(0, ((r.start - start) / (end - start)) * 100))}%`, bottom: `${(r.durationMs / maxD) * 100}%` },
        on: { click: () => this.ctx.openTrace(r.id, r.spanId) },
      }),
    );
    replace(
      this.scatter,
      h("span", { class: "axis-y-max" }, formatDurationMs(maxD)),
      h("span", { class: "axis-y-min" }, "0"),
      h("span", { class: "axis-x-min" }, formatTime(start)),
      h("span", { class: "axis-x-max" }, formatTime(end)),
      h("div", { class: "scatter-area" }, ...dots),
    );
  }

  private renderList(rs: Result[]): void {
    if (rs.length === 0) {
      replace(this.list, h("p", { class: "muted" }, "No traces match. Widen the time range or loosen the filters."));
      return;
    }
    replace(
      this.list,
      h(
        "table",
        { class: "data" },
        h("thead", null, h("tr", null, h("th", null, "Trace"), h("th", null, "Root service"), h("th", null, "Root span"), h("th", null, "Start"), h("th", null, "Duration"))),
        h(
          "tbody",
          null,
          ...rs.map((r) =>
            h(
              "tr",
              { class: "result-row", dataset: { traceId: r.id } },
              h("td", null, h("button", { type: "button", class: "linkish mono open-trace", on: { click: () => this.ctx.openTrace(r.id, r.spanId) } }, r.id)),
              h("td", null, r.service),
              h("td", null, r.name),
              h("td", null, formatTime(r.start, true)),
              h("td", { class: "num" }, formatWholeMs(r.durationMs)),
            ),
          ),
        ),
      ),
    );
  }

  destroy(): void {
    this.abort?.abort();
  }
}

function toResult(hit: SearchHit): Result {
  const start = hit.startTimeUnixNano ? Number(BigInt(hit.startTimeUnixNano) / 1_000_000n) : 0;
  const set = hit.spanSets?.[0] ?? hit.spanSet;
  return {
    // Tempo drops a trace ID's leading zeros in search results.
    id: String(hit.traceID).toLowerCase().padStart(32, "0"),
    service: hit.rootServiceName ?? "",
    name: hit.rootTraceName ?? "",
    start,
    durationMs: Number(hit.durationMs ?? 0),
    spanId: set?.spans?.[0]?.spanID,
  };
}
