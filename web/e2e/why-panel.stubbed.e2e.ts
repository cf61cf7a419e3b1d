// Unit-level browser test of the "Why?" panel's RENDERING, with a STUBBED
// analysis: page.route answers /prometheus/api/lookout/analyze with fixed
// answers (the contract's example, an error, a malformed body), so this file
// checks what the UI sends and draws, not what the analysis finds. Everything
// else is real: a lookout binary fed by OTLP/JSON, its Prometheus and Tempo
// APIs; the dashboard JSON is served by page.route too, to have a template
// variable in the panel's query. The end-to-end test against the real
// endpoint is why.e2e.ts.

import type { Browser, Page, Request, Route } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { check, cleanup, dragAcross, histogramBody, launchBrowser, LOOKOUT_BIN, postOTLP, randomHex, RESULTS_DIR, startLookout, tracesBody, waitFor, type Lookout } from "./harness";

const ANALYZE = /\/prometheus\/api\/lookout\/analyze(\?.*)?$/;

let lk: Lookout;
let browser: Browser;
const traceId = randomHex(16);
const rootSpan = randomHex(8);
let exemplarMs = 0; // the probe exemplar's time

const dashboard = {
  uid: "why-stub",
  title: "Why stub",
  time: { from: "now-15m", to: "now" },
  templating: { list: [{ name: "route", type: "custom", query: "/pay,/other", includeAll: true, current: { value: "/pay" } }] },
  panels: [{ id: 1, type: "timeseries", title: "Probe", gridPos: { x: 0, y: 0, w: 24, h: 10 }, fieldConfig: { defaults: { unit: "s" } }, targets: [{ refId: "A", expr: 'ui_why_probe_bucket{route=~"$route"}', exemplar: true }] }],
};
const wantQuery = 'ui_why_probe_bucket{route=~"/pay"}';

const xss = '"><img src=x onerror="window.__xss=1">';
const otherIds = Array.from({ length: 6 }, () => randomHex(16));
const answer = {
  status: "success",
  data: {
    verdict: "payment_provider_api self time 0.09 s → 7.7 s in 48 of 50 slow traces; payment_method=paypal 100% vs 21%",
    threshold: 5,
    spike: { traces: 50, exemplars: 12 },
    baseline: { traces: 200 },
    findings: [
      { kind: "span", service: "payments-service", span: "payment_provider_api", spikeValue: 7.7, baselineValue: 0.09, coverage: 0.96, score: 0.93, traceIDs: [traceId, ...otherIds] },
      { kind: "attribute", attribute: "payment_method", value: "paypal", spikeValue: 1.0, baselineValue: 0.21, score: 0.71, traceIDs: [otherIds[0]] },
      { kind: "attribute", attribute: "quantity", numeric: true, spikeValue: 500, baselineValue: 2, score: 0.5, traceIDs: [otherIds[1]] },
      { kind: "attribute", attribute: "note", value: xss, spikeValue: 0.5, baselineValue: 0.055, score: 0.2, traceIDs: [] },
      { kind: "error", service: "payments-service", span: "payment_provider_api", value: "card declined", spikeValue: 0.3, baselineValue: 0, score: 0.3, traceIDs: [traceId] },
      { kind: "resource", value: "a kind from a newer server" },
    ],
  },
};

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.route("**/api/dashboards/uid/why-stub", (route) => route.fulfill({ json: { dashboard, meta: {} } }));
  return page;
}

/** stubAnalyze answers the analyze endpoint with answers in turn (the last repeats) and records the requests. */
async function stubAnalyze(page: Page, answers: ((route: Route) => Promise<void>)[]): Promise<Request[]> {
  const seen: Request[] = [];
  await page.route(ANALYZE, async (route) => {
    seen.push(route.request());
    await answers[Math.min(seen.length, answers.length) - 1]!(route);
  });
  return seen;
}

/** openProbe opens the stub dashboard and waits for the probe's exemplar dot. */
async function openProbe(page: Page) {
  await page.goto(`${lk.ui}/d/why-stub?from=now-15m&to=now`);
  const panel = page.locator('[data-panel-title="Probe"]');
  await panel.locator(`.exemplar-dot[data-trace-id="${traceId}"]`).waitFor({ timeout: 30_000 });
  return { panel, over: panel.locator(".u-over") };
}

