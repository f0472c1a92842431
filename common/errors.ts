/**
 * Typed errors with stable codes. Classify by `code`, never by message text.
 */
export type ErrorCode =
  | 'VALIDATION'
  | 'CLUSTER_CLASH'
  | 'NOT_MEMBER'
  | 'IDENTITY_EXHAUSTED'
  | 'CONFLICT'
  | 'UNAVAILABLE'
  | 'TIMEOUT'
  | 'PROTOCOL_MISMATCH'
  | 'CAPACITY'
  | 'LAUNCH_FAILED'
  | 'NOT_FOUND'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'INTERNAL';

export class MeshError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MeshError';
    this.code = code;
  }
}

/** Where in the user's input a problem is. Every field is optional but the more the better. */
export interface InputLocation {
  file?: string;
  /** 0-based index of the YAML document in the file. */
  document?: number;
  /** kind/namespace/name of the object, as far as known. */
  object?: string;
  /** dotted path of the offending field, e.g. spec.containers[0].ports[1].containerPort */
  field?: string;
}

export interface ValidationIssue extends InputLocation {
  message: string;
  /** warnings do not fail validation */
  severity: 'error' | 'warning';
}

export function formatIssue(issue: ValidationIssue): string {
  const where = [
    issue.file,
    issue.document === undefined ? undefined : `document ${issue.document}`,
    issue.object,
    issue.field,
  ]
    .filter((part) => part !== undefined && part !== '')
    .join(': ');
  return `${where ? `${where}: ` : ''}${issue.severity === 'warning' ? 'warning: ' : ''}${issue.message}`;
}

export class ValidationError extends MeshError {
  readonly issues: readonly ValidationIssue[];
  constructor(issues: readonly ValidationIssue[], options?: { cause?: unknown }) {
    const errors = issues.filter((i) => i.severity === 'error');
    super(
      'VALIDATION',
      `${errors.length} validation error(s):\n${errors.map((i) => `  ${formatIssue(i)}`).join('\n')}`,
      options,
    );
    this.name = 'ValidationError';
    this.issues = issues;
  }
}

export type Result<T> =
  { ok: true; value: T; warnings: ValidationIssue[] } | { ok: false; errors: ValidationIssue[] };

export function isMeshError(err: unknown, code?: ErrorCode): err is MeshError {
  return err instanceof MeshError && (code === undefined || err.code === code);
}
