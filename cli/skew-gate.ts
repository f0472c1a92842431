import type { SkewResponse } from '../proto/index.js';
import { CliExit, EXIT } from './exit-codes.js';

const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** "500ms", "30s", "2m", "1h" (or "0") as milliseconds; a usage error names the flag otherwise. */
export function durationArg(flag: string, text: string): number {
  if (text === '0') return 0;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (m === null)
    throw new CliExit(EXIT.usage, `${flag}: "${text}" is not a duration (e.g. 500ms, 30s, 2m)`);
  return Math.round(Number(m[1]) * UNITS[m[2] as keyof typeof UNITS]);
}

/**
 * The `--max-age` gate: nodes pending or disconnected longer than `maxAgeMs`,
 * nacked, or diverged — "cluster/node" → why. Ages are on the server's clock.
 */
export function skewViolations(s: SkewResponse, maxAgeMs: number): Map<string, string> {
  const out = new Map<string, string>();
  const now = s.nowUnixMs;
  for (const c of s.clusters) {
    for (const n of c.nodes) {
      let why = '';
      if (n.state === 'nacked') why = `nacked: ${n.error}`;
      else if (n.state === 'diverged') why = `diverged: ${n.error}`;
      else if (n.state === 'pending' && n.lagMs > maxAgeMs)
        why = `pending for ${n.lagMs} ms (synced at ${n.syncedRevision})`;
      else if (n.state === 'disconnected') {
        if (n.sinceUnixMs === 0) why = 'disconnected (never connected)';
        else if (now - n.sinceUnixMs > maxAgeMs) why = `disconnected for ${now - n.sinceUnixMs} ms`;
      }
      if (why) out.set(`${c.name}/${n.name}`, why);
    }
  }
  return out;
}
