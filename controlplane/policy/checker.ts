/**
 * A cursor over a raw policy value that knows its field path and collects
 * issues. Validation never stops at the first problem: each reader reports
 * and returns undefined so the caller can go on.
 */

export interface RawIssue {
  /** field path from the object root, e.g. spec.ingress[0].toPorts[0].ports[1].port */
  field: string;
  message: string;
  severity: 'error' | 'warning';
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (isMap(value)) return 'a map';
  return `${typeof value} ${JSON.stringify(value)}`;
}

export class Checker {
  constructor(
    readonly issues: RawIssue[],
    readonly value: unknown,
    readonly path: string,
  ) {}

  /** YAML null counts as absent, as in Kubernetes. */
  get present(): boolean {
    return this.value !== undefined && this.value !== null;
  }

  at(key: string | number): Checker {
    let value: unknown;
    if (typeof key === 'number' && Array.isArray(this.value)) value = this.value[key] as unknown;
    if (typeof key === 'string' && isMap(this.value)) value = this.value[key];
    let path: string;
    if (typeof key === 'number') path = `${this.path}[${key}]`;
    else if (IDENTIFIER.test(key)) path = this.path === '' ? key : `${this.path}.${key}`;
    else path = `${this.path}[${JSON.stringify(key)}]`;
    return new Checker(this.issues, value, path);
  }

  error(message: string): undefined {
    this.issues.push({ field: this.path, message, severity: 'error' });
    return undefined;
  }

  warn(message: string): void {
    this.issues.push({ field: this.path, message, severity: 'warning' });
  }

  map(): Record<string, unknown> | undefined {
    if (!this.present) return undefined;
    return isMap(this.value)
      ? this.value
      : this.error(`must be a map, got ${describe(this.value)}`);
  }

  /** Items of a list; absent → undefined (not an empty list: Kubernetes tells them apart). */
  list(): Checker[] | undefined {
    if (!this.present) return undefined;
    if (!Array.isArray(this.value))
      return this.error(`must be a list, got ${describe(this.value)}`);
    return this.value.map((_, i) => this.at(i));
  }

  string(): string | undefined {
    if (!this.present) return undefined;
    return typeof this.value === 'string'
      ? this.value
      : this.error(`must be a string, got ${describe(this.value)}`);
  }

  boolean(): boolean | undefined {
    if (!this.present) return undefined;
    return typeof this.value === 'boolean'
      ? this.value
      : this.error(`must be true or false, got ${describe(this.value)}`);
  }

  /**
   * Reports every key of a map that is not `known`: keys in `unsupported` are
   * fields meshplane does not implement (an error naming them, never a silent
   * drop); any other key is unknown.
   */
  keys(known: readonly string[], unsupported: readonly string[] = []): void {
    const m = this.map();
    if (m === undefined) return;
    for (const key of Object.keys(m)) {
      if (known.includes(key)) continue;
      const at = this.at(key);
      if (unsupported.includes(key)) at.error(`${key} is not implemented by meshplane`);
      else at.error(`unknown field "${key}"`);
    }
  }
}
