// The bar gauge panel: one horizontal bar per series, filled to its last
// value's place between the panel's min and max. Only MAX_BARS are drawn.

import { h, replace } from "../lib/dom";
import type { Bar } from "../lib/panels";

export const MAX_BARS = 100;

export class BarGaugePanel {
  readonly el = h("div", { class: "bargauge" });

  constructor(
    private format: (v: number) => string,
    private color: (v: number) => string,
  ) {}

  setData(bars: Bar[]): void {
    const shown = bars.slice(0, MAX_BARS);
    replace(
      this.el,
      ...shown.map((b) =>
        h(
          "div",
          { class: "bar-row", dataset: { value: String(b.value) } },
          h("span", { class: "bar-label", title: b.label }, b.label || "{}"),
          h("span", { class: "bar-track" }, h("span", { class: "bar-fill", style: { width: `${(b.fraction * 100).toFixed(1)}%`, background: this.color(b.value) || "var(--accent)" } })),
          h("span", { class: "bar-value" }, this.format(b.value)),
        ),
      ),
      bars.length > shown.length ? h("p", { class: "muted" }, `${bars.length - shown.length} more bars not shown`) : null,
    );
  }
}
