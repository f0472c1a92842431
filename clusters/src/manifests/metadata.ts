import type { Field } from './field.js';
import { describeObject } from './issues.js';
import { checkLabelKey, checkLabelValue } from './names.js';

export interface Metadata {
  name: string;
  /** '' for cluster-scoped kinds */
  namespace: string;
  labels: Record<string, string>;
  creationTimestamp?: string;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Reads `metadata` of a document whose kind is known, and names the object in
 * every later issue. `usable` is false when the name or namespace is invalid
 * (the object cannot be keyed); the rest of the object is still worth
 * checking, so a placeholder is returned.
 */
export function readMetadata(
  root: Field,
  kind: string,
  scope: 'namespaced' | 'cluster',
  checkName: (value: string) => string | undefined,
): { meta: Metadata; usable: boolean } {
  const metadata = root.child('metadata');
  metadata.record({ required: true });
  const nameField = metadata.child('name');
  const rawName = typeof nameField.value === 'string' ? nameField.value : undefined;
  const namespaceField = metadata.child('namespace');
  let namespace: string | undefined = '';
  if (scope === 'namespaced') {
    // As kubectl does, an object without a namespace goes to `default`.
    namespace = namespaceField.present ? namespaceField.string({ nonEmpty: true }) : 'default';
  } else if (namespaceField.present) {
    namespaceField.warn(`ignored: ${kind} is cluster-scoped`);
  }
  root.issues.object = describeObject(kind, namespace ?? '?', rawName);
  const name = nameField.name(checkName, { required: true });
  const labels = readLabels(metadata.child('labels'));
  const meta: Metadata = { name: name ?? rawName ?? '', namespace: namespace ?? '', labels };
  const timestamp = metadata.child('creationTimestamp');
  if (timestamp.present) {
    const text = timestamp.string();
    if (text !== undefined && !(RFC3339.test(text) && !Number.isNaN(Date.parse(text)))) {
      timestamp.error(`"${text}" is not an RFC 3339 timestamp`);
    } else if (text !== undefined) {
      meta.creationTimestamp = text;
    }
  }
  return { meta, usable: name !== undefined && namespace !== undefined };
}

/** A string-to-string map with Kubernetes label syntax (also used for selectors). */
export function readLabels(field: Field): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [key, valueField] of field.entries()) {
    const keyProblem = checkLabelKey(key);
    if (keyProblem !== undefined) {
      valueField.error(`invalid label key "${key}": ${keyProblem}`);
      continue;
    }
    const value = valueField.string({ required: true });
    if (value === undefined) continue;
    const valueProblem = checkLabelValue(value);
    if (valueProblem !== undefined)
      valueField.error(`invalid label value "${value}": ${valueProblem}`);
    else labels[key] = value;
  }
  return labels;
}
