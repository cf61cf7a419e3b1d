// Exemplar thinning: dense exemplars stay readable by keeping, per pixel
// column, only the highest values, and capping the total.

export interface Placed<T> {
  x: number; // pixel x inside the plot
  value: number; // the exemplar's value (ranks within a column)
  item: T;
}

export interface ThinOptions {
  columnPx?: number; // width of a column in pixels (default 6, about a dot's width)
  perColumn?: number; // exemplars kept per column (default 1)
  max?: number; // cap on the total (default: one per column across width)
  width?: number; // plot width in pixels, for the default max
}

/**
 * thin keeps at most `perColumn` exemplars per `columnPx`-wide column, highest
 * value first, then at most `max` in all (again highest values first). Points
 * with a non-finite x or value are dropped. The result is sorted by x.
 */
export function thin<T>(points: readonly Placed<T>[], opts: ThinOptions = {}): Placed<T>[] {
  const columnPx = Math.max(1, opts.columnPx ?? 6);
  const perColumn = Math.max(1, opts.perColumn ?? 1);
  const max = Math.max(1, opts.max ?? (opts.width ? Math.ceil(opts.width / columnPx) : 200));
  const cols = new Map<number, Placed<T>[]>();
  for (const p of points) {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.value)) continue;
    const c = Math.floor(p.x / columnPx);
    let kept = cols.get(c);
    if (!kept) cols.set(c, (kept = []));
    if (kept.length < perColumn) {
      kept.push(p);
      kept.sort((a, b) => b.value - a.value);
    } else if (p.value > kept[kept.length - 1]!.value) {
      kept[kept.length - 1] = p;
      kept.sort((a, b) => b.value - a.value);
    }
  }
  let out: Placed<T>[] = [];
  for (const kept of cols.values()) out.push(...kept);
  if (out.length > max) {
    out.sort((a, b) => b.value - a.value);
    out = out.slice(0, max);
  }
  return out.sort((a, b) => a.x - b.x);
}
