// Browser tests against a real lookout fed by the real WebStore (slow-payments
// scenario) and by OTLP/JSON: exemplar dot → split-view trace, trace search,
// XSS payloads, dashboard screenshots and the UI's speed figures.

import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  check,
  cleanup,
  dragAcross,
  histogramBody,
  launchBrowser,
  LOOKOUT_BIN,
  postOTLP,
  randomHex,
  RESULTS_DIR,
  ROOT,
  runTraffic,
  startLookout,
  startWebStore,
  tracesBody,
  waitFor,
  type GenSpan,
  type Lookout,
  type WebStore,
} from "./harness";

let lk: Lookout;
let ws: WebStore;
let browser: Browser;
const figures: Record<string, string> = {};

async function getJSON(path: string): Promise<any> {
  const r = await fetch(`${lk.ui}${path}`);
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.on("pageerror", (e) => console.error("page error:", e.message));
  return page;
}

beforeAll(async () => {
  mkdirSync(RESULTS_DIR, { recursive: true });
  lk = await startLookout();
  const index = await (await fetch(`${lk.ui}/d/service-health`)).text();
  if (!index.includes('id="app"')) {
    throw new Error(`${LOOKOUT_BIN} does not serve the built UI at --ui.listen (got ${index.slice(0, 120)}…): build the UI (make build) and wire internal/ui into cmd/lookout`);
  }
  ws = await startWebStore(lk);
  await runTraffic(ws, "slow-payments", 30, join(lk.dir, "traffic.log"));
  // Exemplars of the slow payments, and their traces, must have arrived.
  await waitFor("payment exemplars", async () => {
    const now = Date.now() / 1000;
    const b = await getJSON(`/prometheus/api/v1/query_exemplars?query=webstore_payment_duration_bucket&start=${now - 3600}&end=${now + 60}`);
    return (b.data ?? []).some((s: any) => s.exemplars?.length);
  });
  browser = await launchBrowser();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await ws?.proc.stop();
  await lk?.proc.stop();
  if (lk) cleanup(lk.dir);
});

