import type { IpSource } from './pod.js';
import type { IssueSink } from './issues.js';

/** Where an object was written, so checks across objects can point at it. */
export interface ObjectOrigin {
  readonly file: string;
  readonly document: number;
  /** path of the object in its document: '' or `items[i]` of a List */
  readonly path: string;
  /** Kind/namespace/name, for messages */
  readonly object: string;
  /** for pods: where their addresses come from */
  readonly ipSource?: IpSource;
}

export function where(origin: ObjectOrigin): string {
  return `${origin.file} document ${origin.document} (${origin.object})`;
}

/** Adds an issue about a field of an already converted object. */
export function reportAt(
  issues: IssueSink,
  origin: ObjectOrigin,
  field: string,
  message: string,
  severity: 'error' | 'warning' = 'error',
): void {
  issues.add({
    file: origin.file,
    document: origin.document,
    object: origin.object,
    field: origin.path === '' ? field : `${origin.path}.${field}`,
    message,
    severity,
  });
}
