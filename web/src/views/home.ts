// /: the dashboard list and the other pages, with a dismissable notice of the
// dashboard files (--dashboards) Lookout could not load.

import { h, replace } from "../lib/dom";
import { getJSON } from "../lib/http";
import type { View } from "./view";

interface Hit {
  uid: string;
  title: string;
  tags?: string[];
}

export interface Problem {
  file: string;
  error: string;
}

const DISMISSED = "lookout.dismissedDashboardProblems";
const MAX_PROBLEMS = 20;

/** problemsNotice lists the dashboard files that failed to load; dismissing it hides these problems for the browser session. */
export function problemsNotice(problems: Problem[]): HTMLElement | null {
  if (problems.length === 0) return null;
  const key = JSON.stringify(problems);
  try {
    if (sessionStorage.getItem(DISMISSED) === key) return null;
  } catch {
    /* storage unavailable: always show */
  }
  const shown = problems.slice(0, MAX_PROBLEMS);
  const el = h(
    "div",
    { class: "notice dash-problems", role: "status" },
    h(
      "div",
      { class: "notice-head" },
      h("strong", null, problems.length === 1 ? "1 dashboard file could not be loaded" : `${problems.length} dashboard files could not be loaded`),
      h(
        "button",
        {
          type: "button",
          class: "btn small notice-dismiss",
          on: {
            click: () => {
              try {
                sessionStorage.setItem(DISMISSED, key);
              } catch {
                /* dismissed for this page only */
              }
              el.remove();
            },
          },
        },
        "Dismiss",
      ),
    ),
    h("ul", null, ...shown.map((p) => h("li", { class: "dash-problem" }, h("code", null, p.file), ": ", p.error))),
    problems.length > shown.length ? h("p", { class: "muted" }, `${problems.length - shown.length} more; see Lookout's log.`) : null,
  );
  return el;
}

export class HomeView implements View {
  readonly el = h("div", { class: "home" });

  constructor() {
    document.title = "Lookout";
    replace(this.el, h("h1", null, "Dashboards"), h("p", { class: "muted" }, "Loading…"));
    void this.load();
  }

  private async load(): Promise<void> {
    let list: HTMLElement;
    // Problems are Lookout's own endpoint: without it (an older Lookout) there is no notice.
    const problems = getJSON<{ problems?: Problem[] }>("/api/lookout/dashboards/problems").then((b) => b.problems ?? [], () => []);
    try {
      const hits = await getJSON<Hit[]>("/api/search?type=dash-db");
      list = h("ul", { class: "dash-list" }, ...hits.map((d) => h("li", null, h("a", { href: `/d/${encodeURIComponent(d.uid)}` }, String(d.title)), " ", ...(d.tags ?? []).map((t) => h("span", { class: "chip" }, String(t))))));
    } catch (e) {
      list = h("div", { class: "error-box" }, `Cannot list dashboards: ${(e as Error).message}`);
    }
    replace(
      this.el,
      h("h1", null, "Dashboards"),
      problemsNotice(await problems),
      list,
      h("h2", null, "Investigate"),
      h(
        "ul",
        { class: "dash-list" },
        h("li", null, h("a", { href: "/services" }, "Services"), " — rate, errors and latency per service and operation, from whatever each app sends"),
        h("li", null, h("a", { href: "/explore" }, "Explore"), " — run PromQL, see exemplars"),
        h("li", null, h("a", { href: "/search" }, "Search traces"), " — by service, span name, duration or TraceQL"),
        h("li", null, h("a", { href: "/alerts" }, "Alerts"), " — firing alerts with their exemplar traces"),
      ),
    );
  }

  refresh(): void {}
  destroy(): void {}
}
