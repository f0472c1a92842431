import type { Rejection } from './errors.js';

/** `key` claimed by two resources of one revision (or twice by one): both are named. */
export function claimedTwice(what: string, key: string, a: string, b: string): Rejection {
  const names = a === b ? [a] : [a, b].sort();
  return {
    code: 'VALIDATION',
    message: `${what} "${key}" is claimed more than once (by ${names.join(', ')})`,
    resourceNames: names,
  };
}

/** `key` claimed by `resource` while a resource the revision does not touch holds it. */
export function alreadyHeld(what: string, key: string, resource: string, held: string): Rejection {
  return {
    code: 'VALIDATION',
    message: `${what} "${key}" of ${resource} is already held by ${held}`,
    resourceNames: [resource],
  };
}
