// The Prometheus endpoints of the real binaries: the control plane's
// (--metrics-listen) carries the propagation metrics after a change reaches
// an agent; each agent process serves its own with the apply histogram.
import * as grpc from '@grpc/grpc-js';
import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROLPLANE_METRICS } from '../../controlplane/telemetry/index.js';
import { AGENT_METRICS } from '../../nodeagent/telemetry/index.js';
import { MeshAdminClient } from '../../proto/index.js';
import { useInfra, waitFor } from '../harness/index.js';
import { connect, pod, publish, startProc, stopProc, type Proc } from './procs.js';

const scrape = async (url: string): Promise<string> => (await fetch(url)).text();

/** The value of one series (`name{labels}`) in a scrape, if it is there. */
function valueOf(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

/** The lines of a scrape naming one of `names`: what a timed-out wait shows. */
const linesOf = (text: string, names: readonly string[]): string =>
  text
    .split('\n')
    .filter((l) => names.some((n) => l.startsWith(n)))
    .join('\n');

describe('metrics endpoints (processes)', () => {
  const infra = useInfra();
  let cp: Proc;
  let agent: Proc;
  let nc: NatsConnection;
  let cpMetrics = '';
  let agentMetrics = '';

  beforeAll(async () => {
    cp = startProc('controlplane/main.ts', [
      '--etcd',
      infra.etcd.endpoint,
      '--nats',
      infra.nats.url,
      '--insecure',
      '--metrics-listen',
      '127.0.0.1:0',
    ]);
    const ready = await cp.ready;
    cpMetrics = String(ready.metrics);
    const address = String(ready.address);
    const admin = new MeshAdminClient(address, grpc.credentials.createInsecure());
    await new Promise((resolve, reject) =>
      admin.joinCluster({ name: 'eu', id: 1 }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    admin.close();
    nc = await connect({ servers: infra.nats.url });
    await publish(nc, [
      { kind: 'Namespace', cluster: 'eu', namespace: '', name: 'shop', labels: {} },
      pod('web-1', 'eu-1'),
    ]);
    agent = startProc('nodeagent/main.ts', [
      '--insecure',
      '--server',
      address,
      '--cluster',
      'eu',
      '--node',
      'eu-1',
      '--metrics-listen',
      '127.0.0.1:0',
    ]);
    agentMetrics = String((await agent.ready).metrics);
  }, 240_000);
  afterAll(async () => {
    await stopProc(agent);
    await stopProc(cp);
    await nc?.close();
  });

  it('the control plane serves every propagation metric name, with per-cluster histograms after a change', async () => {
    expect(cpMetrics).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    // The agent was ready after its first apply; earlier revisions may still
    // be on their way. Wait for the state asserted below — eu-1 in sync at a
    // revision after this change, with that ACK observed — not for time.
    const latest = 'meshplane_latest_revision{cluster="eu"}';
    const count = 'meshplane_propagation_seconds_count{cluster="eu"}';
    const inSync = 'meshplane_nodes{cluster="eu",state="in-sync"}';
    const before = await scrape(cpMetrics);
    const latestBefore = valueOf(before, latest) ?? 0;
    const countBefore = valueOf(before, count) ?? 0;
    await publish(nc, [pod('web-2', 'eu-1')]);
    let last = '';
    const text = await waitFor(
      `eu-1 in sync at a revision after ${latestBefore}, its ACK observed`,
      async () => {
        const t = (last = await scrape(cpMetrics));
        return (
          (valueOf(t, latest) ?? 0) > latestBefore &&
          (valueOf(t, count) ?? 0) > countBefore &&
          valueOf(t, inSync) === 1 &&
          t
        );
      },
      {
        // Generous: the control plane and agent are separate processes on a loaded machine.
        timeoutMs: 120_000,
        intervalMs: 250,
        detail: () => linesOf(last, [latest, count, 'meshplane_nodes{']),
      },
    );
    const perNode = [
      CONTROLPLANE_METRICS.nodeSynced,
      CONTROLPLANE_METRICS.nodeLag,
      CONTROLPLANE_METRICS.nodeState,
    ] as string[];
    for (const name of Object.values(CONTROLPLANE_METRICS)) {
      if (perNode.includes(name))
        expect(text, `${name} needs --metrics-per-node`).not.toContain(name);
      else expect(text, name).toContain(`# TYPE ${name} `);
    }
    expect(text).toContain('meshplane_nodes{cluster="eu",state="in-sync"} 1');
    expect(text).toContain('meshplane_nodes{cluster="eu",state="disconnected"} 4');
    expect(text).toMatch(/meshplane_propagation_seconds_bucket\{cluster="eu",le="60"\} [1-9]/);
  });

  it('each agent serves its own endpoint with the apply histogram', async () => {
    // Its ready line follows its first apply; wait for the scrape to show it (no timing assumed).
    let last = '';
    const text = await waitFor(
      'the agent connected, with an apply observed',
      async () => {
        const t = (last = await scrape(agentMetrics));
        return (
          (valueOf(t, 'meshplane_apply_seconds_count{cluster="eu",node="eu-1"}') ?? 0) >= 1 &&
          valueOf(t, 'meshplane_agent_connected{cluster="eu",node="eu-1"}') === 1 &&
          t
        );
      },
      {
        timeoutMs: 120_000,
        intervalMs: 250,
        detail: () => linesOf(last, ['meshplane_apply_seconds_count', 'meshplane_agent_connected']),
      },
    );
    for (const name of Object.values(AGENT_METRICS))
      expect(text, name).toContain(`# TYPE ${name} `);
    expect(text).toMatch(/meshplane_apply_seconds_count\{cluster="eu",node="eu-1"\} [1-9]/);
    expect(text).toMatch(/meshplane_agent_connected\{cluster="eu",node="eu-1"\} 1/);
    expect((await fetch(agentMetrics.replace('/metrics', '/other'))).status).toBe(404);
  });
});
