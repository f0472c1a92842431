/** Nearest-rank percentile (p in 0..100) of unsorted values; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** An RFC 3339 timestamp with up to nanosecond fractions (as nats-server writes them) as Unix ms. */
export function parseNanoTimestamp(ts: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) throw new Error(`not an RFC 3339 timestamp: ${ts}`);
  const whole = Date.parse(`${m[1]}${m[3]}`);
  const fraction = m[2] === undefined ? 0 : Number(`0.${m[2]}`);
  if (Number.isNaN(whole)) throw new Error(`not an RFC 3339 timestamp: ${ts}`);
  return whole + fraction * 1000;
}
