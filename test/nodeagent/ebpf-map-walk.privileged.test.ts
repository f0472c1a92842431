// The walk of a map without batch lookups (an LPM trie: ipcache,
// policy_ranges) on a koffi worker thread: bpf/map-ops.c's
// meshplane_map_walk through Libbpf.walkAsync, and KernelMap.dumpAsync on
// top of it. It must read every entry exactly once, in one call or resumed
// after the last key of the call before, and leave the event loop free.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EbpfDatapath, KernelMap, Libbpf } from '../../nodeagent/datapath/ebpf/index.js';
import { requirePrivileged } from '../harness/index.js';

const BPF_MAP_TYPE_LPM_TRIE = 11;
const BPF_F_NO_PREALLOC = 1;
const ENTRIES = 3000;

/** An LPM trie key: prefix length, then an IPv4 address. */
function key(i: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(32, 0);
  b.writeUInt32BE(0x0a000000 + i, 4);
  return b;
}

describe.skipIf(!requirePrivileged())('map walk on a worker thread', () => {
  const lib = new Libbpf();
  let fd = -1;
  let map: KernelMap;

  beforeAll(() => {
    fd = lib.mapCreate(BPF_MAP_TYPE_LPM_TRIE, 'mp_walk_test', 8, 4, ENTRIES, BPF_F_NO_PREALLOC);
    map = new KernelMap(lib, 'mp_walk_test', fd, 8, 4, { batch: false, maxEntries: ENTRIES });
    for (let i = 0; i < ENTRIES; i++) {
      const v = Buffer.alloc(4);
      v.writeUInt32LE(i * 7, 0);
      map.update(key(i), v);
    }
  });
  afterAll(() => {
    if (fd >= 0) lib.close(fd);
  });

  /** key (hex) -> value, of packed records; throws on a repeated key */
  const entriesOf = (keys: Buffer, values: Buffer, n: number): Map<string, number> => {
    const out = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const k = keys.subarray(i * 8, i * 8 + 8).toString('hex');
      if (out.has(k)) throw new Error(`key ${k} read twice`);
      out.set(k, values.readUInt32LE(i * 4));
    }
    return out;
  };
  const expected = (): Map<string, number> =>
    new Map(Array.from({ length: ENTRIES }, (_, i) => [key(i).toString('hex'), i * 7]));

  it('reads every entry in one call', async () => {
    const keys = Buffer.alloc(ENTRIES * 8);
    const values = Buffer.alloc(ENTRIES * 4);
    const n = await lib.walkAsync(fd, 8, 4, null, keys, values, ENTRIES + 10);
    expect(n).toBe(ENTRIES);
    expect(entriesOf(keys, values, n)).toEqual(expected());
  });

  it('resumes after the last key of the call before, each entry once', async () => {
    const chunk = 128;
    const keys = Buffer.alloc((ENTRIES + chunk) * 8);
    const values = Buffer.alloc((ENTRIES + chunk) * 4);
    let total = 0;
    let calls = 0;
    for (;;) {
      const after = total === 0 ? null : Buffer.from(keys.subarray((total - 1) * 8, total * 8));
      const n = await lib.walkAsync(
        fd,
        8,
        4,
        after,
        keys.subarray(total * 8),
        values.subarray(total * 4),
        chunk,
      );
      calls++;
      total += n;
      if (n < chunk) break;
    }
    expect(calls).toBe(Math.ceil(ENTRIES / chunk));
    expect(entriesOf(keys, values, total)).toEqual(expected());
  });

  it('dumpAsync gives what the walk on this thread gives, with the event loop free meanwhile', async () => {
    let ticks = 0;
    const tick = setInterval(() => void ticks++, 0);
    const got = await map.dumpAsync();
    clearInterval(tick);
    const sync = map.dumpPacked();
    expect(got.keys.count).toBe(ENTRIES);
    expect(entriesOf(got.keys.bytes(), got.values.bytes(), got.keys.count)).toEqual(
      entriesOf(sync.keys.bytes(), sync.values.bytes(), sync.keys.count),
    );
    // Not a timing: the walk ran on a worker thread, so a timer fired before it settled.
    expect(ticks).toBeGreaterThan(0);
  });

  it('refuses to open a datapath without the helper library, naming it and how to build it', async () => {
    const missing = new Libbpf('libbpf.so.1', '/nonexistent/libmeshplane-maps.so');
    await expect(
      EbpfDatapath.open({ pinDir: '/nonexistent/pins', libbpf: missing }),
    ).rejects.toThrow(/\/nonexistent\/libmeshplane-maps\.so \(built by make -C bpf/);
  });
});
