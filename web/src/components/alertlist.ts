// Firing alerts from /prometheus/api/v1/alerts, with the exemplar evidence
// Lookout's alerting attaches (evidence_summary, evidence_trace_ids).

import { h, replace } from "../lib/dom";
import { alerts as fetchAlerts, parseEvidenceIds, type Alert } from "../lib/prom";
import { formatSample } from "../lib/format";
import { formatTime } from "../lib/time";

export interface AlertListOptions {
  states?: string[]; // default firing + pending
  onOpenTrace: (traceId: string) => void;
  max?: number;
}

const HIDDEN_ANNOTATIONS = new Set(["summary", "description", "evidence_summary", "evidence_trace_ids"]);

/** renderAlert draws one alert with its evidence; every trace id is a button. */
export function renderAlert(a: Alert, onOpenTrace: (traceId: string) => void): HTMLElement {
  const name = a.labels.alertname ?? "(unnamed alert)";
  const ids = parseEvidenceIds(a.annotations.evidence_trace_ids);
  const labels = Object.entries(a.labels).filter(([k]) => k !== "alertname");
  const extra = Object.entries(a.annotations).filter(([k]) => !HIDDEN_ANNOTATIONS.has(k));
  return h(
    "article",
    { class: `alert-item state-${a.state}`, dataset: { alertname: name } },
    h("div", { class: "alert-head" }, h("span", { class: `badge ${a.state}` }, a.state), h("strong", null, name), a.activeAt ? h("span", { class: "muted" }, ` since ${formatTime(Date.parse(a.activeAt))}`) : null, a.value ? h("span", { class: "muted", title: a.value }, ` value ${formatSample(a.value)}`) : null),
    labels.length ? h("div", { class: "alert-labels" }, ...labels.map(([k, v]) => h("span", { class: "chip" }, `${k}=${v}`))) : null,
    a.annotations.summary ? h("p", { class: "alert-summary" }, a.annotations.summary) : null,
    a.annotations.description ? h("p", { class: "muted" }, a.annotations.description) : null,
    a.annotations.evidence_summary ? h("p", { class: "evidence" }, h("strong", null, "Evidence: "), a.annotations.evidence_summary) : null,
    ids.length
      ? h(
          "div",
          { class: "evidence-traces" },
          h("span", { class: "muted" }, "Traces: "),
          ...ids.map((id) => h("button", { type: "button", class: "linkish mono evidence-trace", dataset: { traceId: id }, title: "Open this trace", on: { click: () => onOpenTrace(id) } }, id.slice(0, 16) + (id.length > 16 ? "…" : ""))),
        )
      : null,
    ...extra.map(([k, v]) => h("div", { class: "annotation" }, h("span", { class: "muted" }, `${k}: `), v)),
  );
}

export class AlertList {
  readonly el = h("div", { class: "alert-list" });
  constructor(private opts: AlertListOptions) {}

  async load(signal?: AbortSignal): Promise<void> {
    try {
      const data = await fetchAlerts(signal);
      const states = this.opts.states ?? ["firing", "pending"];
      const list = data.alerts.filter((a) => states.includes(a.state)).sort((a, b) => (a.state === b.state ? 0 : a.state === "firing" ? -1 : 1));
      if (list.length === 0) {
        replace(this.el, h("p", { class: "muted ok-state" }, "No alerts firing."));
        return;
      }
      replace(this.el, ...list.slice(0, this.opts.max ?? 50).map((a) => renderAlert(a, this.opts.onOpenTrace)));
    } catch (e) {
      if ((e as Error).name === "AbortError") return;
      replace(this.el, h("div", { class: "error-box" }, `Cannot load alerts: ${(e as Error).message}`));
    }
  }
}
