// The trace view: header (ids, copy, search-similar), a virtualised waterfall
// (only the rows in view exist in the DOM, so 5,000-span traces scroll freely),
// and a side panel with the selected span's attributes, events, links and resource.

import { h, replace } from "../lib/dom";
import { exemplarsForTrace, getTrace, TraceNotFound } from "../lib/tempo";
import { formatDurationMs, formatTime } from "../lib/time";
import { ancestorsOf, barFor, formatValue, serviceColor, visibleRows, type KV, type Row, type Span, type Trace } from "../lib/trace";

const ROW_H = 24;
const OVERSCAN = 12;

export interface TraceViewOptions {
  traceId: string;
  spanId?: string;
  onClose?: () => void;
  onOpenTrace?: (traceId: string, spanId?: string) => void;
  searchHref?: (t: Trace) => string;
}

export class TraceView {
  readonly el: HTMLElement;
  private trace: Trace | null = null;
  private collapsed = new Set<string>();
  private rows: Row[] = [];
  private selected: string | undefined;
  private highlighted: string | undefined;
  private scroller = h("div", { class: "wf-scroll", tabindex: "0" });
  private spacer = h("div", { class: "wf-spacer" });
  private details = h("aside", { class: "span-details" });
  private raf = 0;
  private abort = new AbortController();
  /** loaded resolves once the trace is rendered (or failed). */
  readonly loaded: Promise<void>;

  constructor(private opts: TraceViewOptions) {
    this.highlighted = opts.spanId || undefined;
    this.selected = this.highlighted;
    this.el = h("section", { class: "trace-view", "aria-label": `Trace ${opts.traceId}`, dataset: { traceId: opts.traceId } });
    replace(this.el, this.headerBar([h("span", { class: "muted" }, "Loading trace…")]));
    this.scroller.appendChild(this.spacer);
    this.scroller.addEventListener("scroll", () => this.schedule(), { passive: true });
    this.scroller.addEventListener("keydown", (e) => this.onKey(e));
    this.loaded = this.load();
  }

  destroy(): void {
    this.abort.abort();
    cancelAnimationFrame(this.raf);
  }

  private headerBar(content: (Node | string | null)[]): HTMLElement {
    return h(
      "header",
      { class: "trace-header" },
      h("div", { class: "trace-title" }, ...content),
      this.opts.onClose ? h("button", { type: "button", class: "icon-btn close-trace", title: "Close trace", "aria-label": "Close trace", on: { click: () => this.opts.onClose?.() } }, "✕") : null,
    );
  }

  private async load(): Promise<void> {
    const t0 = performance.now();
    try {
      this.trace = await getTrace(this.opts.traceId, this.abort.signal);
    } catch (e) {
      if ((e as Error).name === "AbortError") return;
      this.renderError(e as Error);
      return;
    }
    this.render();
    this.el.dataset.renderMs = String(Math.round(performance.now() - t0));
    this.el.dataset.loaded = "true";
  }

  private async retry(): Promise<void> {
    replace(this.el, this.headerBar([h("span", { class: "muted" }, "Loading trace…")]));
    delete this.el.dataset.loaded;
    await this.load();
  }

  private renderError(e: Error): void {
    const id = this.opts.traceId;
    if (e instanceof TraceNotFound) {
      replace(
        this.el,
        this.headerBar([h("span", { class: "mono" }, id)]),
        h(
          "div",
          { class: "trace-missing", role: "status" },
          h("h3", null, "This trace was never received"),
          h("p", null, "The metric sample and its exemplar are real, but the trace store has no spans for trace ", h("code", null, id), "."),
          h(
            "ul",
            null,
            h("li", null, "the service may sample traces (a sampler dropped it) or the span was dropped before export;"),
            h("li", null, "the trace may have been sent to another backend, or it expired from the trace store;"),
            h("li", null, "or the spans are still on their way: try again in a few seconds."),
          ),
          h("button", { type: "button", class: "btn small retry-trace", on: { click: () => void this.retry() } }, "Try again"),
        ),
      );
    } else {
      replace(this.el, this.headerBar([h("span", { class: "mono" }, id)]), h("div", { class: "error-box", role: "alert" }, `Cannot load trace: ${e.message}`));
    }
    this.el.dataset.loaded = "error";
  }

