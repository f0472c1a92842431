import type { ValidationIssue } from './errors.js';

/**
 * The control plane asks a manifest-backed cluster's source to write a change
 * set (`meshctl apply` / `delete`) into its folder with a core NATS request on
 * `meshplane.apply.<cluster>`; the source answers on the request's inbox. The
 * folder stays the source of truth: the source publishes what it wrote as an
 * ordinary change set on its events subject.
 */
export const SUBJECT_APPLY_PREFIX = 'meshplane.apply';

export interface ChangeSetFile {
  /** as the user named it: errors name it so */
  readonly path: string;
  readonly text: string;
}

export interface SourceApplyRequest {
  readonly apiVersion: 'meshplane/v1';
  /** the change set's id (audit, logs) */
  readonly id: string;
  readonly mode: 'apply' | 'delete';
  /** validate against the folder as it is, write nothing */
  readonly dryRun: boolean;
  readonly files: readonly ChangeSetFile[];
}

export type AppliedAction = 'created' | 'configured' | 'unchanged' | 'deleted';

export interface AppliedObjectRef {
  /** Kind/namespace/name (objectKey) */
  readonly key: string;
  readonly action: AppliedAction;
}

export type SourceApplyReply =
  | {
      readonly ok: true;
      readonly objects: readonly AppliedObjectRef[];
      /**
       * The events-stream sequence of the change set that carries this one
       * (or, when nothing had to be published, of the last one published);
       * undefined for a dry run.
       */
      readonly sequence?: number;
      /** nothing in the folder changed */
      readonly unchanged: boolean;
    }
  | { readonly ok: false; readonly errors: readonly ValidationIssue[] };