describe("exemplars on the service-health dashboard", () => {
  it("clicking a dot on Payment Duration P95 opens the trace beside the dashboard with the span highlighted", async () => {
    const page = await newPage();
    await page.goto(`${lk.ui}/d/service-health?from=now-15m&to=now`);
    const panel = page.locator('[data-panel-title="Payment Duration P95"]');
    await expect.poll(async () => panel.locator(".exemplar-dot").count(), { timeout: 30_000 }).toBeGreaterThan(0);
    const dots = panel.locator(".exemplar-dot");
    const shown = await dots.count();
    const total = Number(await panel.locator(".ex-layer").getAttribute("data-total"));
    expect(shown).toBeLessThanOrEqual(total);

    // The slowest dot: the seed's "click the spike".
    const values = await dots.evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.value)));
    const best = values.indexOf(Math.max(...values));
    const dot = dots.nth(best);
    const spanId = (await dot.getAttribute("data-span-id"))!;
    const traceId = (await dot.getAttribute("data-trace-id"))!;
    expect(spanId).toMatch(/^[0-9a-f]{16}$/);
    await dot.hover();
    await check.text(panel.locator(".ex-tooltip"), traceId);
    await check.text(panel.locator(".ex-tooltip"), spanId);
    await dot.click();

    const pane = page.locator("#trace-pane .trace-view");
    await pane.locator(".wf-row").first().waitFor({ timeout: 20_000 });
    await check.attr(pane, "data-trace-id", traceId);
    const highlighted = pane.locator(".wf-row.highlighted");
    await highlighted.waitFor();
    expect(await highlighted.getAttribute("data-span-id")).toBe(spanId);
    await check.inScrollView(highlighted);
    // The exemplar was recorded inside process_payment's trace: the waterfall shows it.
    await check.count(pane.locator(".wf-span-name", { hasText: /^process_payment$/ }), 1);
    await check.exactText(pane.locator(".span-details .span-id"), spanId);
    // The dashboard stays.
    await check.visible(page.locator('[data-panel-title="Payment Duration P95"]'));
    expect(new URL(page.url()).pathname).toBe("/d/service-health");
    await page.screenshot({ path: join(RESULTS_DIR, "service-health-split-trace.png") });
    await page.close();
  });

  it("Payment Duration P95 shows the P95-or-worse dots by default, and the rest on demand", async () => {
    const page = await newPage();
    await page.goto(`${lk.ui}/d/service-health?from=now-15m&to=now`);
    const panel = page.locator('[data-panel-title="Payment Duration P95"]');
    const tail = panel.locator(".ex-tail-toggle");
    await check.visible(tail);
    expect(await tail.isChecked()).toBe(true);
    await check.text(panel.locator(".panel-tools"), "p95+ only");
    await expect.poll(async () => panel.locator(".exemplar-dot").count(), { timeout: 30_000 }).toBeGreaterThan(0);
    const layer = panel.locator(".ex-layer");
    const total = Number(await layer.getAttribute("data-total"));
    const below = Number(await layer.getAttribute("data-below-quantile"));
    expect(below).toBeGreaterThanOrEqual(0);
    expect(below).toBeLessThan(total);
    // With the toggle off every exemplar may show: none is held back.
    await tail.uncheck();
    await expect.poll(async () => layer.getAttribute("data-below-quantile")).toBe("0");
    // Other panels (not a histogram_quantile) have no such toggle.
    await check.count(page.locator('[data-panel-title="Checkout Rate by Country"] .ex-tail-toggle'), 0);
    await page.close();
  });

  it("zooms by dragging, sets ranges with the picker, and keeps them in the URL", async () => {
    const page = await newPage();
    await page.goto(`${lk.ui}/d/service-health?from=now-15m&to=now`);
    const over = page.locator('[data-panel-title="Payment Duration P95"] .u-over');
    await over.waitFor();
    const box = (await over.boundingBox())!;
    // Hover: the tooltip shows the exact value of each series at the cursor.
    // A hovered exemplar dot shows its own tooltip instead, and the dots may
    // lie anywhere at the right edge, so this panel's dots are switched off;
    // the chart is redrawn without them, so the pointer moves until the
    // redrawn chart answers.
    await page.locator('[data-panel-title="Payment Duration P95"] .ex-toggle').uncheck();
    await check.attr(page.locator('[data-panel-title="Payment Duration P95"]'), "data-exemplars", "0");
    const tip = page.locator('[data-panel-title="Payment Duration P95"] .ts-tooltip.show');
    // From the right edge, stepping left each try across the whole chart: on
    // a loaded machine the newest steps may hold no value yet ("no value").
    // The chart's box is measured again each try, as a redraw may move it.
    let tries = 0;
    await waitFor("the series tooltip", async () => {
      const b = (await over.boundingBox()) ?? box;
      const hx = b.x + b.width * (0.995 - 0.045 * (tries++ % 22));
      const hy = b.y + b.height * 0.6;
      await page.mouse.move(hx - 2, hy);
      await page.mouse.move(hx, hy);
      return (await tip.count()) > 0 && ((await tip.first().textContent()) ?? "").includes("p95");
    }, 30_000, 200);
    expect(await tip.locator(".tt-value").first().textContent()).toMatch(/^\d+(\.\d+)?(ms|s)$/);
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.5);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.5, { steps: 5 });
    await page.mouse.up();
    await waitFor("zoomed URL", async () => /^\d{13}$/.test(new URL(page.url()).searchParams.get("from") ?? ""), 10_000, 100);
    const u = new URL(page.url());
    const span = Number(u.searchParams.get("to")) - Number(u.searchParams.get("from"));
    expect(span).toBeGreaterThan(3 * 60_000);
    expect(span).toBeLessThan(6 * 60_000);
    await page.locator(".tp-button").click();
    await page.locator('.tp-quick [data-range="1h"]').click();
    await waitFor("quick range", async () => new URL(page.url()).searchParams.get("from") === "now-1h", 10_000, 100);
    await check.text(page.locator(".tp-button"), "Last 1h");
    await page.locator(".tp-button").click();
    await page.locator('.tp-abs input[name="from"]').fill("yesterday");
    await page.locator(".tp-abs button[type=submit]").click();
    await check.text(page.locator(".tp-abs .inline-error"), "bad time");
    await page.locator('.tp-abs input[name="from"]').fill("now-2h");
    await page.locator(".tp-abs button[type=submit]").click();
    await waitFor("absolute form", async () => new URL(page.url()).searchParams.get("from") === "now-2h", 10_000, 100);
    await page.close();
  });

  it("auto refresh re-queries relative ranges", async () => {
    const page = await newPage();
    let ranges = 0;
    page.on("request", (r) => r.url().includes("/prometheus/api/v1/query_range") && ranges++);
    await page.goto(`${lk.ui}/d/http-metrics?from=now-5m&to=now&refresh=5s`);
    await page.locator(".dashboard[data-first-render-ms]").waitFor({ timeout: 30_000 });
    const first = ranges;
    expect(first).toBeGreaterThan(0);
    await waitFor("an auto refresh", async () => ranges >= 2 * first, 15_000, 250);
    expect(await page.locator(".refresh-select").inputValue()).toBe("5s");
    await page.close();
  });

  it("saves a screenshot of each dashboard and measures first render", async () => {
    for (const uid of ["service-health", "http-metrics"]) {
      const page = await newPage();
      await page.goto(`${lk.ui}/d/${uid}?from=now-15m&to=now`);
      await page.locator(".dashboard[data-first-render-ms]").waitFor({ timeout: 30_000 });
      const ms = await page.locator(".dashboard").getAttribute("data-first-render-ms");
      const panels = await page.locator(".panel").count();
      figures[`dashboard first render, /d/${uid} (${panels} panels), ms after navigation start`] = ms!;
      await check.count(page.locator(".panel-status.error"), 0);
      await page.screenshot({ path: join(RESULTS_DIR, `dashboard-${uid}.png`), fullPage: true });
      await page.close();
    }
  });

  it("renders a 24-panel dashboard (both dashboards' panels) fast", async () => {
    const [a, b] = await Promise.all([getJSON("/api/dashboards/uid/service-health"), getJSON("/api/dashboards/uid/http-metrics")]);
    const shift = 50;
    const panels = [...a.dashboard.panels, ...b.dashboard.panels.map((p: any, i: number) => ({ ...p, id: 1000 + i, gridPos: { ...p.gridPos, y: p.gridPos.y + shift } }))];
    const big = { ...a.dashboard, uid: "bench-24", title: "Bench: 24 panels", panels, templating: { list: [...a.dashboard.templating.list, ...b.dashboard.templating.list.filter((v: any) => v.name === "route")] } };
    const samples: number[] = [];
    for (let i = 0; i < 3; i++) {
      const page = await newPage();
      await page.route("**/api/dashboards/uid/bench-24", (route) => route.fulfill({ json: { dashboard: big, meta: {} } }));
      await page.goto(`${lk.ui}/d/bench-24?from=now-15m&to=now`);
      await page.locator(".dashboard[data-first-render-ms]").waitFor({ timeout: 30_000 });
      expect(await page.locator(".panel").count()).toBe(24);
      samples.push(Number(await page.locator(".dashboard").getAttribute("data-first-render-ms")));
      await page.close();
    }
    samples.sort((x, y) => x - y);
    figures["dashboard first render, 24 panels (3 runs, min / median / max), ms after navigation start"] = samples.join(" / ");
  });
});

