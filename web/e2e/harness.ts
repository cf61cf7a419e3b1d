// Test harness: starts the real lookout and webstore binaries on free loopback
// ports with temp dirs, sends OTLP/JSON, and launches Debian's Chromium through
// playwright-core (never a downloaded browser).

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, createWriteStream } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type Browser, type Locator, type Page } from "playwright-core";

export const ROOT = resolve(import.meta.dirname, "../..");
export const RESULTS_DIR = join(ROOT, "test-results");
export const LOOKOUT_BIN = process.env.LOOKOUT_BIN || join(ROOT, "bin/lookout");
export const WEBSTORE_BIN = process.env.WEBSTORE_BIN || join(ROOT, "bin/webstore");
export const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

/** freePort asks the kernel for a free loopback port. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      s.close(() => (typeof addr === "object" && addr ? res(addr.port) : rej(new Error("no port"))));
    });
  });
}

export interface Proc {
  child: ChildProcess;
  stop(): Promise<void>;
}

function start(bin: string, args: string[], env: Record<string, string>, logFile: string): Proc {
  if (!existsSync(bin)) throw new Error(`${bin} does not exist: run "make build" first (or set LOOKOUT_BIN / WEBSTORE_BIN)`);
  const log = createWriteStream(logFile);
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  // Both streams share one file: neither may end it; the exit does.
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  child.once("close", () => log.end());
  return {
    child,
    stop: () =>
      new Promise<void>((res) => {
        if (child.exitCode !== null || child.signalCode !== null) return res();
        const t = setTimeout(() => child.kill("SIGKILL"), 15_000);
        child.once("exit", () => {
          clearTimeout(t);
          res();
        });
        child.kill("SIGTERM");
      }),
  };
}

/** waitFor polls fn until it returns a truthy value or the timeout passes. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 60_000, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ""}`);
}

export interface Lookout {
  ui: string; // http://127.0.0.1:port
  otlpHttp: string;
  otlpGrpcPort: number;
  dir: string;
  proc: Proc;
}

/** startLookout starts bin/lookout on free ports with a temp data dir; extraArgs are added to its flags. */
export async function startLookout(extraArgs: string[] = []): Promise<Lookout> {
  const dir = mkdtempSync(join(tmpdir(), "lookout-ui-e2e-"));
  const [grpc, http, prom, tempo, ui] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const proc = start(
    LOOKOUT_BIN,
    ["--data-dir", join(dir, "data"), "--otlp.grpc-listen", `127.0.0.1:${grpc}`, "--otlp.http-listen", `127.0.0.1:${http}`, "--prometheus.listen", `127.0.0.1:${prom}`, "--tempo.listen", `127.0.0.1:${tempo}`, "--ui.listen", `127.0.0.1:${ui}`, ...extraArgs],
    {},
    join(dir, "lookout.log"),
  );
  const base = `http://127.0.0.1:${ui}`;
  await waitFor("lookout UI", async () => (await fetch(`${base}/prometheus/api/v1/query?query=1`)).ok, 60_000, 250).catch(async (e) => {
    await proc.stop();
    throw new Error(`${e.message} (log: ${join(dir, "lookout.log")})`);
  });
  return { ui: base, otlpHttp: `http://127.0.0.1:${http}`, otlpGrpcPort: grpc, dir, proc };
}

export interface WebStore {
  main: string;
  proc: Proc;
}

