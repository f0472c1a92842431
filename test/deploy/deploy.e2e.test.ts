// deploy/: the Grafana dashboard and the Prometheus alert rules use only
// metric names the real binaries export (scraped from a control plane and an
// agent process after a change reached the agent, and a NACK from a second
// agent whose datapath is too small), and the rules pass promtool's checks
// and its unit tests (deploy/prometheus/alerts.test.yml).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { connect, type NatsConnection } from 'nats';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeSetEvent, MeshObject, PodObject } from '../../common/index.js';
import { DATAPATH_METRICS } from '../../nodeagent/flows/index.js';
import { MeshAdminClient } from '../../proto/index.js';
import { useInfra, waitFor } from '../harness/index.js';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const RULES = join(ROOT, 'deploy/prometheus/alerts.yml');
const RULE_TESTS = join(ROOT, 'deploy/prometheus/alerts.test.yml');
const GRAFANA = join(ROOT, 'deploy/grafana/meshplane.json');

/** Every `meshplane_*` name in a PromQL expression. */
const metricNames = (expr: string): string[] => expr.match(/\bmeshplane_[a-z0-9_]+/g) ?? [];

/** Every PromQL expression of the Grafana dashboard: panel targets and variable queries. */
function grafanaExprs(dashboard: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if ((k === 'expr' || k === 'query' || k === 'definition') && typeof x === 'string')
          out.push(x);
        else walk(x);
      }
    }
  };
  walk(dashboard);
  return out;
}

interface RuleFile {
  groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[];
}

/** Sample names (with _bucket/_sum/_count) in a Prometheus text exposition. */
const exposed = (text: string): Set<string> =>
  new Set(
    text
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)?.[0] ?? ''),
  );

interface Proc {
  child: ChildProcess;
  ready: Promise<Record<string, unknown>>;
}

function startProc(file: string, args: string[]): Proc {
  const child = spawn(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), join(ROOT, file), ...args],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (l) => {
      try {
        const m = JSON.parse(l) as Record<string, unknown>;
        if (m.event === 'ready') resolve(m);
      } catch {
        // not a JSON line
      }
    });
    child.once('exit', (code) =>
      reject(new Error(`${file} exited (${String(code)}) before ready`)),
    );
  });
  return { child, ready };
}

const eu = { name: 'eu', id: 1, nodes: ['eu-1', 'eu-2'], podCIDR: '10.1.0.0/16' };
const pod = (name: string, node: string, ip: string): PodObject => ({
  kind: 'Pod',
  cluster: 'eu',
  namespace: 'shop',
  name,
  labels: { app: name },
  ips: [ip],
  node,
  serviceAccount: 'default',
  ports: [],
  ready: true,
  hostNetwork: false,
});

