import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { protocolNumber } from '../common/index.js';
import type { LoadedCluster } from '../clusters/src/index.js';
import {
  PolicyEngine,
  offlineMesh,
  parsePolicies,
  requiredPrefixes,
  trace,
  type TraceDecision,
} from '../controlplane/policy/index.js';
import { CliExit, EXIT } from './exit-codes.js';

// Probes files and their compiled answers (DESIGN.md "Public surface"),
// shared by `meshctl simulate` and `meshctl lab`.

export interface Probe {
  from: string;
  to: string;
  port: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  expect?: 'allow' | 'deny';
}

export interface ProbeResult extends Probe {
  allowed: boolean | null;
  decision?: TraceDecision;
  reason: string;
}

/** Reads and checks the probes file; every problem is reported at once. */
export function parseProbes(text: string, file: string, clusters: string[]): Probe[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new CliExit(EXIT.usage, `${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const list = (doc as { probes?: unknown } | null)?.probes;
  if (!Array.isArray(list)) throw new CliExit(EXIT.usage, `${file}: probes: must be a list`);
  const errors: string[] = [];
  const probes: Probe[] = [];
  const ref = (v: unknown, field: string, allowIp: boolean): string | undefined => {
    if (typeof v !== 'string') return void errors.push(`${field}: must be a string`);
    if (allowIp && isIP(v) !== 0) return v;
    const parts = v.split('/');
    if (parts.length === 3) return v;
    if (parts.length === 2 && clusters.length === 1) return `${clusters[0]}/${v}`;
    return void errors.push(
      `${field}: "${v}" must be CLUSTER/NAMESPACE/POD${clusters.length === 1 ? ' or NAMESPACE/POD' : ''}${allowIp ? ' or an address' : ''}`,
    );
  };
  list.forEach((raw: unknown, i) => {
    const at = `${file}: probes[${i}]`;
    const p = (raw ?? {}) as Record<string, unknown>;
    const from = ref(p.from, `${at}.from`, false);
    const to = ref(p.to, `${at}.to`, true);
    const port = p.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
      errors.push(`${at}.port: must be 1..65535`);
    const protocol = (p.protocol ?? 'TCP') as string;
    if (!['TCP', 'UDP', 'SCTP'].includes(protocol))
      errors.push(`${at}.protocol: must be TCP, UDP or SCTP`);
    if (p.expect !== undefined && p.expect !== 'allow' && p.expect !== 'deny')
      errors.push(`${at}.expect: must be allow or deny`);
    if (from === undefined || to === undefined || typeof port !== 'number') return;
    const probe: Probe = { from, to, port, protocol: protocol as Probe['protocol'] };
    if (p.expect !== undefined) probe.expect = p.expect as 'allow' | 'deny';
    probes.push(probe);
  });
  if (errors.length > 0)
    throw new CliExit(
      EXIT.usage,
      `${errors.length} error(s) in the probes:\n  ${errors.join('\n  ')}`,
    );
  return probes;
}

/** Reads a probes file; cluster names let `NAMESPACE/POD` stand for the only cluster. */
export async function readProbes(
  file: string,
  clusters: readonly LoadedCluster[],
): Promise<Probe[]> {
  return parseProbes(
    await readFile(file, 'utf8'),
    file,
    clusters.map((c) => c.spec.name),
  );
}

/**
 * Compiles the clusters' policies offline (no etcd, no agents) and answers
 * every probe with the compiled verdict and the decision that made it; a
 * probe between endpoints whose policy cannot be enforced exactly answers
 * null with why. Throws a usage CliExit for a probe naming an unknown pod.
 */
export function compileProbes(
  clusters: readonly LoadedCluster[],
  probes: readonly Probe[],
): ProbeResult[] {
  const policies = offlineMesh(clusters).policies;
  const parsed = parsePolicies(policies);
  const mesh = offlineMesh(clusters, requiredPrefixes(parsed.units));
  const cidrIdentity = (p: string) => mesh.cidrIdentities.get(p);
  const engine = new PolicyEngine(parsed.units, mesh, { cidrIdentity });
  const results: ProbeResult[] = probes.map((probe) => {
    const r = trace(
      engine,
      {
        from: probe.from,
        to: probe.to,
        port: probe.port,
        protocol: protocolNumber(probe.protocol)!,
      },
      cidrIdentity,
    );
    if ('error' in r)
      throw new CliExit(EXIT.usage, `probe ${probe.from} → ${probe.to}: ${r.error}`);
    const errors = [
      engine.result(probe.from),
      engine.state(probe.to) === undefined ? undefined : engine.result(probe.to),
    ].flatMap((x) => x?.errors ?? []);
    if (errors.length > 0)
      return {
        ...probe,
        allowed: null,
        decision: r.decision,
        reason: `not enforceable as written: ${errors.map((e) => e.message).join('; ')}`,
      };
    return { ...probe, allowed: r.allowed, decision: r.decision, reason: r.reason };
  });
  return results;
}
