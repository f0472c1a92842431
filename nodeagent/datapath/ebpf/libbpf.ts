import { fileURLToPath } from 'node:url';
import * as koffi from 'koffi';
import { MeshError } from '../../../common/index.js';

/** bpf/map-ops.c as `make -C bpf` builds it (scripts/bootstrap.sh runs it). */
export const DEFAULT_MAPS_LIB_PATH = fileURLToPath(
  new URL('../../../bpf/libmeshplane-maps.so', import.meta.url),
);

/** bpf/map-ops.c's functions (see the methods that call them). */
interface MapOps {
  walk: (...args: never[]) => number;
  updateEach: (...args: never[]) => number;
  deleteEach: (...args: never[]) => number;
  lookupEach: (...args: never[]) => number;
}

/**
 * Debian's libbpf 1.1 (libbpf.so.1) and the few libc calls the loader needs,
 * bound through koffi (no native build step). Thin: each binding is the C
 * function; errors come back as negative errno values (libbpf 1.x), which
 * `check` turns into MeshErrors naming the call.
 *
 * Everything runs on the agent's event loop thread, except the map calls an
 * apply hands to koffi's worker threads with `callAsync` (bpf() syscalls on
 * map fds: the kernel serializes what needs it; each call has its own
 * buffers). Create one Libbpf per process in the composition root.
 */

export const BPF_ANY = 0n;
export const BPF_NOEXIST = 1n;
export const BPF_EXIST = 2n;

export const BPF_MAP_TYPE_HASH = 1;
export const BPF_MAP_TYPE_ARRAY = 2;
export const BPF_F_NO_PREALLOC = 1;

export const BPF_TC_INGRESS = 1;
export const BPF_TC_EGRESS = 2;
export const BPF_TC_F_REPLACE = 1;

export const CLONE_NEWNET = 0x40000000;

/** sizeof(struct bpf_tc_hook), sizeof(struct bpf_tc_opts), sizeof(struct bpf_map_create_opts), sizeof(struct bpf_map_batch_opts) in libbpf 1.1 on 64-bit */
const TC_HOOK_SIZE = 24;
const TC_OPTS_SIZE = 32;
const MAP_CREATE_OPTS_SIZE = 48;
const BATCH_OPTS_SIZE = 24;
/** sizeof(struct bpf_test_run_opts) in libbpf 1.1 */
const TEST_RUN_OPTS_SIZE = 80;

interface TestRunOpts {
  sz: number;
  data_in: null;
  data_out: null;
  data_size_in: number;
  data_size_out: number;
  ctx_in: Buffer;
  ctx_out: null;
  ctx_size_in: number;
  ctx_size_out: number;
  retval: number;
  repeat: number;
  duration: number;
  flags: number;
  cpu: number;
  batch_size: number;
}

export type Pointer = object;

function mapCreateOpts(flags: number): Buffer {
  const opts = Buffer.alloc(MAP_CREATE_OPTS_SIZE);
  opts.writeBigUInt64LE(BigInt(MAP_CREATE_OPTS_SIZE), 0);
  opts.writeUInt32LE(flags, 28);
  return opts;
}

function errnoName(code: number): string {
  const names: Record<number, string> = {
    1: 'EPERM',
    2: 'ENOENT',
    7: 'E2BIG',
    9: 'EBADF',
    12: 'ENOMEM',
    13: 'EACCES',
    16: 'EBUSY',
    17: 'EEXIST',
    22: 'EINVAL',
    28: 'ENOSPC',
    95: 'EOPNOTSUPP',
    524: 'ENOTSUPP',
  };
  return names[code] ?? `errno ${code}`;
}

/** A failed libbpf/libc call: code INTERNAL, with the errno for callers that branch on it. */
export class BpfError extends MeshError {
  readonly errno: number;
  constructor(call: string, errno: number, detail?: string) {
    super(
      'INTERNAL',
      `${call} failed: ${errnoName(errno)}${detail !== undefined ? ` (${detail})` : ''}`,
    );
    this.name = 'BpfError';
    this.errno = errno;
  }
}

