// The table panel: rows of an instant query (labels as columns, values
// formatted in the panel's unit). Only the first MAX_ROWS rows are drawn.

import { h, replace } from "../lib/dom";
import type { Table } from "../lib/panels";

export const MAX_ROWS = 500;

export class TablePanel {
  readonly el = h("div", { class: "table-panel" });

  constructor(private format: (v: number) => string) {}

  setData(t: Table): void {
    const shown = t.rows.slice(0, MAX_ROWS);
    const cell = (c: string | number | null, isValue: boolean) =>
      h("td", isValue ? { class: "num" } : null, c === null ? "–" : typeof c === "number" ? this.format(c) : c);
    replace(
      this.el,
      h(
        "table",
        { class: "data" },
        h("thead", null, h("tr", null, ...t.columns.map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", null, ...shown.map((r) => h("tr", null, ...r.map((c, i) => cell(c, t.valueColumns[i] ?? false))))),
      ),
      t.rows.length > shown.length ? h("p", { class: "muted" }, `${t.rows.length - shown.length} more rows not shown`) : null,
    );
  }
}
