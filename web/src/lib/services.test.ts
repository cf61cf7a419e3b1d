import { describe, expect, it } from "vitest";
import type { VectorSample } from "./prom";
import {
  cells,
  chartQueries,
  chartWindow,
  filterRows,
  mergeSources,
  parseTable,
  scaleExemplars,
  selectRow,
  selectService,
  serviceSources,
  sortRows,
  sourceById,
  SOURCES,
  tableQuery,
  tableWindow,
  type ServiceRow,
  type SourceId,
} from "./services";

/** sample is one element of a tableQuery answer. */
const sample = (stat: string, value: string, labels: Record<string, string>): VectorSample => ({ metric: { lookout_stat: stat, ...labels }, value: [1700000000, value] });

/** stats answers every figure of one operation. */
function stats(labels: Record<string, string>, v: { rate: string; errors?: string; p50: string; p95: string; p99: string }): VectorSample[] {
  const out = [sample("rate", v.rate, labels), sample("p50", v.p50, labels), sample("p95", v.p95, labels), sample("p99", v.p99, labels)];
  if (v.errors !== undefined) out.push(sample("errors", v.errors, labels));
  return out;
}

function row(service: string, source: SourceId, operation: string, rate = 1, extra: Partial<ServiceRow> = {}): ServiceRow {
  return { service, source, operation, method: "", kind: "", matchers: [], rate, errorRatio: 0, p50: 0.01, p95: 0.02, p99: 0.03, ...extra };
}

describe("SOURCES", () => {
  it("are in order of preference: stable HTTP, older HTTP, RPC, older RPC, span metrics", () => {
    expect(SOURCES.map((s) => s.id)).toEqual(["http", "http-old", "rpc", "rpc-old", "spans"]);
    expect(SOURCES.map((s) => s.toSeconds)).toEqual([1, 0.001, 1, 0.001, 0.001]);
  });
});

describe("tableQuery", () => {
  it("asks for rate, errors and three quantiles in one query, with both metric spellings and the window", () => {
    const q = tableQuery(sourceById("http-old"), 1800);
    for (const stat of ["rate", "errors", "p50", "p95", "p99"]) expect(q).toContain(`"lookout_stat", "${stat}"`);
    expect(q).toContain("rate(http_server_duration_count[30m]) or rate(http_server_duration_milliseconds_count[30m])");
    expect(q).toContain('rate(http_server_duration_count{http_status_code=~"5.."}[30m])');
    expect(q).toContain("histogram_quantile(0.95, sum by (le, job, http_route, http_target, http_method) (rate(http_server_duration_bucket[30m]) or rate(http_server_duration_milliseconds_bucket[30m])))");
    expect(q).toContain("sum by (job, http_route, http_target, http_method)");
  });

  it("selects span metrics' calls counter and their error status", () => {
    const q = tableQuery(sourceById("spans"), 300);
    expect(q).toContain("rate(traces_span_metrics_calls[5m]) or rate(traces_span_metrics_calls_total[5m])");
    expect(q).toContain('traces_span_metrics_calls{status_code="STATUS_CODE_ERROR"}');
    expect(q).toContain("traces_span_metrics_duration_bucket");
  });

  it("counts only server-error gRPC codes as errors of the older RPC metrics", () => {
    expect(tableQuery(sourceById("rpc-old"), 300)).toContain('rpc_grpc_status_code=~"2|4|12|13|14|15"');
    expect(tableQuery(sourceById("rpc"), 300)).toContain('rpc_server_call_duration_count{error_type!=""}');
  });
});

describe("windows", () => {
  it("the table spans the range, at least 5 minutes; the charts at least 4 minutes", () => {
    expect(tableWindow(60 * 60_000)).toBe(3600);
    expect(tableWindow(60_000)).toBe(300);
    expect(chartWindow(10)).toBe(240);
    expect(chartWindow(300)).toBe(360);
  });
});

