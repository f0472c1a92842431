// IPv4 arithmetic on unsigned 32-bit numbers: enough for pod CIDRs and
// deterministic pod IP assignment without a dependency.

// Leading zeros are rejected: some tools read them as octal. One expression
// for the whole address: this runs for every pod IP on every reload.
const OCTET = '(0|[1-9][0-9]{0,2})';
const DOTTED_QUAD = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

export function parseIPv4(text: string): number | undefined {
  const match = DOTTED_QUAD.exec(text);
  if (match === null) return undefined;
  let value = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(match[i]);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export function formatIPv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => String(Math.floor(value / 2 ** shift) % 256)).join('.');
}

export interface Ipv4Cidr {
  /** network address */
  readonly base: number;
  readonly prefix: number;
}

export function cidrSize(cidr: Ipv4Cidr): number {
  return 2 ** (32 - cidr.prefix);
}

/** Parses `a.b.c.d/n`; host bits must be zero so the written range is the real one. */
export function parseIPv4Cidr(text: string): { cidr: Ipv4Cidr } | { reason: string } {
  const match = /^([^/]+)\/([0-9]{1,2})$/.exec(text);
  const address = match?.[1] === undefined ? undefined : parseIPv4(match[1]);
  const prefix = Number(match?.[2]);
  if (address === undefined || !(prefix >= 0 && prefix <= 32)) {
    return { reason: `"${text}" is not an IPv4 CIDR (a.b.c.d/n)` };
  }
  const size = 2 ** (32 - prefix);
  if (address % size !== 0) {
    const network = formatIPv4(address - (address % size));
    return { reason: `"${text}" has host bits set; did you mean ${network}/${prefix}?` };
  }
  return { cidr: { base: address, prefix } };
}

export function cidrContains(cidr: Ipv4Cidr, address: number): boolean {
  return address >= cidr.base && address < cidr.base + cidrSize(cidr);
}

export function cidrsOverlap(a: Ipv4Cidr, b: Ipv4Cidr): boolean {
  return cidrContains(a, b.base) || cidrContains(b, a.base);
}

export function formatCidr(cidr: Ipv4Cidr): string {
  return `${formatIPv4(cidr.base)}/${cidr.prefix}`;
}
