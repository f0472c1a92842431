import { Digest, type PolicyEntryHasher } from '../../../common/index.js';
import { DatapathError } from '../errors.js';
import type { KernelMap } from './kernel-map.js';
import { STRUCTS, encodeSlot } from './layout.js';
import type { Libbpf } from './libbpf.js';
import type { Copy } from './maps.js';

const S = STRUCTS.policy_digest_state.fields;
/** bpf/meshplane.h: POLICY_DIGEST_NO_PENDING and policy_digest's return values */
const NO_PENDING = 0xffffffff;
const RETURNS: Record<number, string> = { 1: 'no such slot', 2: 'the slot has no policy map' };

/**
 * The digest of one endpoint's policy map, computed in the kernel: the
 * object's program `policy_digest`, run on demand (BPF_PROG_TEST_RUN),
 * walks the slot's inner map of one copy (bpf_for_each_map_elem), hashes
 * each entry as PolicyEntryHasher does and leaves the sum in
 * `policy_digests[slot]`. No entry is copied to user space, so a
 * 100,000-entry map is read back in a fraction of a batch dump's time. The
 * sum is the digest the agent gets from the same entries; the caller
 * compares it with the digest of what it wrote.
 *
 * Digests of different slots may run at once; one slot's, once at a time.
 */
export class PolicyMapDigester {
  constructor(
    private readonly lib: Libbpf,
    private readonly programFd: number,
    private readonly states: KernelMap,
  ) {}

  /**
   * The digest of every entry `copy`'s policy map of `slot` holds, as
   * `hasher`'s endpoint; the walk runs on a koffi worker thread. Rejects
   * with a BpfError if the kernel refused the run, a DatapathError if the
   * program found no map to walk.
   */
  async digest(slot: number, copy: Copy, hasher: PolicyEntryHasher): Promise<Digest> {
    const key = encodeSlot(slot);
    this.states.update(key, stateOf(hasher));
    const ret = await this.lib.runTc(this.programFd, { mark: slot, priority: copy });
    if (ret !== 0) {
      throw new DatapathError([
        {
          code: 'INTERNAL',
          message: `in-kernel digest of slot ${slot} (copy ${copy}): ${RETURNS[ret] ?? `returned ${ret}`}`,
          resourceNames: [],
        },
      ]);
    }
    const got = this.states.lookup(key)!;
    const sum = S.sum.offset;
    return Digest.fromSum(
      got.readUInt32LE(sum + 4),
      got.readUInt32LE(sum),
      Number(got.readBigUInt64LE(S.count.offset)),
    );
  }
}

/** A policy_digest_state with the hasher's prefix (sum and count are the program's to write). */
function stateOf(hasher: PolicyEntryHasher): Buffer {
  const p = hasher.prefixState;
  const b = Buffer.alloc(STRUCTS.policy_digest_state.size);
  b.writeUInt32LE(p.hi, S.prefix_hi.offset);
  b.writeUInt32LE(p.lo, S.prefix_lo.offset);
  b.writeUInt32LE(p.pending < 0 ? NO_PENDING : p.pending, S.pending.offset);
  b.writeUInt32LE(p.bytes, S.bytes.offset);
  return b;
}
