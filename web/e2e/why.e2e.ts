// Browser test of "Why?" end to end: a real lookout fed by the real WebStore
// (normal traffic, then the slow-payments incident), the service-health
// dashboard, a shift-drag over the incident on Payment Duration P95, and the
// answer of the real /prometheus/api/lookout/analyze endpoint in the side
// panel. Nothing here is stubbed: the error case rewrites the request the
// page sends into one the real server must refuse, and checks the page shows
// the server's own message. (why-panel.stubbed.e2e.ts checks the rendering
// of fixed answers.)

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page, Request } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { check, cleanup, dragAcross, launchBrowser, LOOKOUT_BIN, RESULTS_DIR, runTraffic, startLookout, startWebStore, waitFor, type Lookout, type WebStore } from "./harness";

const ANALYZE = /\/prometheus\/api\/lookout\/analyze(\?.*)?$/;
const PANEL = '[data-panel-title="Payment Duration P95"]';

let lk: Lookout;
let ws: WebStore;
let browser: Browser;

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.on("pageerror", (e) => console.error("page error:", e.message));
  return page;
}

/**
 * askWhy opens service-health, shift-drags from 40% of Payment Duration
 * P95's width to its right edge (the traffic of this test's last minutes),
 * clicks Why? and returns the analyze request the page sent.
 */
async function askWhy(page: Page): Promise<Request> {
  await page.goto(`${lk.ui}/d/service-health?from=now-15m&to=now`);
  const panel = page.locator(PANEL);
  await expect.poll(async () => panel.locator(".exemplar-dot").count(), { timeout: 30_000 }).toBeGreaterThan(0);
  await dragAcross(page, panel.locator(".u-over"), 0.4, 0.999, { shift: true });
  const why = panel.locator(".ts-why");
  await check.visible(why);
  const sent = page.waitForRequest(ANALYZE);
  await why.click();
  return sent;
}

interface Answer {
  status: string;
  errorType?: string;
  error?: string;
  data?: { verdict: string; spike?: { traces?: number }; baseline?: { traces?: number } };
}

/** answerOf decodes an analyze answer, failing with what came back when it is not JSON (e.g. the endpoint's 404 on an older binary). */
function answerOf(status: number, text: string): Answer {
  try {
    return JSON.parse(text) as Answer;
  } catch {
    throw new Error(`analyze answered ${status} ${JSON.stringify(text.slice(0, 200))}, not JSON: does ${LOOKOUT_BIN} serve /prometheus/api/lookout/analyze?`);
  }
}

beforeAll(async () => {
  mkdirSync(RESULTS_DIR, { recursive: true });
  lk = await startLookout();
  const index = await (await fetch(`${lk.ui}/d/service-health`)).text();
  if (!index.includes('id="app"')) throw new Error(`${LOOKOUT_BIN} does not serve the built UI (got ${index.slice(0, 120)}…): run make build`);
  ws = await startWebStore(lk);
  // Normal traffic first, so the analysis has something to compare the incident with.
  await runTraffic(ws, "normal", 60, join(lk.dir, "traffic-normal.log"));
  await runTraffic(ws, "slow-payments", 30, join(lk.dir, "traffic-slow.log"));
  await waitFor("payment exemplars", async () => {
    const now = Date.now() / 1000;
    const r = await fetch(`${lk.ui}/prometheus/api/v1/query_exemplars?query=webstore_payment_duration_bucket&start=${now - 3600}&end=${now + 60}`);
    const b = (await r.json()) as { data?: { exemplars?: unknown[] }[] };
    return (b.data ?? []).some((s) => s.exemplars?.length);
  });
  browser = await launchBrowser();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await ws?.proc.stop();
  await lk?.proc.stop();
  if (lk) cleanup(lk.dir);
});

describe("Why? against the real analysis", () => {
  it("shift-drag over the incident → Why? shows the server's verdict and its spike and baseline counts", async () => {
    const page = await newPage();
    const answered = page.waitForResponse(ANALYZE);
    const req = await askWhy(page);
    const res = await answered;
    const p = new URL(req.url()).searchParams;
    // The panel's first query, as the panel runs it (variables substituted), over the selected region.
    expect(p.get("query")).toContain("webstore_payment_duration_bucket");
    expect(p.get("query")).not.toContain("$");
    const [start, end] = [Number(p.get("start")), Number(p.get("end"))];
    expect(end - start).toBeGreaterThan(8 * 60);
    expect(end - start).toBeLessThan(10 * 60);
    expect(new URL(page.url()).searchParams.get("from")).toBe("now-15m"); // a region, not a zoom
    const body = answerOf(res.status(), await res.text());
    expect(res.status(), `analyze answered ${res.status()}: ${body.error ?? ""}`).toBe(200);
    expect(body.status).toBe("success");

    const panel = page.locator("#why-pane .why-panel");
    await waitFor("the Why? panel's answer", async () => (await panel.getAttribute("data-state")) !== "loading", 60_000, 200);
    const state = await panel.getAttribute("data-state");
    if (state !== "done") throw new Error(`the Why? panel is in state ${state}: ${await panel.locator(".why-body").textContent()}`);
    const verdict = ((await panel.locator(".why-verdict").textContent()) ?? "").trim();
    expect(verdict.length).toBeGreaterThan(0);
    expect(verdict).toBe(body.data!.verdict.trim());
    const spike = (await panel.locator('.why-count[data-count="spike-traces"]').textContent()) ?? "";
    const baseline = (await panel.locator('.why-count[data-count="baseline-traces"]').textContent()) ?? "";
    expect(spike).toMatch(/^\d+$/);
    expect(baseline).toMatch(/^\d+$/);
    expect([Number(spike), Number(baseline)]).toEqual([body.data!.spike?.traces, body.data!.baseline?.traces]);
    await page.screenshot({ path: join(RESULTS_DIR, "why-service-health.png") });
    await page.close();
  });

  it("shows the real server's error answer as an error message", async () => {
    const page = await newPage();
    // The page's request, with a query no PromQL parser accepts: the real server answers it.
    let refused = "";
    await page.route(ANALYZE, (route) => {
      const u = new URL(route.request().url());
      u.searchParams.set("query", "sum(rate(");
      refused = u.toString();
      return route.continue({ url: refused });
    });
    await askWhy(page);
    const panel = page.locator("#why-pane .why-panel");
    await waitFor("the Why? panel's answer", async () => (await panel.getAttribute("data-state")) !== "loading", 60_000, 200);
    expect(await panel.getAttribute("data-state")).toBe("error");
    // What the same request gets from the server, asked directly.
    const direct = await fetch(refused);
    const body = answerOf(direct.status, await direct.text());
    expect([direct.status, body.status, body.errorType]).toEqual([400, "error", "bad_data"]);
    expect(body.error).toBeTruthy();
    await check.exactText(panel.locator(".why-error"), `Cannot analyze this region: 400 ${body.error}`);
    await page.close();
  });
});
