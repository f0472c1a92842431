import { decodeResource, isResourceType, type ResourceValue } from '../../common/index.js';
import { TYPE_IPCACHE, type DeltaDiscoveryResponse } from '../../proto/index.js';
import { ShardBytes, type Rejection, type ResourceDelta } from '../datapath/index.js';
import type { ResourceStore } from './resource-store.js';

export type DeltaResult =
  { ok: true; delta: ResourceDelta } | { ok: false; rejections: Rejection[] };

/**
 * Decodes and checks the parts of a revision against what the agent holds,
 * collecting every problem: unknown type URLs, names repeated within a type,
 * a name both updated and removed, undecodable payloads. Resources re-sent at
 * the version already held are skipped; removing a name not held is a no-op.
 */
export function buildDelta(
  parts: readonly DeltaDiscoveryResponse[],
  store: ResourceStore,
): DeltaResult {
  const rejections: Rejection[] = [];
  const delta: ResourceDelta = { updates: [], removals: [] };
  // A revision of one resource (most are: one ipcache shard) cannot repeat a name.
  let names = 0;
  for (const part of parts) names += part.resources.length + part.removedResources.length;
  // type URL -> names seen: the names themselves, no key string built per resource.
  const seen = names > 1 ? new Map<string, Set<string>>() : undefined;

  for (const part of parts) {
    const { typeUrl } = part;
    if (!isResourceType(typeUrl)) {
      rejections.push({
        code: 'VALIDATION',
        message: `unknown resource type "${typeUrl}"`,
        resourceNames: [...part.resources.map((r) => r.name), ...part.removedResources],
      });
      continue;
    }
    for (const r of part.resources) {
      if (seen !== undefined && !once(seen, typeUrl, r.name, rejections)) continue;
      const held = store.get(typeUrl, r.name);
      if (held?.version === r.version) continue;
      let after: ResourceValue;
      try {
        // An ipcache shard stays bytes, read in place when its entries are compared.
        after =
          typeUrl === TYPE_IPCACHE
            ? ShardBytes.fromPayload(r.payload)
            : decodeResource(typeUrl, r.payload);
      } catch (err) {
        const cause =
          err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
        rejections.push({
          code: 'VALIDATION',
          message: `cannot decode ${typeUrl} resource "${r.name}"${cause}`,
          resourceNames: [r.name],
        });
        continue;
      }
      delta.updates.push({
        typeUrl,
        name: r.name,
        version: r.version,
        before: held?.value,
        after,
      });
    }
    for (const name of part.removedResources) {
      if (seen !== undefined && !once(seen, typeUrl, name, rejections)) continue;
      const held = store.get(typeUrl, name);
      if (held !== undefined) delta.removals.push({ typeUrl, name, before: held.value });
    }
  }
  return rejections.length > 0 ? { ok: false, rejections } : { ok: true, delta };
}

/** False (and a rejection) when `name` of `typeUrl` was already seen in this revision. */
function once(
  seen: Map<string, Set<string>>,
  typeUrl: string,
  name: string,
  rejections: Rejection[],
): boolean {
  let names = seen.get(typeUrl);
  if (names === undefined) seen.set(typeUrl, (names = new Set()));
  if (names.has(name)) {
    rejections.push({
      code: 'VALIDATION',
      message: `${typeUrl} resource "${name}" appears more than once in revision`,
      resourceNames: [name],
    });
    return false;
  }
  names.add(name);
  return true;
}
