import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const MESHCTL = join(import.meta.dirname, '../../bin/meshctl.mjs');

async function meshctl(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [MESHCTL, ...args], {
      cwd: join(import.meta.dirname, '../..'),
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshplane-simulate-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('meshctl simulate', () => {
  it('answers the demo probes in order, as DESIGN.md specifies', async () => {
    const r = await meshctl(
      'simulate',
      '--manifests',
      'clusters/demo',
      '--probes',
      'clusters/demo/probes.yaml',
      '--json',
    );
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const doc = JSON.parse(lines[0]!) as {
      apiVersion: string;
      results: { allowed: boolean; decision: unknown; from: string; to: string; port: number }[];
    };
    expect(doc.apiVersion).toBe('meshplane/v1');
    expect(doc.results.map((x) => x.allowed)).toEqual([
      true,
      true,
      false,
      false,
      false,
      true,
      true,
    ]);
    expect(doc.results[0]).toMatchObject({
      from: 'eu/billing/transactions-7c9d5b8f4-x2kqv',
      port: 50051,
      decision: {
        kind: 'policy',
        policy: {
          cluster: 'us',
          kind: 'CiliumClusterwideNetworkPolicy',
          namespace: '',
          name: 'allow-eu-transactions-to-fraud-detection',
        },
        section: 'ingress',
        ruleIndex: 0,
      },
    });
    expect(doc.results[2]).toMatchObject({
      decision: {
        kind: 'default-deny',
        section: 'ingress',
        policy: {
          kind: 'CiliumNetworkPolicy',
          namespace: 'production',
          name: 'frontend-to-billing-service',
        },
      },
    });
  });

  it('exits 1 when a probe does not match its expect', async () => {
    const probes = join(dir, 'wrong.yaml');
    await writeFile(
      probes,
      'probes:\n  - { from: eu/production/legacy-service-84d6c5b9f-zr7mc, to: eu/production/billing-service-5b8d7f9c6-w9npd, port: 8080, expect: allow }\n',
    );
    const r = await meshctl('simulate', '--manifests', 'clusters/demo', '--probes', probes);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^DENIED .*\(expected allow\)/);
  });

  it('exits 2 listing every policy error with file, document, object and field, and no results', async () => {
    const manifests = join(dir, 'bad');
    await rm(manifests, { recursive: true, force: true });
    await (await import('node:fs/promises')).mkdir(manifests);
    await writeFile(
      join(manifests, 'policies.yaml'),
      [
        'apiVersion: v1\nkind: Pod\nmetadata: { name: a, labels: { app: a } }\nspec: { containers: [ { name: a, image: x } ] }',
        'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: p }\nspec:\n  endpointSelector: {}\n  egress:\n    - toFQDNs: [ { matchName: example.com } ]\n      toPorts: [ { ports: [ { port: "99999" } ] } ]',
        'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: q }\nspec:\n  podSelector: {}\n  ingress: [ { from: [ { ipBlock: { cidr: 10.0.0.1/8 } } ] } ]',
      ].join('\n---\n'),
    );
    const probes = join(dir, 'one.yaml');
    await writeFile(probes, 'probes:\n  - { from: default/a, to: default/a, port: 80 }\n');
    const r = await meshctl('simulate', '--manifests', manifests, '--probes', probes, '--json');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      'policies.yaml: document 1: CiliumNetworkPolicy/default/p: spec.egress[0].toFQDNs: toFQDNs is not implemented by meshplane',
    );
    expect(r.stderr).toContain(
      'policies.yaml: document 1: CiliumNetworkPolicy/default/p: spec.egress[0].toPorts[0].ports[0].port: must be a port 1..65535',
    );
    expect(r.stderr).toContain(
      'policies.yaml: document 2: NetworkPolicy/default/q: spec.ingress[0].from[0].ipBlock.cidr: "10.0.0.1/8" has host bits set',
    );
  });
});
