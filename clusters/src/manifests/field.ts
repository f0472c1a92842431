import type { ObjectIssues } from './issues.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Appends a key to a dotted field path; keys that are not identifiers (label keys) are bracketed. */
export function fieldPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  const segment = IDENTIFIER.test(key) ? key : `[${JSON.stringify(key)}]`;
  if (base === '') return segment;
  return segment.startsWith('[') ? `${base}${segment}` : `${base}.${segment}`;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (isRecord(value)) return 'a map';
  return `${typeof value} ${JSON.stringify(value)}`;
}

interface Presence {
  required?: boolean;
}

/**
 * A value at a field path of one manifest object. The typed getters report a
 * wrong type or a missing required value as an error naming the path, and
 * return undefined so conversion can go on and find the next problem.
 * YAML null counts as absent, as in Kubernetes.
 */
export class Field {
  constructor(
    readonly issues: ObjectIssues,
    readonly value: unknown,
    readonly path: string,
  ) {}

  get present(): boolean {
    return this.value !== undefined && this.value !== null;
  }

  child(key: string | number): Field {
    let value: unknown;
    if (typeof key === 'number' && Array.isArray(this.value)) value = this.value[key] as unknown;
    if (typeof key === 'string' && isRecord(this.value)) value = this.value[key];
    return new Field(this.issues, value, fieldPath(this.path, key));
  }

  error(message: string): void {
    this.issues.error(this.path, message);
  }

  warn(message: string): void {
    this.issues.warn(this.path, message);
  }

  #absent(opts: Presence | undefined): undefined {
    if (opts?.required === true) this.error('is required');
    return undefined;
  }

  #wrong(expected: string): undefined {
    this.error(`must be ${expected}, got ${typeName(this.value)}`);
    return undefined;
  }

  record(opts?: Presence): Record<string, unknown> | undefined {
    if (!this.present) return this.#absent(opts);
    return isRecord(this.value) ? this.value : this.#wrong('a map');
  }

  /** The elements of a list (empty when absent and not required). */
  items(opts?: Presence): Field[] {
    if (!this.present) return this.#absent(opts) ?? [];
    if (!Array.isArray(this.value)) return this.#wrong('a list') ?? [];
    return this.value.map((_, index) => this.child(index));
  }

  /** The entries of a map (empty when absent and not required). */
  entries(opts?: Presence): [string, Field][] {
    const record = this.record(opts);
    return record === undefined ? [] : Object.keys(record).map((key) => [key, this.child(key)]);
  }

  string(opts?: Presence & { nonEmpty?: boolean }): string | undefined {
    if (!this.present) return this.#absent(opts);
    if (typeof this.value !== 'string') return this.#wrong('a string');
    if (opts?.nonEmpty === true && this.value === '') {
      this.error('must not be empty');
      return undefined;
    }
    return this.value;
  }

  boolean(opts?: Presence): boolean | undefined {
    if (!this.present) return this.#absent(opts);
    return typeof this.value === 'boolean' ? this.value : this.#wrong('true or false');
  }

  integer(range: { min: number; max: number }, opts?: Presence): number | undefined {
    if (!this.present) return this.#absent(opts);
    if (typeof this.value !== 'number' || !Number.isInteger(this.value)) {
      return this.#wrong(`an integer ${range.min}..${range.max}`);
    }
    if (this.value < range.min || this.value > range.max) {
      this.error(`must be ${range.min}..${range.max}, got ${this.value}`);
      return undefined;
    }
    return this.value;
  }

  oneOf<T extends string>(allowed: readonly T[], opts?: Presence): T | undefined {
    const value = this.string(opts);
    if (value === undefined) return undefined;
    if ((allowed as readonly string[]).includes(value)) return value as T;
    this.error(`must be one of ${allowed.join(', ')}, got "${value}"`);
    return undefined;
  }

  /** A string checked by a name rule that returns a reason when invalid. */
  name(check: (value: string) => string | undefined, opts?: Presence): string | undefined {
    const value = this.string({ ...opts, nonEmpty: true });
    if (value === undefined) return undefined;
    const reason = check(value);
    if (reason === undefined) return value;
    this.error(`"${value}" ${reason}`);
    return undefined;
  }
}
