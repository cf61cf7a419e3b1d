// Time range picker (relative quick ranges and absolute from/to), zoom out,
// and the auto-refresh selector. Everything lives in the URL (state.ts).

import { h, replace } from "../lib/dom";
import { describeRange, formatTime, parseTime, resolveRange } from "../lib/time";
import { state } from "../state";

const QUICK = ["5m", "15m", "30m", "1h", "3h", "6h", "12h", "24h", "2d", "7d"];
const REFRESH = ["", "5s", "10s", "30s", "1m", "5m"];

export function timeControls(): HTMLElement {
  const label = h("span", null);
  const popup = h("div", { class: "tp-popup", hidden: true });
  const button = h("button", { type: "button", class: "btn tp-button", "aria-haspopup": "dialog", on: { click: () => toggle() } }, label);
  const fromIn = h("input", { type: "text", name: "from", "aria-label": "From", spellcheck: "false" });
  const toIn = h("input", { type: "text", name: "to", "aria-label": "To", spellcheck: "false" });
  const err = h("div", { class: "inline-error", role: "alert" });
  const apply = () => {
    try {
      resolveRange({ from: fromIn.value, to: toIn.value }, Date.now());
      err.textContent = "";
      popup.hidden = true;
      state.setRange({ from: fromIn.value.trim(), to: toIn.value.trim() });
    } catch (e) {
      err.textContent = (e as Error).message;
    }
  };
  const form = h(
    "form",
    { class: "tp-abs", on: { submit: (e) => (e.preventDefault(), apply()) } },
    h("h4", null, "Absolute or relative range"),
    h("label", null, "From ", fromIn),
    h("label", null, "To ", toIn),
    h("p", { class: "muted small" }, "e.g. now-1h, 2026-11-24 14:20:00, epoch ms"),
    err,
    h("button", { type: "submit", class: "btn primary" }, "Apply time range"),
  );
  const quick = h(
    "div",
    { class: "tp-quick" },
    h("h4", null, "Quick ranges"),
    ...QUICK.map((q) => h("button", { type: "button", class: "linkish", dataset: { range: q }, on: { click: () => ((popup.hidden = true), state.setRange({ from: `now-${q}`, to: "now" })) } }, `Last ${q}`)),
  );
  replace(popup, form, quick);
  const toggle = () => {
    popup.hidden = !popup.hidden;
    if (!popup.hidden) {
      const r = state.range;
      const abs = (s: string) => (s.startsWith("now") ? s : formatTime(parseSafe(s)));
      fromIn.value = abs(r.from);
      toIn.value = abs(r.to);
      err.textContent = "";
    }
  };
  const zoomOut = h("button", {
    type: "button", class: "btn", title: "Zoom out (double the range)", "aria-label": "Zoom out",
    on: {
      click: () => {
        const r = state.resolved();
        const span = r.end - r.start;
        const end = Math.min(Date.now(), r.end + span / 2);
        state.setRange({ from: String(Math.round(end - span * 2)), to: String(Math.round(end)) });
      },
    },
  }, "⊖");
  const refreshSel = h("select", { "aria-label": "Auto refresh", class: "refresh-select", on: { change: () => state.setRefresh(refreshSel.value) } }, ...REFRESH.map((r) => h("option", { value: r }, r ? `every ${r}` : "Auto refresh off")));
  const refreshBtn = h("button", { type: "button", class: "btn", title: "Refresh now", "aria-label": "Refresh now", on: { click: () => state.emit() } }, "⟳");
  const sync = () => {
    label.textContent = describeRange(state.range);
    refreshSel.value = REFRESH.includes(state.refresh) ? state.refresh : "";
  };
  sync();
  state.onRange(sync);
  window.addEventListener("popstate", sync);
  window.addEventListener("lookout:navigate", sync);
  window.addEventListener("lookout:params", sync);
  document.addEventListener("click", (e) => {
    if (!popup.hidden && !wrap.contains(e.target as Node)) popup.hidden = true;
  });
  const wrap = h("div", { class: "time-controls" }, zoomOut, h("div", { class: "tp" }, button, popup), refreshBtn, refreshSel);
  return wrap;
}

function parseSafe(s: string): number {
  try {
    return parseTime(s, Date.now());
  } catch {
    return Date.now();
  }
}