/** Throws a BpfError for a negative return value; returns it otherwise. */
export function check(call: string, ret: number, detail?: string): number {
  if (ret < 0) throw new BpfError(call, -ret, detail);
  return ret;
}

// koffi's type names are process-wide: declare them once, whatever the number of Libbpf instances.
let sampleProto: koffi.TypeObject | undefined;
function declareTypes(): koffi.TypeObject {
  if (sampleProto === undefined) {
    koffi.opaque('bpf_object');
    koffi.opaque('bpf_map');
    koffi.opaque('bpf_program');
    koffi.opaque('ring_buffer');
    koffi.struct('bpf_test_run_opts', {
      sz: 'size_t',
      data_in: 'void *',
      data_out: 'void *',
      data_size_in: 'uint32_t',
      data_size_out: 'uint32_t',
      ctx_in: 'void *',
      ctx_out: 'void *',
      ctx_size_in: 'uint32_t',
      ctx_size_out: 'uint32_t',
      retval: 'uint32_t',
      repeat: 'int',
      duration: 'uint32_t',
      flags: 'uint32_t',
      cpu: 'uint32_t',
      batch_size: 'uint32_t',
    });
    sampleProto = koffi.proto('int meshplane_rb_sample(void *ctx, void *data, size_t size)');
  }
  return sampleProto;
}

export class Libbpf {
  readonly objectOpenFile: (path: string, opts: null) => Pointer | null;
  readonly objectLoad: (obj: Pointer) => number;
  readonly objectClose: (obj: Pointer) => void;
  readonly findMap: (obj: Pointer, name: string) => Pointer | null;
  readonly findProgram: (obj: Pointer, name: string) => Pointer | null;
  readonly programFd: (prog: Pointer) => number;
  readonly mapFd: (map: Pointer) => number;
  readonly mapInner: (map: Pointer) => Pointer | null;
  readonly mapSetMaxEntries: (map: Pointer, n: number) => number;
  readonly mapSetPinPath: (map: Pointer, path: string) => number;
  readonly update: (fd: number, key: Buffer, value: Buffer, flags: bigint) => number;
  readonly lookup: (fd: number, key: Buffer, value: Buffer) => number;
  readonly remove: (fd: number, key: Buffer) => number;
  readonly nextKey: (fd: number, key: Buffer | null, next: Buffer) => number;
  readonly updateBatch: (
    fd: number,
    keys: Buffer,
    values: Buffer,
    count: number[],
    opts: Buffer,
  ) => number;
  readonly deleteBatch: (fd: number, keys: Buffer, count: number[], opts: Buffer) => number;
  readonly lookupBatch: (
    fd: number,
    inBatch: Buffer | null,
    outBatch: Buffer,
    keys: Buffer,
    values: Buffer,
    count: number[],
    opts: Buffer,
  ) => number;
  readonly mapCreateRaw: (
    type: number,
    name: string | null,
    keySize: number,
    valueSize: number,
    maxEntries: number,
    opts: Buffer,
  ) => number;
  readonly mapFdById: (id: number) => number;
  readonly testRun: (progFd: number, opts: TestRunOpts) => number;
  readonly objGet: (path: string) => number;
  readonly tcHookCreate: (hook: Buffer) => number;
  readonly tcAttach: (hook: Buffer, opts: Buffer) => number;
  readonly tcDetach: (hook: Buffer, opts: Buffer) => number;
  readonly tcQuery: (hook: Buffer, opts: Buffer) => number;
  readonly ringBufferNew: (fd: number, cb: bigint, ctx: null, opts: null) => Pointer | null;
  readonly ringBufferConsume: (rb: Pointer) => number;
  readonly ringBufferFree: (rb: Pointer) => void;
  readonly sampleCallback: unknown;
  readonly close: (fd: number) => number;
  readonly setns: (fd: number, nstype: number) => number;
  readonly errno: () => number;

  readonly #mapsLibPath: string;
  #mapOps: MapOps | undefined;

