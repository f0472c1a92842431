import type { ClusterSpec, MeshObject, PodObject } from '../../../common/index.js';
import { objectKey } from '../../../common/index.js';
import type { ParsedCluster } from './assemble-cluster.js';
import type { Ipv4Cidr } from './ipv4.js';
import { cidrContains, parseIPv4, parseIPv4Cidr } from './ipv4.js';
import type { ObjectOrigin } from './origin.js';
import type { FileObject, ParsedFile } from './parse-file.js';
import { placeFresh } from './placement.js';

/** A manifest file that changed between two loads: its parse before (absent when new) and after (absent when gone). */
export interface FileChange {
  readonly before: ParsedFile | undefined;
  readonly after: ParsedFile | undefined;
}

/** What a patch changed: the objects (re)built, and the keys of objects that are gone. */
export interface AssemblyDelta {
  readonly upserted: readonly MeshObject[];
  readonly removed: readonly string[];
}

/**
 * The assembled result of a clean folder — no issue of any kind, and every
 * pod written with its node and address — kept so that the usual save (files
 * of pods added, changed or removed) is applied as a patch instead of
 * replaying and re-checking every object of the folder: that made each save
 * cost O(pods in the folder), and a folder filled file by file quadratic.
 *
 * A patch is taken only when its outcome is certain to equal
 * assembleCluster's over the whole folder with no issue: every object the
 * changed files held and hold is a Pod with its node and address written, in
 * a namespace declared by a Namespace document, with a service account that
 * is `default` or declared, whose addresses are inside the pod CIDR and used
 * by no other pod, and whose key no other file defines. Anything else
 * (another kind, any issue, a pod to place, a duplicate) returns undefined
 * and the caller assembles the whole folder, messages and all.
 */
export class AssembledFolder {
  readonly #cidr: Ipv4Cidr | undefined;
  /** the final objects by key: placed pods, others, the implicit `default` namespace */
  readonly #objects: Map<string, MeshObject>;
  readonly #origins: Map<string, ObjectOrigin>;
  /** every key of #objects, sorted */
  #keys: string[];
  /** pod address → key of the pod that has it */
  readonly #ipOwner = new Map<string, string>();
  /** namespaces declared by a Namespace document (not the implicit `default`) */
  readonly #namespaces = new Set<string>();

  private constructor(spec: ClusterSpec, result: ParsedCluster, files: Iterable<ParsedFile>) {
    const cidr = parseIPv4Cidr(spec.podCIDR);
    this.#cidr = 'cidr' in cidr ? cidr.cidr : undefined;
    this.#objects = new Map(result.objects.map((o) => [objectKey(o), o]));
    this.#keys = [...this.#objects.keys()];
    this.#origins = new Map(result.origins);
    for (const file of files) {
      for (const entry of file.entries) {
        if ('object' in entry && entry.object.converted.object.kind === 'Namespace')
          this.#namespaces.add(entry.object.converted.object.name);
      }
    }
    for (const [key, object] of this.#objects) {
      if (object.kind === 'Pod') for (const ip of object.ips) this.#ipOwner.set(ip, key);
    }
  }

  /**
   * The state to patch after a whole-folder assembly, or undefined when that
   * folder is not clean (`issues`: how many the assembly reported, the
   * spec's and unreadable files' included).
   */
  static of(
    spec: ClusterSpec,
    files: readonly ParsedFile[],
    result: ParsedCluster,
    issues: number,
  ): AssembledFolder | undefined {
    if (issues > 0) return undefined;
    for (const file of files) {
      for (const entry of file.entries) {
        if ('issue' in entry) return undefined;
        const pod = entry.object.converted.pod;
        if (pod !== undefined && (pod.assignNode || pod.assignIp)) return undefined;
      }
    }
    return new AssembledFolder(spec, result, files);
  }

