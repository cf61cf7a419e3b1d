import { describe, expect, it } from "vitest";
import { exampleQuery } from "./examples";

describe("exampleQuery", () => {
  it.each([
    [["up", "webstore_payment_duration_bucket", "http_server_request_duration_bucket"], "histogram_quantile(0.95, sum by (le) (rate(webstore_payment_duration_bucket[5m])))"],
    [["http_server_duration_count", "http_server_duration_bucket"], "histogram_quantile(0.95, sum by (le, job) (rate(http_server_duration_bucket[5m])))"],
    [["traces_span_metrics_calls", "traces_span_metrics_duration_bucket"], 'histogram_quantile(0.95, sum by (le, service_name) (rate(traces_span_metrics_duration_bucket{span_kind="SPAN_KIND_SERVER"}[5m])))'],
    [["zeta_bucket", "alpha_bucket"], "histogram_quantile(0.95, sum by (le, job) (rate(alpha_bucket[5m])))"],
    [["ALERTS", "jobs_done_total"], "sum by (job) (rate(jobs_done_total[5m]))"],
    [["up"], "up"],
    [["bad name{}", "up"], "up"],
    [[], null],
  ])("%j → %s", (names, want) => {
    expect(exampleQuery(names)).toBe(want);
  });
});