function params(r: Request): Record<string, string> {
  return Object.fromEntries(new URL(r.url()).searchParams);
}

beforeAll(async () => {
  mkdirSync(RESULTS_DIR, { recursive: true });
  lk = await startLookout();
  const index = await (await fetch(`${lk.ui}/d/why-stub`)).text();
  if (!index.includes('id="app"')) throw new Error(`${LOOKOUT_BIN} does not serve the built UI (got ${index.slice(0, 120)}…): run make build`);
  const now = BigInt(Date.now()) * 1_000_000n;
  const child = randomHex(8);
  await postOTLP(
    lk,
    "traces",
    tracesBody(traceId, [
      { spanId: rootSpan, name: "POST /checkout", service: "main-service", startNs: now - 9_000_000_000n, endNs: now - 1_000_000_000n },
      { spanId: child, parentSpanId: rootSpan, name: "payment_provider_api", service: "payments-service", startNs: now - 8_500_000_000n, endNs: now - 1_200_000_000n },
    ]),
  );
  const exNs = now - 1_000_000_000n;
  exemplarMs = Number(exNs / 1_000_000n);
  await postOTLP(lk, "metrics", histogramBody("ui_why_probe", "main-service", { route: "/pay" }, 8, traceId, rootSpan, now - 120_000_000_000n, exNs));
  await waitFor("the probe trace", async () => (await fetch(`${lk.ui}/tempo/api/v2/traces/${traceId}`)).ok);
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await lk?.proc.stop();
  if (lk) cleanup(lk.dir);
});

