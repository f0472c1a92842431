import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MeshError } from '../../../common/index.js';
import { BpfError, check, type Libbpf, type Pointer } from './libbpf.js';

/** Where `make -C bpf` puts the object (build output, not committed). */
export const DEFAULT_OBJECT_PATH = fileURLToPath(
  new URL('../../../bpf/meshplane.bpf.o', import.meta.url),
);

/** Maps that live twice (copy 0 and copy 1) and switch together per revision. */
export const REVISIONED = [
  'ipcache',
  'ep_ips',
  'ep_info',
  'policy',
  'policy_ranges',
  'services',
] as const;
export type RevisionedMap = (typeof REVISIONED)[number];

/** Every pinned map, by the name the object gives it. */
export const PINNED_MAPS = [
  ...REVISIONED.flatMap((m) => [`${m}_0`, `${m}_1`]),
  'config',
  'sync',
  'conntrack',
  'counters',
  'event_buckets',
  'events',
] as const;

export interface ObjectSizes {
  ipcacheEntries: number;
  endpoints: number;
  policyEntriesPerEndpoint: number;
}

/** A loaded bpf/meshplane.bpf.o: its map and program fds (valid until `close()`). */
export interface LoadedObject {
  mapFd(name: (typeof PINNED_MAPS)[number]): number;
  readonly fromEndpointFd: number;
  readonly toEndpointFd: number;
  /** the program hashing one policy map in the kernel, run on demand (see `PolicyMapDigester`) */
  readonly policyDigestFd: number;
  close(): void;
}

/**
 * Opens and loads the object with every map pinned in `pinDir` (libbpf
 * reuses a pin that exists and matches, and pins what it creates). Sizes
 * are set before loading; a pinned map of another size makes the load fail
 * with EINVAL, which the caller treats as "pins of another layout".
 */
export function loadObject(
  lib: Libbpf,
  opts: { objectPath: string; pinDir: string; sizes: ObjectSizes },
): LoadedObject {
  const obj = lib.objectOpenFile(opts.objectPath, null);
  if (obj === null) {
    throw new MeshError(
      'INTERNAL',
      `cannot open eBPF object ${opts.objectPath} (build it with make -C bpf): errno ${lib.errno()}`,
    );
  }
  try {
    const map = (name: string): Pointer => {
      const m = lib.findMap(obj, name);
      if (m === null) throw new MeshError('INTERNAL', `eBPF object has no map ${name}`);
      return m;
    };
    const { sizes } = opts;
    for (const copy of [0, 1]) {
      check('set ipcache size', lib.mapSetMaxEntries(map(`ipcache_${copy}`), sizes.ipcacheEntries));
      check('set ep_ips size', lib.mapSetMaxEntries(map(`ep_ips_${copy}`), sizes.endpoints * 4));
      check('set ep_info size', lib.mapSetMaxEntries(map(`ep_info_${copy}`), sizes.endpoints));
      const policy = map(`policy_${copy}`);
      check('set policy size', lib.mapSetMaxEntries(policy, sizes.endpoints));
      // The inner template keeps its size: the kernel does not compare a hash
      // inner map's max_entries, and the agent creates each inner map with the
      // announced capacity. (libbpf 1.1 crashes setting an inner map's size.)
      // The range trie: each endpoint may use up to its policy capacity in prefixes.
      check(
        'set policy_ranges size',
        lib.mapSetMaxEntries(
          map(`policy_ranges_${copy}`),
          Math.min(sizes.endpoints * sizes.policyEntriesPerEndpoint, 0xffffffff),
        ),
      );
    }
    for (const name of PINNED_MAPS)
      check(`pin path of ${name}`, lib.mapSetPinPath(map(name), join(opts.pinDir, name)));
    const ret = lib.objectLoad(obj);
    if (ret < 0) throw new BpfError(`loading ${opts.objectPath} with pins in ${opts.pinDir}`, -ret);
    const prog = (name: string): number => {
      const p = lib.findProgram(obj, name);
      if (p === null) throw new MeshError('INTERNAL', `eBPF object has no program ${name}`);
      return check(`fd of ${name}`, lib.programFd(p));
    };
    const fds = new Map<string, number>();
    for (const name of PINNED_MAPS) fds.set(name, check(`fd of ${name}`, lib.mapFd(map(name))));
    const fromEndpointFd = prog('from_endpoint');
    const toEndpointFd = prog('to_endpoint');
    const policyDigestFd = prog('policy_digest');
    let closed = false;
    return {
      mapFd: (name) => fds.get(name)!,
      fromEndpointFd,
      toEndpointFd,
      policyDigestFd,
      close: () => {
        if (closed) return;
        closed = true;
        lib.objectClose(obj);
      },
    };
  } catch (err) {
    lib.objectClose(obj);
    throw err;
  }
}
