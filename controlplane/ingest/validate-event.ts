import {
  MESH_OBJECT_KINDS,
  NO_OBJECTS_TOKEN,
  type ChangeSetEvent,
  type ValidationIssue,
  type Result,
  objectKey,
} from '../../common/index.js';

const KINDS: ReadonlySet<string> = new Set(MESH_OBJECT_KINDS);
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * Checks the shape of a change set (or one part of one) arriving from NATS.
 * Sources validate manifests in depth; the control plane still refuses
 * anything malformed rather than storing it (a source of another version, or
 * a bug). `subjectKind`: the kind token of a per-kind subject
 * (`meshplane.events.<cluster>.<kind>`): every object must be of that kind
 * (none for the no-objects token).
 */
export function validateChangeSet(
  raw: unknown,
  subjectCluster: string,
  subjectKind?: string,
): Result<ChangeSetEvent> {
  const errors: ValidationIssue[] = [];
  const err = (field: string, message: string, object?: string): void => {
    errors.push({ severity: 'error', field, message, ...(object ? { object } : {}) });
  };
  if (typeof raw !== 'object' || raw === null) {
    return {
      ok: false,
      errors: [{ severity: 'error', message: 'change set is not a JSON object' }],
    };
  }
  const ev = raw as Partial<ChangeSetEvent>;
  if (ev.apiVersion !== 'meshplane/v1')
    err('apiVersion', `must be meshplane/v1, got ${String(ev.apiVersion)}`);
  const c = ev.cluster;
  if (typeof c !== 'object' || c === null) {
    err('cluster', 'missing');
  } else {
    if (typeof c.name !== 'string' || !DNS_LABEL.test(c.name))
      err('cluster.name', 'must be a DNS label');
    else if (c.name !== subjectCluster)
      err('cluster.name', `${c.name} published on the subject of cluster ${subjectCluster}`);
    if (!Number.isInteger(c.id) || c.id < 1 || c.id > 255)
      err('cluster.id', 'must be an integer in 1..255');
    if (
      !Array.isArray(c.nodes) ||
      c.nodes.some((n) => typeof n !== 'string' || !DNS_LABEL.test(n))
    ) {
      err('cluster.nodes', 'must be a list of DNS labels');
    }
    if (typeof c.podCIDR !== 'string') err('cluster.podCIDR', 'missing');
  }
  if (typeof ev.full !== 'boolean') err('full', 'must be a boolean');
  if (!Array.isArray(ev.upserts)) err('upserts', 'must be a list');
  if (!Array.isArray(ev.deletes)) err('deletes', 'must be a list');
  if (subjectKind !== undefined && subjectKind !== NO_OBJECTS_TOKEN && !KINDS.has(subjectKind))
    err('subject', `unknown kind ${subjectKind} in the subject`);
  const wrongKind = (kind: unknown): boolean =>
    subjectKind !== undefined && KINDS.has(String(kind)) && kind !== subjectKind;
  const seen = new Set<string>();
  for (const [i, o] of (Array.isArray(ev.upserts) ? ev.upserts : []).entries()) {
    const where = `upserts[${i}]`;
    if (typeof o !== 'object' || o === null || !KINDS.has(o.kind)) {
      err(`${where}.kind`, `unknown kind ${String((o as { kind?: unknown } | null)?.kind)}`);
      continue;
    }
    const name = `${o.kind}/${o.namespace}/${o.name}`;
    if (wrongKind(o.kind))
      err(`${where}.kind`, `a ${o.kind} on the subject of kind ${String(subjectKind)}`, name);
    if (typeof o.name !== 'string' || o.name === '') err(`${where}.name`, 'missing', name);
    if (typeof o.namespace !== 'string') err(`${where}.namespace`, 'missing', name);
    if (o.cluster !== c?.name)
      err(`${where}.cluster`, `${String(o.cluster)} is not ${String(c?.name)}`, name);
    if (o.kind === 'Pod') {
      if (!Array.isArray(o.ips) || o.ips.some((ip) => typeof ip !== 'string'))
        err(`${where}.ips`, 'must be a list of IPs', name);
      if (typeof o.node !== 'string' || (Array.isArray(c?.nodes) && !c.nodes.includes(o.node))) {
        err(`${where}.node`, `${String(o.node)} is not a node of cluster ${String(c?.name)}`, name);
      }
      if (typeof o.labels !== 'object' || o.labels === null)
        err(`${where}.labels`, 'must be a map', name);
    }
    const key = objectKey(o);
    if (seen.has(key)) err(where, 'duplicate object in one change set', name);
    seen.add(key);
  }
  for (const [i, d] of (Array.isArray(ev.deletes) ? ev.deletes : []).entries()) {
    if (typeof d !== 'object' || d === null || !KINDS.has(d.kind) || typeof d.name !== 'string') {
      err(`deletes[${i}]`, 'must be {kind, namespace, name}');
    } else if (wrongKind(d.kind)) {
      err(`deletes[${i}].kind`, `a ${d.kind} on the subject of kind ${String(subjectKind)}`);
    }
  }
  return errors.length > 0
    ? { ok: false, errors }
    : { ok: true, value: ev as ChangeSetEvent, warnings: [] };
}
