// Run by policy-record-shapes.test.ts as
//   node --allow-natives-syntax --import tsx test/nodeagent/shapes/policy-records.ts
// Prints, as JSON, whether the policy records the agent hands its datapath
// share V8's hidden class with the records it decodes from the wire.
import { encodeResource } from '../../../common/index.js';
import {
  DeltaDiscoveryResponse,
  Direction,
  TYPE_ENDPOINT,
  Verdict,
  type PolicyEntry,
} from '../../../proto/index.js';
import {
  ResourceStore,
  buildDelta,
  endpointPolicyOf,
  translateDelta,
  type EndpointRecord,
  type PolicyRecord,
} from '../../../nodeagent/index.js';
import {
  decodePolicy,
  encodePolicyKey,
  encodePolicyValue,
} from '../../../nodeagent/datapath/ebpf/index.js';

// Natives syntax is not TypeScript: V8 parses it in a function built at run time.
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- the only way to reach %HaveSameMap from TypeScript
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (
  a: object,
  b: object,
) => boolean;

const ep: EndpointRecord = {
  cluster: 'eu',
  namespace: 'default',
  name: 'pod',
  identity: 0x10100,
  ips: ['10.0.0.1'],
  namedPorts: [],
  ingressEnforced: true,
  egressEnforced: true,
};

function entries(verdictEvery: number): PolicyEntry[] {
  const out: PolicyEntry[] = [];
  for (let i = 0; i < 64; i++)
    out.push({
      direction: i % 2 === 0 ? Direction.DIRECTION_INGRESS : Direction.DIRECTION_EGRESS,
      identity: 0x20100 + i,
      protocol: 6,
      portLow: 1000 + i,
      portHigh: i % 3 === 0 ? 2000 + i : 1000 + i,
      verdict: i % verdictEvery === 0 ? Verdict.VERDICT_DENY : Verdict.VERDICT_ALLOW,
    });
  return out;
}

/** The endpoint's resource as the agent receives it: one response part, encoded and decoded. */
function received(revision: number, policy: PolicyEntry[]): DeltaDiscoveryResponse {
  const r = encodeResource('endpoint/pod', {
    typeUrl: TYPE_ENDPOINT,
    value: endpointPolicyOf(ep, policy),
  });
  return DeltaDiscoveryResponse.decode(
    DeltaDiscoveryResponse.encode({
      typeUrl: TYPE_ENDPOINT,
      resources: [{ name: r.name, version: r.version, payload: r.payload }],
      removedResources: [],
      nonce: `n${revision}`,
      meshRevision: revision,
      revisionComplete: true,
      systemVersionInfo: String(revision),
      traceContext: {},
    }).finish(),
  );
}

/** The agent's path for one revision: resources decoded, translated into a DatapathChange, then held. */
function apply(
  store: ResourceStore,
  part: DeltaDiscoveryResponse,
): { decoded: PolicyRecord; upserts: PolicyRecord[] } {
  const built = buildDelta([part], store);
  if (!built.ok) throw new Error(JSON.stringify(built.rejections));
  const after = built.delta.updates[0]?.after;
  if (after?.typeUrl !== TYPE_ENDPOINT) throw new Error('no endpoint resource decoded');
  const translated = translateDelta(built.delta, store);
  if (!translated.ok) throw new Error(JSON.stringify(translated.rejections));
  store.commit(built.delta);
  const upserts = translated.change.policies[0]?.upserts ?? [];
  if (upserts.length === 0) throw new Error('translation gave no policy upsert');
  return { decoded: after.value.entries[0]!, upserts };
}

const store = new ResourceStore();
const first = apply(store, received(1, entries(5)));
// A changed map: some verdicts differ, so the upserts are a diff against the held entries.
const changed = apply(store, received(2, entries(7)));
const { decoded } = first;
const read = decodePolicy(encodePolicyKey(decoded), encodePolicyValue(decoded.verdict));

process.stdout.write(
  `${JSON.stringify({
    newMap: first.upserts.every((u) => haveSameMap(decoded, u)),
    changedMap: changed.upserts.every((u) => haveSameMap(decoded, u)),
    readFromKernel: haveSameMap(decoded, read),
  })}\n`,
);
