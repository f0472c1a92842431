// Flows through real gRPC: an agent's FlowReporter streams datapath events to
// the control plane's MeshFlows service, which names them and serves them on
// MeshObserve (the client `meshctl observe` uses). The datapath and the mesh
// state are fakes here; test/datapath/flows.privileged.test.ts runs the kernel.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { AsyncQueue, silentLogger } from '../../common/index.js';
import {
  FlowBuffer,
  flowsService,
  matchesFlow,
  observeService,
  parseFlowFilter,
  type PeerLookup,
} from '../../controlplane/flows/index.js';
import { flowJson, flowLine, observeFlows } from '../../cli/index.js';
import { FlowReporter } from '../../nodeagent/flows/index.js';
import type { FlowEvent } from '../../nodeagent/datapath/ebpf/index.js';
import { MeshFlowsService, MeshObserveService, type ObservedFlow } from '../../proto/index.js';
import { silentLogger as agentLogger } from '../../nodeagent/index.js';
import { tempDir, waitFor } from '../harness/index.js';

const PODS: Record<string, { cluster: string; namespace: string; pod: string }> = {
  '10.1.0.11': { cluster: 'eu', namespace: 'app', pod: 'other' },
  '10.1.0.20': { cluster: 'eu', namespace: 'app', pod: 'server' },
};
const lookup: PeerLookup = { endpointOf: (ip) => PODS[ip] };

function event(over: Partial<FlowEvent> = {}): FlowEvent {
  return {
    monotonicNs: 1n,
    time: new Date('2026-11-22T08:00:00.123Z'),
    endpoint: 'eu/app/server',
    endpointIdentity: 65793,
    direction: 'ingress',
    verdict: 'dropped',
    policyVerdict: 'deny',
    reason: 'default-denied',
    srcIdentity: 65792,
    dstIdentity: 65793,
    srcIp: '10.1.0.11',
    dstIp: '10.1.0.20',
    protocol: 6,
    srcPort: 40000,
    dstPort: 8080,
    ...over,
  };
}

function flow(over: Partial<ObservedFlow> = {}): ObservedFlow {
  return {
    sequence: 1,
    time: '2026-11-22T08:00:00.123Z',
    cluster: 'eu',
    node: 'eu-2',
    verdict: 'DROPPED',
    reason: 'default-denied',
    direction: 'ingress',
    protocol: 'TCP',
    source: {
      cluster: 'eu',
      namespace: 'app',
      pod: 'other',
      ip: '10.1.0.11',
      port: 4,
      identity: 65792,
      identityName: '',
    },
    destination: {
      cluster: 'eu',
      namespace: 'app',
      pod: 'server',
      ip: '10.1.0.20',
      port: 8080,
      identity: 65793,
      identityName: '',
    },
    endpoint: 'eu/app/server',
    endpointIdentity: 65793,
    ...over,
  };
}

describe('flow filters', () => {
  it('match names by prefix, addresses, identities and verdicts', () => {
    const f = flow();
    const ok = (req: { from?: string; to?: string; verdict?: string }): boolean => {
      const p = parseFlowFilter({ from: '', to: '', verdict: '', ...req });
      if (!p.ok) throw new Error(p.errors.join('; '));
      return matchesFlow(f, p.value);
    };
    expect(ok({ from: 'eu' })).toBe(true);
    expect(ok({ from: 'eu/app/other', to: 'eu/app/server' })).toBe(true);
    expect(ok({ from: 'eu/app/oth' })).toBe(false);
    expect(ok({ from: 'us' })).toBe(false);
    expect(ok({ to: '10.1.0.20', verdict: 'dropped' })).toBe(true);
    expect(ok({ from: '65792' })).toBe(true);
    expect(ok({ verdict: 'FORWARDED' })).toBe(false);
  });

  it('refuses malformed filters, naming each', () => {
    const p = parseFlowFilter({ from: 'a/b/c/d', to: 'x//y', verdict: 'maybe' });
    expect(p.ok).toBe(false);
    if (p.ok) return;
    expect(p.errors).toHaveLength(3);
    expect(p.errors[2]).toBe('verdict: "maybe" is not one of FORWARDED, DROPPED, AUDIT');
  });
});

describe('flow buffer', () => {
  it('keeps the newest flows up to its capacity', () => {
    const b = new FlowBuffer({ capacity: 3 });
    for (let i = 0; i < 5; i++) b.append(flow({ sequence: b.nextSequence() }));
    expect(b.recent().map((f) => f.sequence)).toEqual([3, 4, 5]);
  });
});

