import type { ValidationIssue } from '../../../common/index.js';

/** Where a document came from: the file as the caller named it and the 0-based document index. */
export interface DocumentOrigin {
  readonly file: string;
  readonly document: number;
}

/** Where issues go: a load's IssueList, or a per-file record kept for incremental reloads. */
export interface IssueSink {
  add(issue: ValidationIssue): void;
}

/**
 * Collects every issue of a load; validation never stops at the first error
 * so users see all problems of a folder at once.
 */
export class IssueList implements IssueSink {
  readonly errors: ValidationIssue[] = [];
  readonly warnings: ValidationIssue[] = [];

  add(issue: ValidationIssue): void {
    (issue.severity === 'error' ? this.errors : this.warnings).push(issue);
  }

  addAll(issues: Iterable<ValidationIssue>): void {
    for (const issue of issues) this.add(issue);
  }

  get hasErrors(): boolean {
    return this.errors.length > 0;
  }
}

/** `Kind/namespace/name` (or `Kind/name` when cluster-scoped), as far as known. */
export function describeObject(kind: string, namespace: string, name: string | undefined): string {
  const shownName = name === undefined || name === '' ? '<unnamed>' : name;
  return namespace === '' ? `${kind}/${shownName}` : `${kind}/${namespace}/${shownName}`;
}

/**
 * The issues of one object in one document. The object's description is
 * refined once its kind, namespace and name have been read.
 */
export class ObjectIssues {
  object: string | undefined;
  #errors = 0;

  constructor(
    private readonly sink: IssueSink,
    readonly origin: DocumentOrigin,
  ) {}

  get errorCount(): number {
    return this.#errors;
  }

  error(field: string, message: string): void {
    this.#errors += 1;
    this.sink.add(this.#issue(field, message, 'error'));
  }

  warn(field: string, message: string): void {
    this.sink.add(this.#issue(field, message, 'warning'));
  }

  #issue(field: string, message: string, severity: ValidationIssue['severity']): ValidationIssue {
    const issue: ValidationIssue = {
      file: this.origin.file,
      document: this.origin.document,
      message,
      severity,
    };
    if (this.object !== undefined) issue.object = this.object;
    if (field !== '') issue.field = field;
    return issue;
  }
}
