// The live dashboard in a real browser (Debian's chromium driven by
// playwright-core, headless) against a control plane on real etcd, NATS and
// gRPC with three node agents as processes: the page loads, a policy change
// shows converging (one agent stopped) then converged, an agent whose datapath
// is too small shows a NACK with its error, and the numbers on the page equal
// what `meshctl skew --json` prints at the same revision. Saves a screenshot
// to test-results/dashboard.png.
// ~30 s: three agent processes, a browser, and several propagation rounds.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { connect, type NatsConnection } from 'nats';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  silentLogger,
  type ChangeSetEvent,
  type MeshObject,
  type PodObject,
} from '../../common/index.js';
import { ControlPlane } from '../../controlplane/index.js';
import { MeshAdminClient } from '../../proto/index.js';
import { tempDir, useInfra, waitFor, type TempDir } from '../harness/index.js';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const CHROMIUM = '/usr/bin/chromium';
const WAIT = { timeoutMs: 60_000, intervalMs: 200 };
const eu = { name: 'eu', id: 1, nodes: ['eu-1', 'eu-2', 'eu-3'], podCIDR: '10.1.0.0/16' };

let nextIp = 10;
const pod = (name: string, node: string): PodObject => ({
  kind: 'Pod',
  cluster: 'eu',
  namespace: 'shop',
  name,
  labels: { app: name.replace(/-\d+$/, '') },
  ips: [`10.1.0.${nextIp++}`],
  node,
  serviceAccount: 'default',
  ports: [],
  ready: true,
  hostNetwork: false,
});
const webPolicy: MeshObject = {
  kind: 'CiliumNetworkPolicy',
  cluster: 'eu',
  namespace: 'shop',
  name: 'api-to-web',
  labels: {},
  spec: {
    endpointSelector: { matchLabels: { app: 'web' } },
    ingress: [
      {
        fromEndpoints: [{ matchLabels: { app: 'api' } }],
        toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }],
      },
    ],
  },
};

/** An element as the test reads it inside the page (this project has no DOM types). */
interface Attrs {
  getAttribute(name: string): string | null;
}

/** What the page shows of one node (its grid cell). */
interface PageNode {
  node: string;
  state: string;
  acked: number;
  synced: number;
}