describe('deploy/: Grafana dashboard and Prometheus rules', () => {
  const infra = useInfra();
  const procs: Proc[] = [];
  let nc: NatsConnection | undefined;
  let controlPlaneNames = new Set<string>();
  let agentNames = new Set<string>();

  beforeAll(async () => {
    const cp = startProc('controlplane/main.ts', [
      '--etcd',
      infra.etcd.endpoint,
      '--nats',
      infra.nats.url,
      '--insecure',
      '--metrics-listen',
      '127.0.0.1:0',
      '--dashboard-listen',
      'off',
    ]);
    procs.push(cp);
    const ready = await cp.ready;
    const address = String(ready.address);
    const admin = new MeshAdminClient(address, grpc.credentials.createInsecure());
    await new Promise((resolve, reject) =>
      admin.joinCluster({ name: 'eu', id: 1 }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    admin.close();
    nc = await connect({ servers: infra.nats.url });
    const upserts: MeshObject[] = [
      { kind: 'Namespace', cluster: 'eu', namespace: '', name: 'shop', labels: {} },
      pod('web', 'eu-1', '10.1.0.10'),
      pod('db-1', 'eu-2', '10.1.0.11'),
    ];
    const publish = async (objects: MeshObject[]): Promise<void> => {
      const ev: ChangeSetEvent = {
        apiVersion: 'meshplane/v1',
        cluster: eu,
        full: false,
        upserts: objects,
        deletes: [],
        origin: 'test',
      };
      await nc!.jetstream().publish('meshplane.events.eu', JSON.stringify(ev));
    };
    await publish(upserts);
    const agentArgs = (node: string, extra: string[] = []): string[] => [
      '--insecure',
      '--server',
      address,
      '--cluster',
      'eu',
      '--node',
      node,
      '--metrics-listen',
      '127.0.0.1:0',
      ...extra,
    ];
    const agent = startProc('nodeagent/main.ts', agentArgs('eu-1'));
    // Room for one endpoint: it applies the first revision, and NACKs a second pod.
    const small = startProc('nodeagent/main.ts', agentArgs('eu-2', ['--capacity-endpoints', '1']));
    procs.push(agent, small);
    const scrape = async (url: unknown): Promise<Set<string>> =>
      exposed(await (await fetch(String(url))).text());
    const cpUrl = ready.metrics;
    const agentUrl = (await agent.ready).metrics;
    const smallUrl = (await small.ready).metrics;
    await publish([pod('db-2', 'eu-2', '10.1.0.12')]);
    // Histograms appear with their first sample: wait for an ACK and a NACK.
    controlPlaneNames = await waitFor(
      'propagation samples and a NACK on the control plane',
      async () => {
        const names = await scrape(cpUrl);
        const text = await (await fetch(String(cpUrl))).text();
        return names.has('meshplane_propagation_seconds_bucket') &&
          /meshplane_nodes\{[^}]*state="nacked"[^}]*\} 1/.test(text)
          ? names
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    agentNames = await waitFor(
      'the agents apply and reject',
      async () => {
        const a = await scrape(agentUrl);
        const b = await scrape(smallUrl);
        return a.has('meshplane_apply_seconds_bucket') ? new Set([...a, ...b]) : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  }, 120_000);

  afterAll(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await nc?.close();
  });

  it('promtool accepts the rules and their unit tests pass', async () => {
    const check = await run('promtool', ['check', 'rules', RULES]);
    expect(check.stdout).toMatch(/SUCCESS: \d+ rules found/);
    const tests = await run('promtool', ['test', 'rules', RULE_TESTS]);
    expect(tests.stdout).toContain('SUCCESS');
  });

  it('every metric the alert rules use is exported by the control plane or an agent', async () => {
    const rules = parseYaml(await readFile(RULES, 'utf8')) as RuleFile;
    const used = rules.groups.flatMap((g) =>
      g.rules.flatMap((r) => metricNames(r.expr).map((m) => ({ rule: r.alert ?? r.record, m }))),
    );
    expect(used.length).toBeGreaterThan(0);
    // The agents here run the emulated datapath; the eBPF datapath's metrics are scraped from
    // agents on the real kernel in test/datapath/flows.privileged.test.ts.
    const ebpfAgentNames = new Set<string>(Object.values(DATAPATH_METRICS));
    const missing = used.filter(
      ({ m }) => !controlPlaneNames.has(m) && !agentNames.has(m) && !ebpfAgentNames.has(m),
    );
    expect(missing, 'rules naming metrics nobody exports').toEqual([]);
  });

  it('every metric the Grafana dashboard queries is exported by the control plane or an agent', async () => {
    const dashboard = JSON.parse(await readFile(GRAFANA, 'utf8')) as { panels: unknown[] };
    const exprs = grafanaExprs(dashboard);
    expect(exprs.length).toBeGreaterThan(10);
    const used = [...new Set(exprs.flatMap(metricNames))];
    const missing = used.filter((m) => !controlPlaneNames.has(m) && !agentNames.has(m));
    expect(missing, 'dashboard queries naming metrics nobody exports').toEqual([]);
    // And the dashboard covers what operators came for.
    for (const m of [
      'meshplane_nodes',
      'meshplane_oldest_pending_seconds',
      'meshplane_propagation_seconds_bucket',
      'meshplane_nacks_total',
      'meshplane_divergences_total',
    ])
      expect(used, m).toContain(m);
  });
});