  /** `path`: libbpf; `mapsLibPath`: bpf/map-ops.c built (loaded on first use) */
  constructor(path = 'libbpf.so.1', mapsLibPath = DEFAULT_MAPS_LIB_PATH) {
    this.#mapsLibPath = mapsLibPath;
    let lib: koffi.LibraryHandle;
    let libc: koffi.LibraryHandle;
    try {
      lib = koffi.load(path);
      libc = koffi.load('libc.so.6');
    } catch (err) {
      throw new MeshError(
        'INTERNAL',
        `cannot load ${path} (Debian package libbpf1): ${(err as Error).message}`,
        { cause: err },
      );
    }
    this.sampleCallback = declareTypes();
    this.objectOpenFile = lib.func(
      'bpf_object *bpf_object__open_file(const char *path, void *opts)',
    );
    this.objectLoad = lib.func('int bpf_object__load(bpf_object *obj)');
    this.objectClose = lib.func('void bpf_object__close(bpf_object *obj)');
    this.findMap = lib.func(
      'bpf_map *bpf_object__find_map_by_name(bpf_object *obj, const char *name)',
    );
    this.findProgram = lib.func(
      'bpf_program *bpf_object__find_program_by_name(bpf_object *obj, const char *name)',
    );
    this.programFd = lib.func('int bpf_program__fd(bpf_program *prog)');
    this.mapFd = lib.func('int bpf_map__fd(bpf_map *map)');
    this.mapInner = lib.func('bpf_map *bpf_map__inner_map(bpf_map *map)');
    this.mapSetMaxEntries = lib.func('int bpf_map__set_max_entries(bpf_map *map, uint32_t n)');
    this.mapSetPinPath = lib.func('int bpf_map__set_pin_path(bpf_map *map, const char *path)');
    this.update = lib.func(
      'int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)',
    );
    this.lookup = lib.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)');
    this.remove = lib.func('int bpf_map_delete_elem(int fd, const void *key)');
    this.nextKey = lib.func('int bpf_map_get_next_key(int fd, const void *key, void *next)');
    this.updateBatch = lib.func(
      'int bpf_map_update_batch(int fd, const void *keys, const void *values, _Inout_ uint32_t *count, const void *opts)',
    );
    this.deleteBatch = lib.func(
      'int bpf_map_delete_batch(int fd, const void *keys, _Inout_ uint32_t *count, const void *opts)',
    );
    this.lookupBatch = lib.func(
      'int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, _Inout_ uint32_t *count, const void *opts)',
    );
    this.mapCreateRaw = lib.func(
      'int bpf_map_create(int type, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const void *opts)',
    );
    this.mapFdById = lib.func('int bpf_map_get_fd_by_id(uint32_t id)');
    this.objGet = lib.func('int bpf_obj_get(const char *path)');
    this.testRun = lib.func(
      'int bpf_prog_test_run_opts(int prog_fd, _Inout_ bpf_test_run_opts *opts)',
    );
    this.tcHookCreate = lib.func('int bpf_tc_hook_create(void *hook)');
    this.tcAttach = lib.func('int bpf_tc_attach(const void *hook, void *opts)');
    this.tcDetach = lib.func('int bpf_tc_detach(const void *hook, const void *opts)');
    this.tcQuery = lib.func('int bpf_tc_query(const void *hook, void *opts)');
    this.ringBufferNew = lib.func(
      'ring_buffer *ring_buffer__new(int fd, meshplane_rb_sample *cb, void *ctx, void *opts)',
    );
    this.ringBufferConsume = lib.func('int ring_buffer__consume(ring_buffer *rb)');
    this.ringBufferFree = lib.func('void ring_buffer__free(ring_buffer *rb)');
    this.close = libc.func('int close(int fd)');
    this.setns = libc.func('int setns(int fd, int nstype)');
    this.errno = () => koffi.errno();
  }

  /**
   * Runs a bound call on a koffi worker thread and resolves with its return
   * value, leaving the event loop free meanwhile. The Buffers passed must not
   * be written until it settles; `_Inout_` arrays are written back before.
   */
  callAsync(fn: (...args: never[]) => number, ...args: unknown[]): Promise<number> {
    return new Promise((resolve, reject) => {
      (fn as unknown as { async: (...a: unknown[]) => void }).async(
        ...args,
        (err: Error | null | undefined, ret: number) => {
          if (err) reject(err);
          else resolve(ret);
        },
      );
    });
  }

  /**
   * The entries of map `fd` after key `after` (from the first with null), at
   * most `max`, read by bpf/map-ops.c's `meshplane_map_walk` (get_next_key
   * and lookup per entry) on a koffi worker thread: for map types without
   * batch lookups (LPM tries), so the thousands of syscalls of a large map
   * do not hold the event loop. Resolves with the count written to `keys`
   * and `values`; fewer than `max` when the walk reached the end.
   */
  async walkAsync(
    fd: number,
    keySize: number,
    valueSize: number,
    after: Buffer | null,
    keys: Buffer,
    values: Buffer,
    max: number,
  ): Promise<number> {
    return this.#mapOp('map walk', 'walk', fd, keySize, valueSize, after, keys, values, max);
  }

  /**
   * bpf_map_update_elem for each of `count` packed entries, in order, by
   * bpf/map-ops.c on a koffi worker thread (maps without batch updates).
   * Rejects with a BpfError on the first failure (the entries before it are
   * written).
   */
  async updateEachAsync(
    name: string,
    fd: number,
    keySize: number,
    valueSize: number,
    keys: Buffer,
    values: Buffer,
    count: number,
    flags: bigint,
  ): Promise<void> {
    await this.#mapOp(
      `update of ${name}`,
      'updateEach',
      fd,
      keySize,
      valueSize,
      keys,
      values,
      count,
      flags,
    );
  }

  /** bpf_map_delete_elem for each of `count` packed keys (a missing key is not an error), on a worker thread. */
  async deleteEachAsync(
    name: string,
    fd: number,
    keySize: number,
    keys: Buffer,
    count: number,
  ): Promise<void> {
    await this.#mapOp(`delete from ${name}`, 'deleteEach', fd, keySize, keys, count);
  }

  /**
   * bpf_map_lookup_elem for each of `count` packed keys, on a worker thread:
   * record i of `values` gets key i's value and `found[i]` is 1, or 0 when
   * the map does not hold the key.
   */
  async lookupEachAsync(
    name: string,
    fd: number,
    keySize: number,
    valueSize: number,
    keys: Buffer,
    values: Buffer,
    found: Buffer,
    count: number,
  ): Promise<void> {
    await this.#mapOp(
      `lookup in ${name}`,
      'lookupEach',
      fd,
      keySize,
      valueSize,
      keys,
      values,
      found,
      count,
    );
  }

  /** One of bpf/map-ops.c's functions on a koffi worker thread; a negative errno becomes a BpfError naming `what`. */
  async #mapOp(what: string, op: keyof MapOps, ...args: unknown[]): Promise<number> {
    return check(what, await this.callAsync(this.#ops()[op], ...args));
  }

  /** Loads bpf/map-ops.c's library now (it loads on first use otherwise); throws a MeshError naming it when it cannot. */
  loadMapOps(): void {
    this.#ops();
  }

  /** bpf/map-ops.c's functions, loaded on first use. */
  #ops(): MapOps {
    if (this.#mapOps !== undefined) return this.#mapOps;
    let lib: koffi.LibraryHandle;
    try {
      lib = koffi.load(this.#mapsLibPath);
    } catch (err) {
      throw new MeshError(
        'INTERNAL',
        `cannot load ${this.#mapsLibPath} (built by make -C bpf; scripts/bootstrap.sh runs it): ${(err as Error).message}`,
        { cause: err },
      );
    }
    this.#mapOps = {
      walk: lib.func(
        'int meshplane_map_walk(int fd, uint32_t key_size, uint32_t value_size, const void *after, void *keys, void *values, uint32_t max)',
      ),
      updateEach: lib.func(
        'int meshplane_map_update_each(int fd, uint32_t key_size, uint32_t value_size, const void *keys, const void *values, uint32_t count, uint64_t flags)',
      ),
      deleteEach: lib.func(
        'int meshplane_map_delete_each(int fd, uint32_t key_size, const void *keys, uint32_t count)',
      ),
      lookupEach: lib.func(
        'int meshplane_map_lookup_each(int fd, uint32_t key_size, uint32_t value_size, const void *keys, void *values, uint8_t *found, uint32_t count)',
      ),
    };
    return this.#mapOps;
  }

  /** A batch opts struct (elem_flags 0, flags 0). */
  batchOpts(): Buffer {
    const b = Buffer.alloc(BATCH_OPTS_SIZE);
    b.writeBigUInt64LE(BigInt(BATCH_OPTS_SIZE), 0);
    return b;
  }

  /** bpf_map_create for an inner map (no BTF), with map_flags. */
  mapCreate(
    type: number,
    name: string,
    keySize: number,
    valueSize: number,
    maxEntries: number,
    flags: number,
  ): number {
    return check(
      `bpf_map_create(${name})`,
      this.mapCreateRaw(type, name, keySize, valueSize, maxEntries, mapCreateOpts(flags)),
    );
  }

  /** `mapCreate` on a koffi worker thread. */
  async mapCreateAsync(
    type: number,
    name: string,
    keySize: number,
    valueSize: number,
    maxEntries: number,
    flags: number,
  ): Promise<number> {
    const ret = await this.callAsync(
      this.mapCreateRaw,
      type,
      name,
      keySize,
      valueSize,
      maxEntries,
      mapCreateOpts(flags),
    );
    return check(`bpf_map_create(${name})`, ret);
  }

  tcHook(ifindex: number, attachPoint: number): Buffer {
    const b = Buffer.alloc(TC_HOOK_SIZE);
    b.writeBigUInt64LE(BigInt(TC_HOOK_SIZE), 0);
    b.writeInt32LE(ifindex, 8);
    b.writeUInt32LE(attachPoint, 12);
    return b;
  }

  tcOpts(o: { progFd?: number; flags?: number; handle: number; priority: number }): Buffer {
    const b = Buffer.alloc(TC_OPTS_SIZE);
    b.writeBigUInt64LE(BigInt(TC_OPTS_SIZE), 0);
    b.writeInt32LE(o.progFd ?? 0, 8);
    b.writeUInt32LE(o.flags ?? 0, 12);
    b.writeUInt32LE(o.handle, 20);
    b.writeUInt32LE(o.priority, 24);
    return b;
  }

  /** prog_id from a bpf_tc_opts filled by bpf_tc_query / bpf_tc_attach. */
  tcOptsProgId(opts: Buffer): number {
    return opts.readUInt32LE(16);
  }

  /** Registers a ring buffer sample callback; unregister with `unregister`. */
  registerSample(fn: (ctx: unknown, data: unknown, size: number) => number): bigint {
    return koffi.register(fn, koffi.pointer(this.sampleCallback as koffi.TypeObject));
  }

  unregister(cb: bigint): void {
    koffi.unregister(cb);
  }

  /**
   * Runs a syscall program once (BPF_PROG_TEST_RUN) on a koffi worker
   * thread, with `ctx` as its context; the kernel writes the context back
   * into `ctx`. Resolves with the program's return value. For programs run
   * on demand (policy_digest).
   */
  async runSyscall(progFd: number, ctx: Buffer): Promise<number> {
    const opts: TestRunOpts = {
      sz: TEST_RUN_OPTS_SIZE,
      data_in: null,
      data_out: null,
      data_size_in: 0,
      data_size_out: 0,
      ctx_in: ctx,
      ctx_out: null,
      ctx_size_in: ctx.length,
      ctx_size_out: 0,
      retval: 0,
      repeat: 0,
      duration: 0,
      flags: 0,
      cpu: 0,
      batch_size: 0,
    };
    check('bpf_prog_test_run_opts', await this.callAsync(this.testRun, progFd, opts));
    return opts.retval;
  }

  /** Copies `size` bytes at a C pointer into a Buffer. */
  copy(ptr: unknown, size: number): Buffer {
    return Buffer.from(koffi.view(ptr, size).slice(0));
  }
}
