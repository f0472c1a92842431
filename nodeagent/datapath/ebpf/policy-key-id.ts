import { MeshError } from '../../../common/index.js';
import type { PolicyKey } from '../types.js';
import { writePolicyKey } from './layout.js';

/**
 * The policy key a policyKeyId (entries.ts) names: the checks ask the
 * datapath about keys by id, the eBPF mirror holds kernel key bytes. Throws
 * INTERNAL for an id of another shape (test/nodeagent/ebpf-policy-table.test.ts
 * round-trips it with policyKeyId, so a change of either is caught).
 */
export function policyKeyOfId(id: string): PolicyKey {
  const p = id.split('|');
  if (p.length !== 5) throw new MeshError('INTERNAL', `not a policy key id: "${id}"`);
  return {
    direction: Number(p[0]),
    identity: Number(p[1]),
    protocol: Number(p[2]),
    portLow: Number(p[3]),
    portHigh: Number(p[4]),
  };
}

/**
 * Writes `k` as kernel key bytes into `key` (zeroed first); false when a
 * field does not fit the kernel's key (such a key is never held: a delete
 * of it is a no-op).
 */
export function writeKeyIfEncodable(key: Buffer, k: PolicyKey): boolean {
  key.fill(0);
  try {
    writePolicyKey(key, 0, k);
    return true;
  } catch {
    return false;
  }
}