describe("explore", () => {
  it("runs PromQL, shows graph, table and exemplars, and query errors inline", async () => {
    const page = await newPage();
    await page.goto(`${lk.ui}/explore?from=now-15m&to=now`);
    await page.locator("textarea.promql").fill("sum by (le) (rate(webstore_payment_duration_bucket[5m]))");
    await page.locator(".run-query").click();
    await page.locator(".result-table table").waitFor({ timeout: 20_000 });
    await check.text(page.locator(".result-table"), 'le="10"');
    await page.locator(".exemplar-dot").first().waitFor({ timeout: 20_000 });
    await page.locator(".explore .ex-toggle").uncheck();
    await check.count(page.locator(".exemplar-dot"), 0);
    expect(new URL(page.url()).searchParams.get("exemplars")).toBe("false");
    await page.locator("textarea.promql").fill("sum(rate(webstore_payment_duration_bucket[5m]");
    await page.locator(".run-query").click();
    await check.text(page.locator(".query-error"), "parse error");
    await page.close();
  });

  // Needs Lookout's TraceQL metrics endpoints (GET /tempo/api/metrics/query_range and /query, #20).
  it("charts a TraceQL metrics query from the Tempo API with exemplar dots; a dot opens its trace", async () => {
    const page = await newPage();
    const asked: URL[] = [];
    page.on("request", (r) => r.url().includes("/tempo/api/metrics/") && asked.push(new URL(r.url())));
    const q = "{ } | rate() by (resource.service.name)";
    // As Tempo, TraceQL metrics leave out the last 30 s (spans still
    // arriving): wait until the shop's spans are older than that.
    await waitFor("the shop's spans in TraceQL metrics", async () => {
      const now = Math.floor(Date.now() / 1000);
      const b = await getJSON(`/tempo/api/metrics/query_range?q=${encodeURIComponent(q)}&start=${now - 900}&end=${now}&step=15s`);
      return JSON.stringify(b.series ?? []).includes("main-service");
    }, 90_000);
    await page.goto(`${lk.ui}/explore?from=now-15m&to=now&expr=${encodeURIComponent(q)}`);
    const explore = page.locator(".explore");
    // One series per service the shop runs, in the legend and in the instant table.
    try {
      await check.text(explore.locator(".ts-legend"), 'resource.service.name="main-service"', 30_000);
    } catch (e) {
      await page.screenshot({ path: join(RESULTS_DIR, "explore-traceql-metrics-failed.png") });
      const asks = asked.map((u) => u.pathname + u.search).join(" ");
      throw new Error(`${(e as Error).message}; the page shows ${JSON.stringify(((await explore.textContent()) ?? "").slice(0, 600))}; it asked ${asks}`);
    }
    await check.attr(explore, "data-source", "tempo");
    await check.text(explore.locator(".result-table"), 'resource.service.name="payments-service"');
    await check.text(explore.locator(".table-title"), "over the whole range");
    // Not a histogram_quantile: no "p95+ only" toggle.
    expect(await explore.locator(".ex-tail-toggle").isHidden()).toBe(true);
    const range = asked.find((u) => u.pathname === "/tempo/api/metrics/query_range")!;
    expect(range.searchParams.get("q")).toBe(q);
    expect(range.searchParams.get("step")).toMatch(/^\d+s$/);
    expect(range.searchParams.get("start")).toMatch(/^\d+$/);
    expect(range.searchParams.get("exemplars")).toBe("100");
    expect(asked.some((u) => u.pathname === "/tempo/api/metrics/query")).toBe(true);

    // The dots: a rate's exemplars are drawn on their series, at a rate above 0.
    const dots = explore.locator(".exemplar-dot");
    await dots.first().waitFor({ timeout: 20_000 });
    expect(Number(await explore.getAttribute("data-exemplars"))).toBeGreaterThan(0);
    const values = await dots.evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.value)));
    expect(values.filter((v) => !(Number.isFinite(v) && v > 0))).toEqual([]);
    await page.screenshot({ path: join(RESULTS_DIR, "explore-traceql-metrics.png") });
    // Dots a few milliseconds apart overlap, and one at the bottom of the
    // plot may lie under its axis: click one nothing covers.
    const free = await dots.evaluateAll((els) =>
      els.findIndex((e) => {
        const r = e.getBoundingClientRect();
        return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === e;
      }),
    );
    expect(free).toBeGreaterThanOrEqual(0);
    const dot = dots.nth(free);
    const traceId = (await dot.getAttribute("data-trace-id"))!;
    const spanId = (await dot.getAttribute("data-span-id"))!;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(spanId).toMatch(/^[0-9a-f]{16}$/);
    await dot.hover();
    await check.text(explore.locator(".ex-tooltip"), traceId);
    await dot.click();
    const pane = page.locator("#trace-pane .trace-view");
    await pane.locator(".wf-row").first().waitFor({ timeout: 20_000 });
    await check.attr(pane, "data-trace-id", traceId);
    expect(await pane.locator(".wf-row.highlighted").getAttribute("data-span-id")).toBe(spanId);
    // The analysis takes PromQL: the clicked dot offers no Compare with normal.
    await check.count(explore.locator(".ex-compare"), 0);
    await page.keyboard.press("Escape");
    await check.count(page.locator("#trace-pane .trace-view"), 0);

    // Exemplars off: none asked for, none drawn.
    await explore.locator(".ex-toggle").uncheck();
    await check.attr(explore, "data-exemplars", "0");
    await check.count(dots, 0);
    const lastRange = [...asked].reverse().find((u) => u.pathname === "/tempo/api/metrics/query_range")!;
    expect(lastRange.searchParams.get("exemplars")).toBe("0");

    // A shift-drag zooms instead of offering Why? (above the highest series, where no dot is).
    await dragAcross(page, explore.locator(".u-over"), 0.3, 0.6, { shift: true, y: 0.03 });
    await waitFor("zoomed URL", async () => /^\d{13}$/.test(new URL(page.url()).searchParams.get("from") ?? ""), 10_000, 100);
    expect(await explore.locator(".ts-why").isHidden()).toBe(true);

    // A refused query's message shows inline, as PromQL's do.
    await page.locator("textarea.promql").fill("{ } | rate() by (");
    await page.locator(".run-query").click();
    await check.text(page.locator(".query-error"), "400");
    await page.close();
  });
});