export async function startWebStore(lk: Lookout): Promise<WebStore> {
  const [main, pay, prov, inv] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const proc = start(
    WEBSTORE_BIN,
    ["serve", "--main-listen", `127.0.0.1:${main}`, "--payments-listen", `127.0.0.1:${pay}`, "--provider-listen", `127.0.0.1:${prov}`, "--inventory-listen", `127.0.0.1:${inv}`, "--data-dir", join(lk.dir, "webstore")],
    { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${lk.otlpGrpcPort}`, OTEL_EXPORTER_OTLP_PROTOCOL: "grpc", OTEL_METRIC_EXPORT_INTERVAL: "1000", OTEL_BSP_SCHEDULE_DELAY: "500" },
    join(lk.dir, "webstore.log"),
  );
  const base = `http://127.0.0.1:${main}`;
  await waitFor("webstore main-service", async () => (await fetch(`${base}/healthz`)).ok, 60_000, 250);
  return { main: base, proc };
}

/** runTraffic runs `webstore traffic` to completion. */
export function runTraffic(ws: WebStore, scenario: string, requests: number, logFile: string): Promise<void> {
  return new Promise((res, rej) => {
    const p = start(WEBSTORE_BIN, ["traffic", "--target", ws.main, "--scenario", scenario, "--requests", String(requests), "--rate", "20"], {}, logFile);
    p.child.once("exit", (code) => (code === 0 ? res() : rej(new Error(`webstore traffic exited ${code} (log: ${logFile})`))));
  });
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
}

/** postOTLP sends an OTLP/JSON request to lookout's HTTP receiver. */
export async function postOTLP(lk: Lookout, signal: "traces" | "metrics", body: unknown): Promise<void> {
  const res = await fetch(`${lk.otlpHttp}/v1/${signal}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`POST /v1/${signal}: ${res.status} ${await res.text()}`);
}

export function cleanup(dir: string): void {
  if (!process.env.KEEP_E2E_DIR) rmSync(dir, { recursive: true, force: true });
}

// ---- OTLP/JSON builders ----

export function randomHex(bytes: number): string {
  let s = "";
  for (let i = 0; i < bytes; i++) s += Math.floor(Math.random() * 256).toString(16).padStart(2, "0");
  return s;
}

export interface GenSpan {
  spanId: string;
  parentSpanId?: string;
  name: string;
  service: string;
  startNs: bigint;
  endNs: bigint;
  attributes?: Record<string, string>;
  error?: boolean;
}

const kvs = (o: Record<string, string> = {}) => Object.entries(o).map(([key, v]) => ({ key, value: { stringValue: v } }));

export function tracesBody(traceId: string, spans: GenSpan[]): unknown {
  const bySvc = new Map<string, GenSpan[]>();
  for (const s of spans) bySvc.set(s.service, [...(bySvc.get(s.service) ?? []), s]);
  return {
    resourceSpans: [...bySvc].map(([svc, ss]) => ({
      resource: { attributes: kvs({ "service.name": svc }) },
      scopeSpans: [
        {
          scope: { name: "lookout-ui-e2e" },
          spans: ss.map((s) => ({
            traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId ?? "",
            name: s.name,
            kind: 2,
            startTimeUnixNano: String(s.startNs),
            endTimeUnixNano: String(s.endNs),
            attributes: kvs(s.attributes),
            status: s.error ? { code: 2, message: "failed" } : { code: 0 },
          })),
        },
      ],
    })),
  };
}

/** histogramBody builds a cumulative histogram point with one exemplar. */
export function histogramBody(name: string, service: string, attrs: Record<string, string>, value: number, traceId: string, spanId: string, startNs: bigint, timeNs: bigint, count = 1): unknown {
  return {
    resourceMetrics: [
      {
        resource: { attributes: kvs({ "service.name": service }) },
        scopeMetrics: [
          {
            scope: { name: "lookout-ui-e2e" },
            metrics: [
              {
                name,
                unit: "s",
                histogram: {
                  aggregationTemporality: 2,
                  dataPoints: [
                    {
                      attributes: kvs(attrs),
                      startTimeUnixNano: String(startNs),
                      timeUnixNano: String(timeNs),
                      count: String(count),
                      sum: value * count,
                      bucketCounts: ["0", String(count), "0"],
                      explicitBounds: [0.5, 100],
                      exemplars: [{ timeUnixNano: String(timeNs), asDouble: value, traceId, spanId }],
                    },
                  ],
                },
              },
            ],
          },
        ],
      },
    ],
  };
}

/**
 * dragAcross drags over a chart's plot (its .u-over) from one fraction of its
 * width to another at a fraction `y` of its height (mid height unless told),
 * holding Shift when asked: a plain drag zooms, a shift-drag selects a region
 * for "Why?". Start where no exemplar dot is: a press on a dot is the dot's,
 * not the chart's.
 */
export async function dragAcross(page: Page, over: Locator, from: number, to: number, opts: { shift?: boolean; y?: number } = {}): Promise<void> {
  const box = await over.boundingBox();
  if (!box) throw new Error(`${over} is not visible`);
  const y = box.y + box.height * (opts.y ?? 0.5);
  if (opts.shift) await page.keyboard.down("Shift");
  await page.mouse.move(box.x + box.width * from, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * to, y, { steps: 8 });
  await page.mouse.up();
  if (opts.shift) await page.keyboard.up("Shift");
}

// ---- polling assertions (playwright-core has no test matchers) ----


async function eventually(what: string, fn: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      if (await fn()) return;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`expected ${what}${last ? ` (${last})` : ""}`);
}

export const check = {
  /** text waits until loc's text contains s; a failure says what it last read. */
  text: async (loc: Locator, s: string, timeoutMs = 15_000) => {
    let seen: string | null = null;
    try {
      await eventually(`${loc} to contain text ${JSON.stringify(s)}`, async () => (seen = (await loc.first().textContent()) ?? "").includes(s), timeoutMs);
    } catch (e) {
      throw new Error(`${(e as Error).message}; it last read ${seen === null ? "nothing" : JSON.stringify((seen as string).slice(0, 400))}`);
    }
  },
  exactText: (loc: Locator, s: string) => eventually(`${loc} to have text ${JSON.stringify(s)}`, async () => ((await loc.first().textContent()) ?? "").trim() === s),
  count: (loc: Locator, n: number) => eventually(`${loc} to match ${n} elements`, async () => (await loc.count()) === n),
  attr: (loc: Locator, name: string, v: string) => eventually(`${loc} to have ${name}=${v}`, async () => (await loc.getAttribute(name)) === v),
  visible: (loc: Locator) => loc.first().waitFor({ state: "visible", timeout: 15_000 }),
  /** inScrollView checks that the element lies inside its scrolling ancestor's visible box. */
  inScrollView: (loc: Locator) =>
    eventually(`${loc} to be scrolled into view`, () =>
      loc.first().evaluate((el) => {
        const sc = el.closest(".wf-scroll") ?? document.documentElement;
        const a = el.getBoundingClientRect();
        const b = sc.getBoundingClientRect();
        return a.top >= b.top - 1 && a.bottom <= b.bottom + 1;
      }),
    ),
};
