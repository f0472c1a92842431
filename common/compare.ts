/**
 * Orders strings by UTF-16 code units, as `<` and the default `sort()` do
 * (the order the control plane encodes sorted lists in, and the agent relies
 * on): for comparators over a field.
 */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
