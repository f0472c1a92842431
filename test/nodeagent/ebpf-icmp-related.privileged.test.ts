// ICMP errors related to a tracked flow pass the eBPF datapath where the
// policy would drop them as new traffic: a UDP datagram to a closed port is
// answered by ICMP port unreachable, which must get back through the server's
// enforced egress and the client's enforced ingress (both deny everything).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { Direction, Verdict } from '../../proto/index.js';
import { Libbpf } from '../../nodeagent/datapath/ebpf/index.js';
import { requirePrivileged } from '../harness/index.js';
import { emptyChange, ep } from './datapath-builders.js';
import { newRunId, openDatapath, pinDirs } from './ebpf-helpers.js';
import { twoPodNode, type Pod, type TwoPodNode } from './ebpf-hosts.js';

const run = promisify(execFile);
const ID_A = 0x10100;
const ID_B = 0x10101;
const UDP = 17;

/** One UDP datagram from a pod on a connected socket: "refused" when an ICMP port unreachable comes back. */
async function udpProbe(from: Pod, to: string, port: number): Promise<string> {
  const script = `const s=require('dgram').createSocket('udp4');const t=setTimeout(()=>{console.log('timeout');process.exit(0)},1500);s.on('error',e=>{console.log(e.code==='ECONNREFUSED'?'refused':'error '+e.code);process.exit(0)});s.on('message',()=>{console.log('answered');process.exit(0)});s.connect(${port},${JSON.stringify(to)},()=>{s.send('x');setTimeout(()=>s.send('x'),300)});`;
  const { stdout } = await run('ip', ['netns', 'exec', from.netns, process.execPath, '-e', script]);
  return stdout.trim();
}

describe.skipIf(!requirePrivileged())('ICMP errors related to tracked flows', () => {
  const lib = new Libbpf();
  const runId = newRunId('i');
  const pins = pinDirs(runId);
  let hosts: TwoPodNode | undefined;
  afterAll(async () => {
    await hosts?.cleanup();
    await pins.cleanup();
  });

  it('passes the ICMP port unreachable for an allowed UDP flow through egress and ingress that deny everything', async () => {
    hosts = await twoPodNode(runId, ['10.1.0.10', '10.1.0.11']);
    const [a, b] = hosts.pods as [Pod, Pod];
    const dp = await openDatapath(lib, {
      pinDir: pins.next(),
      endpoints: 16,
      ipcacheEntries: 64,
      policyEntriesPerEndpoint: 64,
    });
    try {
      const c = emptyChange();
      c.ipcache.upserts.push({ prefix: `${a.ip}/32`, identity: ID_A, resource: 'ipcache/0' });
      c.ipcache.upserts.push({ prefix: `${b.ip}/32`, identity: ID_B, resource: 'ipcache/0' });
      // Both enforce both directions; a may send UDP 9999 to b, b may receive it. Nothing else.
      for (const [name, ip, id] of [
        ['a', a.ip, ID_A],
        ['b', b.ip, ID_B],
      ] as const) {
        c.endpoints.upserts.push({
          ...ep(name, ip, id),
          egressEnforced: true,
          resource: `endpoint/${name}`,
        });
      }
      const udp = (direction: Direction, identity: number) => ({
        direction,
        identity,
        protocol: UDP,
        portLow: 9999,
        portHigh: 9999,
        verdict: Verdict.VERDICT_ALLOW,
      });
      c.policies.push({
        endpoint: 'eu/default/a',
        resource: 'endpoint/a',
        upserts: [udp(Direction.DIRECTION_EGRESS, ID_B)],
        deletes: [],
      });
      c.policies.push({
        endpoint: 'eu/default/b',
        resource: 'endpoint/b',
        upserts: [udp(Direction.DIRECTION_INGRESS, ID_A)],
        deletes: [],
      });
      await dp.apply(c);
      await dp.attachEndpoint('eu/default/a', { netns: hosts.node });
      await dp.attachEndpoint('eu/default/b', { netns: hosts.node });

      // Nobody listens on b:9999: b's kernel answers with ICMP port unreachable,
      // related to the allowed flow, so a's socket sees the refusal.
      expect(await udpProbe(a, b.ip, 9999)).toBe('refused');
      // A port the policy does not allow: the datagram is dropped on a's egress, no ICMP.
      expect(await udpProbe(a, b.ip, 9998)).toBe('timeout');

      const related = dp.counters().filter((s) => s.reason === 'conntrack-related');
      // Once on b's egress (the error leaves b), once on a's ingress (it reaches a).
      expect(related.map((s) => s.direction).sort()).toEqual(['egress', 'ingress']);
      expect(related.every((s) => s.verdict === 'forwarded' && s.packets > 0n)).toBe(true);
    } finally {
      await dp.close();
    }
  });
});
