// The example query Explore opens with: the most telling histogram among the
// metrics Lookout holds, so a first visit shows a latency graph with dots.

/** PREFERRED lists histograms by how much a first look at them says, with the query to show. */
const PREFERRED: [string, (name: string) => string][] = [
  ["webstore_payment_duration_bucket", (n) => `histogram_quantile(0.95, sum by (le) (rate(${n}[5m])))`],
  ["http_server_request_duration_bucket", (n) => `histogram_quantile(0.95, sum by (le, job) (rate(${n}[5m])))`],
  ["http_server_request_duration_seconds_bucket", (n) => `histogram_quantile(0.95, sum by (le, job) (rate(${n}[5m])))`],
  ["http_server_duration_bucket", (n) => `histogram_quantile(0.95, sum by (le, job) (rate(${n}[5m])))`],
  ["http_server_duration_milliseconds_bucket", (n) => `histogram_quantile(0.95, sum by (le, job) (rate(${n}[5m])))`],
  ["rpc_server_duration_bucket", (n) => `histogram_quantile(0.95, sum by (le, job) (rate(${n}[5m])))`],
  ["traces_span_metrics_duration_bucket", (n) => `histogram_quantile(0.95, sum by (le, service_name) (rate(${n}{span_kind="SPAN_KIND_SERVER"}[5m])))`],
  ["traces_span_metrics_duration_milliseconds_bucket", (n) => `histogram_quantile(0.95, sum by (le, service_name) (rate(${n}{span_kind="SPAN_KIND_SERVER"}[5m])))`],
];

/**
 * exampleQuery picks Explore's opening query from the metric names Lookout
 * holds: a preferred histogram's p95, else any histogram's, else a counter's
 * rate, else the first metric; null when there are none.
 */
export function exampleQuery(names: string[]): string | null {
  const have = new Set(names);
  for (const [name, q] of PREFERRED) if (have.has(name)) return q(name);
  const sorted = [...names].filter((n) => /^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(n) && !n.startsWith("ALERTS")).sort();
  const bucket = sorted.find((n) => n.endsWith("_bucket"));
  if (bucket) return `histogram_quantile(0.95, sum by (le, job) (rate(${bucket}[5m])))`;
  const counter = sorted.find((n) => n.endsWith("_total") || n.endsWith("_count"));
  if (counter) return `sum by (job) (rate(${counter}[5m]))`;
  return sorted[0] ?? null;
}
