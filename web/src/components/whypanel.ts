// The "Why?" side panel: asks Lookout's analysis why a panel's query looks
// different in a region (lib/analyze) and shows the answer: the verdict, the
// counts it rests on (spike traces, exemplars, baseline traces, threshold),
// a spike-vs-baseline bar pair per slow span, a table of attribute values
// (shares, or medians for numeric attributes), and error deltas. Every
// finding lists its example traces; clicking one calls onOpenTrace, which
// the shell routes to the same split view an exemplar dot opens. All server
// text (verdict, span and attribute names, values, messages) goes into text
// nodes.

import { analyze, barWidths, baselineValueOf, findingName, formatFindingValue, formatShare, groupFindings, regionLength, type Analysis, type AnalyzeRequest, type Finding } from "../lib/analyze";
import { h, replace } from "../lib/dom";
import { formatUnit } from "../lib/format";
import { formatTime } from "../lib/time";

export interface WhyPanelOptions {
  onOpenTrace: (traceId: string) => void;
  onClose: () => void;
}

/** How many example traces a finding shows before folding the rest. */
const TRACES_SHOWN = 5;

export class WhyPanel {
  readonly el = h("aside", { class: "why-panel", "aria-label": "Why?", "aria-live": "polite", dataset: { state: "idle" } });
  private head = h("div", { class: "why-region" });
  private body = h("div", { class: "why-body" });
  private abort: AbortController | null = null;
  private request: AnalyzeRequest | null = null;

  constructor(private opts: WhyPanelOptions) {
    replace(
      this.el,
      h(
        "header",
        { class: "why-header" },
        h("h2", { class: "why-title" }, "Why?"),
        h("button", { type: "button", class: "icon-btn close-why", title: "Close", "aria-label": "Close the Why? panel", on: { click: () => this.opts.onClose() } }, "✕"),
      ),
      this.head,
      this.body,
    );
  }

  /** load asks about r, replacing whatever the panel showed; an earlier request still running is cancelled. */
  async load(r: AnalyzeRequest): Promise<void> {
    this.abort?.abort();
    const abort = new AbortController();
    this.abort = abort;
    this.request = r;
    replace(
      this.head,
      h("div", { class: "why-range" }, `${formatTime(r.start)} to ${formatTime(r.end)}`, h("span", { class: "muted" }, ` (${regionLength(r)})`)),
      h("code", { class: "why-query", title: "The panel's query" }, r.query),
    );
    this.setState("loading");
    replace(this.body, h("p", { class: "muted why-loading" }, "Comparing the traces behind this region with normal traffic…"));
    let a: Analysis;
    try {
      a = await analyze(r, abort.signal);
    } catch (e) {
      if ((e as Error).name === "AbortError" || abort.signal.aborted) return;
      this.setState("error");
      replace(
        this.body,
        h("div", { class: "error-box why-error", role: "alert" }, `Cannot analyze this region: ${(e as Error).message}`),
        h("button", { type: "button", class: "btn small why-retry", on: { click: () => this.request && void this.load(this.request) } }, "Try again"),
      );
      return;
    }
    if (abort.signal.aborted) return;
    this.render(a);
    this.setState("done");
  }

  destroy(): void {
    this.abort?.abort();
  }

  private setState(s: "loading" | "error" | "done"): void {
    this.el.dataset.state = s;
    this.el.setAttribute("aria-busy", String(s === "loading"));
  }

  private render(a: Analysis): void {
    const g = groupFindings(a.findings);
    replace(
      this.body,
      h("p", { class: "why-verdict" }, a.verdict || "The server gave no verdict."),
      h(
        "dl",
        { class: "facts why-counts" },
        count("Spike traces", "spike-traces", a.spike.traces, "Traces behind the region's exemplars that the analysis compared"),
        count("Exemplars", "exemplars", a.spike.exemplars, "Exemplars found in the region"),
        count("Baseline traces", "baseline-traces", a.baseline.traces, "Traces of the normal period the spike was compared with"),
        h("dt", null, "Threshold"),
        h("dd", { class: "why-count", dataset: { count: "threshold" }, title: "Exemplar value above which a trace counted as part of the spike" }, a.threshold === undefined ? "–" : formatUnit(a.threshold, "none")),
      ),
      a.findings.length === 0 ? h("p", { class: "muted why-none" }, "No findings.") : null,
      a.baseline.traces === 0 ? h("p", { class: "muted small why-no-baseline" }, "The baseline held no traces: there is nothing to compare with.") : null,
      g.span.length ? this.section("Slow spans", "Mean self time per trace", g.span.map((f) => this.spanFinding(f, baselineValueOf(a, f)))) : null,
      g.attribute.length ? this.section("Attributes", "Share of traces with the value, or the median of a numeric attribute", [this.attributeTable(g.attribute.map((f) => [f, baselineValueOf(a, f)]))]) : null,
      g.error.length ? this.section("Errors", "Share of traces where the span failed", [this.errorTable(g.error.map((f) => [f, baselineValueOf(a, f)]))]) : null,
      a.unknownKinds ? h("p", { class: "muted small" }, `${a.unknownKinds} finding${a.unknownKinds === 1 ? "" : "s"} of a kind this page cannot show.`) : null,
    );
  }

