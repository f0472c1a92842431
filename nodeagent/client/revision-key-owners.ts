import type { Datapath, KeyOwners } from '../datapath/index.js';
import type { ResourceStore } from './resource-store.js';

/**
 * Which held resource owns a key, for one revision's translation.
 *
 * Endpoints and services come from the store's indexes. Ipcache prefixes
 * have no standing index: one entry per prefix of the mesh on every agent was
 * the agent's largest structure, and keeping it current a fifth of an agent's
 * CPU in a burst of pod changes. A prefix the datapath does not hold has no
 * owner (the store holds nothing its datapath does not), which answers the
 * common case, a new pod's address. Only a prefix the datapath already holds
 * and no resource of this revision held before — a conflict, or an entry
 * adopted from a previous agent process that no resource owns yet — needs
 * the owner's name: from an index built once, on that first need, for this
 * revision.
 */
export class RevisionKeyOwners implements KeyOwners {
  readonly #store: ResourceStore;
  readonly #datapath: Datapath;
  #ipcache: ReadonlyMap<string, string> | undefined;

  constructor(store: ResourceStore, datapath: Datapath) {
    this.#store = store;
    this.#datapath = datapath;
  }

  ipcacheOwner(prefix: string): string | undefined {
    if (!this.#datapath.holdsIpcachePrefix(prefix)) return undefined;
    this.#ipcache ??= this.#store.ipcacheOwners();
    return this.#ipcache.get(prefix);
  }

  endpointOwner(endpoint: string): string | undefined {
    return this.#store.endpointOwner(endpoint);
  }

  serviceOwner(service: string): string | undefined {
    return this.#store.serviceOwner(service);
  }
}