describe("Why? panel rendering (stubbed analysis)", () => {
  it("shift-drag → Why? sends the panel's query and region, then draws verdict, counts, bars and tables; a trace opens in the split view", async () => {
    const page = await newPage();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const seen = await stubAnalyze(page, [
      async (route) => {
        await gate; // hold the answer to see the loading state
        await route.fulfill({ json: answer });
      },
    ]);
    const { over } = await openProbe(page);
    await dragAcross(page, over, 0.3, 0.999, { shift: true });
    const why = page.locator('[data-panel-title="Probe"] .ts-why');
    await check.visible(why);
    await page.screenshot({ path: join(RESULTS_DIR, "why-region-selected.png") });
    // A region, not a zoom: the range stays.
    expect(new URL(page.url()).searchParams.get("from")).toBe("now-15m");
    // A refresh rebuilds the chart; the region and its action stay, at the same times.
    const region = [await why.getAttribute("data-start"), await why.getAttribute("data-end")];
    const rendered = Number(await page.locator(".dashboard").getAttribute("data-rendered"));
    await page.locator('button[aria-label="Refresh now"]').click();
    await check.attr(page.locator(".dashboard"), "data-rendered", String(rendered + 1));
    await check.visible(why);
    expect([await why.getAttribute("data-start"), await why.getAttribute("data-end")]).toEqual(region);
    await why.click();
    const panel = page.locator("#why-pane .why-panel");
    await check.attr(panel, "data-state", "loading");
    expect(seen).toHaveLength(1);
    const p = params(seen[0]!);
    expect(Object.keys(p).sort()).toEqual(["end", "query", "start"]);
    expect(p.query).toBe(wantQuery);
    const [start, end] = [Number(p.start), Number(p.end)];
    // 0.3 → 0.999 of a 15-minute panel: about 10.5 minutes, ending about now.
    expect(end - start).toBeGreaterThan(9.5 * 60);
    expect(end - start).toBeLessThan(11.5 * 60);
    expect(Math.abs(end - Date.now() / 1000)).toBeLessThan(60);
    await check.text(panel.locator(".why-query"), wantQuery);
    release();
    await check.attr(panel, "data-state", "done");
    await check.exactText(panel.locator(".why-verdict"), answer.data.verdict);
    const counts = Object.fromEntries(await panel.locator(".why-count").evaluateAll((els) => els.map((e) => [(e as HTMLElement).dataset.count, e.textContent])));
    expect(counts).toEqual({ "spike-traces": "50", exemplars: "12", "baseline-traces": "200", threshold: "5" });

    // Span: two bars, mean self time in seconds, the larger one full width.
    const span = panel.locator('article.why-finding[data-kind="span"]');
    await check.count(span, 1);
    await check.text(span.locator(".why-finding-name"), "payment_provider_api");
    await check.text(span.locator(".why-finding-name"), "in 96% of spike traces");
    expect(await span.locator(".why-bar-value").allTextContents()).toEqual(["7.70s", "90.0ms"]);
    const widths = await span.locator(".why-bar").evaluateAll((els) => els.map((e) => parseFloat((e as HTMLElement).style.width)));
    expect(widths[0]).toBe(100);
    expect(widths[1]).toBeCloseTo((0.09 / 7.7) * 100, 3);
    // Five example traces, the other two folded.
    await check.count(span.locator(".why-traces > .why-trace"), 5);
    await check.exactText(span.locator(".why-more > summary"), "2 more");

    // Attributes: shares as percentages, a numeric attribute's medians as numbers, values as text.
    const rows = await panel.locator(".why-attributes tr.why-finding").evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
    expect(rows).toEqual([
      ["payment_method", "paypal", "100%", "21%"],
      ["quantity", "median", "500", "2"],
      ["note", xss, "50%", "5.5%"],
    ]);
    // Errors: spike vs baseline share and the commonest message.
    const errs = await panel.locator(".why-errors tr.why-finding").evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
    expect(errs).toEqual([["payment_provider_apipayments-service", "30%", "0%", "card declined"]]);
    await check.text(panel, "1 finding of a kind this page cannot show.");
    expect(await page.evaluate(() => [(window as any).__xss, document.querySelectorAll("img").length])).toEqual([undefined, 0]);
    await page.screenshot({ path: join(RESULTS_DIR, "why-panel-stubbed.png") });

    // A finding's trace opens beside the dashboard, as an exemplar dot's does; the panel stays.
    await span.locator(`.why-trace[data-trace-id="${traceId}"]`).click();
    const pane = page.locator("#trace-pane .trace-view");
    await check.attr(pane, "data-trace-id", traceId);
    await pane.locator(".wf-row").first().waitFor({ timeout: 20_000 });
    await check.count(pane.locator(".wf-span-name", { hasText: /^payment_provider_api$/ }), 1);
    const u = new URL(page.url());
    expect([u.pathname, u.searchParams.get("trace")]).toEqual(["/d/why-stub", traceId]);
    await check.visible(panel);
    await check.visible(page.locator('[data-panel-title="Probe"] .u-over'));
    await page.screenshot({ path: join(RESULTS_DIR, "why-panel-stubbed-split.png") });
    // Escape closes the trace, then the panel.
    await page.keyboard.press("Escape");
    await check.count(page.locator("#trace-pane .trace-view"), 0);
    await check.visible(panel);
    await page.keyboard.press("Escape");
    await check.count(page.locator("#why-pane .why-panel"), 0);
    await page.close();
  });

  it("a plain drag still zooms and offers no Why?", async () => {
    const page = await newPage();
    const seen = await stubAnalyze(page, [(route) => route.fulfill({ json: answer })]);
    const { panel, over } = await openProbe(page);
    await dragAcross(page, over, 0.3, 0.6);
    await waitFor("zoomed URL", async () => /^\d{13}$/.test(new URL(page.url()).searchParams.get("from") ?? ""), 10_000, 100);
    expect(await panel.locator(".ts-why").isHidden()).toBe(true);
    expect(seen).toHaveLength(0);
    await page.close();
  });

  it("on Explore, shift-drag → Why? asks about the query the graph shows", async () => {
    const page = await newPage();
    const seen = await stubAnalyze(page, [(route) => route.fulfill({ json: answer })]);
    await page.goto(`${lk.ui}/explore?from=now-15m&to=now&expr=${encodeURIComponent(wantQuery)}`);
    await page.locator(`.exemplar-dot[data-trace-id="${traceId}"]`).waitFor({ timeout: 30_000 });
    // Typed but not run: Why? still asks about what the graph shows.
    await page.locator("textarea.promql").fill("up");
    await dragAcross(page, page.locator(".explore .u-over"), 0.3, 0.999, { shift: true });
    await page.locator(".explore .ts-why").click();
    await check.attr(page.locator("#why-pane .why-panel"), "data-state", "done");
    expect(params(seen[0]!).query).toBe(wantQuery);
    // Another page closes the panel: it answered a question about this one.
    await page.locator("nav a", { hasText: "Search" }).click();
    await check.count(page.locator("#why-pane .why-panel"), 0);
    await page.close();
  });

  it("a clicked dot opens its trace and offers Compare with normal: 2 minutes before to 1 minute after it, no threshold", async () => {
    const page = await newPage();
    const seen = await stubAnalyze(page, [(route) => route.fulfill({ json: answer })]);
    const { panel } = await openProbe(page);
    const dot = panel.locator(`.exemplar-dot[data-trace-id="${traceId}"]`);
    const dotSec = Number(await dot.getAttribute("data-time"));
    expect(Math.abs(dotSec * 1000 - exemplarMs)).toBeLessThan(1000);
    await dot.click();
    await check.attr(page.locator("#trace-pane .trace-view"), "data-trace-id", traceId);
    // The popup stays open after the click (and after the chart's resize for the split view).
    const compare = panel.locator(".ex-tooltip.pinned .ex-compare");
    await check.visible(compare);
    await compare.click();
    await check.attr(page.locator("#why-pane .why-panel"), "data-state", "done");
    expect(seen).toHaveLength(1);
    const p = params(seen[0]!);
    expect(Object.keys(p).sort()).toEqual(["end", "query", "start"]);
    expect(p.query).toBe(wantQuery);
    expect(Number(p.start)).toBeCloseTo(dotSec - 120, 3);
    // One minute after the dot, or now if that is sooner.
    expect(Number(p.end)).toBeGreaterThan(dotSec);
    expect(Number(p.end)).toBeLessThanOrEqual(dotSec + 60.001);
    await check.count(panel.locator(".ex-tooltip.pinned"), 0);
    await page.close();
  });

  it("shows an error answer as an error; a retry, an empty baseline, no findings and a malformed answer", async () => {
    const page = await newPage();
    const message = 'invalid parameter "query": 1:10: parse error: unexpected end of input';
    const seen = await stubAnalyze(page, [
      (route) => route.fulfill({ status: 400, json: { status: "error", errorType: "bad_data", error: message } }),
      (route) => route.fulfill({ json: { status: "success", data: { verdict: "payment_provider_api self time 2.9 s (no baseline traces to compare with)", spike: { traces: 3, exemplars: 3 }, baseline: { traces: 0 }, findings: [{ kind: "span", service: "payments-service", span: "payment_provider_api", spikeValue: 2.9, baselineValue: 0, score: 1, traceIDs: [traceId] }] } } }),
      (route) => route.fulfill({ json: { status: "success", data: { verdict: "no exemplars in this region", spike: { traces: 0, exemplars: 0 }, baseline: { traces: 12 }, findings: [] } } }),
      (route) => route.fulfill({ json: { status: "success", data: { findings: [] } } }),
    ]);
    const { over } = await openProbe(page);
    const ask = async (from: number) => {
      await dragAcross(page, over, from, 0.999, { shift: true });
      await page.locator('[data-panel-title="Probe"] .ts-why').click();
    };
    await ask(0.3);
    const panel = page.locator("#why-pane .why-panel");
    await check.attr(panel, "data-state", "error");
    await check.exactText(panel.locator(".why-error"), `Cannot analyze this region: 400 ${message}`);
    await panel.locator(".why-retry").click();
    await check.attr(panel, "data-state", "done");
    expect(params(seen[0]!)).toEqual(params(seen[1]!)); // the retry asks the same question
    // No baseline traces: the 0 the server sends is no baseline value.
    await check.visible(panel.locator(".why-no-baseline"));
    expect(await panel.locator('article.why-finding[data-kind="span"] .why-bar-value').allTextContents()).toEqual(["2.90s", "–"]);
    await check.exactText(panel.locator('.why-count[data-count="threshold"]'), "–");
    // No findings: the verdict says why.
    await ask(0.25);
    await check.exactText(panel.locator(".why-verdict"), "no exemplars in this region");
    await check.attr(panel, "data-state", "done");
    await check.exactText(panel.locator(".why-none"), "No findings.");
    await check.count(panel.locator(".why-no-baseline"), 0);
    // A malformed success is an error too, naming what is missing.
    await ask(0.2);
    await check.attr(panel, "data-state", "error");
    await check.text(panel.locator(".why-error"), "bad analysis answer: no verdict");
    expect(seen).toHaveLength(4);
    await page.close();
  });
});