describe('the dashboard in a browser', () => {
  const infra = useInfra();
  let cp: ControlPlane;
  let nc: NatsConnection;
  let browser: Browser;
  let page: Page;
  let stateDir: TempDir;
  const agents = new Map<string, ChildProcess>();
  const pageErrors: string[] = [];

  const publish = async (upserts: MeshObject[]): Promise<void> => {
    const ev: ChangeSetEvent = {
      apiVersion: 'meshplane/v1',
      cluster: eu,
      full: false,
      upserts,
      deletes: [],
      origin: 'test',
    };
    await nc.jetstream().publish('meshplane.events.eu', JSON.stringify(ev));
  };
  const startAgent = (node: string, extra: string[] = []): void => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        import.meta.resolve('tsx'),
        `${ROOT}nodeagent/main.ts`,
        '--insecure',
        '--server',
        cp.address,
        '--cluster',
        'eu',
        '--node',
        node,
        ...extra,
      ],
      { stdio: 'ignore' },
    );
    agents.set(node, child);
  };
  const meshctl = async (...args: string[]): Promise<Record<string, unknown>> => {
    const { stdout } = await run(process.execPath, [
      join(ROOT, 'bin/meshctl.mjs'),
      ...args,
      '--json',
      '--server',
      cp.address,
      '--state-dir',
      stateDir.path,
    ]);
    return JSON.parse(stdout) as Record<string, unknown>;
  };
  /** Every node cell; an in-sync cell is synced at the mesh revision the headline shows. */
  const pageNodes = async (): Promise<PageNode[]> =>
    page.$$eval(
      '.cell[data-node]',
      (cells, revision) =>
        cells.map((c) => {
          const a = (name: string): string | null =>
            (c as unknown as Attrs).getAttribute(`data-${name}`);
          const state = a('state') ?? '';
          return {
            node: a('node') ?? '',
            state,
            acked: Number(a('acked')),
            synced: state === 'in-sync' && a('synced') === null ? revision : Number(a('synced')),
          };
        }),
      Number(await page.textContent('[data-testid="mesh-revision"]')),
    );
  const pageRevision = async (): Promise<number> =>
    Number(await page.textContent('[data-testid="mesh-revision"]'));
  const revisionRow = (revision: number) =>
    page.$eval(`#revisions tr[data-revision="${revision}"]`, (tr) => {
      const a = (name: string): string =>
        (tr as unknown as Attrs).getAttribute(`data-${name}`) ?? '';
      return {
        affected: Number(a('affected')),
        synced: Number(a('synced')),
        nacked: Number(a('nacked')),
        converged: a('converged') === 'true',
        text: tr.textContent ?? '',
      };
    });
  const stateOf = async (node: string): Promise<string | undefined> =>
    (await pageNodes()).find((n) => n.node === node)?.state;

  beforeAll(async () => {
    stateDir = await tempDir('dashboard-e2e-');
    cp = new ControlPlane({
      etcdEndpoints: [infra.etcd.endpoint],
      natsUrl: infra.nats.url,
      listen: '127.0.0.1:0',
      dashboardListen: '127.0.0.1:0',
      log: silentLogger(),
    });
    await cp.start();
    nc = await connect({ servers: infra.nats.url });
    const admin = new MeshAdminClient(cp.address, grpc.credentials.createInsecure());
    await new Promise((resolve, reject) =>
      admin.joinCluster({ name: 'eu', id: 1 }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    admin.close();
    await publish([
      { kind: 'Namespace', cluster: 'eu', namespace: '', name: 'shop', labels: {} },
      pod('web-1', 'eu-1'),
      pod('api-1', 'eu-2'),
      pod('db-1', 'eu-3'),
    ]);
    startAgent('eu-1');
    startAgent('eu-2');
    // One endpoint fits; a second pod on eu-3 will be refused.
    startAgent('eu-3', ['--capacity-endpoints', '1']);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
  }, 120_000);

  afterAll(async () => {
    for (const a of agents.values()) {
      a.kill('SIGCONT');
      a.kill('SIGKILL');
    }
    await browser?.close();
    await nc?.close();
    await cp?.stop();
    await stateDir?.cleanup();
  });

  it('loads from the control plane and shows every node in sync, live', async () => {
    expect(cp.dashboardUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    await page.goto(cp.dashboardUrl);
    await page.waitForSelector('[data-testid="connection"].live', { timeout: 60_000 });
    await waitFor(
      'three nodes in sync on the page',
      async () => {
        const nodes = await pageNodes();
        return nodes.length === 3 && nodes.every((n) => n.state === 'in-sync' && n.acked > 0);
      },
      WAIT,
    );
    expect(pageErrors).toEqual([]);
  });

  it('a policy change shows converging while an agent is stopped, then converged', async () => {
    const before = await pageRevision();
    const eu1 = agents.get('eu-1')!;
    eu1.kill('SIGSTOP');
    await publish([webPolicy]);
    const revision = await waitFor(
      'the policy revision on the page',
      async () => {
        const r = await pageRevision();
        return r > before ? r : undefined;
      },
      WAIT,
    );
    await waitFor(
      'eu-1 pending and the revision converging',
      async () => {
        const row = await revisionRow(revision).catch(() => undefined);
        return (
          (await stateOf('eu/eu-1')) === 'pending' &&
          row !== undefined &&
          !row.converged &&
          row.synced < row.affected
        );
      },
      WAIT,
    );
    const converging = await revisionRow(revision);
    expect(converging.text).toContain(`${converging.synced} of ${converging.affected}`);
    const lagging = await page.textContent('#laggards');
    expect(lagging).toContain('eu/eu-1');

    eu1.kill('SIGCONT');
    await waitFor(
      'the revision converged and every node in sync',
      async () => {
        const row = await revisionRow(revision).catch(() => undefined);
        const nodes = await pageNodes();
        return row?.converged === true && nodes.every((n) => n.state === 'in-sync');
      },
      WAIT,
    );
    const converged = await revisionRow(revision);
    expect(converged.synced).toBe(converged.affected);
    expect(converged.text).toContain(`${converged.affected} of ${converged.affected}`);
  });

  it('an agent whose datapath is too small shows nacked with its error, and is not counted as synced', async () => {
    const before = await pageRevision();
    await publish([pod('db-2', 'eu-3')]);
    await waitFor(
      'eu-3 nacked on the page',
      async () => (await stateOf('eu/eu-3')) === 'nacked',
      WAIT,
    );
    const revision = await pageRevision();
    expect(revision).toBeGreaterThan(before);
    const error = page.locator('#errors li[data-node="eu/eu-3"]');
    await error.first().waitFor({ timeout: 60_000 });
    expect(await error.first().getAttribute('data-state')).toBe('nacked');
    expect(await error.first().textContent()).toMatch(/rejected.*endpoint/i);
    await waitFor(
      'the NACK counted on its revision',
      async () => {
        const row = await revisionRow(revision).catch(() => undefined);
        return row !== undefined && row.nacked >= 1;
      },
      WAIT,
    );
    const row = await revisionRow(revision);
    expect(row.converged).toBe(false);
    expect(row.synced).toBeLessThan(row.affected);

    await page.click('.cell[data-node="eu/eu-3"]');
    await page.waitForSelector('#drilldown:not([hidden]) [data-testid="node-history"]');
    expect(await page.textContent('#drilldown')).toContain('eu/eu-3');
  });

  it('shows the same numbers as meshctl skew --json at the same revision', async () => {
    type CliNode = { name: string; state: string; ackedRevision: number; syncedRevision: number };
    type CliRevision = { revision: number; target: number; pending: number; nacks: number };
    type Cli = {
      revision: number;
      clusters: { name: string; nodes: CliNode[] }[];
      revisions: CliRevision[];
    };
    // Settled: nothing changes now, so both describe the same revision.
    const { cli, shown } = await waitFor(
      'the page and the CLI at the same revision',
      async () => {
        const shownRevision = await pageRevision();
        const report = (await meshctl('skew')) as unknown as Cli;
        return report.revision === shownRevision
          ? { cli: report, shown: { revision: shownRevision, nodes: await pageNodes() } }
          : undefined;
      },
      WAIT,
    );
    const cliNodes = cli.clusters.flatMap((c) =>
      c.nodes.map((n) => ({
        node: `${c.name}/${n.name}`,
        state: n.state,
        acked: n.ackedRevision,
        synced: n.syncedRevision,
      })),
    );
    expect(shown.nodes).toEqual(cliNodes);
    // Convergence of the revisions both show: "n of m" is target − pending of target, NACKs alike.
    for (const r of cli.revisions.slice(0, 3)) {
      const row = await revisionRow(r.revision);
      expect(row, `revision ${r.revision}`).toMatchObject({
        affected: r.target,
        synced: r.target - r.pending,
        nacked: r.nacks,
      });
    }
    const counts = await page.$$eval('.counts span[data-state]', (spans) =>
      spans.map((s): [string, number] => [
        (s as unknown as Attrs).getAttribute('data-state') ?? '',
        Number((s as unknown as Attrs).getAttribute('data-count')),
      ]),
    );
    for (const [state, count] of counts) {
      expect(count, state).toBe(cliNodes.filter((n) => n.state === state).length);
    }
    await mkdir(join(ROOT, 'test-results'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'test-results/dashboard.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });
});
