// Users' own Grafana dashboards (--dashboards) in a real lookout fed over
// OTLP/JSON: a Grafana 11 "export for sharing externally" renders every
// supported panel type and a placeholder for the unsupported one, a broken
// file is named in a notice on the dashboard list, hostile titles stay text,
// and an edited file is served edited.

import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { check, cleanup, launchBrowser, postOTLP, randomHex, RESULTS_DIR, ROOT, startLookout, waitFor, type Lookout } from "./harness";

const HOSTILE = "<img src=x onerror=alert(1)>";
const SCRIPT = '<script>window.__xss="script"</script>';

let lk: Lookout;
let browser: Browser;
let dashDir: string;
const dialogs: string[] = [];
const csp: string[] = [];

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1400 } });
  page.on("pageerror", (e) => console.error("page error:", e.message));
  page.on("dialog", (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on("console", (m) => m.text().includes("Content Security Policy") && csp.push(m.text()));
  return page;
}

/** hostileDashboard puts markup in every text a user's file controls. */
function hostileDashboard(): unknown {
  const target = { refId: "A", expr: 'sum by (http_route) (rate(http_server_request_duration_count{job=~"$job"}[$__rate_interval]))', legendFormat: `${HOSTILE} {{http_route}}` };
  return {
    uid: "hostile",
    title: HOSTILE,
    description: SCRIPT,
    tags: [HOSTILE],
    templating: {
      list: [
        { name: "job", label: HOSTILE, type: "custom", query: `shop,${HOSTILE}`, includeAll: true, current: { value: ["$__all"] } },
        { name: "box", label: SCRIPT, type: "textbox", query: HOSTILE },
      ],
    },
    panels: [
      { id: 1, type: "row", title: HOSTILE, gridPos: { x: 0, y: 0, w: 24, h: 1 } },
      { id: 2, type: "timeseries", title: HOSTILE, description: SCRIPT, gridPos: { x: 0, y: 1, w: 12, h: 8 }, targets: [target] },
      { id: 3, type: "bargauge", title: SCRIPT, gridPos: { x: 12, y: 1, w: 12, h: 8 }, targets: [{ ...target, instant: true }] },
      { id: 4, type: "text", title: "text", gridPos: { x: 0, y: 9, w: 8, h: 4 }, options: { mode: "html", content: `${SCRIPT}${HOSTILE}` } },
      { id: 5, type: HOSTILE, title: "odd type", gridPos: { x: 8, y: 9, w: 8, h: 4 } },
      { id: 6, type: "table", title: "table", gridPos: { x: 16, y: 9, w: 8, h: 4 }, targets: [{ ...target, format: "table", instant: true }] },
    ],
  };
}

// ---- OTLP/JSON: http.server.request.duration histograms over the last minutes ----

const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const ROUTES = ["/cart", "/checkout", HOSTILE];

const kvs = (o: Record<string, string>) => Object.entries(o).map(([key, v]) => ({ key, value: { stringValue: v } }));

function histogramRequest(startNs: bigint, timeNs: bigint, tick: number): unknown {
  const dataPoints = ROUTES.flatMap((route, r) =>
    ["200", "500"].map((code) => {
      // Cumulative counts growing each tick, most requests in the middle buckets.
      const per = BOUNDS.map((_, b) => (code === "500" ? (b === 6 ? 1 : 0) : [1, 2, 5, 8, 6, 3, 1, 1, 0][b]! * (r + 1)));
      const counts = [...per.map((n) => n * tick), tick * (code === "500" ? 0 : 1)];
      const count = counts.reduce((a, b) => a + b, 0);
      return {
        attributes: kvs({ "http.request.method": "GET", "http.route": route, "http.response.status_code": code }),
        startTimeUnixNano: String(startNs),
        timeUnixNano: String(timeNs),
        count: String(count),
        sum: count * 0.05,
        bucketCounts: counts.map(String),
        explicitBounds: BOUNDS,
        exemplars: code === "200" ? [{ timeUnixNano: String(timeNs), asDouble: 0.04 + r / 10, traceId: randomHex(16), spanId: randomHex(8) }] : [],
      };
    }),
  );
  return {
    resourceMetrics: [
      {
        resource: { attributes: kvs({ "service.name": "shop" }) },
        scopeMetrics: [{ scope: { name: "lookout-dashboards-e2e" }, metrics: [{ name: "http.server.request.duration", unit: "s", histogram: { aggregationTemporality: 2, dataPoints } }] }],
      },
    ],
  };
}

beforeAll(async () => {
  mkdirSync(RESULTS_DIR, { recursive: true });
  // The dashboard files exist before lookout starts; the test edits one later.
  dashDir = mkdtempSync(join(tmpdir(), "lookout-dashboards-e2e-"));
  copyFileSync(join(ROOT, "dashboards/testdata/grafana-export.json"), join(dashDir, "grafana-export.json"));
  writeFileSync(join(dashDir, "broken.json"), '{"uid": "broken", "title": "Broken",\n');
  writeFileSync(join(dashDir, "hostile.json"), JSON.stringify(hostileDashboard(), null, 2));
  const many = Array.from({ length: 10_000 }, (_, i) => ({ id: i + 1, type: "text", title: `Panel ${i + 1}`, gridPos: { x: (i % 4) * 6, y: Math.floor(i / 4) * 2, w: 6, h: 2 }, options: { content: `text ${i + 1}` } }));
  writeFileSync(join(dashDir, "many.json"), JSON.stringify({ uid: "many", title: "Ten thousand panels", panels: many }));
  lk = await startLookout(["--dashboards", dashDir]);
  const now = BigInt(Date.now()) * 1_000_000n;
  const start = now - 330n * 1_000_000_000n;
  for (let tick = 1; tick <= 21; tick++) {
    await postOTLP(lk, "metrics", histogramRequest(start, start + BigInt(tick) * 15n * 1_000_000_000n, tick));
  }
  await waitFor("the histogram", async () => {
    const r = await fetch(`${lk.ui}/prometheus/api/v1/query?query=${encodeURIComponent("count(http_server_request_duration_bucket)")}`);
    const b = (await r.json()) as { data?: { result?: unknown[] } };
    return (b.data?.result?.length ?? 0) > 0;
  });
  browser = await launchBrowser();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await lk?.proc.stop();
  if (lk) cleanup(lk.dir);
  if (dashDir) cleanup(dashDir);
});

describe("users' dashboards (--dashboards)", () => {
  it("lists the user's dashboards and names the broken file in a dismissable notice", async () => {
    const page = await newPage();
    await page.goto(`${lk.ui}/`);
    await check.visible(page.locator(".dash-list a", { hasText: "HTTP Server (exported)" }));
    await check.visible(page.locator(".dash-list a", { hasText: HOSTILE }));
    await check.visible(page.locator(".dash-list a", { hasText: "Service Health" }));
    const notice = page.locator(".dash-problems");
    await check.text(notice, "1 dashboard file could not be loaded");
    await check.text(notice.locator(".dash-problem"), join(dashDir, "broken.json"));
    await check.text(notice.locator(".dash-problem"), "not a dashboard JSON object");
    await page.screenshot({ path: join(RESULTS_DIR, "dashboards-list.png") });
    await notice.locator(".notice-dismiss").click();
    await check.count(page.locator(".dash-problems"), 0);
    // Dismissed for the session: it stays away on the next visit.
    await page.reload();
    await check.visible(page.locator(".dash-list a", { hasText: "HTTP Server (exported)" }));
    await check.count(page.locator(".dash-problems"), 0);
    await page.close();
  });

  it("renders every supported panel type of a Grafana export, and a placeholder for the others", async () => {
    const page = await newPage();
    await page.goto(`${lk.ui}/d/http-server-export?from=now-10m&to=now`);
    const panel = (title: string) => page.locator(`[data-panel-title="${title}"]`);
    await check.count(page.locator(".panel-row"), 2);
    await check.text(panel("Overview"), "Overview");
    await check.text(panel("Latency distribution").locator(".row-title"), "Latency distribution");
    // timeseries: a uPlot canvas and one legend entry per route.
    await panel("Request rate").locator("canvas").first().waitFor();
    await expect.poll(() => panel("Request rate").locator(".legend-item").count(), { timeout: 30_000 }).toBe(ROUTES.length);
    await check.text(panel("Request rate").locator(".ts-legend"), HOSTILE);
    // The exemplar target's dots.
    await expect.poll(async () => Number((await panel("Latency p95").getAttribute("data-exemplars")) ?? 0), { timeout: 30_000 }).toBeGreaterThan(0);
    // stat
    await expect.poll(async () => ((await panel("Requests in range").locator(".stat-value").textContent()) ?? "").trim(), { timeout: 30_000 }).toMatch(/^\d/);
    // table: a row per route and status, labels as columns.
    const table = panel("Requests per route and status");
    await expect.poll(() => table.locator("tbody tr").count(), { timeout: 30_000 }).toBe(ROUTES.length * 2);
    expect(await table.locator("thead th").allTextContents()).toEqual(["http_response_status_code", "http_route", "Value"]);
    await check.text(table.locator("tbody"), HOSTILE);
    // bargauge: one bar per route.
    await expect.poll(() => panel("Request rate by route").locator(".bar-row").count(), { timeout: 30_000 }).toBe(ROUTES.length);
    // heatmap (in the collapsed row): a canvas with filled cells.
    const heat = panel("Request duration heatmap").locator(".heatmap");
    await heat.locator("canvas").waitFor();
    await expect.poll(async () => Number((await heat.getAttribute("data-cells")) ?? 0), { timeout: 30_000 }).toBeGreaterThan(0);
    expect(await heat.getAttribute("data-buckets")).toBe(String(BOUNDS.length + 1));
    // text
    await check.text(panel("About").locator(".text-panel"), "Exported from Grafana");
    // The unsupported panel names its type.
    await check.exactText(panel("Status codes").locator(".panel-body"), "Panel type 'piechart' is not supported by Lookout");
    // Variables: query, custom, interval (with auto) and textbox.
    for (const label of ["Service", "Method", "Interval"]) await check.visible(page.locator(`select[aria-label="${label}"]`));
    await check.visible(page.locator('input[aria-label="Route (regex)"]'));
    expect(await page.locator('select[aria-label="Interval"] option').allTextContents()).toEqual(["auto", "1m", "5m", "10m", "30m", "1h"]);
    await page.locator('select[aria-label="Interval"]').selectOption("5m");
    await waitFor("the interval in the URL", async () => new URL(page.url()).searchParams.get("var-interval") === "5m", 10_000, 100);
    await page.screenshot({ path: join(RESULTS_DIR, "dashboards-grafana-export.png"), fullPage: true });
    await page.close();
  });

  it("renders hostile titles, legends, labels and variables as text", async () => {
    const page = await newPage();
    await page.goto(`${lk.ui}/d/hostile?from=now-10m&to=now`);
    await check.exactText(page.locator(".dash-title"), HOSTILE);
    await check.exactText(page.locator(".dash-desc"), SCRIPT);
    await check.text(page.locator(".row-title"), HOSTILE);
    await check.text(page.locator(".var-bar"), HOSTILE);
    await check.text(page.locator(".var-bar"), SCRIPT);
    await check.exactText(page.locator(".panel-bargauge .panel-title"), SCRIPT);
    await check.exactText(page.locator(".panel-timeseries .panel-title"), HOSTILE);
    await check.text(page.locator(".text-panel"), SCRIPT + HOSTILE);
    await check.text(page.locator(".panel-unsupported"), `Panel type '${HOSTILE}' is not supported by Lookout`);
    await expect.poll(() => page.locator(".bar-row").count(), { timeout: 30_000 }).toBe(ROUTES.length);
    await check.text(page.locator(".bargauge"), `${HOSTILE} ${HOSTILE}`);
    await expect.poll(() => page.locator(".legend-item").count(), { timeout: 30_000 }).toBe(ROUTES.length);
    await expect.poll(() => page.locator("table.data tbody tr").count(), { timeout: 30_000 }).toBe(ROUTES.length);
    const state = await page.evaluate(() => ({ xss: (window as any).__xss, imgs: document.querySelectorAll("img").length, scripts: [...document.scripts].map((s) => s.src || "inline") }));
    expect(state.xss).toBeUndefined();
    expect(state.imgs).toBe(0);
    expect(state.scripts.every((s) => s.startsWith(lk.ui))).toBe(true);
    expect(dialogs).toEqual([]);
    expect(csp).toEqual([]);
    await page.close();
  });

  it("draws the first 200 panels of 10,000 and says how many it left out", async () => {
    const page = await newPage();
    await page.goto(`${lk.ui}/d/many`);
    await check.text(page.locator(".dashboard .notice"), "9800 more panels not shown");
    await check.count(page.locator(".panel"), 200);
    await check.visible(page.locator('[data-panel-title="Panel 200"]'));
    await check.count(page.locator('[data-panel-title="Panel 201"]'), 0);
    await page.close();
  });

  it("serves an edited file edited", async () => {
    const file = join(dashDir, "grafana-export.json");
    writeFileSync(file, readFileSync(file, "utf8").replace('"title": "Request rate"', '"title": "Request rate, edited on disk"'));
    const page = await newPage();
    await page.goto(`${lk.ui}/d/http-server-export?from=now-10m&to=now`);
    await waitFor(
      "the edited title",
      async () => {
        await page.reload();
        await page.locator(".panel").first().waitFor();
        return (await page.locator('[data-panel-title="Request rate, edited on disk"]').count()) === 1;
      },
      20_000,
      500,
    );
    await check.count(page.locator('[data-panel-title="Request rate"]'), 0);
    expect(dialogs).toEqual([]);
    await page.close();
  });
});
