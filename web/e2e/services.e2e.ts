// Browser test of /services against a real lookout fed over OTLP/HTTP JSON by
// three made-up apps, one per way of reporting requests: a FastAPI-like app
// (the older HTTP conventions: http.server.duration in milliseconds, the
// route template in http.target, exemplars whose traces are sent too), an
// app on the stable HTTP conventions (http.server.request.duration in
// seconds), and an app that sends only span metrics, as the Collector's
// spanmetrics connector names them. Each sends five cumulative points a
// minute apart (so rate() has two samples in every chart window of the last
// minutes) with 10% of requests answered 500. The page must list all
// three with their source, rates, a 10% error ratio and p95s in seconds, and
// the FastAPI-like app's latency chart must carry exemplar dots in seconds
// whose click opens the trace beside the page.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { check, cleanup, launchBrowser, LOOKOUT_BIN, postOTLP, randomHex, RESULTS_DIR, startLookout, tracesBody, waitFor, type Lookout } from "./harness";

let lk: Lookout;
let browser: Browser;

type AttrValue = string | number;

const attrs = (o: Record<string, AttrValue>) => Object.entries(o).map(([key, v]) => ({ key, value: typeof v === "number" ? { intValue: String(v) } : { stringValue: v } }));

interface Exemplar {
  value: number;
  traceId: string;
  spanId: string;
}

/** HistSeries is one histogram series: its attributes, its bucket counts at the first point and its exemplars. */
interface HistSeries {
  attrs: Record<string, AttrValue>;
  /** buckets are the counts per bucket added by every point (point i holds i + 1 times them). */
  buckets: number[];
  /** mean is the mean observation, for the sum. */
  mean: number;
  exemplars: Exemplar[][]; // per point
}

/** One app's metrics at one point in time, as an OTLP/JSON request body. */
function metricsBody(service: string, metrics: unknown[]): unknown {
  return { resourceMetrics: [{ resource: { attributes: attrs({ "service.name": service, "telemetry.sdk.language": "python" }) }, scopeMetrics: [{ scope: { name: "lookout-services-e2e" }, metrics }] }] };
}

function histogram(name: string, unit: string, bounds: number[], series: HistSeries[], point: number, startNs: bigint, timeNs: bigint): unknown {
  const factor = point + 1; // cumulative: every point adds as many requests
  return {
    name,
    unit,
    histogram: {
      aggregationTemporality: 2,
      dataPoints: series.map((s) => {
        const counts = s.buckets.map((c) => c * factor);
        if (counts.length !== bounds.length + 1) throw new Error(`${name}: ${counts.length} bucket counts for ${bounds.length} bounds`);
        const count = counts.reduce((a, b) => a + b, 0);
        return {
          attributes: attrs(s.attrs),
          startTimeUnixNano: String(startNs),
          timeUnixNano: String(timeNs),
          count: String(count),
          sum: s.mean * count,
          bucketCounts: counts.map(String),
          explicitBounds: bounds,
          exemplars: (s.exemplars[point] ?? []).map((e) => ({ timeUnixNano: String(timeNs - 1_000_000_000n), asDouble: e.value, traceId: e.traceId, spanId: e.spanId })),
        };
      }),
    },
  };
}

function counter(name: string, series: { attrs: Record<string, AttrValue>; value: number }[], point: number, startNs: bigint, timeNs: bigint): unknown {
  return {
    name,
    sum: {
      aggregationTemporality: 2,
      isMonotonic: true,
      dataPoints: series.map((s) => ({ attributes: attrs(s.attrs), startTimeUnixNano: String(startNs), timeUnixNano: String(timeNs), asInt: String(s.value * (point + 1)) })),
    },
  };
}

/** buckets spreads n observations over bucket indexes as {index: count}. */
function buckets(size: number, at: Record<number, number>): number[] {
  return Array.from({ length: size }, (_, i) => at[i] ?? 0);
}