  private render(): void {
    const t = this.trace!;
    const root = t.roots[0]!;
    const errors = t.spans.filter((s) => s.status === "error").length;
    const copy = h("button", { type: "button", class: "btn small copy-trace", on: { click: () => void copyText(t.traceId, copy) } }, "Copy ID");
    const similar = this.opts.searchHref ? h("a", { class: "btn small", href: this.opts.searchHref(t) }, "Search similar traces") : null;
    const header = this.headerBar([
      h("span", { class: "swatch", style: { background: serviceColor(root.service) } }),
      h("strong", { class: "trace-root" }, `${root.service}: ${root.name}`),
      h("span", { class: "mono trace-id" }, t.traceId),
      copy,
      similar,
    ]);
    const facts = h(
      "div",
      { class: "trace-facts" },
      h("span", null, `Duration ${formatDurationMs(t.duration / 1e6)}`),
      h("span", null, `${t.spans.length} spans`),
      h("span", null, `${t.services.length} services`),
      errors ? h("span", { class: "err" }, `${errors} error span${errors > 1 ? "s" : ""}`) : null,
      h("span", null, `Started ${formatTime(t.startEpochMs, true)}`),
      h("span", { class: "legend-critical" }, "critical path"),
    );
    const services = h("div", { class: "trace-services" }, ...t.services.map((s) => h("span", { class: "svc-chip" }, h("span", { class: "swatch", style: { background: serviceColor(s) } }), s)));
    const ticks = h("div", { class: "wf-head" }, h("div", { class: "wf-name" }, "Span"), h("div", { class: "wf-timeline" }, ...[0, 0.25, 0.5, 0.75, 1].map((f) => h("span", { class: "tick", style: { left: `${f * 100}%` } }, formatDurationMs((t.duration * f) / 1e6)))));
    const body = h("div", { class: "trace-body" }, h("div", { class: "waterfall" }, ticks, this.scroller), this.details);
    const reverse = h("div", { class: "trace-exemplars" });
    replace(this.el, header, facts, services, reverse, body);
    void this.loadReverse(reverse);
    if (!this.selected) {
      // Without an exemplar span, preselect the deepest span on the critical path: the likely culprit.
      let best: Span | undefined;
      for (const s of t.spans) if (s.critical && (!best || s.depth > best.depth)) best = s;
      this.selected = best?.spanId;
    }
    if (this.highlighted) {
      const s = t.byId.get(this.highlighted);
      if (s) for (const a of ancestorsOf(s)) this.collapsed.delete(a);
      else this.el.dataset.missingSpan = this.highlighted;
    }
    this.relayout();
    this.renderDetails();
    if (this.highlighted) this.scrollToSpan(this.highlighted);
  }