describe("parseTable", () => {
  it("scales the older HTTP conventions' milliseconds into seconds", () => {
    const rows = parseTable(sourceById("http-old"), stats({ job: "fastapi-app", http_target: "/items/{item_id}", http_method: "GET" }, { rate: "2", errors: "0.2", p50: "60", p95: "230", p99: "480" }));
    expect(rows).toHaveLength(1);
    const r = rows[0]!;
    expect(r).toMatchObject({ service: "fastapi-app", source: "http-old", operation: "/items/{item_id}", method: "GET", rate: 2 });
    expect(r.errorRatio).toBeCloseTo(0.1);
    expect(r.p50).toBeCloseTo(0.06);
    expect(r.p95).toBeCloseTo(0.23);
    expect(r.p99).toBeCloseTo(0.48);
  });

  it("leaves the stable conventions' seconds as they are", () => {
    const [r] = parseTable(sourceById("http"), stats({ job: "stable-app", http_route: "/api/orders/{id}", http_request_method: "POST" }, { rate: "1", errors: "0.1", p50: "0.05", p95: "0.2", p99: "0.4" }));
    expect([r!.operation, r!.method, r!.p50, r!.p95, r!.p99]).toEqual(["/api/orders/{id}", "POST", 0.05, 0.2, 0.4]);
  });

  it("names the older HTTP operation by http_route, else by http_target", () => {
    const src = sourceById("http-old");
    const v = { rate: "1", p50: "1", p95: "1", p99: "1" };
    const rows = parseTable(src, [
      ...stats({ job: "java-app", http_route: "/owners/{id}", http_method: "GET" }, v),
      ...stats({ job: "python-app", http_target: "/items/{item_id}", http_method: "GET" }, v),
      ...stats({ job: "both", http_route: "/a/{x}", http_target: "/a/1", http_method: "GET" }, v),
    ]);
    const byService = Object.fromEntries(rows.map((r) => [r.service, r]));
    expect(byService["java-app"]!.operation).toBe("/owners/{id}");
    expect(byService["python-app"]!.operation).toBe("/items/{item_id}");
    expect(byService["both"]!.operation).toBe("/a/{x}");
    // The chart selects exactly the row's series: absent labels as empty.
    expect(byService["python-app"]!.matchers).toEqual(['http_route=""', 'http_target="/items/{item_id}"', 'http_method="GET"']);
  });

  it("gives an error ratio of 0 when there is no error series, and none when there were no requests", () => {
    const rows = parseTable(sourceById("http"), [
      ...stats({ job: "ok-app", http_route: "/" }, { rate: "3", p50: "0.1", p95: "0.2", p99: "0.3" }),
      ...stats({ job: "idle-app", http_route: "/" }, { rate: "0", p50: "NaN", p95: "NaN", p99: "NaN" }),
    ]);
    const ok = rows.find((r) => r.service === "ok-app")!;
    const idle = rows.find((r) => r.service === "idle-app")!;
    expect(ok.errorRatio).toBe(0);
    expect(cells(ok).errors).toBe("0.0%");
    expect(idle.errorRatio).toBeNull();
    expect([idle.p50, idle.p95, idle.p99]).toEqual([null, null, null]);
    expect(cells(idle).errors).toBe("–");
    expect(cells(idle).p95).toBe("–");
  });

  it("joins RPC service and method, and keeps span kinds", () => {
    const v = { rate: "1", p50: "1", p95: "1", p99: "1" };
    const [rpc] = parseTable(sourceById("rpc-old"), stats({ job: "grpc-app", rpc_service: "shop.Cart", rpc_method: "Add" }, v));
    expect(rpc!.operation).toBe("shop.Cart/Add");
    const [span] = parseTable(sourceById("spans"), stats({ job: "worker", span_name: "process", span_kind: "SPAN_KIND_CONSUMER" }, v));
    expect([span!.operation, span!.kind, span!.p95]).toEqual(["process", "SPAN_KIND_CONSUMER", 0.001]);
  });
});