// The FastAPI-like app: opentelemetry-instrumentation-fastapi's defaults.
const FASTAPI_BOUNDS = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000];
const FASTAPI_ROUTE = "/items/{item_id}";
// The stable conventions' default bounds, in seconds.
const STABLE_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
const STABLE_ROUTE = "/api/orders/{id}";
// A route no page may read as markup.
const HOSTILE_ROUTE = '/x/"><img src=x onerror="window.__xss=1">';
// The spanmetrics connector's default bounds, in milliseconds.
const SPAN_BOUNDS = [2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000];

/** fastapiExemplars are the FastAPI-like app's exemplars per point (the last two), with their traces sent as well. */
const fastapiExemplars: Exemplar[][] = [
  [],
  [],
  [],
  [{ value: 230, traceId: randomHex(16), spanId: randomHex(8) }],
  [
    { value: 180, traceId: randomHex(16), spanId: randomHex(8) },
    { value: 420, traceId: randomHex(16), spanId: randomHex(8) },
  ],
];

async function sendAll(): Promise<void> {
  const nowMs = Date.now();
  const ns = (ms: number) => BigInt(ms) * 1_000_000n;
  const start = ns(nowMs - 300_000);
  const times = [241_000, 181_000, 121_000, 61_000, 1_000].map((ago) => ns(nowMs - ago));

  // The exemplars' traces: one server span each, as long as its exemplar says.
  for (const [point, list] of fastapiExemplars.entries()) {
    for (const e of list) {
      const end = times[point]! - 1_000_000_000n;
      await postOTLP(lk, "traces", tracesBody(e.traceId, [{ spanId: e.spanId, name: `GET ${FASTAPI_ROUTE}`, service: "fastapi-app", startNs: end - BigInt(Math.round(e.value * 1e6)), endNs: end, attributes: { "http.target": FASTAPI_ROUTE, "http.method": "GET" } }]));
    }
  }

  const common = { "http.scheme": "http", "http.host": "127.0.0.1:8000", "http.flavor": "1.1", "net.host.port": 8000 };
  for (const point of times.keys()) {
    const t = times[point]!;
    // 90 fast answers and 10 slower 500s per point: p95 lies at 250 ms.
    const fastapi: HistSeries[] = [
      { attrs: { ...common, "http.method": "GET", "http.status_code": 200, "http.target": FASTAPI_ROUTE }, buckets: buckets(16, { 3: 9, 4: 27, 5: 27, 6: 18, 7: 9 }), mean: 60, exemplars: fastapiExemplars.map((l) => l.filter((e) => e.value < 250)) },
      { attrs: { ...common, "http.method": "GET", "http.status_code": 500, "http.target": FASTAPI_ROUTE }, buckets: buckets(16, { 7: 5, 8: 5 }), mean: 300, exemplars: fastapiExemplars.map((l) => l.filter((e) => e.value >= 250)) },
    ];
    await postOTLP(lk, "metrics", metricsBody("fastapi-app", [histogram("http.server.duration", "ms", FASTAPI_BOUNDS, fastapi, point, start, t)]));

    const stable: HistSeries[] = [
      { attrs: { "http.request.method": "POST", "http.route": STABLE_ROUTE, "http.response.status_code": 200, "url.scheme": "http" }, buckets: buckets(15, { 2: 9, 3: 27, 4: 27, 5: 18, 6: 9 }), mean: 0.06, exemplars: [] },
      { attrs: { "http.request.method": "POST", "http.route": STABLE_ROUTE, "http.response.status_code": 500, "url.scheme": "http" }, buckets: buckets(15, { 6: 5, 7: 5 }), mean: 0.3, exemplars: [] },
      { attrs: { "http.request.method": "GET", "http.route": HOSTILE_ROUTE, "http.response.status_code": 200, "url.scheme": "http" }, buckets: buckets(15, { 1: 3 }), mean: 0.008, exemplars: [] },
    ];
    await postOTLP(lk, "metrics", metricsBody("stable-app", [histogram("http.server.request.duration", "s", STABLE_BOUNDS, stable, point, start, t)]));

    const server = { "span.name": "GET /report", "span.kind": "SPAN_KIND_SERVER" };
    const client = { "span.name": "SELECT reports", "span.kind": "SPAN_KIND_CLIENT", "status.code": "STATUS_CODE_UNSET" };
    const spans: HistSeries[] = [
      { attrs: { ...server, "status.code": "STATUS_CODE_UNSET" }, buckets: buckets(17, { 5: 9, 6: 45, 7: 27, 8: 9 }), mean: 90, exemplars: [] },
      { attrs: { ...server, "status.code": "STATUS_CODE_ERROR" }, buckets: buckets(17, { 8: 5, 9: 5 }), mean: 400, exemplars: [] },
      { attrs: client, buckets: buckets(17, { 4: 50 }), mean: 8, exemplars: [] },
    ];
    await postOTLP(
      lk,
      "metrics",
      metricsBody("traces-only-app", [
        histogram("traces.span.metrics.duration", "ms", SPAN_BOUNDS, spans, point, start, t),
        counter(
          "traces.span.metrics.calls",
          spans.map((s) => ({ attrs: s.attrs, value: s.buckets.reduce((a, b) => a + b, 0) })),
          point,
          start,
          t,
        ),
      ]),
    );
  }
}

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.on("pageerror", (e) => console.error("page error:", e.message));
  return page;
}