describe("trace search", () => {
  it("finds a slow checkout trace and opens it", async () => {
    const page = await newPage();
    // Without a query, the page opens on the time range's traces.
    await page.goto(`${lk.ui}/search?from=now-30m&to=now`);
    await page.locator(".result-row").first().waitFor({ timeout: 30_000 });
    await check.text(page.locator(".search p.muted"), "for {}");
    // By default the list is the range's slowest traces, slowest first.
    await check.text(page.locator(".search p.muted"), "slowest first");
    const first = await page.locator(".result-row td.num").allTextContents();
    const toMs = (d: string): number => {
      const m = /^(?:(\d+)m)?(\d+(?:\.\d+)?)(µs|ms|s)$/.exec(d);
      if (d === "<1ms") return 0;
      if (!m) throw new Error(`duration ${d}`);
      return Number(m[1] ?? 0) * 60_000 + Number(m[2]) * { µs: 0.001, ms: 1, s: 1000 }[m[3] as "µs" | "ms" | "s"];
    };
    const ms = first.map(toMs);
    expect(ms.every((v, i) => i === 0 || v <= ms[i - 1]!)).toBe(true);
    await page.goto(`${lk.ui}/search?from=now-30m&to=now&service=main-service&minDuration=5s`);
    await page.locator(".result-row").first().waitFor({ timeout: 30_000 });
    const durations = await page.locator(".result-row td.num").allTextContents();
    expect(durations.length).toBeGreaterThan(0);
    for (const d of durations) expect(d).toMatch(/^\d+\.\d+s$|^\dm/);
    await check.visible(page.locator(".scatter-dot").first());
    await page.locator(".result-row .open-trace").first().click();
    const pane = page.locator("#trace-pane .trace-view");
    await pane.locator(".wf-row").first().waitFor({ timeout: 20_000 });
    await check.count(pane.locator(".wf-span-name", { hasText: /^process_payment$/ }), 1);
    await check.visible(pane.locator(".wf-row.critical").first());
    await page.screenshot({ path: join(RESULTS_DIR, "search-slow-traces.png") });
    await page.close();
  });

  it("trace view: collapse/expand, error spans, copy ID, search similar traces", async () => {
    const traceId = randomHex(16);
    const now = BigInt(Date.now()) * 1_000_000n;
    const [root, a, b, c] = [randomHex(8), randomHex(8), randomHex(8), randomHex(8)];
    await postOTLP(lk, "traces", tracesBody(traceId, [
      { spanId: root, name: "GET /orders", service: "orders-api", startNs: now - 3_000_000_000n, endNs: now - 1_000_000_000n },
      { spanId: a, parentSpanId: root, name: "load_orders", service: "orders-api", startNs: now - 2_900_000_000n, endNs: now - 1_200_000_000n },
      { spanId: b, parentSpanId: a, name: "db.query.orders", service: "orders-db", startNs: now - 2_800_000_000n, endNs: now - 1_300_000_000n, error: true },
      { spanId: c, parentSpanId: root, name: "render", service: "orders-api", startNs: now - 1_150_000_000n, endNs: now - 1_050_000_000n },
    ]));
    await waitFor("trace", async () => (await fetch(`${lk.ui}/tempo/api/v2/traces/${traceId}`)).ok);
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    await ctx.grantPermissions(["clipboard-read", "clipboard-write"], { origin: lk.ui });
    const page = await ctx.newPage();
    await page.goto(`${lk.ui}/trace/${traceId}`);
    await page.locator(".trace-view[data-loaded=true]").waitFor({ timeout: 20_000 });
    await check.count(page.locator(".wf-row"), 4);
    await check.count(page.locator(".wf-row.error"), 1);
    expect(await page.locator(".wf-row.error").getAttribute("data-span-id")).toBe(b);
    // Critical path: root → load_orders → db.query.orders, and render after it.
    const critical = await page.locator(".wf-row.critical .wf-span-name").allTextContents();
    expect(critical).toEqual(["GET /orders", "load_orders", "db.query.orders", "render"]);
    await page.locator(`.wf-row[data-span-id="${a}"] .wf-toggle`).click();
    await check.count(page.locator(".wf-row"), 3);
    await page.locator(`.wf-row[data-span-id="${a}"] .wf-toggle`).click();
    await check.count(page.locator(".wf-row"), 4);
    await page.locator(`.wf-row[data-span-id="${b}"]`).click();
    await check.text(page.locator(".span-details"), "error: failed");
    await page.locator(".copy-trace").click();
    await check.text(page.locator(".copy-trace"), "Copied");
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(traceId);
    await page.locator("a", { hasText: "Search similar traces" }).click();
    await page.locator(".result-row").first().waitFor({ timeout: 20_000 });
    const u = new URL(page.url());
    expect([u.pathname, u.searchParams.get("service"), u.searchParams.get("name")]).toEqual(["/search", "orders-api", "GET /orders"]);
    await check.count(page.locator(`.result-row[data-trace-id="${traceId}"]`), 1);
    await ctx.close();
  });

  it("draws the dot of a never-received trace differently and explains it on click", async () => {
    const missing = randomHex(16);
    const now = BigInt(Date.now()) * 1_000_000n;
    await postOTLP(lk, "metrics", histogramBody("ui_missing_probe", "probe", { route: "/x" }, 3, missing, randomHex(8), now - 60_000_000_000n, now - 1_000_000_000n));
    const page = await newPage();
    await page.goto(`${lk.ui}/explore?from=now-10m&to=now&expr=ui_missing_probe_bucket`);
    const dot = page.locator(`.exemplar-dot[data-trace-id="${missing}"]`);
    await dot.waitFor({ timeout: 30_000 });
    await check.attr(dot, "class", "exemplar-dot missing");
    await dot.click();
    await check.text(page.locator("#trace-pane .trace-missing"), "never received");
    await page.close();
  });
});

