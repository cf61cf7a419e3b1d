// Value formatting by Grafana unit id (the subset our dashboards use).

import { formatDurationMs } from "./time";

function num(v: number, decimals?: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (decimals !== undefined) return v.toFixed(decimals);
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a >= 1e9) return (v / 1e9).toFixed(2) + " G";
  if (a >= 1e6) return (v / 1e6).toFixed(2) + " M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + " K";
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a >= 0.01) return v.toFixed(3);
  return v.toPrecision(2);
}

/** formatValue renders v in a Grafana unit: s, ms, reqps, percentunit, percent, currencyUSD, bytes, short, none. */
export function formatUnit(v: number | null | undefined, unit = "short", decimals?: number): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  switch (unit) {
    case "s":
      return decimals !== undefined && Math.abs(v) >= 1 ? `${v.toFixed(decimals)} s` : formatDurationMs(v * 1000);
    case "ms":
      return formatDurationMs(v);
    case "µs":
    case "us":
      return formatDurationMs(v / 1000);
    case "ns":
      return formatDurationMs(v / 1e6);
    case "reqps":
      return `${num(v, decimals)} req/s`;
    case "ops":
      return `${num(v, decimals)} ops/s`;
    case "percentunit":
      return `${(v * 100).toFixed(decimals ?? 1)}%`;
    case "percent":
      return `${v.toFixed(decimals ?? 1)}%`;
    case "currencyUSD":
      return `$${Math.abs(v) >= 1e4 ? num(v, decimals) : v.toFixed(decimals ?? 2)}`;
    case "bytes": {
      const u = ["B", "KiB", "MiB", "GiB", "TiB"];
      let i = 0;
      let x = v;
      while (Math.abs(x) >= 1024 && i < u.length - 1) {
        x /= 1024;
        i++;
      }
      return `${x.toFixed(i === 0 ? 0 : 1)} ${u[i]}`;
    }
    case "none":
      return decimals !== undefined ? v.toFixed(decimals) : String(Math.round(v * 1000) / 1000);
    default:
      return num(v, decimals);
  }
}

/**
 * formatSample renders a sample value as Prometheus's API sends it (a
 * string such as "9.666666666666668e+00") for reading: short form for
 * numbers, the text itself for anything else (NaN, ±Inf).
 */
export function formatSample(s: string): string {
  const v = Number(s);
  return s.trim() !== "" && Number.isFinite(v) ? formatUnit(v, "short") : s;
}
