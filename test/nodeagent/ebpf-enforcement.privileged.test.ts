// Real packets through the eBPF datapath: a node namespace with two pods
// (test/nodeagent/ebpf-hosts.ts), a policy allowing one port, its revocation,
// enforcement while the datapath is closed (pinned maps + attached filters,
// as while an agent is down), and adoption of the pins with the same digest.
// The full traffic matrix lives in the lab's tests.
import { afterAll, describe, expect, it } from 'vitest';
import { requirePrivileged, waitFor } from '../harness/index.js';
import { Libbpf, type FlowEvent } from '../../nodeagent/datapath/ebpf/index.js';
import { emptyChange, ep, rule, sorted } from './datapath-builders.js';
import { newRunId, openDatapath, pinDirs } from './ebpf-helpers.js';
import { twoPodNode, type TwoPodNode } from './ebpf-hosts.js';

const ID_A = 0x10100;
const ID_B = 0x10101;
const SIZES = { endpoints: 16, ipcacheEntries: 64, policyEntriesPerEndpoint: 64 };

describe.skipIf(!requirePrivileged())('eBPF datapath on real packets', () => {
  const lib = new Libbpf();
  const runId = newRunId('e');
  const pins = pinDirs(runId);
  let hosts: TwoPodNode | undefined;
  afterAll(async () => {
    await hosts?.cleanup();
    await pins.cleanup();
  });

  it('allows what policy allows, drops the rest, passes replies, keeps enforcing while closed, and is adopted', async () => {
    hosts = await twoPodNode(runId, ['10.1.0.10', '10.1.0.11']);
    const [a, b] = hosts.pods as [TwoPodNode['pods'][0], TwoPodNode['pods'][0]];
    await hosts.listen(b, [8080, 8081]);
    await hosts.listen(a, [9090]);
    const pinDir = pins.next();
    let dp = await openDatapath(lib, { pinDir, ...SIZES });

    const c = emptyChange();
    c.ipcache.upserts.push({ prefix: `${a.ip}/32`, identity: ID_A, resource: 'ipcache/0' });
    c.ipcache.upserts.push({ prefix: `${b.ip}/32`, identity: ID_B, resource: 'ipcache/0' });
    c.endpoints.upserts.push({
      ...ep('a', a.ip, ID_A),
      ingressEnforced: false,
      resource: 'endpoint/a',
    });
    c.endpoints.upserts.push({ ...ep('b', b.ip, ID_B), resource: 'endpoint/b' }); // ingress enforced
    c.policies.push({
      endpoint: 'eu/default/b',
      resource: 'endpoint/b',
      upserts: [rule(ID_A, 8080)],
      deletes: [],
    });
    await dp.apply(c);

    // No program attached yet: the maps are programmed, nothing is enforced.
    expect(await hosts.connect(a, b.ip, 8081)).toBe('connected');
    const itfB = await dp.attachEndpoint('eu/default/b', { netns: hosts.node });
    expect(itfB?.name).toBe(b.hostVeth);
    const itfA = await dp.attachEndpoint('eu/default/a', { netns: hosts.node });
    expect(itfA?.name).toBe(a.hostVeth);

    const seen: FlowEvent[] = [];
    const stop = new AbortController();
    const reading = (async () => {
      for await (const e of dp.events({ signal: stop.signal })) seen.push(e);
    })();

    expect(await hosts.connect(a, b.ip, 8080)).toBe('connected'); // allowed; the reply passes on conntrack
    expect(await hosts.connect(a, b.ip, 8081)).toBe('timeout'); // default deny on b's ingress
    expect(await hosts.connect(b, a.ip, 9090)).toBe('connected'); // a's ingress is not enforced

    // Each verdict was reported: the allowed flow once, the denied SYNs as drops.
    const allowed = await waitFor('the allow event', () =>
      seen.find((e) => e.endpoint === 'eu/default/b' && e.dstPort === 8080),
    );
    expect(allowed).toMatchObject({
      direction: 'ingress',
      verdict: 'forwarded',
      policyVerdict: 'allow',
      reason: 'policy-allowed',
      srcIdentity: ID_A,
      dstIdentity: ID_B,
      srcIp: a.ip,
      dstIp: b.ip,
      protocol: 6,
    });
    const dropped = await waitFor('the drop event', () =>
      seen.find((e) => e.verdict === 'dropped' && e.dstPort === 8081),
    );
    expect(dropped).toMatchObject({
      endpoint: 'eu/default/b',
      direction: 'ingress',
      policyVerdict: 'deny',
      reason: 'default-denied',
      srcIdentity: ID_A,
    });
    stop.abort();
    await reading;
    const counters = dp.counters();
    const drops = counters.find((c) => c.direction === 'ingress' && c.reason === 'default-denied');
    expect(drops?.verdict).toBe('dropped');
    expect(drops!.packets).toBeGreaterThanOrEqual(1n);
    expect(counters.some((c) => c.reason === 'conntrack-reply' && c.packets > 0n)).toBe(true);

    // Revoke the allow: new connections fail.
    const revoke = emptyChange();
    revoke.policies.push({
      endpoint: 'eu/default/b',
      resource: 'endpoint/b',
      upserts: [],
      deletes: [rule(ID_A, 8080)],
    });
    await dp.apply(revoke);
    expect(await hosts.connect(a, b.ip, 8080)).toBe('timeout');

    // Allow again, then close the datapath (an agent stopping): the kernel keeps enforcing.
    const allow = emptyChange();
    allow.policies.push({
      endpoint: 'eu/default/b',
      resource: 'endpoint/b',
      upserts: [rule(ID_A, 8080)],
      deletes: [],
    });
    await dp.apply(allow);
    const digest = dp.digest();
    const contents = sorted(await dp.read());
    await dp.close();
    expect(await hosts.connect(a, b.ip, 8080)).toBe('connected');
    expect(await hosts.connect(a, b.ip, 8081)).toBe('timeout');

    // A new datapath on the same pins adopts them: same contents, same digest.
    dp = await openDatapath(lib, { pinDir, ...SIZES });
    expect(dp.created).toBe(false);
    expect(dp.digest()).toBe(digest);
    expect(sorted(await dp.read())).toEqual(contents);
    expect(await dp.verify()).toBe(digest);
    // Re-attaching swaps in the new programs over the same maps.
    await dp.attachEndpoint('eu/default/b', { netns: hosts.node });
    expect(await hosts.connect(a, b.ip, 8081)).toBe('timeout');
    expect(await hosts.connect(a, b.ip, 8080)).toBe('connected');
    await dp.close();
  });
});