/** stat reads a figure of a table row from its cell's data-value. */
async function stat(page: Page, service: string, name: string): Promise<number> {
  const v = await page.locator(`tr.svc-row[data-service="${service}"]`).first().locator(`td[data-stat="${name}"]`).getAttribute("data-value");
  if (v === null || v === "") throw new Error(`${service} has no ${name}`);
  return Number(v);
}

beforeAll(async () => {
  mkdirSync(RESULTS_DIR, { recursive: true });
  lk = await startLookout();
  const index = await (await fetch(`${lk.ui}/services`)).text();
  if (!index.includes('id="app"')) throw new Error(`${LOOKOUT_BIN} does not serve the built UI at /services (got ${index.slice(0, 120)}…): run make build`);
  await sendAll();
  await waitFor("the three apps' metrics", async () => {
    const r = await fetch(`${lk.ui}/prometheus/api/v1/query?query=${encodeURIComponent("count by (job) (http_server_duration_count or http_server_request_duration_count or traces_span_metrics_calls)")}`);
    const b = (await r.json()) as { data?: { result?: unknown[] } };
    return (b.data?.result?.length ?? 0) >= 3;
  });
  browser = await launchBrowser();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await lk?.proc.stop();
  if (lk) cleanup(lk.dir);
});

describe("services", () => {
  it("lists each app with its source, rate, 10% errors and p95 in seconds; a row's chart has exemplar dots in seconds that open the trace", async () => {
    const page = await newPage();
    const dialogs: string[] = [];
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(`${lk.ui}/services?from=now-15m&to=now`);
    const fastapi = page.locator('tr.svc-row[data-service="fastapi-app"]');
    const stable = page.locator(`tr.svc-row[data-service="stable-app"][data-operation="${STABLE_ROUTE}"]`);
    const spans = page.locator('tr.svc-row[data-service="traces-only-app"]');
    await fastapi.first().waitFor({ timeout: 30_000 });
    // Every source's query parsed and ran, including those no app here feeds (RPC).
    await check.count(page.locator(".svc-errors .error-box"), 0);

    // One row per operation, tagged with the source it was read from.
    await check.count(fastapi, 1);
    await check.exactText(fastapi.locator(".src-tag"), "HTTP (older, ms)");
    await check.exactText(fastapi.locator(".svc-op-name"), FASTAPI_ROUTE);
    await check.exactText(fastapi.locator(".svc-method"), "GET");
    await check.count(stable, 1);
    await check.exactText(stable.locator(".src-tag"), "HTTP (stable)");
    await check.exactText(stable.locator(".svc-method"), "POST");
    // Span metrics: the server spans only, not the client span.
    await check.count(spans, 1);
    await check.exactText(spans.locator(".src-tag"), "span metrics");
    await check.exactText(spans.locator(".svc-op-name"), "GET /report");

    for (const svc of ["fastapi-app", "stable-app", "traces-only-app"]) {
      const row = svc === "stable-app" ? `stable-app"][data-operation="${STABLE_ROUTE}` : svc;
      expect(await stat(page, row, "rate"), `${svc} rate`).toBeGreaterThan(0);
      expect(await stat(page, row, "errors"), `${svc} error ratio`).toBeCloseTo(0.1, 2);
      // p95 lies at the 250 ms (400 ms for span metrics) bucket bound: a
      // figure in milliseconds read as seconds would be 1000 times that.
      const p95 = await stat(page, row, "p95");
      expect(p95, `${svc} p95`).toBeGreaterThan(0.1);
      expect(p95, `${svc} p95`).toBeLessThan(0.5);
      const text = (await page.locator(`tr.svc-row[data-service="${row}"]`).first().locator('td[data-stat="p95"]').textContent()) ?? "";
      expect(text, `${svc} p95 as shown`).toMatch(/^\d+(\.\d+)?ms$/);
    }
    await check.exactText(fastapi.locator('td[data-stat="errors"]'), "10.0%");

    // The hostile route is text, and an operation without errors shows 0%, not nothing.
    const hostile = page.locator('tr.svc-row[data-service="stable-app"][data-method="GET"]');
    await check.exactText(hostile.locator(".svc-op-name"), HOSTILE_ROUTE);
    await check.exactText(hostile.locator('td[data-stat="errors"]'), "0.0%");
    expect(await page.evaluate(() => ({ xss: (window as any).__xss, imgs: document.querySelectorAll("img").length }))).toEqual({ xss: undefined, imgs: 0 });

    // Clicking the FastAPI-like app's row: latency quantiles with exemplar dots in seconds.
    await fastapi.click();
    const latency = page.locator('[data-panel-title="Latency"]');
    await expect.poll(() => latency.locator(".exemplar-dot").count(), { timeout: 30_000 }).toBeGreaterThan(0);
    expect(new URL(page.url()).searchParams.get("service")).toBe("fastapi-app");
    await check.text(page.locator(".svc-detail-title"), FASTAPI_ROUTE);
    await check.text(latency.locator(".ts-legend"), "p95");
    await check.visible(page.locator('[data-panel-title="Requests and errors / s"] .u-over'));
    await check.visible(page.locator('[data-panel-title="Error ratio"] .u-over'));
    const dots = latency.locator(".exemplar-dot");
    const values = await dots.evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.value)));
    for (const v of values) {
      expect(v, "exemplar value in seconds").toBeLessThan(20);
      expect(v, "exemplar value in seconds").toBeGreaterThan(0.1);
    }
    const sent = new Set(fastapiExemplars.flat().map((e) => e.traceId));
    const traceId = (await dots.first().getAttribute("data-trace-id"))!;
    expect(sent.has(traceId)).toBe(true);
    await dots.first().click();
    const pane = page.locator("#trace-pane .trace-view");
    await pane.locator(".wf-row").first().waitFor({ timeout: 20_000 });
    await check.attr(pane, "data-trace-id", traceId);
    await check.text(pane.locator(".wf-span-name").first(), `GET ${FASTAPI_ROUTE}`);
    expect(new URL(page.url()).pathname).toBe("/services");
    await page.screenshot({ path: join(RESULTS_DIR, "services.png") });
    expect(dialogs).toEqual([]);
    await page.close();
  });

  it("filters, sorts by a column, and charts a whole service from its span metrics", async () => {
    const page = await newPage();
    await page.goto(`${lk.ui}/services?from=now-15m&to=now`);
    await page.locator("tr.svc-row").first().waitFor({ timeout: 30_000 });
    await check.count(page.locator("tr.svc-row"), 4);

    // Sorting by p95, slowest first: the hostile route (8 ms) comes last.
    await page.locator('th[data-key="p95"] button').click();
    await check.attr(page.locator('th[data-key="p95"]'), "aria-sort", "descending");
    const p95s = await page.locator('tr.svc-row td[data-stat="p95"]').evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.value)));
    expect(p95s).toEqual([...p95s].sort((a, b) => b - a));
    await check.exactText(page.locator("tr.svc-row").last().locator(".svc-op-name"), HOSTILE_ROUTE);

    await page.locator(".svc-filter").fill("span metrics");
    await check.count(page.locator("tr.svc-row"), 1);
    expect(new URL(page.url()).searchParams.get("q")).toBe("span metrics");
    await page.locator('tr.svc-row[data-service="traces-only-app"] .svc-name').click();
    await check.text(page.locator(".svc-detail-title"), "all operations");
    await check.text(page.locator(".svc-detail-title .src-tag"), "span metrics");
    const latency = page.locator('[data-panel-title="Latency"]');
    await check.text(latency.locator(".ts-legend"), "p99");
    await waitFor("the span-metrics latency chart", async () => ((await latency.locator(".panel-status").textContent()) ?? "x") === "", 15_000, 200);

    // The selection is in the URL: a reload shows the same charts.
    await page.reload();
    await check.text(page.locator(".svc-detail-title"), "traces-only-app");
    await check.count(page.locator("tr.svc-row"), 1);

    // Nothing matching: the page says so.
    await page.locator(".svc-filter").fill("no-such-service");
    await check.text(page.locator(".svc-no-match"), "no-such-service");

    // A range before the apps started: the page says which metrics it looks for.
    await page.goto(`${lk.ui}/services?from=now-3h&to=now-2h`);
    await check.text(page.locator(".svc-empty"), "No request metrics between");
    for (const m of ["http_server_request_duration_count", "http_server_duration_count", "rpc_server_call_duration_count", "rpc_server_duration_count", "traces_span_metrics_calls"]) await check.text(page.locator(".svc-help"), m);
    await check.count(page.locator("tr.svc-row"), 0);
    await page.close();
  });

  it("the HTTP Metrics dashboard shows both HTTP conventions, in seconds", async () => {
    const page = await newPage();
    // The apps' points are a minute apart: a 6 h range makes the panels'
    // $__rate_interval (step + 15 s) wide enough for two of them.
    await page.goto(`${lk.ui}/d/http-metrics?from=now-6h&to=now`);
    await page.locator(".dashboard[data-first-render-ms]").waitFor({ timeout: 30_000 });
    await check.count(page.locator(".panel-status.error"), 0);
    for (const title of ["Request Rate by Service and Route", "Errors by Service and Route", "Latency P95 by Service and Route"]) {
      const legend = page.locator(`[data-panel-title="${title}"] .ts-legend`);
      await check.text(legend, "fastapi-app");
      await check.text(legend, "stable-app");
    }
    await page.close();
  });

  it("lists an app that sends only traces, from the span metrics Lookout derives", async () => {
    // No metrics at all from derived-app: its row comes from the span
    // metrics Lookout derives from its server spans (flushed every 15 s;
    // a rate needs two flushes), 10% of them errors.
    const page = await newPage();
    const row = page.locator('tr.svc-row[data-service="derived-app"]');
    await waitFor(
      "derived-app on /services",
      async () => {
        for (let i = 0; i < 10; i++) {
          const end = BigInt(Date.now()) * 1_000_000n;
          await postOTLP(lk, "traces", tracesBody(randomHex(16), [{ spanId: randomHex(8), name: "GET /derived", service: "derived-app", startNs: end - 120_000_000n, endNs: end, error: i === 0 }]));
        }
        await page.goto(`${lk.ui}/services?from=now-5m&to=now`);
        await page.locator("tr.svc-row").first().waitFor({ timeout: 10_000 });
        return (await row.count()) > 0 && (await stat(page, "derived-app", "rate").catch(() => 0)) > 0;
      },
      120_000,
      3_000,
    );
    await check.exactText(row.locator(".src-tag"), "span metrics");
    await check.exactText(row.locator(".svc-op-name"), "GET /derived");
    expect(await stat(page, "derived-app", "errors")).toBeCloseTo(0.1, 1);
    // 120 ms spans: p95 within the (100, 200] ms bucket, in seconds.
    const p95 = await stat(page, "derived-app", "p95");
    expect(p95).toBeGreaterThan(0.1);
    expect(p95).toBeLessThanOrEqual(0.2);
    await page.close();
  }, 180_000);
});
