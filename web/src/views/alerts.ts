// /alerts: firing and pending alerts with exemplar evidence, and the rules.

import { renderAlert } from "../components/alertlist";
import { h, replace } from "../lib/dom";
import { alerts, rules, type Alert } from "../lib/prom";
import type { AppContext, View } from "./view";

export class AlertsView implements View {
  readonly el = h("div", { class: "alerts-page" });
  private abort: AbortController | null = null;
  private unfolded = new Set<string>(); // groups the user unfolded

  constructor(private ctx: AppContext) {
    document.title = "Alerts · Lookout";
    this.refresh();
  }

  refresh(): void {
    this.abort?.abort();
    this.abort = new AbortController();
    void this.load(this.abort.signal);
  }

  private async load(signal: AbortSignal): Promise<void> {
    const [a, r] = await Promise.allSettled([alerts(signal), rules(signal)]);
    if (signal.aborted) return;
    const alertBox =
      a.status === "fulfilled"
        ? a.value.alerts.length
          ? h("div", { class: "alert-list" }, ...groupByName(a.value.alerts).map((g) => this.renderGroup(g)))
          : h("p", { class: "muted ok-state" }, "No alerts are firing or pending.")
        : h("div", { class: "error-box" }, `Cannot load alerts: ${(a.reason as Error).message}`);
    const rulesBox =
      r.status === "fulfilled" && r.value.groups.length === 0
        ? h("p", { class: "muted" }, "No alerting or recording rules are loaded.")
        : r.status === "fulfilled"
        ? h(
            "table",
            { class: "data rules" },
            h("thead", null, h("tr", null, h("th", null, "Group"), h("th", null, "Rule"), h("th", null, "State"), h("th", null, "Health"), h("th", null, "Query"))),
            h(
              "tbody",
              null,
              ...r.value.groups.flatMap((g) =>
                g.rules.map((rule) =>
                  h("tr", null, h("td", null, g.name), h("td", null, rule.name), h("td", null, rule.state ?? rule.type), h("td", { class: rule.health === "ok" ? "" : "err" }, rule.health ?? "", rule.lastError ? ` (${rule.lastError})` : ""), h("td", { class: "mono" }, rule.query)),
                ),
              ),
            ),
          )
        : h("div", { class: "error-box" }, `Cannot load rules: ${(r.reason as Error).message}`);
    replace(this.el, h("h1", null, "Alerts"), alertBox, h("h2", null, "Rules"), rulesBox);
  }

  /**
   * renderGroup draws one rule's alerts under a header with their counts: the
   * first SHOWN in full, the rest folded (a rule without `sum by` fires once
   * per series). Unfolding survives the page's refreshes.
   */
  private renderGroup(g: AlertGroup<Alert>): HTMLElement {
    const card = (x: Alert) => renderAlert(x, (id) => this.ctx.openTrace(id));
    const rest = g.alerts.slice(SHOWN);
    let more: HTMLElement | null = null;
    if (rest.length) {
      const d = h("details", { class: "alert-more" }, h("summary", null, `${rest.length} more ${g.name} alert${rest.length === 1 ? "" : "s"}`), ...rest.map(card));
      d.open = this.unfolded.has(g.name);
      d.addEventListener("toggle", () => (d.open ? this.unfolded.add(g.name) : this.unfolded.delete(g.name)));
      more = d;
    }
    return h(
      "section",
      { class: "alert-group", dataset: { alertname: g.name } },
      h(
        "div",
        { class: "alert-group-head" },
        h("strong", null, g.name),
        g.firing ? h("span", { class: "badge firing" }, `${g.firing} firing`) : null,
        g.pending ? h("span", { class: "badge pending" }, `${g.pending} pending`) : null,
      ),
      ...g.alerts.slice(0, SHOWN).map(card),
      more,
    );
  }

  destroy(): void {
    this.abort?.abort();
  }
}

/** firingFirst orders alerts firing before pending, newest first within each state. */
export function firingFirst<T extends { state: string; activeAt?: string }>(list: readonly T[]): T[] {
  const rank = (s: string) => (s === "firing" ? 0 : s === "pending" ? 1 : 2);
  return [...list].sort((a, b) => rank(a.state) - rank(b.state) || (b.activeAt ?? "").localeCompare(a.activeAt ?? ""));
}

/** Alerts shown in full per group; the rest are folded. */
const SHOWN = 3;

export interface AlertGroup<T> {
  name: string;
  alerts: T[]; // firingFirst order
  firing: number;
  pending: number;
}

/**
 * groupByName groups alerts by alertname, each group in firingFirst order;
 * groups with firing alerts come first, then by name.
 */
export function groupByName<T extends { labels: Record<string, string>; state: string; activeAt?: string }>(list: readonly T[]): AlertGroup<T>[] {
  const byName = new Map<string, AlertGroup<T>>();
  for (const a of firingFirst(list)) {
    const name = a.labels.alertname ?? "(unnamed alert)";
    let g = byName.get(name);
    if (!g) byName.set(name, (g = { name, alerts: [], firing: 0, pending: 0 }));
    g.alerts.push(a);
    if (a.state === "firing") g.firing++;
    else if (a.state === "pending") g.pending++;
  }
  return [...byName.values()].sort((a, b) => Number(b.firing > 0) - Number(a.firing > 0) || a.name.localeCompare(b.name));
}
