// The application shell: navigation, time controls, routing, the split view
// that shows a trace beside any page without reloading that page, and the
// "Why?" panel between the two, whose example traces open in that split view.

import "./style.css";
import { timeControls } from "./components/timepicker";
import { TraceView } from "./components/traceview";
import { WhyPanel } from "./components/whypanel";
import type { AnalyzeRequest } from "./lib/analyze";
import { headMinTime } from "./lib/prom";
import { framingFrom } from "./lib/time";
import { h, replace } from "./lib/dom";
import type { Trace } from "./lib/trace";
import { navigate, state } from "./state";
import { AlertsView } from "./views/alerts";
import { DashboardView } from "./views/dashboard";
import { ExploreView } from "./views/explore";
import { HomeView } from "./views/home";
import { SearchView } from "./views/search";
import { ServicesView } from "./views/services";
import type { AppContext, View } from "./views/view";

const app = document.getElementById("app")!;
const main = h("main", { class: "main-pane", id: "main" });
const side = h("div", { class: "trace-pane", id: "trace-pane", "aria-label": "Trace" });
const whyPane = h("div", { class: "why-pane", id: "why-pane" });
const layout = h("div", { class: "layout" }, main, whyPane, side);

let view: View | null = null;
let viewKey = "";
let trace: TraceView | null = null;
let traceKey = "";
let why: WhyPanel | null = null;

function searchHref(t: Trace): string {
  const root = t.roots[0]!;
  const u = new URLSearchParams({ service: root.service, name: root.name });
  const r = state.range;
  u.set("from", r.from);
  u.set("to", r.to);
  return `/search?${u}`;
}

const ctx: AppContext = {
  openTrace(traceId: string, spanId?: string) {
    state.setParams({ trace: traceId, span: spanId || null }, true);
    syncTrace();
  },
  openWhy(r: AnalyzeRequest) {
    if (!why) {
      why = new WhyPanel({ onOpenTrace: (id) => ctx.openTrace(id), onClose: closeWhy });
      replace(whyPane, why.el);
      document.body.classList.add("why");
      window.dispatchEvent(new Event("resize"));
    }
    void why.load(r);
  },
};

/** closeWhy removes the "Why?" panel (a new page closes it too: it answered a question about the old one). */
function closeWhy(): void {
  if (!why) return;
  why.destroy();
  why = null;
  replace(whyPane);
  document.body.classList.remove("why");
  window.dispatchEvent(new Event("resize"));
}

function closeTrace(): void {
  state.setParams({ trace: null, span: null }, true);
  syncTrace();
}

/** syncTrace shows the trace named in the URL in the side pane (or hides it). */
function syncTrace(): void {
  const p = new URLSearchParams(location.search);
  const id = p.get("trace") ?? "";
  const span = p.get("span") ?? "";
  const key = `${id}/${span}`;
  if (key === traceKey) return;
  traceKey = key;
  trace?.destroy();
  trace = null;
  if (!id || location.pathname.startsWith("/trace/")) {
    document.body.classList.remove("split");
    replace(side);
    view && window.dispatchEvent(new Event("resize"));
    return;
  }
  document.body.classList.add("split");
  trace = new TraceView({ traceId: id, spanId: span || undefined, onClose: closeTrace, onOpenTrace: (t, s) => ctx.openTrace(t, s), searchHref });
  replace(side, trace.el);
  window.dispatchEvent(new Event("resize"));
}

function route(): void {
  const path = location.pathname;
  const key = path;
  if (key !== viewKey) {
    viewKey = key;
    closeWhy();
    view?.destroy();
    view = makeView(path);
    replace(main, view.el);
    for (const a of nav.querySelectorAll("a")) a.classList.toggle("active", path === a.getAttribute("href") || (a.getAttribute("href") !== "/" && path.startsWith(a.getAttribute("href")!)));
  }
  syncTrace();
}

function makeView(path: string): View {
  const seg = path.split("/").filter(Boolean);
  switch (seg[0]) {
    case undefined:
      return new HomeView();
    case "d":
      return new DashboardView(decodeURIComponent(seg[1] ?? ""), ctx);
    case "explore":
      return new ExploreView(ctx);
    case "search":
      return new SearchView(ctx);
    case "services":
      return new ServicesView(ctx);
    case "alerts":
      return new AlertsView(ctx);
    case "trace": {
      const id = decodeURIComponent(seg[1] ?? "");
      const span = new URLSearchParams(location.search).get("span") ?? undefined;
      const tv = new TraceView({ traceId: id, spanId: span, onOpenTrace: (t, s) => navigate(`/trace/${t}`, s ? { span: s } : {}), searchHref });
      document.title = `Trace ${id} · Lookout`;
      const el = h("div", { class: "trace-page" }, tv.el);
      return { el, refresh: () => {}, destroy: () => tv.destroy() };
    }
    default: {
      const el = h("div", null, h("h1", null, "Not found"), h("p", null, "No page at ", h("code", null, path), ". ", h("a", { href: "/" }, "Go to the dashboards.")));
      return { el, refresh: () => {}, destroy: () => {} };
    }
  }
}

const nav = h(
  "nav",
  { class: "nav" },
  h("a", { href: "/", class: "brand" }, "◉ Lookout"),
  h("a", { href: "/services" }, "Services"),
  h("a", { href: "/d/service-health" }, "Service health"),
  h("a", { href: "/d/http-metrics" }, "HTTP metrics"),
  h("a", { href: "/explore" }, "Explore"),
  h("a", { href: "/search" }, "Search"),
  h("a", { href: "/alerts" }, "Alerts"),
);

replace(app, h("header", { class: "topbar" }, nav, timeControls()), layout);

// Same-origin links are routed in the page; modified clicks keep browser behaviour.
document.addEventListener("click", (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = (e.target as Element).closest?.("a");
  if (!a || a.target || a.hasAttribute("download")) return;
  const href = a.getAttribute("href");
  if (!href || !href.startsWith("/") || href.startsWith("//") || href.startsWith("/prometheus/") || href.startsWith("/tempo/")) return;
  e.preventDefault();
  const u = new URL(href, location.origin);
  navigate(u.pathname + u.search);
});

// Back/forward: a new path builds a new view; the same path re-queries only if
// the time range changed (not when just the split-view trace changed).
let lastRange = JSON.stringify(state.range);
window.addEventListener("popstate", () => {
  const samePath = location.pathname === viewKey;
  route();
  const r = JSON.stringify(state.range);
  if (samePath && r !== lastRange) view?.refresh();
  lastRange = r;
});
state.onRange(() => (lastRange = JSON.stringify(state.range)));
window.addEventListener("lookout:navigate", route);
// Escape closes the trace first, then the "Why?" panel.
document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape" || e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement) return;
  if (document.body.classList.contains("split")) closeTrace();
  else closeWhy();
});
state.onRange(() => view?.refresh());
state.schedule();

/**
 * frameFreshData: a first visit without a range in the URL, to a Lookout
 * whose data began less than 30 minutes ago (a fresh demo), opens on the
 * time since then instead of squeezing it into the right of "Last 30m".
 * It waits at most a second for the answer.
 */
async function frameFreshData(): Promise<void> {
  if (new URLSearchParams(location.search).has("from")) return;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 1000);
  try {
    const first = await headMinTime(ctl.signal);
    const from = first === null ? null : framingFrom(first, Date.now());
    if (from && !new URLSearchParams(location.search).has("from")) {
      state.setParams({ from, to: "now" }, false);
      state.emit(); // the time picker shows it
    }
  } catch {
    // keep the default range
  } finally {
    clearTimeout(timer);
  }
}
void frameFreshData().finally(route);
