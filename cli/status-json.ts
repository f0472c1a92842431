import type { NodeStatus, StatusResponse } from '../proto/index.js';

export const iso = (ms: number): string | null => (ms > 0 ? new Date(ms).toISOString() : null);

/** A node object of `status --json` and `skew --json` (DESIGN.md). */
export function nodeJson(n: NodeStatus): Record<string, unknown> {
  return {
    name: n.name,
    state: n.state,
    ackedRevision: n.ackedRevision,
    syncedRevision: n.syncedRevision,
    lagMs: n.lagMs,
    since: iso(n.sinceUnixMs),
    error: n.error,
  };
}

/** `meshctl status --json`: the node objects are the ones `skew --json` uses (DESIGN.md). */
export function statusJson(s: StatusResponse): Record<string, unknown> {
  return {
    apiVersion: 'meshplane/v1',
    revision: s.revision,
    commitTime: iso(s.commitTimeUnixMs),
    components: s.components.map((c) => ({ name: c.name, state: c.state, address: c.address })),
    clusters: s.clusters.map((c) => ({
      name: c.name,
      id: c.id,
      endpoints: c.endpoints,
      endpointsWithErrors: c.endpointsWithErrors,
      source: {
        connected: c.source?.connected ?? false,
        lastEventAt: iso(c.source?.lastEventUnixMs ?? 0),
        lastError: c.source?.lastError ?? '',
        refusedChangeSets: c.source?.refusedChangeSets ?? 0,
      },
      nodes: c.nodes.map(nodeJson),
    })),
  };
}

export function statusTable(s: StatusResponse): string {
  const lines: string[] = [];
  lines.push(
    `mesh revision ${s.revision}${s.commitTimeUnixMs ? ` (committed ${iso(s.commitTimeUnixMs)})` : ''}`,
  );
  lines.push('');
  lines.push('COMPONENT      STATE  ADDRESS');
  for (const c of s.components)
    lines.push(`${c.name.padEnd(14)} ${c.state.padEnd(6)} ${c.address}`);
  for (const c of s.clusters) {
    const src = c.source;
    lines.push('');
    lines.push(
      `cluster ${c.name} (id ${c.id}): ${c.endpoints} endpoints${c.endpointsWithErrors > 0 ? ` (${c.endpointsWithErrors} with policy errors: see meshctl endpoints)` : ''}, source ${src?.connected ? 'connected' : 'not connected'}` +
        (src?.lastError ? `\n  source error: ${src.lastError}` : ''),
    );
    lines.push('  NODE            STATE         ACKED    SYNCED   LAG      ERROR');
    for (const n of c.nodes) {
      lines.push(
        `  ${n.name.padEnd(15)} ${n.state.padEnd(13)} ${String(n.ackedRevision).padEnd(8)} ${String(n.syncedRevision).padEnd(8)} ${`${n.lagMs}ms`.padEnd(8)} ${n.error}`,
      );
    }
  }
  return lines.join('\n');
}