  /**
   * Applies changed files; on success the state is the new folder's and the
   * result equals a whole-folder assembly of it. Undefined (state untouched)
   * when the change is not one a patch can take.
   */
  apply(
    changes: readonly FileChange[],
  ): { cluster: ParsedCluster; delta: AssemblyDelta } | undefined {
    const removed = new Set<string>();
    for (const { before } of changes) {
      for (const entry of before?.entries ?? []) {
        if ('issue' in entry) return undefined;
        const { kind, namespace } = entry.object.converted.object;
        // A pod of the implicit `default` namespace may be what keeps it there.
        if (kind !== 'Pod' || !this.#namespaces.has(namespace)) return undefined;
        removed.add(entry.object.key);
      }
    }
    const added = new Map<string, FileObject>();
    for (const { after } of changes) {
      for (const entry of after?.entries ?? []) {
        if ('issue' in entry || !this.#acceptable(entry.object, removed, added)) return undefined;
        added.set(entry.object.key, entry.object);
      }
    }
    const claimed = new Set<string>();
    for (const { converted } of added.values()) {
      for (const ip of (converted.object as PodObject).ips) {
        const owner = this.#ipOwner.get(ip);
        if (claimed.has(ip) || (owner !== undefined && !removed.has(owner))) return undefined;
        const value = parseIPv4(ip);
        if (this.#cidr !== undefined && value !== undefined && !cidrContains(this.#cidr, value))
          return undefined;
        claimed.add(ip);
      }
    }
    return { cluster: this.#commit(removed, added), delta: this.#delta(removed, added) };
  }

  #acceptable(
    object: FileObject,
    removed: ReadonlySet<string>,
    added: ReadonlyMap<string, FileObject>,
  ): boolean {
    const { converted, key } = object;
    const pod = converted.pod;
    if (converted.object.kind !== 'Pod' || pod === undefined) return false;
    if (pod.assignNode || pod.assignIp) return false;
    if (added.has(key) || (this.#objects.has(key) && !removed.has(key))) return false;
    const { namespace, serviceAccount } = converted.object;
    if (!this.#namespaces.has(namespace)) return false;
    return (
      serviceAccount === 'default' ||
      this.#objects.has(objectKey({ kind: 'ServiceAccount', namespace, name: serviceAccount }))
    );
  }

  #commit(removed: ReadonlySet<string>, added: ReadonlyMap<string, FileObject>): ParsedCluster {
    for (const key of removed) {
      const pod = this.#objects.get(key) as PodObject;
      for (const ip of pod.ips) this.#ipOwner.delete(ip);
      this.#objects.delete(key);
      this.#origins.delete(key);
    }
    for (const [key, { converted, origin }] of added) {
      const draft = converted.pod!.pod;
      const pod = placeFresh(key, draft, draft.node, draft.ips);
      this.#objects.set(key, pod);
      this.#origins.set(key, origin);
      for (const ip of pod.ips) this.#ipOwner.set(ip, key);
    }
    const fresh = [...added.keys()].filter((k) => !removed.has(k)).sort();
    const kept = this.#keys.filter((k) => this.#objects.has(k));
    this.#keys = mergeSorted(kept, fresh);
    return {
      objects: this.#keys.map((k) => this.#objects.get(k)!),
      // The caller's copy: later patches must not change a result handed out.
      origins: new Map(this.#origins),
    };
  }

  #delta(removed: ReadonlySet<string>, added: ReadonlyMap<string, FileObject>): AssemblyDelta {
    return {
      upserted: [...added.keys()].map((k) => this.#objects.get(k)!),
      removed: [...removed].filter((k) => !added.has(k)),
    };
  }
}

function mergeSorted(a: readonly string[], b: readonly string[]): string[] {
  if (b.length === 0) return [...a];
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) out.push(a[i]! < b[j]! ? a[i++]! : b[j++]!);
  while (i < a.length) out.push(a[i++]!);
  while (j < b.length) out.push(b[j++]!);
  return out;
}
