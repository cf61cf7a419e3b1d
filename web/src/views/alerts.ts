// /alerts: firing and pending alerts with exemplar evidence, and the rules.

import { renderAlert } from "../components/alertlist";
import { h, replace } from "../lib/dom";
import { alerts, rules } from "../lib/prom";
import type { AppContext, View } from "./view";

export class AlertsView implements View {
  readonly el = h("div", { class: "alerts-page" });
  private abort: AbortController | null = null;

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
          ? h("div", { class: "alert-list" }, ...firingFirst(a.value.alerts).map((x) => renderAlert(x, (id) => this.ctx.openTrace(id))))
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

  destroy(): void {
    this.abort?.abort();
  }
}

/** firingFirst orders alerts firing before pending, newest first within each state. */
export function firingFirst<T extends { state: string; activeAt?: string }>(list: readonly T[]): T[] {
  const rank = (s: string) => (s === "firing" ? 0 : s === "pending" ? 1 : 2);
  return [...list].sort((a, b) => rank(a.state) - rank(b.state) || (b.activeAt ?? "").localeCompare(a.activeAt ?? ""));
}
