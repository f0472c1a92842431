import { protocolNumber } from '../../common/index.js';
import { Direction, Verdict } from '../../proto/index.js';
import type { DatapathChange, PolicyRecord } from '../../nodeagent/datapath/index.js';
import { EbpfDatapath, EndpointAttacher, Libbpf } from '../../nodeagent/datapath/ebpf/index.js';
import type { Scenario } from '../datapath.js';
import { percentile } from './stats.js';

const CLIENT_IDENTITY = (77 << 16) | 256;
const SERVER_IDENTITY = (77 << 16) | 257;
const TCP = protocolNumber('TCP')!;

/**
 * The meshplane scenarios of the datapath benchmark: the eBPF datapath
 * (maps pinned under the bed's pin dir) programmed directly with one
 * revision — both pods' ipcache entries and endpoints, and on the server
 * (ingress enforced) `entries` TCP/8080 allows: entries−1 for other
 * identities and the client's last — then attached to both host-side veths
 * in the node namespace, as an agent does. The apply of each revision is
 * timed: `map_entries_per_s` = entries ÷ the median apply time of the
 * largest one over the rounds (write, switch and digest read-back; no gRPC,
 * no agent): one endpoint holding all the entries, the case with nothing to
 * overlap (`datapath-maps` spreads them over 10 endpoints).
 */
export function ebpfScenarios(
  entries: readonly number[],
): Promise<{ scenarios: Scenario[]; skipped?: string; mapEntriesPerS: () => number | undefined }> {
  const libbpf = new Libbpf();
  /** entries -> seconds of each apply (one per round) */
  const applied = new Map<number, number[]>();
  const scenarios: Scenario[] = entries.map((n) => {
    let datapath: EbpfDatapath | undefined;
    return {
      name: `ebpf_${n}`,
      async setup(bed) {
        const client = bed.pod('bench/load/client');
        const server = bed.pod('bench/load/server');
        datapath = await EbpfDatapath.open({
          pinDir: `${bed.pinDir}/node`,
          libbpf,
          policyEntriesPerEndpoint: n + 16,
        });
        const policy: (PolicyRecord & { resource?: string })[] = [];
        for (let i = 0; i < n - 1; i++)
          policy.push({
            direction: Direction.DIRECTION_INGRESS,
            identity: (78 << 16) | (256 + (i % 65_000)) | ((Math.floor(i / 65_000) + 1) << 24),
            protocol: TCP,
            portLow: 8080,
            portHigh: 8080,
            verdict: Verdict.VERDICT_ALLOW,
          });
        policy.push({
          direction: Direction.DIRECTION_INGRESS,
          identity: CLIENT_IDENTITY,
          protocol: TCP,
          portLow: 8080,
          portHigh: 8080,
          verdict: Verdict.VERDICT_ALLOW,
        });
        const endpoint = (name: string, identity: number, ip: string, ingress: boolean) => ({
          cluster: 'bench',
          namespace: 'load',
          name,
          identity,
          ips: [ip],
          namedPorts: [],
          ingressEnforced: ingress,
          egressEnforced: false,
          resource: `endpoint/${name}`,
        });
        const change: DatapathChange = {
          ipcache: {
            upserts: [
              { prefix: `${client.ip}/32`, identity: CLIENT_IDENTITY, resource: 'ipcache' },
              { prefix: `${server.ip}/32`, identity: SERVER_IDENTITY, resource: 'ipcache' },
            ],
            deletes: [],
          },
          endpoints: {
            upserts: [
              endpoint('client', CLIENT_IDENTITY, client.ip, false),
              endpoint('server', SERVER_IDENTITY, server.ip, true),
            ],
            deletes: [],
          },
          policies: [
            {
              endpoint: 'bench/load/server',
              resource: 'endpoint/server',
              upserts: policy,
              deletes: [],
            },
          ],
          services: { upserts: [], deletes: [] },
        };
        const started = performance.now();
        await datapath.apply(change);
        const seconds = (performance.now() - started) / 1000;
        applied.set(n, [...(applied.get(n) ?? []), seconds]);
        await new EndpointAttacher(datapath, { netns: client.nodeNetns }).reconcile();
        if (!(await bed.programsAttached('bench/load/server')))
          throw new Error('ebpf scenario: programs did not attach to the server veth');
      },
      async teardown() {
        await datapath?.close();
      },
    };
  });
  return Promise.resolve({
    scenarios,
    mapEntriesPerS: () => {
      const largest = Math.max(...applied.keys());
      const times = applied.get(largest);
      return times === undefined ? undefined : Math.round(largest / percentile(times, 50));
    },
  });
}
