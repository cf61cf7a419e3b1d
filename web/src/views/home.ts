// /: the dashboard list and the other pages.

import { h, replace } from "../lib/dom";
import { getJSON } from "../lib/http";
import type { View } from "./view";

interface Hit {
  uid: string;
  title: string;
  tags?: string[];
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
    try {
      const hits = await getJSON<Hit[]>("/api/search?type=dash-db");
      list = h("ul", { class: "dash-list" }, ...hits.map((d) => h("li", null, h("a", { href: `/d/${encodeURIComponent(d.uid)}` }, d.title), " ", ...(d.tags ?? []).map((t) => h("span", { class: "chip" }, t)))));
    } catch (e) {
      list = h("div", { class: "error-box" }, `Cannot list dashboards: ${(e as Error).message}`);
    }
    replace(
      this.el,
      h("h1", null, "Dashboards"),
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