describe('flow words', () => {
  it('say what the datapath decided', () => {
    expect(flowJson(flow()).summary).toBe(
      'policy denied: no rule allows identity 65792 → 65793 on 8080/TCP (ingress)',
    );
    expect(flowLine(flow())).toBe(
      '08:00:00.123 DROPPED   eu/app/other (10.1.0.11:4) → eu/app/server (10.1.0.20:8080)  policy denied: no rule allows identity 65792 → 65793 on 8080/TCP (ingress)',
    );
    const world = flow({
      verdict: 'FORWARDED',
      reason: 'policy-allowed',
      direction: 'egress',
      destination: {
        cluster: '',
        namespace: '',
        pod: '',
        ip: '198.18.0.10',
        port: 443,
        identity: 2,
        identityName: 'world',
      },
    });
    expect(flowJson(world).destination).toEqual({
      cluster: null,
      namespace: null,
      pod: null,
      ip: '198.18.0.10',
      port: 443,
      identity: 2,
      identityName: 'world',
    });
    expect(flowLine(world)).toContain(
      '→ 198.18.0.10:443 (world)  policy allowed: identity 65792 → 2 on 443/TCP (egress)',
    );
  });
});

/** A fake datapath event source that ends when the reader's signal aborts, as the real one does. */
function sourceOf(events: AsyncQueue<FlowEvent>) {
  return {
    events: ({ signal }: { signal?: AbortSignal }) => {
      signal?.addEventListener('abort', () => events.end(), { once: true });
      return events;
    },
  };
}

describe('flows over gRPC', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function serve(buffer: FlowBuffer): Promise<string> {
    const server = new grpc.Server();
    server.addService(
      MeshFlowsService,
      flowsService({ buffer, lookup, log: silentLogger(), requireNodeCertificate: false }),
    );
    server.addService(MeshObserveService, observeService({ buffer }));
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    cleanups.push(() => void server.forceShutdown());
    return `127.0.0.1:${port}`;
  }

  it('carries an agent’s events to observe, named from the mesh state, and follows new ones', async () => {
    const buffer = new FlowBuffer();
    const address = await serve(buffer);
    const events = new AsyncQueue<FlowEvent>();
    const reporter = new FlowReporter({
      source: sourceOf(events),
      server: address,
      credentials: grpc.credentials.createInsecure(),
      node: { cluster: 'eu', id: 'eu-2' },
      logger: agentLogger,
      intervalMs: 20,
    });
    reporter.start();
    cleanups.push(() => reporter.stop());
    const dir = await tempDir('flows-');
    cleanups.push(() => dir.cleanup());
    const target = { address, stateDir: dir.path };

    events.push(event());
    events.push(
      event({
        verdict: 'forwarded',
        policyVerdict: 'allow',
        reason: 'policy-allowed',
        dstPort: 80,
      }),
    );
    await waitFor('two flows in the buffer', () => buffer.size === 2);
    const all: ObservedFlow[] = [];
    for await (const f of observeFlows(target, { verdict: 'DROPPED' })) all.push(f);
    expect(all).toHaveLength(1);
    expect(flowJson(all[0]!)).toMatchObject({
      verdict: 'DROPPED',
      node: { cluster: 'eu', name: 'eu-2' },
      source: { cluster: 'eu', namespace: 'app', pod: 'other', identity: 65792 },
      destination: { pod: 'server', port: 8080, identity: 65793 },
      time: '2026-11-22T08:00:00.123Z',
    });

    // -f: after the buffered ones, new flows until the caller stops.
    const stop = new AbortController();
    const followed: ObservedFlow[] = [];
    const following = (async () => {
      for await (const f of observeFlows(
        target,
        { follow: true, to: 'eu/app/server' },
        { signal: stop.signal },
      ))
        followed.push(f);
    })();
    await waitFor('the buffered flows', () => followed.length === 2);
    events.push(event({ srcPort: 40001, reason: 'policy-denied' }));
    await waitFor('the new flow', () => followed.length === 3);
    expect(followed[2]!.reason).toBe('policy-denied');
    stop.abort();
    await following;
    expect(reporter.stats).toEqual({ read: 3, sent: 3, lost: 0 });
  });

  it('bounds what the agent holds while the control plane is away, and says what was lost', async () => {
    const events = new AsyncQueue<FlowEvent>();
    // Nothing listens here yet: the reporter keeps at most maxQueued events.
    const buffer = new FlowBuffer();
    const address = await serve(buffer);
    const reporter = new FlowReporter({
      source: sourceOf(events),
      server: address,
      credentials: grpc.credentials.createInsecure(),
      node: { cluster: 'eu', id: 'eu-2' },
      logger: agentLogger,
      intervalMs: 10_000, // no report before all 1,000 events are queued
      maxQueued: 100,
    });
    reporter.start();
    cleanups.push(() => reporter.stop());
    for (let i = 0; i < 1000; i++) events.push(event({ srcPort: i }));
    await waitFor('every event read', () => reporter.stats.read === 1000);
    expect(reporter.stats.lost).toBeGreaterThanOrEqual(900);
  });
});