describe("mergeSources", () => {
  it("prefers stable HTTP to the older conventions for the same service, keeping other services' older ones", () => {
    const merged = mergeSources([row("dup", "http-old", "/a"), row("dup", "http", "/a"), row("dup", "http-old", "/b"), row("old", "http-old", "/x")]);
    expect(merged.map((r) => `${r.service} ${r.source} ${r.operation}`)).toEqual(["dup http /a", "old http-old /x"]);
  });

  it("keeps HTTP and RPC of one service, the newer RPC over the older", () => {
    const merged = mergeSources([row("both", "rpc-old", "a.B/C"), row("both", "http-old", "/"), row("both", "rpc", "a.B/C"), row("grpc", "rpc-old", "a.B/D")]);
    expect(serviceSources(merged)).toEqual(
      new Map<string, SourceId[]>([
        ["both", ["http-old", "rpc"]],
        ["grpc", ["rpc-old"]],
      ]),
    );
  });

  it("reads span metrics only for services that send none of the request metrics", () => {
    const merged = mergeSources([row("app", "spans", "GET /", 1, { kind: "SPAN_KIND_SERVER" }), row("app", "http", "/"), row("traces-only", "spans", "GET /x", 1, { kind: "SPAN_KIND_SERVER" })]);
    expect(merged.map((r) => `${r.service} ${r.source}`)).toEqual(["app http", "traces-only spans"]);
  });

  it("of span metrics keeps server and consumer spans when a service has any, all spans otherwise", () => {
    const merged = mergeSources([
      row("api", "spans", "GET /", 1, { kind: "SPAN_KIND_SERVER" }),
      row("api", "spans", "SELECT", 1, { kind: "SPAN_KIND_CLIENT" }),
      row("api", "spans", "consume", 1, { kind: "SPAN_KIND_CONSUMER" }),
      row("batch", "spans", "run", 1, { kind: "SPAN_KIND_INTERNAL" }),
      row("batch", "spans", "upload", 1, { kind: "SPAN_KIND_CLIENT" }),
    ]);
    expect(merged.map((r) => `${r.service} ${r.operation}`)).toEqual(["api GET /", "api consume", "batch run", "batch upload"]);
    expect(selectService(merged, "api")!.matchers).toEqual(['job="api"', 'span_kind=~"SPAN_KIND_CONSUMER|SPAN_KIND_SERVER"']);
    expect(selectService(merged, "batch")!.matchers).toEqual(['job="batch"']);
    expect(cells(merged[1]!).kind).toBe("consumer");
    expect(cells(merged[2]!).kind).toBe("internal");
    expect(cells(merged[0]!).kind).toBe("");
  });
});

