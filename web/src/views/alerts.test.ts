import { describe, expect, it } from "vitest";
import { firingFirst, groupByName } from "./alerts";

describe("firingFirst", () => {
  it("lists firing alerts before pending ones, newest first within a state", () => {
    const list = [
      { state: "pending", activeAt: "2026-11-24T22:11:32Z", id: "p-old" },
      { state: "firing", activeAt: "2026-11-24T22:11:17Z", id: "f-old" },
      { state: "pending", activeAt: "2026-11-24T22:12:17Z", id: "p-new" },
      { state: "firing", activeAt: "2026-11-24T22:11:47Z", id: "f-new" },
    ];
    expect(firingFirst(list).map((a) => a.id)).toEqual(["f-new", "f-old", "p-new", "p-old"]);
    expect(list.map((a) => a.id)[0]).toBe("p-old"); // the input is not reordered
  });
});

describe("groupByName", () => {
  it("groups by alertname, firing groups first, each group in firingFirst order with its counts", () => {
    const a = (alertname: string | undefined, state: string, activeAt: string, id: string) => ({
      labels: (alertname === undefined ? {} : { alertname }) as Record<string, string>,
      state,
      activeAt,
      id,
    });
    const groups = groupByName([
      a("DiskFull", "pending", "2026-11-24T22:00:00Z", "d1"),
      a("HighPaymentLatency", "pending", "2026-11-24T22:12:00Z", "h1"),
      a("HighPaymentLatency", "firing", "2026-11-24T22:10:00Z", "h2"),
      a(undefined, "firing", "2026-11-24T22:01:00Z", "u1"),
      a("HighPaymentLatency", "firing", "2026-11-24T22:11:00Z", "h3"),
      a("Backlog", "pending", "2026-11-24T22:05:00Z", "b1"),
    ]);
    expect(groups.map((g) => [g.name, g.firing, g.pending, g.alerts.map((x) => x.id)])).toEqual([
      ["(unnamed alert)", 1, 0, ["u1"]],
      ["HighPaymentLatency", 2, 1, ["h3", "h2", "h1"]],
      ["Backlog", 0, 1, ["b1"]],
      ["DiskFull", 0, 1, ["d1"]],
    ]);
  });

  it("gives no groups for no alerts", () => {
    expect(groupByName([])).toEqual([]);
  });
});