  /** loadReverse lists the metric series whose exemplars point at this trace (Lookout's reverse link). */
  private async loadReverse(box: HTMLElement): Promise<void> {
    let r;
    try {
      r = await exemplarsForTrace(this.opts.traceId, this.abort.signal);
    } catch {
      return;
    }
    if (!r || r.series.length === 0) return;
    const items = r.series.slice(0, 8).map((s) => {
      const { __name__: name = "", le: _le, ...rest } = s.seriesLabels;
      const sel = `${name}{${Object.entries(rest)
        .map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`)
        .join(", ")}}`;
      const vals = s.exemplars.map((e) => e.value).join(", ");
      return h("li", null, h("a", { href: `/explore?${new URLSearchParams({ expr: sel })}` , class: "mono" }, sel), ` exemplar value ${vals}`);
    });
    replace(box, h("details", null, h("summary", { class: "muted" }, `Referenced by exemplars of ${r.series.length} metric series`), h("ul", null, ...items)));
  }

  private relayout(): void {
    if (!this.trace) return;
    this.rows = visibleRows(this.trace, this.collapsed);
    this.spacer.style.height = `${this.rows.length * ROW_H}px`;
    this.paint();
  }

  private schedule(): void {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.paint();
    });
  }

  /** paint renders only the rows inside the viewport (plus overscan). */
  private paint(): void {
    const t = this.trace;
    if (!t) return;
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(this.rows.length, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    const frag = document.createDocumentFragment();
    for (let i = first; i < last; i++) frag.appendChild(this.rowEl(this.rows[i]!, i, t));
    replace(this.spacer, frag);
  }

  private rowEl(r: Row, i: number, t: Trace): HTMLElement {
    const s = r.span;
    const bar = barFor(s, t.duration);
    const cls = ["wf-row"];
    if (s.spanId === this.selected) cls.push("selected");
    if (s.spanId === this.highlighted) cls.push("highlighted");
    if (s.status === "error") cls.push("error");
    if (s.critical) cls.push("critical");
    const color = serviceColor(s.service);
    const toggle =
      s.children.length > 0
        ? h(
            "button",
            {
              type: "button",
              class: "wf-toggle",
              "aria-expanded": String(!r.collapsed),
              "aria-label": r.collapsed ? `Expand ${s.children.length} children` : "Collapse",
              on: {
                click: (e) => {
                  e.stopPropagation();
                  this.toggle(s.spanId);
                },
              },
            },
            r.collapsed ? "▸" : "▾",
          )
        : h("span", { class: "wf-toggle-space" });
    const indent = Math.min(r.depth, 40) * 12;
    // The duration label goes after the bar, or before it, or inside its end for bars spanning the row.
    const end = bar.left + bar.width;
    const durStyle = end <= 0.75 ? { left: `${end * 100 + 0.5}%` } : bar.left >= 0.2 ? { right: `${(1 - bar.left) * 100 + 0.5}%` } : { right: `${(1 - end) * 100 + 0.5}%` };
    const durClass = end > 0.75 && bar.left < 0.2 ? "wf-dur inside" : "wf-dur";
    return h(
      "div",
      {
        class: cls.join(" "),
        role: "row",
        style: { top: `${i * ROW_H}px` },
        dataset: { spanId: s.spanId },
        on: { click: () => this.select(s.spanId) },
      },
      h(
        "div",
        { class: "wf-name", style: { paddingLeft: `${indent + 4}px` } },
        toggle,
        h("span", { class: "svc-bar", style: { background: color } }),
        h("span", { class: "wf-service" }, s.service),
        h("span", { class: "wf-span-name" }, s.name),
        s.status === "error" ? h("span", { class: "err-icon", title: s.statusMessage || "error" }, "!") : null,
        r.collapsed ? h("span", { class: "muted" }, ` (+${r.hiddenCount})`) : null,
      ),
      h(
        "div",
        { class: "wf-timeline" },
        h("div", { class: "wf-bar", style: { left: `${bar.left * 100}%`, width: `${bar.width * 100}%`, background: color } }),
        h("span", { class: durClass, style: durStyle }, formatDurationMs(s.duration / 1e6)),
      ),
    );
  }

  private toggle(id: string): void {
    if (this.collapsed.has(id)) this.collapsed.delete(id);
    else this.collapsed.add(id);
    this.relayout();
  }

  private select(id: string): void {
    this.selected = id;
    this.paint();
    this.renderDetails();
  }

  private onKey(e: KeyboardEvent): void {
    if (!this.rows.length) return;
    const idx = Math.max(0, this.rows.findIndex((r) => r.span.spanId === this.selected));
    let next = idx;
    if (e.key === "ArrowDown") next = Math.min(this.rows.length - 1, idx + 1);
    else if (e.key === "ArrowUp") next = Math.max(0, idx - 1);
    else if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
      const s = this.rows[idx]!.span;
      if (s.children.length && (e.key === "ArrowLeft") !== this.collapsed.has(s.spanId)) this.toggle(s.spanId);
      e.preventDefault();
      return;
    } else return;
    e.preventDefault();
    this.select(this.rows[next]!.span.spanId);
    this.scrollToSpan(this.rows[next]!.span.spanId, false);
  }

  /** scrollToSpan brings a span's row into view (centred unless `center` is false). */
  scrollToSpan(id: string, center = true): void {
    const i = this.rows.findIndex((r) => r.span.spanId === id);
    if (i < 0) return;
    const h0 = this.scroller.clientHeight || 600;
    const y = i * ROW_H;
    if (center) this.scroller.scrollTop = Math.max(0, y - h0 / 2 + ROW_H / 2);
    else if (y < this.scroller.scrollTop) this.scroller.scrollTop = y;
    else if (y + ROW_H > this.scroller.scrollTop + h0) this.scroller.scrollTop = y + ROW_H - h0;
    this.paint();
  }

  private renderDetails(): void {
    const t = this.trace;
    const s = t && this.selected ? t.byId.get(this.selected) : undefined;
    if (!t || !s) {
      replace(this.details, h("p", { class: "muted" }, "Select a span to see its attributes, events, links and resource."));
      return;
    }
    const idCopy = h("button", { type: "button", class: "btn small", on: { click: () => void copyText(s.spanId, idCopy) } }, "Copy");
    replace(
      this.details,
      h("h3", { class: "span-title" }, h("span", { class: "swatch", style: { background: serviceColor(s.service) } }), s.name),
      h(
        "dl",
        { class: "facts" },
        fact("Service", s.service),
        fact("Duration", formatDurationMs(s.duration / 1e6)),
        fact("Start", `+${formatDurationMs(s.start / 1e6)} (${formatTime(s.startEpochMs, true)})`),
        fact("Kind", s.kind),
        fact("Status", s.status + (s.statusMessage ? `: ${s.statusMessage}` : ""), s.status === "error" ? "err" : ""),
        fact("Span ID", s.spanId, "mono span-id"),
        s.parentSpanId ? fact("Parent", s.parentSpanId, "mono") : null,
        fact("Critical path", s.critical ? "yes" : "no"),
        s.scope ? fact("Scope", s.scope) : null,
      ),
      idCopy,
      kvSection("Attributes", s.attributes),
      h(
        "section",
        null,
        h("h4", null, `Events (${s.events.length})`),
        ...s.events.map((ev) => h("div", { class: "event" }, h("div", null, h("strong", null, ev.name), " ", h("span", { class: "muted" }, `+${formatDurationMs((ev.time - s.start) / 1e6)}`)), kvTable(ev.attributes))),
      ),
      h(
        "section",
        null,
        h("h4", null, `Links (${s.links.length})`),
        ...s.links.map((l) =>
          h(
            "div",
            { class: "link" },
            h("button", { type: "button", class: "linkish mono", on: { click: () => this.opts.onOpenTrace?.(l.traceId, l.spanId) } }, `${l.traceId} / ${l.spanId}`),
            kvTable(l.attributes),
          ),
        ),
      ),
      kvSection("Resource", s.resource),
    );
  }

  /** currentTrace exposes the parsed trace (for tests and benchmarks). */
  get current(): Trace | null {
    return this.trace;
  }

  /** spanById looks a span up. */
  span(id: string): Span | undefined {
    return this.trace?.byId.get(id);
  }
}

function fact(k: string, v: string, cls = ""): HTMLElement[] {
  return [h("dt", null, k), h("dd", { class: cls }, v)];
}

function kvTable(kvs: KV[]): HTMLElement {
  return h(
    "table",
    { class: "kv" },
    h("tbody", null, ...[...kvs].sort((a, b) => (a.key < b.key ? -1 : 1)).map((kv) => h("tr", null, h("th", null, kv.key), h("td", { class: "mono" }, formatValue(kv.value))))),
  );
}

function kvSection(title: string, kvs: KV[]): HTMLElement {
  return h("section", null, h("h4", null, `${title} (${kvs.length})`), kvTable(kvs));
}

async function copyText(s: string, btn: HTMLElement): Promise<void> {
  const old = btn.textContent;
  try {
    await navigator.clipboard.writeText(s);
    btn.textContent = "Copied";
  } catch {
    const ta = h("textarea", { class: "offscreen" }, s);
    document.body.appendChild(ta);
    ta.select();
    const ok = document.execCommand("copy");
    ta.remove();
    btn.textContent = ok ? "Copied" : "Copy failed";
  }
  setTimeout(() => (btn.textContent = old), 1500);
}
