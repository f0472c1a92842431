import { compareStrings, endpointName, type ResourceValue } from '../../common/index.js';
import {
  TYPE_ENDPOINT,
  TYPE_IPCACHE,
  TYPE_SERVICE,
  type ResourceVersion,
} from '../../proto/index.js';
import { ShardBytes, serviceName, type KeyOwners, type ResourceDelta } from '../datapath/index.js';
import { PackedShard, type HeldResource, type ShardPool } from './packed-shard.js';

export type { HeldResource };

/**
 * The resources the agent holds — exactly those whose entries its datapath
 * holds, since it changes only after a successful apply. Survives reconnects
 * (a new stream announces these versions), not restarts. Indexes which
 * resource owns each endpoint and service, so revisions are checked in
 * O(delta); ipcache prefixes have no standing index (see RevisionKeyOwners).
 */
export class ResourceStore implements KeyOwners {
  /** type URL -> name -> resource: no key string is built per lookup (a revision's hot path) */
  readonly #resources = new Map<string, Map<string, HeldResource>>();
  readonly #endpoints = new Map<string, string>();
  readonly #services = new Map<string, string>();
  readonly #shards: ShardPool | undefined;

  /** `shards`: held ipcache shards shared with the other stores of this process (many agents in one) */
  constructor(opts: { shards?: ShardPool } = {}) {
    this.#shards = opts.shards;
  }

  get(typeUrl: string, name: string): HeldResource | undefined {
    return this.#resources.get(typeUrl)?.get(name);
  }

  get size(): number {
    let n = 0;
    for (const byName of this.#resources.values()) n += byName.size;
    return n;
  }

  /** Every held resource (for initial_resource_versions), sorted by type and name. */
  versions(): ResourceVersion[] {
    return [...this.values()]
      .map((r) => ({ typeUrl: r.typeUrl, name: r.name, version: r.version }))
      .sort((a, b) => compareStrings(a.typeUrl, b.typeUrl) || compareStrings(a.name, b.name));
  }

  *values(): IterableIterator<HeldResource> {
    for (const byName of this.#resources.values()) yield* byName.values();
  }

  /** The held ipcache shard holding `prefix`: builds `ipcacheOwners()` (errors and tests). */
  ipcacheOwner(prefix: string): string | undefined {
    return this.ipcacheOwners().get(prefix);
  }

  /** prefix -> the held ipcache shard holding it, built now from every held shard. */
  ipcacheOwners(): Map<string, string> {
    const owners = new Map<string, string>();
    for (const r of this.#resources.get(TYPE_IPCACHE)?.values() ?? []) {
      if (r.value.typeUrl !== TYPE_IPCACHE) continue;
      for (const e of r.value.value.entries) owners.set(e.prefix, r.name);
    }
    return owners;
  }

  endpointOwner(endpoint: string): string | undefined {
    return this.#endpoints.get(endpoint);
  }

  serviceOwner(service: string): string | undefined {
    return this.#services.get(service);
  }

  /** Records a delta the datapath has applied. */
  commit(delta: ResourceDelta): void {
    // Release every old key first: keys may move between resources in one revision.
    for (const r of delta.removals) this.#index(r.name, r.before, false);
    for (const u of delta.updates) if (u.before !== undefined) this.#index(u.name, u.before, false);
    for (const r of delta.removals) {
      const byName = this.#resources.get(r.typeUrl);
      this.#release(byName?.get(r.name));
      byName?.delete(r.name);
    }
    for (const u of delta.updates) {
      let byName = this.#resources.get(u.typeUrl);
      if (byName === undefined) {
        byName = new Map();
        this.#resources.set(u.typeUrl, byName);
      }
      const replaced = byName.get(u.name);
      this.#release(replaced);
      // The name string of the resource replaced, if any: the decoded one would be one more to keep.
      const name = replaced?.name ?? u.name;
      byName.set(
        name,
        u.after instanceof ShardBytes && u.after.direct
          ? (this.#shards?.acquire(name, u.version, u.after.bytes) ??
              new PackedShard(name, u.version, u.after.bytes))
          : { typeUrl: u.typeUrl, name, version: u.version, value: u.after },
      );
      this.#index(name, u.after, true);
    }
  }

  #release(r: HeldResource | undefined): void {
    if (r instanceof PackedShard) this.#shards?.release(r);
  }

  #index(name: string, r: ResourceValue, add: boolean): void {
    switch (r.typeUrl) {
      case TYPE_ENDPOINT:
        own(this.#endpoints, endpointName(r.value), name, add);
        break;
      case TYPE_SERVICE:
        own(this.#services, serviceName(r.value), name, add);
        break;
    }
  }
}

/** Records `name` as the owner of `key`, or releases `key` if `name` owns it. */
function own(map: Map<string, string>, key: string, name: string, add: boolean): void {
  if (add) map.set(key, name);
  else if (map.get(key) === name) map.delete(key);
}
