import type { LatencyFigureMessage, SkewResponse, WaitResponse } from '../proto/index.js';
import { iso, nodeJson } from './status-json.js';

const figure = (f: LatencyFigureMessage | undefined) => ({
  meanMs: f?.meanMs ?? 0,
  maxMs: f?.maxMs ?? 0,
});

/** `meshctl skew --json` (DESIGN.md shape, extended with skew and recent revisions). */
export function skewJson(s: SkewResponse): Record<string, unknown> {
  return {
    apiVersion: 'meshplane/v1',
    revision: s.revision,
    commitTime: iso(s.commitTimeUnixMs),
    pending: s.pending,
    ageMs: s.ageMs,
    clusters: s.clusters.map((c) => ({
      name: c.name,
      pending: c.pending,
      ageMs: c.ageMs,
      syncedRevision: c.syncedRevision,
      states: Object.fromEntries(c.states.map((x) => [x.state, x.nodes])),
      nodes: c.nodes.map(nodeJson),
    })),
    revisions: s.revisions.map((r) => ({
      revision: r.revision,
      commitTime: iso(r.commitTimeUnixMs),
      ageMs: r.ageMs,
      affected: r.affected,
      target: r.target,
      pending: r.pending,
      acks: r.acks,
      nacks: r.nacks,
      convergedAt: iso(r.convergedUnixMs),
      skewWindowMs: r.skewWindowMs,
      latency: {
        propagation: figure(r.propagation),
        queue: figure(r.queue),
        transfer: figure(r.transfer),
        apply: figure(r.apply),
      },
      clusters: r.clusters.map((c) => ({
        name: c.name,
        affected: c.affected,
        target: c.target,
        pending: c.pending,
        convergedAt: iso(c.convergedUnixMs),
      })),
    })),
  };
}

const ms = (v: number): string =>
  v >= 10_000 ? `${(v / 1000).toFixed(1)}s` : `${Math.round(v)}ms`;

export function skewTable(s: SkewResponse, violations: ReadonlyMap<string, string>): string {
  const lines: string[] = [];
  lines.push(
    `mesh revision ${s.revision}${s.commitTimeUnixMs ? ` (committed ${iso(s.commitTimeUnixMs)})` : ''}: ` +
      (s.pending === 0
        ? 'every node synced'
        : `${s.pending} node(s) behind, oldest ${ms(s.ageMs)}`),
  );
  for (const c of s.clusters) {
    const states = c.states
      .filter((x) => x.nodes > 0)
      .map((x) => `${x.nodes} ${x.state}`)
      .join(', ');
    lines.push('');
    lines.push(`cluster ${c.name}: ${states}; lowest synced revision ${c.syncedRevision}`);
    lines.push('  NODE            STATE         ACKED    SYNCED   LAG      ERROR');
    for (const n of c.nodes) {
      const flag = violations.get(`${c.name}/${n.name}`);
      lines.push(
        `  ${n.name.padEnd(15)} ${n.state.padEnd(13)} ${String(n.ackedRevision).padEnd(8)} ${String(n.syncedRevision).padEnd(8)} ${ms(n.lagMs).padEnd(8)} ${n.error}${flag ? `  <- ${flag}` : ''}`,
      );
    }
  }
  if (s.revisions.length > 0) {
    lines.push('');
    lines.push(
      'REVISION  AGE      AFFECTED  PENDING  ACKS  NACKS  SKEW WINDOW  PROPAGATION mean/max  APPLY max',
    );
    for (const r of s.revisions.slice(0, 10)) {
      lines.push(
        `${String(r.revision).padEnd(9)} ${ms(r.ageMs).padEnd(8)} ${String(r.affected).padEnd(9)} ${String(r.pending).padEnd(8)} ${String(r.acks).padEnd(5)} ${String(r.nacks).padEnd(6)} ${ms(r.skewWindowMs).padEnd(12)} ${`${ms(r.propagation?.meanMs ?? 0)}/${ms(r.propagation?.maxMs ?? 0)}`.padEnd(21)} ${ms(r.apply?.maxMs ?? 0)}`,
      );
    }
  }
  return lines.join('\n');
}

/** `meshctl wait --json`. */
export function waitJson(w: WaitResponse): Record<string, unknown> {
  return {
    apiVersion: 'meshplane/v1',
    synced: w.synced,
    revision: w.revision,
    observedRevision: w.observedRevision,
    laggards: w.laggards.map((l) => ({
      cluster: l.cluster,
      ...(l.node ? nodeJson(l.node) : {}),
    })),
  };
}
