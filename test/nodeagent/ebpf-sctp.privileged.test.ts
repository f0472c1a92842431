// SCTP through the eBPF program. This kernel has no SCTP, so no SCTP socket
// can send a real packet (the lab answers SCTP probes with null); instead the
// attached program itself judges crafted SCTP packets in the kernel
// (BPF_PROG_TEST_RUN, with the program's real maps). The program must read
// SCTP's ports (same offsets as TCP/UDP), so a port rule for SCTP matches its
// port and no other, and a TCP rule on the same port does not let SCTP in.
import { afterAll, describe, expect, it } from 'vitest';
import { requirePrivileged } from '../harness/index.js';
import {
  PROTO,
  attachedProgramId,
  ipv4Packet,
  testRunProgram,
  type PacketSpec,
} from '../../hosts/index.js';
import { Libbpf } from '../../nodeagent/datapath/ebpf/index.js';
import { emptyChange, ep, rule } from './datapath-builders.js';
import { newRunId, openDatapath, pinDirs } from './ebpf-helpers.js';
import { twoPodNode, type TwoPodNode } from './ebpf-hosts.js';

const ID_A = 0x10100;
const ID_B = 0x10101;
const PASS = 0;
const DROP = 2;

describe.skipIf(!requirePrivileged())('eBPF datapath and SCTP ports', () => {
  const lib = new Libbpf();
  const runId = newRunId('s');
  const pins = pinDirs(runId);
  let hosts: TwoPodNode | undefined;
  afterAll(async () => {
    await hosts?.cleanup();
    await pins.cleanup();
  });

  it('matches an SCTP port rule on the port, not on other ports nor through a TCP rule', async () => {
    hosts = await twoPodNode(runId, ['10.1.0.20', '10.1.0.21']);
    const [a, b] = hosts.pods as [TwoPodNode['pods'][0], TwoPodNode['pods'][0]];
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
      c.endpoints.upserts.push({ ...ep('b', b.ip, ID_B), resource: 'endpoint/b' }); // ingress enforced
      c.policies.push({
        endpoint: 'eu/default/b',
        resource: 'endpoint/b',
        upserts: [
          { ...rule(ID_A, 5000), protocol: PROTO.SCTP },
          { ...rule(ID_A, 5010), protocol: PROTO.SCTP, portHigh: 5020 },
          rule(ID_A, 6000), // TCP
        ],
        deletes: [],
      });
      await dp.apply(c);
      await dp.attachEndpoint('eu/default/b', { netns: hosts.node });
      // b's ingress policy runs on its host-side veth's tc egress.
      const prog = await attachedProgramId(hosts.node, b.hostVeth, 'egress');
      const judge = async (dport: number, protocol: PacketSpec['protocol'] = PROTO.SCTP) =>
        (
          await testRunProgram(
            prog,
            ipv4Packet({ protocol, src: a.ip, dst: b.ip, sport: 40000, dport }),
          )
        ).ret;

      expect(await judge(5000)).toBe(PASS);
      expect(await judge(5001)).toBe(DROP);
      expect(await judge(5015)).toBe(PASS); // inside the SCTP range
      expect(await judge(5021)).toBe(DROP);
      expect(await judge(6000)).toBe(DROP); // the TCP rule is not an SCTP rule
      expect(await judge(6000, PROTO.TCP)).toBe(PASS);
      expect(await judge(5000, PROTO.TCP)).toBe(DROP);
    } finally {
      await dp.close();
    }
  });
});