describe("alerts", () => {
  it("shows exemplar evidence on firing alerts; a trace id opens the trace", async () => {
    // A slow checkout trace from the real store is the evidence.
    const now = Math.floor(Date.now() / 1000);
    const found = await getJSON(`/tempo/api/search?q=${encodeURIComponent('{ resource.service.name = "main-service" }')}&start=${now - 1800}&end=${now + 60}&minDuration=5s&limit=5`);
    // Search results drop a trace ID's leading zeros, as Tempo's do.
    const traceId: string = found.traces[0].traceID.padStart(32, "0");
    const alert = {
      labels: { alertname: "HighPaymentLatency", severity: "warning", job: '"><img src=x onerror="window.__xss=1">' },
      annotations: { summary: "Payment latency P95 above 5s", evidence_summary: "payment_provider_api 7.6 s in 5 of 5", evidence_trace_ids: `${traceId},${"ab".repeat(16)}` },
      state: "firing",
      activeAt: new Date().toISOString(),
      value: "7.9",
    };
    const page = await newPage();
    // The rule manager may not have fired yet in this short test: serve the
    // alert in the documented /api/v1/alerts shape (other endpoints stay real).
    await page.route(/\/prometheus\/api\/v1\/alerts(\?.*)?$/, (route) => route.fulfill({ json: { status: "success", data: { alerts: [alert] } } }));
    for (const path of ["/alerts", "/d/service-health?from=now-15m&to=now"]) {
      await page.goto(`${lk.ui}${path}`);
      const item = page.locator('.alert-item[data-alertname="HighPaymentLatency"]');
      await check.text(item, "payment_provider_api 7.6 s in 5 of 5");
      await check.text(item, alert.labels.job);
      await check.count(item.locator(".evidence-trace"), 2);
    }
    await page.locator(`.evidence-trace[data-trace-id="${traceId}"]`).click();
    const pane = page.locator("#trace-pane .trace-view");
    await pane.locator(".wf-row").first().waitFor({ timeout: 20_000 });
    await check.count(pane.locator(".wf-span-name", { hasText: /^process_payment$/ }), 1);
    expect(await page.evaluate(() => [(window as any).__xss, document.querySelectorAll("img").length])).toEqual([undefined, 0]);
    await page.screenshot({ path: join(RESULTS_DIR, "service-health-alert-evidence.png") });
    await page.close();
  });

  it("groups a rule's alerts under one header and folds all but three; unfolding survives a refresh", async () => {
    const mk = (alertname: string, state: string, country: string) => ({
      labels: { alertname, country, severity: "critical" },
      annotations: { summary: `${alertname} for ${country}` },
      state,
      activeAt: new Date().toISOString(),
      value: "7",
    });
    const list = [
      mk("QueueBacklog", "pending", "US"),
      ...["DE", "FR", "GB", "NL"].map((c) => mk("HighPaymentLatency", "firing", c)),
      mk("HighPaymentLatency", "pending", "JP"),
    ];
    const page = await newPage();
    let served = 0;
    await page.route(/\/prometheus\/api\/v1\/alerts(\?.*)?$/, (route) => {
      served++;
      return route.fulfill({ json: { status: "success", data: { alerts: list } } });
    });
    await page.goto(`${lk.ui}/alerts`);
    const groups = page.locator(".alert-group");
    await check.count(groups, 2);
    expect(await groups.evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.alertname))).toEqual(["HighPaymentLatency", "QueueBacklog"]);
    const hpl = page.locator('.alert-group[data-alertname="HighPaymentLatency"]');
    await check.text(hpl.locator(".alert-group-head"), "4 firing");
    await check.text(hpl.locator(".alert-group-head"), "1 pending");
    await check.count(hpl.locator(".alert-item"), 5);
    await check.count(hpl.locator(".alert-item:visible"), 3);
    await check.exactText(hpl.locator(".alert-more > summary"), "2 more HighPaymentLatency alerts");
    await hpl.locator(".alert-more > summary").click();
    await check.count(hpl.locator(".alert-item:visible"), 5);
    // Mark the drawn group, so the check below sees the redrawn one.
    await hpl.evaluate((el) => (el.dataset.drawn = "before"));
    const before = served;
    await page.locator('button[aria-label="Refresh now"]').click();
    await waitFor("the alerts to be fetched again", async () => served > before, 15_000, 100);
    await check.count(page.locator('.alert-group[data-drawn="before"]'), 0);
    await check.count(hpl.locator(".alert-item:visible"), 5);
    await check.count(page.locator('.alert-group[data-alertname="QueueBacklog"] .alert-more'), 0);
    await page.close();
  });
});

