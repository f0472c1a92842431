// Flows end to end on the real kernel: the eBPF programs' verdict events go
// from each agent to the control plane and out through `meshctl observe`,
// named from the mesh state; the agents' /metrics count packets by reason.
// Takes ~60 s on 2 cores: the whole mesh (etcd, NATS, control plane, sources,
// two eBPF agents) starts once for the file.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { run } from '../../hosts/index.js';
import { requirePrivileged, waitFor } from '../harness/index.js';
import { cluster, namespace, pod, useLabMesh } from './lab-mesh.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MESHCTL = join(ROOT, 'bin/meshctl.mjs');

const SERVER_POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: server-ingress
  namespace: app
spec:
  endpointSelector:
    matchLabels:
      app: server
  ingress:
    - fromEndpoints:
        - matchLabels:
            app: client
      toPorts:
        - ports:
            - port: "80"
              protocol: TCP
`;

// Would deny everything into "audited", but only reports it.
const AUDIT_POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: audited-ingress
  namespace: app
  annotations:
    policy.meshplane.io/audit: "true"
spec:
  endpointSelector:
    matchLabels:
      app: audited
  ingress:
    - fromEndpoints:
        - matchLabels:
            app: nobody
`;

interface PeerJson {
  cluster: string | null;
  namespace: string | null;
  pod: string | null;
  ip: string;
  port: number;
  identity: number;
  identityName: string | null;
}
interface FlowLine {
  apiVersion: string;
  time: string;
  verdict: string;
  reason: string;
  direction: string;
  protocol: string;
  source: PeerJson;
  destination: PeerJson;
  node: { cluster: string; name: string };
  endpoint: string | null;
  summary: string;
  sequence: number;
}

function meshctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MESHCTL, ...args],
      { cwd: ROOT, timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

const privileged = requirePrivileged();

describe.skipIf(!privileged)('flows: meshctl observe and agent metrics', () => {
  const lab = useLabMesh(
    {
      eu: {
        'cluster.yaml': cluster('eu', 1, ['eu-1', 'eu-2']),
        'ns.yaml': namespace('app'),
        'pods.yaml': [
          pod('client', 'app', 'eu-1', '10.1.0.10'),
          pod('other', 'app', 'eu-1', '10.1.0.11'),
          pod('server', 'app', 'eu-2', '10.1.0.20'),
          pod('audited', 'app', 'eu-2', '10.1.0.21'),
        ].join('---\n'),
        'server-ingress.yaml': SERVER_POLICY,
        'audit.yaml': AUDIT_POLICY,
      },
    },
    [
      ...[80, 8080].map((port) => ({ to: 'eu/app/server', port, protocol: 'TCP' as const })),
      { to: 'eu/app/audited', port: 80, protocol: 'TCP' },
    ],
    { agentArgs: ['--metrics-listen', '127.0.0.1:0'] },
  );

  const observe = async (...args: string[]): Promise<FlowLine[]> => {
    const r = await meshctl(['observe', '--json', '--state-dir', lab.mesh.stateDir, ...args]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as FlowLine);
  };

  const identities = async (): Promise<Map<string, number>> => {
    const r = await meshctl(['endpoints', '--json', '--state-dir', lab.mesh.stateDir]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      endpoints: { cluster: string; namespace: string; name: string; identity: number }[];
    };
    return new Map(doc.endpoints.map((e) => [`${e.cluster}/${e.namespace}/${e.name}`, e.identity]));
  };

  /** The value of one series of the agent's /metrics (0 if absent). */
  const metric = async (node: string, name: string, labels: Record<string, string>) => {
    const url = String(lab.mesh.agent('eu', node).ready.metrics);
    const text = await (await fetch(url)).text();
    const line = text
      .split('\n')
      .find(
        (l) =>
          l.startsWith(`${name}{`) &&
          Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)),
      );
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  };

  it('shows a denied probe with names, identities, port, direction, verdict and reason', async () => {
    expect(await lab.probe('eu/app/other', 'eu/app/server', 8080)).toBe('timeout');
    const ids = await identities();
    const other = ids.get('eu/app/other')!;
    const server = ids.get('eu/app/server')!;
    const flows = await waitFor('the drop in meshctl observe', async () => {
      const f = await observe(
        '--from',
        'eu/app/other',
        '--to',
        'eu/app/server',
        '--verdict',
        'DROPPED',
      );
      return f.length > 0 ? f : undefined;
    });
    const f = flows[0]!;
    expect(f).toMatchObject({
      apiVersion: 'meshplane/v1',
      verdict: 'DROPPED',
      reason: 'default-denied',
      direction: 'ingress',
      protocol: 'TCP',
      node: { cluster: 'eu', name: 'eu-2' },
      endpoint: 'eu/app/server',
      source: { cluster: 'eu', namespace: 'app', pod: 'other', ip: '10.1.0.11', identity: other },
      destination: {
        cluster: 'eu',
        namespace: 'app',
        pod: 'server',
        ip: '10.1.0.20',
        port: 8080,
        identity: server,
      },
      summary: `policy denied: no rule allows identity ${other} → ${server} on 8080/TCP (ingress)`,
    });
    expect(other >>> 16).toBe(1); // cluster-scoped identities of cluster id 1
    expect(Number.isNaN(Date.parse(f.time))).toBe(false);

    // The human line says the same.
    const human = await meshctl([
      'observe',
      '--state-dir',
      lab.mesh.stateDir,
      '--from',
      'eu/app/other',
      '--verdict',
      'dropped',
    ]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain('eu/app/other (10.1.0.11:');
    expect(human.stdout).toContain(
      `eu/app/server (10.1.0.20:8080)  policy denied: no rule allows identity ${other} → ${server} on 8080/TCP (ingress)`,
    );
  });

  it('shows allowed flows as FORWARDED and refuses a malformed filter', async () => {
    expect(await lab.probe('eu/app/client', 'eu/app/server', 80)).toBe('connected');
    const flows = await waitFor('the allowed flow', async () => {
      const f = await observe(
        '--from',
        '10.1.0.10',
        '--to',
        'eu/app/server',
        '--verdict',
        'FORWARDED',
      );
      return f.find((x) => x.direction === 'ingress');
    });
    expect(flows).toMatchObject({ reason: 'policy-allowed', destination: { port: 80 } });
    const bad = await meshctl([
      'observe',
      '--state-dir',
      lab.mesh.stateDir,
      '--verdict',
      'MAYBE',
      '--from',
      'a//b',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('verdict: "MAYBE" is not one of FORWARDED, DROPPED, AUDIT');
    expect(bad.stderr).toContain('from: "a//b" is not CLUSTER[/NAMESPACE[/POD]]');
  });

  it('follows new flows with -f', async () => {
    const child = execFile(process.execPath, [
      MESHCTL,
      'observe',
      '-f',
      '--json',
      '--state-dir',
      lab.mesh.stateDir,
      '--from',
      'eu/app/client',
      '--to',
      'eu/app/server',
      '--verdict',
      'DROPPED',
    ]);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    try {
      // Keep probing until the follower prints one: it may subscribe after the first probe.
      await waitFor(
        'a followed drop',
        async () => {
          expect(await lab.probe('eu/app/client', 'eu/app/server', 8080)).toBe('timeout');
          return out.includes('"port":8080') || undefined;
        },
        { intervalMs: 200 },
      );
      const line = JSON.parse(out.split('\n')[0]!) as FlowLine;
      expect(line).toMatchObject({ verdict: 'DROPPED', source: { pod: 'client' } });
    } finally {
      child.kill('SIGINT');
    }
    const code = await new Promise((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(0);
  });

  it('counts dropped packets by reason and direction on the agent /metrics', async () => {
    const series = { direction: 'ingress', reason: 'default-denied', verdict: 'dropped' };
    const before = await metric('eu-2', 'meshplane_datapath_packets_total', series);
    expect(await lab.probe('eu/app/other', 'eu/app/server', 8080)).toBe('timeout');
    await waitFor(
      'the dropped counter to rise',
      async () =>
        (await metric('eu-2', 'meshplane_datapath_packets_total', series)) > before || undefined,
    );
    expect(
      await metric('eu-2', 'meshplane_datapath_packets_total', {
        direction: 'ingress',
        reason: 'policy-allowed',
        verdict: 'forwarded',
      }),
    ).toBeGreaterThan(0);
    // The lab's revisions are small: no policy map was written whole, so no in-kernel digest ran
    // for a write; the series are there from the start, at 0. Verifications digest every map, and
    // nothing writes the lab's maps behind the agents' backs.
    const text = await (await fetch(String(lab.mesh.agent('eu', 'eu-2').ready.metrics))).text();
    const digests = (read: string, result: string, value: string): RegExp =>
      new RegExp(
        `^meshplane_datapath_kernel_digests_total\\{[^}]*read="${read}"[^}]*result="${result}"[^}]*\\} ${value}$`,
        'm',
      );
    for (const result of ['matched', 'mismatched', 'refused'])
      expect(text).toMatch(digests('write', result, '0'));
    expect(text).toMatch(digests('verify', 'matched', '\\d+'));
    expect(text).toMatch(digests('verify', 'mismatched', '0'));
  });

  it('reports would-be drops of an audit-mode policy as AUDIT while traffic passes', async () => {
    expect(await lab.probe('eu/app/client', 'eu/app/audited', 80)).toBe('connected');
    const f = await waitFor(
      'the audit event',
      async () => (await observe('--to', 'eu/app/audited', '--verdict', 'AUDIT'))[0],
    );
    expect(f).toMatchObject({
      reason: 'audit',
      direction: 'ingress',
      source: { pod: 'client' },
      destination: { pod: 'audited', port: 80 },
    });
    expect(f.summary).toMatch(/^audit: would be denied, forwarded \(audit mode\)/);
  });

  it(
    'rate-limits a flood of drops: the agent reads a bounded share and keeps serving',
    { timeout: 120_000 },
    async () => {
      const limited = { direction: 'ingress', reason: 'event-rate-limited' };
      const dropped = { direction: 'ingress', reason: 'default-denied', verdict: 'dropped' };
      const droppedBefore = await metric('eu-2', 'meshplane_datapath_packets_total', dropped);
      const readBefore = await metric('eu-2', 'meshplane_agent_flow_events_read_total', {});
      // 50,000 denied UDP datagrams from "other" to the server, as fast as one process sends.
      const flood = `const s=require('dgram').createSocket('udp4');let n=0;const b=Buffer.alloc(16);
        (function go(){for(let i=0;i<1000;i++)s.send(b,5353,'10.1.0.20');n+=1000;
        if(n<50000)setImmediate(go);else setTimeout(()=>s.close(),500);})();`;
      await run('ip', [
        'netns',
        'exec',
        lab.bed.pod('eu/app/other').netns,
        process.execPath,
        '-e',
        flood,
      ]);
      await waitFor(
        'the rate-limit counter',
        async () =>
          (await metric('eu-2', 'meshplane_datapath_packets_total', limited)) > 0 || undefined,
      );
      const droppedDuring =
        (await metric('eu-2', 'meshplane_datapath_packets_total', dropped)) - droppedBefore;
      const readDuring =
        (await metric('eu-2', 'meshplane_agent_flow_events_read_total', {})) - readBefore;
      // The kernel sent the agent fewer events than it dropped packets.
      expect(droppedDuring).toBeGreaterThan(10_000);
      expect(readDuring).toBeLessThan(droppedDuring);
      // It keeps serving: enforcing, reporting new flows, applying revisions.
      expect(await lab.probe('eu/app/client', 'eu/app/server', 80)).toBe('connected');
      const seen = Math.max(0, ...(await observe('--last', '1')).map((f) => f.sequence));
      expect(await lab.probe('eu/app/client', 'eu/app/server', 8080)).toBe('timeout');
      await waitFor('a drop reported after the flood', async () =>
        (await observe('--from', 'eu/app/client', '--verdict', 'DROPPED')).find(
          (f) => f.sequence > seen,
        ),
      );
      await lab.writeManifest(
        'eu',
        'server-more.yaml',
        SERVER_POLICY.replace('server-ingress', 'server-more').replace('"80"', '"8080"'),
      );
      expect(await lab.probe('eu/app/client', 'eu/app/server', 8080)).toBe('connected');
    },
  );
});
