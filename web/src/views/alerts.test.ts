import { describe, expect, it } from "vitest";
import { firingFirst } from "./alerts";

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