describe("untrusted text", () => {
  it("renders span names, attributes and label values as text, never markup", async () => {
    const payloads = ['<script>window.__xss="script"</script>', '"><img src=x onerror="window.__xss=\'img\'">', "<svg onload=window.__xss='svg'>"];
    const traceId = randomHex(16);
    const now = BigInt(Date.now()) * 1_000_000n;
    const root = randomHex(8);
    const spans: GenSpan[] = payloads.map((p, i) => ({
      spanId: i === 0 ? root : randomHex(8),
      parentSpanId: i === 0 ? undefined : root,
      name: p,
      service: i === 0 ? `svc${p}` : "xss-service",
      startNs: now - 2_000_000_000n + BigInt(i) * 1_000_000n,
      endNs: now - 1_000_000_000n,
      attributes: { [`key${p}`]: p },
      error: i === 2,
    }));
    await postOTLP(lk, "traces", tracesBody(traceId, spans));
    await postOTLP(lk, "metrics", histogramBody("xss_probe", `svc${payloads[1]}`, { payload: payloads[1]!, other: payloads[0]! }, 7, traceId, root, now - 60_000_000_000n, now - 1_000_000_000n));

    const page = await newPage();
    const dialogs: string[] = [];
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    const csp: string[] = [];
    page.on("console", (m) => m.text().includes("Content Security Policy") && csp.push(m.text()));
    // Explore: legend, table, exemplar tooltip with the label values.
    await page.goto(`${lk.ui}/explore?from=now-10m&to=now&expr=xss_probe_bucket`);
    await page.locator(".result-table table").waitFor({ timeout: 30_000 });
    await check.text(page.locator(".result-table"), payloads[1]!);
    await expect.poll(() => page.locator(".exemplar-dot").count(), { timeout: 15_000 }).toBeGreaterThan(0);
    await page.locator(".exemplar-dot").first().hover();
    await check.text(page.locator(".ex-tooltip"), payloads[1]!);
    // Split-view trace: span names, attributes, resource.
    await page.locator(".exemplar-dot").first().click();
    const pane = page.locator("#trace-pane .trace-view");
    await pane.locator(".wf-row").first().waitFor({ timeout: 20_000 });
    for (const p of payloads) await check.count(pane.locator(".wf-span-name", { hasText: p }), 1);
    await check.text(pane.locator(".span-details"), `key${payloads[0]}`);
    // Search list: root service names.
    await page.goto(`${lk.ui}/search?from=now-10m&to=now&q=${encodeURIComponent("{ }")}&limit=1000`);
    await page.locator(".result-row").first().waitFor({ timeout: 20_000 });
    await check.text(page.locator(".results"), `svc${payloads[0]}`);

    for (const p of [page]) {
      const state = await p.evaluate(() => ({ xss: (window as any).__xss, imgs: document.querySelectorAll("img").length, svgOnload: document.querySelectorAll("svg[onload]").length, scripts: [...document.scripts].map((s) => s.src || "inline") }));
      expect(state.xss).toBeUndefined();
      expect(state.imgs).toBe(0);
      expect(state.svgOnload).toBe(0);
      expect(state.scripts.every((s) => s.startsWith(lk.ui))).toBe(true);
    }
    expect(dialogs).toEqual([]);
    expect(csp).toEqual([]);
    await page.close();
  });
});

