import { parseArgs } from 'node:util';

/**
 * A benchmark's command line: `--json` plus positive numeric options, each
 * undefined when not given. Throws naming the option on a bad value.
 */
export function numericOptions<K extends string>(
  argv: readonly string[],
  names: readonly K[],
): Record<K, number | undefined> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      json: { type: 'boolean' },
      ...Object.fromEntries(names.map((n) => [n, { type: 'string' as const }])),
    },
    strict: true,
  });
  const out = {} as Record<K, number | undefined>;
  for (const name of names) {
    const v = (values as Record<string, string | boolean | undefined>)[name] as string | undefined;
    if (v === undefined) continue;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
    out[name] = n;
  }
  return out;
}

/** A signal aborted by SIGINT/SIGTERM, so a benchmark cleans up when interrupted; `dispose` removes the handlers. */
export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const interrupt = new AbortController();
  const onSignal = (): void => interrupt.abort(new Error('interrupted'));
  // `on`, not `once`: a once-listener is removed before it runs, and the
  // launcher's exit safety net then sees no other listener and kills the
  // process before the benchmark's own cleanup has run.
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: interrupt.signal,
    dispose: () => {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    },
  };
}

/** `--NAME VALUE` or `--NAME=VALUE` taken out of `argv` (the rest left for numericOptions). */
export function takeStringOption(
  argv: readonly string[],
  name: string,
): { value: string | undefined; rest: string[] } {
  const rest: string[] = [];
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === `--${name}`) {
      value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) throw new Error(`--${name} needs a value`);
      i += 1;
    } else if (arg.startsWith(`--${name}=`)) value = arg.slice(name.length + 3);
    else rest.push(arg);
  }
  return { value, rest };
}