  private section(title: string, hint: string, children: HTMLElement[]): HTMLElement {
    return h("section", { class: "why-section" }, h("h3", null, title, " ", h("span", { class: "muted small" }, hint)), ...children);
  }

  private spanFinding(f: Finding, baseline: number | null): HTMLElement {
    const w = barWidths(f.spikeValue, baseline);
    const bar = (which: "spike" | "baseline", label: string, v: number | null, width: number) =>
      h(
        "div",
        { class: `why-bar-row ${which}` },
        h("span", { class: "why-bar-label muted" }, label),
        h("span", { class: "why-bar-track" }, h("span", { class: `why-bar ${which}`, style: { width: `${width}%` } })),
        h("span", { class: "why-bar-value mono", dataset: { value: which } }, formatFindingValue(f, v)),
      );
    return h(
      "article",
      { class: "why-finding", dataset: { kind: "span", span: f.span ?? "", service: f.service ?? "" } },
      h("div", { class: "why-finding-name" }, h("strong", null, f.span ?? "(unnamed span)"), f.service ? h("span", { class: "muted" }, ` ${f.service}`) : null, f.coverage !== undefined ? h("span", { class: "chip", title: "Share of spike traces with this span" }, `in ${formatShare(f.coverage)} of spike traces`) : null),
      bar("spike", "spike", f.spikeValue, w.spike),
      bar("baseline", "baseline", baseline, w.baseline),
      this.traces(f),
    );
  }

  private attributeTable(fs: [Finding, number | null][]): HTMLElement {
    return h(
      "table",
      { class: "data why-attributes" },
      h("thead", null, h("tr", null, h("th", null, "Attribute"), h("th", null, "Value"), h("th", { class: "num" }, "Spike"), h("th", { class: "num" }, "Baseline"))),
      h(
        "tbody",
        null,
        ...fs.flatMap(([f, baseline]) => [
          h(
            "tr",
            { class: "why-finding", dataset: { kind: "attribute", attribute: f.attribute ?? "" } },
            h("td", { class: "mono" }, f.attribute ?? "(unnamed attribute)"),
            h("td", { class: "mono" }, f.numeric ? h("span", { class: "muted" }, "median") : (f.value ?? "–")),
            h("td", { class: "num", dataset: { value: "spike" } }, formatFindingValue(f, f.spikeValue)),
            h("td", { class: "num", dataset: { value: "baseline" }, title: f.against === "rest" ? "Compared with the region's traces that were not slow" : null }, formatFindingValue(f, baseline)),
          ),
          h("tr", { class: "why-traces-row" }, h("td", { colspan: "4" }, this.traces(f))),
        ]),
      ),
    );
  }

  private errorTable(fs: [Finding, number | null][]): HTMLElement {
    return h(
      "table",
      { class: "data why-errors" },
      h("thead", null, h("tr", null, h("th", null, "Span"), h("th", { class: "num" }, "Spike"), h("th", { class: "num" }, "Baseline"), h("th", null, "Message"))),
      h(
        "tbody",
        null,
        ...fs.flatMap(([f, baseline]) => [
          h(
            "tr",
            { class: "why-finding", dataset: { kind: "error", span: f.span ?? "" } },
            h("td", { class: "mono", title: findingName(f) }, f.span ?? "(unnamed span)", f.service ? h("div", { class: "muted small" }, f.service) : null),
            h("td", { class: "num", dataset: { value: "spike" } }, formatFindingValue(f, f.spikeValue)),
            h("td", { class: "num", dataset: { value: "baseline" }, title: f.against === "rest" ? "Compared with the region's traces that were not slow" : null }, formatFindingValue(f, baseline)),
            h("td", { class: "why-message" }, f.value ?? "–"),
          ),
          h("tr", { class: "why-traces-row" }, h("td", { colspan: "4" }, this.traces(f))),
        ]),
      ),
    );
  }

  /** traces lists a finding's example traces as buttons; past TRACES_SHOWN they fold. */
  private traces(f: Finding): HTMLElement {
    if (f.traceIDs.length === 0) return h("div", { class: "why-traces muted small" }, "No example traces.");
    const button = (id: string) =>
      h("button", { type: "button", class: "linkish mono why-trace", dataset: { traceId: id }, title: `Open trace ${id} beside the dashboard`, on: { click: () => this.opts.onOpenTrace(id) } }, id.slice(0, 12) + "…");
    const rest = f.traceIDs.slice(TRACES_SHOWN);
    return h(
      "div",
      { class: "why-traces" },
      h("span", { class: "muted small" }, "Traces: "),
      ...f.traceIDs.slice(0, TRACES_SHOWN).map(button),
      rest.length ? h("details", { class: "why-more" }, h("summary", null, `${rest.length} more`), ...rest.map(button)) : null,
    );
  }
}

function count(label: string, key: string, v: number | undefined, title: string): HTMLElement[] {
  return [h("dt", { title }, label), h("dd", { class: "why-count", dataset: { count: key } }, v === undefined ? "–" : String(v))];
}
