import { Digest, type PolicyEntryHasher } from '../../../common/index.js';
import { DatapathError } from '../errors.js';
import { STRUCTS } from './layout.js';
import type { Libbpf } from './libbpf.js';
import type { Copy } from './maps.js';

const C = STRUCTS.policy_digest_ctx.fields;

/** Policy maps read by their in-kernel digest: equal to the agent's, or dumped after it differed or the run was refused. */
export interface KernelDigestCounts {
  matched: number;
  mismatched: number;
  refused: number;
}

/** `KernelDigestCounts` by what read the maps: the read-back of a write, a verification. */
export interface KernelDigests {
  write: KernelDigestCounts;
  verify: KernelDigestCounts;
}

export function noDigests(): KernelDigestCounts {
  return { matched: 0, mismatched: 0, refused: 0 };
}
/** bpf/meshplane.h: POLICY_DIGEST_NO_PENDING, POLICY_DIGEST_NO_MAP */
const NO_PENDING = 0xffffffff;
const NO_MAP = 1;

/**
 * The digest of one endpoint's policy map, computed in the kernel: the
 * object's syscall program `policy_digest`, run on demand
 * (BPF_PROG_TEST_RUN), walks the slot's inner map of one copy
 * (bpf_for_each_map_elem), hashes each entry as PolicyEntryHasher does and
 * returns the sum in its context. No entry is copied to user space, so a
 * 100,000-entry map is read back in less time than a batch dump takes. The
 * sum is the digest the agent gets from the same entries; the caller
 * compares it with the digest of what it wrote.
 */
export class PolicyMapDigester {
  constructor(
    private readonly lib: Libbpf,
    private readonly programFd: number,
  ) {}

  /**
   * The digest of every entry `copy`'s policy map of `slot` holds, as
   * `hasher`'s endpoint; the walk runs on a koffi worker thread. Rejects
   * with a BpfError if the kernel refused the run, a DatapathError if the
   * slot has no policy map.
   */
  async digest(slot: number, copy: Copy, hasher: PolicyEntryHasher): Promise<Digest> {
    const ctx = contextOf(slot, copy, hasher);
    const ret = await this.lib.runSyscall(this.programFd, ctx);
    if (ret !== 0) {
      const why = ret === NO_MAP ? 'the slot has no policy map' : `returned ${ret}`;
      throw new DatapathError([
        {
          code: 'INTERNAL',
          message: `in-kernel digest of slot ${slot} (copy ${copy}): ${why}`,
          resourceNames: [],
        },
      ]);
    }
    const sum = C.sum.offset;
    return Digest.fromSum(
      ctx.readUInt32LE(sum + 4),
      ctx.readUInt32LE(sum),
      Number(ctx.readBigUInt64LE(C.count.offset)),
    );
  }
}

/** A policy_digest_ctx naming the map, with the hasher's prefix (sum and count are the program's to write). */
function contextOf(slot: number, copy: Copy, hasher: PolicyEntryHasher): Buffer {
  const p = hasher.prefixState;
  const b = Buffer.alloc(STRUCTS.policy_digest_ctx.size);
  b.writeUInt32LE(slot, C.slot.offset);
  b.writeUInt32LE(copy, C.copy.offset);
  b.writeUInt32LE(p.hi, C.prefix_hi.offset);
  b.writeUInt32LE(p.lo, C.prefix_lo.offset);
  b.writeUInt32LE(p.pending < 0 ? NO_PENDING : p.pending, C.pending.offset);
  b.writeUInt32LE(p.bytes, C.bytes.offset);
  return b;
}