describe("charts", () => {
  it("divide millisecond quantiles by 1000 but ask Why? in the histogram's own unit", () => {
    const [r] = parseTable(sourceById("http-old"), stats({ job: "fastapi-app", http_target: "/items/{item_id}", http_method: "GET" }, { rate: "1", p50: "1", p95: "1", p99: "1" }));
    const q = chartQueries(selectRow(r!), 240);
    expect(q.latency.map((t) => t.legendFormat)).toEqual(["p50", "p95", "p99"]);
    const sel = 'job="fastapi-app", http_route="", http_target="/items/{item_id}", http_method="GET"';
    expect(q.latency[1]!.expr).toBe(`histogram_quantile(0.95, sum by (le) (rate(http_server_duration_bucket{${sel}}[4m]) or rate(http_server_duration_milliseconds_bucket{${sel}}[4m]))) / 1000`);
    expect(q.p95).toBe(q.latency[1]!.expr.replace(/ \/ 1000$/, ""));
    expect(q.exemplars).toBe(`http_server_duration_bucket{${sel}} or http_server_duration_milliseconds_bucket{${sel}}`);
    expect(q.requests[1]!.expr).toContain('http_status_code=~"5.."');
    expect(q.errorRatio[0]!.expr).toMatch(/^\(sum\(.*\) or vector\(0\)\) \/ sum\(/);
  });

  it("leave seconds unscaled", () => {
    const q = chartQueries({ service: "s", source: "http", matchers: ['job="s"'], title: "" }, 240);
    expect(q.latency[0]!.expr).toBe('histogram_quantile(0.5, sum by (le) (rate(http_server_request_duration_bucket{job="s"}[4m]) or rate(http_server_request_duration_seconds_bucket{job="s"}[4m])))');
  });

  it("scale exemplar values of millisecond histograms into seconds", () => {
    const dots = [{ value: 230, traceId: "a" }];
    expect(scaleExemplars(sourceById("http-old"), dots)).toEqual([{ value: 0.23, traceId: "a" }]);
    expect(scaleExemplars(sourceById("spans"), dots)[0]!.value).toBeCloseTo(0.23);
    expect(scaleExemplars(sourceById("http"), dots)).toEqual(dots);
    expect(dots[0]!.value).toBe(230); // the input is not changed
  });

  it("selects a whole service from its preferred source", () => {
    const rows = [row("s", "rpc", "a.B/C"), row("s", "http", "/")];
    expect(selectService(rows, "s")).toMatchObject({ source: "http", matchers: ['job="s"'] });
    expect(selectService(rows, "gone")).toBeNull();
  });
});

describe("hostile label values", () => {
  const evil = '"}) or vector(1) # <img src=x onerror="alert(1)">\\\n';
  const rows = parseTable(sourceById("http"), stats({ job: `svc${evil}`, http_route: `/r${evil}`, http_request_method: "<b>GET</b>" }, { rate: "1", p50: "1", p95: "1", p99: "1" }));

  it("are shown verbatim as text", () => {
    const c = cells(rows[0]!);
    expect(c.service).toBe(`svc${evil}`);
    expect(c.operation).toBe(`/r${evil}`);
    expect(c.method).toBe("<b>GET</b>");
  });

  it("are quoted in PromQL, never part of the query's syntax", () => {
    const sel = selectRow(rows[0]!);
    const quoted = '"svc\\"}) or vector(1) # <img src=x onerror=\\"alert(1)\\">\\\\\\n"';
    expect(sel.matchers[0]).toBe(`job=${quoted}`);
    expect(sel.matchers[1]).toBe(`http_route=${JSON.stringify(`/r${evil}`)}`);
    const q = chartQueries(sel, 240);
    expect(q.exemplars.split(quoted)).toHaveLength(3);
    expect(q.exemplars).not.toContain("\n");
    // Every double quote in the query is escaped or delimits a string: strip the strings, no quote remains.
    expect(q.latency[0]!.expr.replace(/"(?:[^"\\]|\\.)*"/g, "").includes('"')).toBe(false);
    expect(q.latency[0]!.expr.replace(/"(?:[^"\\]|\\.)*"/g, "")).not.toContain("vector(1)");
  });

  it("filter as plain text, not as patterns", () => {
    expect(filterRows(rows, "(1)")).toHaveLength(1);
    expect(filterRows(rows, ".*")).toHaveLength(0);
  });
});

describe("sortRows and filterRows", () => {
  const rows = [row("b", "http", "/slow", 1, { p95: 2 }), row("a", "http", "/x", 1), row("b", "http", "/busy", 9, { p95: null }), row("a", "spans", "GET /y", 5)];

  it("sort by service, then busiest first, by default", () => {
    expect(sortRows(rows, { key: "service", desc: false }).map((r) => `${r.service}${r.operation}`)).toEqual(["aGET /y", "a/x", "b/busy", "b/slow"]);
  });

  it("sort by a column with unknown values last in both directions", () => {
    expect(sortRows(rows, { key: "p95", desc: true }).map((r) => r.operation)).toEqual(["/slow", "GET /y", "/x", "/busy"]);
    expect(sortRows(rows, { key: "p95", desc: false }).map((r) => r.operation)).toEqual(["GET /y", "/x", "/slow", "/busy"]);
  });

  it("filter by every word, any case, over service, operation and source", () => {
    expect(filterRows(rows, "B SLOW").map((r) => r.operation)).toEqual(["/slow"]);
    expect(filterRows(rows, "span").map((r) => r.operation)).toEqual(["GET /y"]);
    expect(filterRows(rows, "  ")).toHaveLength(4);
  });
});
