import type { EndpointRecord, PolicyRecord, ServiceRecord } from './types.js';

/**
 * The emulated "kernel": in-memory maps shaped like the eBPF maps. Kept apart
 * from EmulatedDatapath so that, like pinned maps, they can outlive one
 * datapath instance and be written behind the agent's back (tests use this
 * to tamper, as `bpftool map update` would).
 */
export class EmulatedMaps {
  /** prefix -> identity (an LPM trie in the kernel) */
  readonly ipcache = new Map<string, number>();
  /** cluster/namespace/name -> endpoint */
  readonly endpoints = new Map<string, EndpointRecord>();
  /** cluster/namespace/name -> (policyKeyId -> entry): one map per endpoint */
  readonly policies = new Map<string, Map<string, PolicyRecord>>();
  /** namespace/name -> service */
  readonly services = new Map<string, ServiceRecord>();
}
