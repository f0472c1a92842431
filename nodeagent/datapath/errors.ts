import { MeshError } from '../../common/index.js';

/** Why a revision (or part of it) cannot be applied, naming the resources at fault. */
export interface Rejection {
  code: 'VALIDATION' | 'CAPACITY' | 'INTERNAL';
  message: string;
  /** names (within their type) of the rejected resources; may be empty */
  resourceNames: string[];
}

/**
 * A datapath or translation refusal. Carries every problem found (validation
 * collects all errors), the union of the resource names, and a single code:
 * VALIDATION if any problem is a validation error, else CAPACITY, else INTERNAL.
 */
export class DatapathError extends MeshError {
  readonly rejections: readonly Rejection[];
  readonly resourceNames: readonly string[];

  constructor(rejections: readonly Rejection[], options?: { cause?: unknown }) {
    super(codeOf(rejections), rejections.map((r) => r.message).join('; '), options);
    this.name = 'DatapathError';
    this.rejections = rejections;
    this.resourceNames = [...new Set(rejections.flatMap((r) => r.resourceNames))].sort();
  }
}

function codeOf(rejections: readonly Rejection[]): Rejection['code'] {
  if (rejections.some((r) => r.code === 'VALIDATION')) return 'VALIDATION';
  if (rejections.some((r) => r.code === 'CAPACITY')) return 'CAPACITY';
  return 'INTERNAL';
}