describe("speed", () => {
  it("click on a dot → rendered waterfall of a 300-span trace", async () => {
    const traceId = randomHex(16);
    const now = BigInt(Date.now()) * 1_000_000n;
    const t0 = now - 5_000_000_000n;
    const services = ["main-service", "payments-service", "inventory-service"];
    const spans: GenSpan[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) {
      const id = randomHex(8);
      ids.push(id);
      const parent = i === 0 ? undefined : ids[Math.floor((i - 1) / 4)];
      spans.push({ spanId: id, parentSpanId: parent, name: i === 0 ? "POST /checkout" : `op_${i}`, service: services[i % 3]!, startNs: t0 + BigInt(i) * 10_000_000n, endNs: t0 + BigInt(i) * 10_000_000n + BigInt(4_000_000_000 - i * 10_000_000), attributes: { i: String(i) }, error: i % 97 === 0 && i > 0 });
    }
    await postOTLP(lk, "traces", tracesBody(traceId, spans));
    const target = ids[250]!;
    await postOTLP(lk, "metrics", histogramBody("ui_bench_duration", "bench", { route: "/bench" }, 4, traceId, target, now - 60_000_000_000n, now - 1_000_000_000n));
    await waitFor("300-span trace", async () => (await fetch(`${lk.ui}/tempo/api/v2/traces/${traceId}`)).ok);

    const page = await newPage();
    await page.goto(`${lk.ui}/explore?from=now-10m&to=now&expr=ui_bench_duration_bucket`);
    const dot = page.locator(`.exemplar-dot[data-trace-id="${traceId}"]`);
    await dot.waitFor({ timeout: 30_000 });
    const samples: number[] = [];
    for (let i = 0; i < 7; i++) {
      const ms = await page.evaluate(
        ([tid, sid]) =>
          new Promise<number>((resolve, reject) => {
            const el = document.querySelector<HTMLElement>(`.exemplar-dot[data-trace-id="${tid}"]`);
            if (!el) return reject(new Error("no dot"));
            const t = performance.now();
            el.click();
            const check = () => {
              const row = document.querySelector(`#trace-pane .trace-view[data-loaded="true"] .wf-row.highlighted[data-span-id="${sid}"]`);
              if (row) requestAnimationFrame(() => resolve(performance.now() - t));
              else if (performance.now() - t > 10_000) reject(new Error("waterfall not rendered"));
              else requestAnimationFrame(check);
            };
            check();
          }),
        [traceId, target] as const,
      );
      samples.push(ms);
      await page.locator("#trace-pane .wf-row").first().waitFor();
      expect(await page.locator("#trace-pane .wf-row").count()).toBeLessThan(300); // virtualised
      await page.locator("#trace-pane .close-trace").click();
    }
    samples.sort((a, b) => a - b);
    const med = samples[Math.floor(samples.length / 2)]!;
    figures["click on exemplar dot → rendered waterfall, 300-span trace (7 clicks, min / median / max), ms"] = `${samples[0]!.toFixed(0)} / ${med.toFixed(0)} / ${samples[samples.length - 1]!.toFixed(0)}`;
    await page.close();
  });

  it("a 5,000-span trace renders and scrolls", async () => {
    const traceId = randomHex(16);
    const now = BigInt(Date.now()) * 1_000_000n;
    const spans: GenSpan[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const id = randomHex(8);
      ids.push(id);
      spans.push({ spanId: id, parentSpanId: i ? ids[Math.floor((i - 1) / 8)] : undefined, name: `span_${i}`, service: `svc-${i % 5}`, startNs: now - 11_000_000_000n + BigInt(i) * 1_000_000n, endNs: now - 1_000_000_000n - BigInt(i) * 1_000_000n });
    }
    for (let i = 0; i < spans.length; i += 1000) await postOTLP(lk, "traces", tracesBody(traceId, spans.slice(i, i + 1000)));
    await waitFor("5,000-span trace", async () => {
      const r = await fetch(`${lk.ui}/tempo/api/v2/traces/${traceId}`);
      if (!r.ok) return false;
      const b = (await r.json()) as any;
      return b.trace.resourceSpans.reduce((n: number, rs: any) => n + rs.scopeSpans.reduce((m: number, ss: any) => m + ss.spans.length, 0), 0) === 5000;
    });
    const page = await newPage();
    const t = Date.now();
    await page.goto(`${lk.ui}/trace/${traceId}?span=${ids[4999]}`);
    await page.locator(".trace-view[data-loaded=true] .wf-row.highlighted").waitFor({ timeout: 30_000 });
    const rendered = Number(await page.locator(".trace-view").getAttribute("data-render-ms"));
    expect(await page.locator(".wf-row").count()).toBeLessThan(200);
    const scrollMs = await page.evaluate(async () => {
      const sc = document.querySelector(".wf-scroll")!;
      const t0 = performance.now();
      for (let y = 0; y < 5000 * 24; y += 2400) {
        sc.scrollTop = y;
        await new Promise((r) => requestAnimationFrame(r));
      }
      return (performance.now() - t0) / 50;
    });
    figures["5,000-span trace: fetch + parse + first paint (data-render-ms), ms"] = String(rendered);
    figures["5,000-span trace: page load to highlighted row, ms (wall clock, test side)"] = String(Date.now() - t);
    figures["5,000-span trace: mean frame while scrolling 50 screens, ms"] = scrollMs.toFixed(1);
    await page.close();
  });

  it("reports the gzipped bundle size", () => {
    const dir = join(ROOT, "internal/ui/dist/assets");
    let raw = 0;
    let gz = 0;
    for (const f of readdirSync(dir)) {
      const b = readFileSync(join(dir, f));
      raw += statSync(join(dir, f)).size;
      gz += gzipSync(b, { level: 9 }).length;
    }
    figures["UI bundle (internal/ui/dist/assets: JS + CSS), bytes raw / gzipped"] = `${raw} / ${gz}`;
    expect(gz).toBeLessThan(300 * 1024);
  });
});

afterAll(() => {
  if (Object.keys(figures).length === 0) return;
  const lines = Object.entries(figures).map(([k, v]) => `| ${k} | ${v} |`);
  const out = join(RESULTS_DIR, "ui-figures.md");
  writeFileSync(out, ["| measurement | value |", "|---|---|", ...lines, ""].join("\n"));
  console.log(readFileSync(out, "utf8"));
});
