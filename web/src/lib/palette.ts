// Series colours: twenty distinct hues, in the order Grafana's classic
// palette assigns them, so a panel of up to twenty series has no two alike.

const COLORS = [
  "#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0", "#508642", "#cca300",
  "#447ebc", "#c15c17", "#890f02", "#0a437c", "#6d1f62", "#584477", "#b7dbab", "#f4d598", "#70dbed", "#f9ba8f",
];

/** seriesColor is the colour of the i-th series of a panel. */
export function seriesColor(i: number): string {
  return COLORS[((i % COLORS.length) + COLORS.length) % COLORS.length]!;
}
