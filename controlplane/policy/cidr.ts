import { isIP } from 'node:net';

/** IPv4 and IPv6 prefixes as (family, network bits as a bigint, length). Pure arithmetic. */
export interface Prefix {
  family: 4 | 6;
  bits: bigint;
  len: number;
  /** canonical text (network address/len) */
  text: string;
}

function width(family: 4 | 6): number {
  return family === 4 ? 32 : 128;
}

export function parseIp(ip: string): { family: 4 | 6; value: bigint } | undefined {
  const family = isIP(ip);
  if (family === 4) {
    const parts = ip.split('.').map(Number);
    return { family: 4, value: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n) };
  }
  if (family !== 6) return undefined;
  // Expand "::" and an embedded IPv4 tail into eight 16-bit groups.
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1] !== undefined) {
    const tail = parseIp(v4[1])!.value;
    text = `${text.slice(0, -v4[1].length)}${(tail >> 16n).toString(16)}:${(tail & 0xffffn).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups =
    rest === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return { family: 6, value: groups.reduce((acc, g) => (acc << 16n) | BigInt(`0x${g}`), 0n) };
}

function formatIp(family: 4 | 6, value: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  }
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((value >> s) & 0xffffn).toString(16));
  return groups.join(':');
}

/** Parses `addr/len`; a bare address is a host prefix. Host bits must be zero (as Kubernetes requires). */
export function parsePrefix(text: string): Prefix | { error: string } {
  const [addr = '', lenText, extra] = text.split('/');
  const ip = parseIp(addr);
  if (ip === undefined || extra !== undefined) return { error: `"${text}" is not a CIDR` };
  const max = width(ip.family);
  const len = lenText === undefined ? max : /^\d{1,3}$/.test(lenText) ? Number(lenText) : NaN;
  if (!(len >= 0 && len <= max)) return { error: `"${text}" has an invalid prefix length` };
  const hostMask = (1n << BigInt(max - len)) - 1n;
  if ((ip.value & hostMask) !== 0n) {
    return {
      error: `"${text}" has host bits set (use ${formatIp(ip.family, ip.value & ~hostMask)}/${len})`,
    };
  }
  return {
    family: ip.family,
    bits: ip.value,
    len,
    text: `${formatIp(ip.family, ip.value)}/${len}`,
  };
}

/** Whether `outer` contains `inner` (equal included). */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (outer.family !== inner.family || outer.len > inner.len) return false;
  const shift = BigInt(width(outer.family) - outer.len);
  return outer.bits >> shift === inner.bits >> shift;
}

export function prefixContainsIp(outer: Prefix, ip: string): boolean {
  const parsed = parseIp(ip);
  if (parsed === undefined || parsed.family !== outer.family) return false;
  const shift = BigInt(width(outer.family) - outer.len);
  return outer.bits >> shift === parsed.value >> shift;
}

/** A block minus its exceptions, as Kubernetes ipBlock and Cilium CIDRSet define it. */
export interface CidrBlock {
  cidr: Prefix;
  except: readonly Prefix[];
}

export function blockContainsIp(block: CidrBlock, ip: string): boolean {
  return prefixContainsIp(block.cidr, ip) && !block.except.some((e) => prefixContainsIp(e, ip));
}

/**
 * Whether every address of `p` is in the block. With the ipcache's longest
 * prefix match, the CIDR identity of `p` stands for the addresses of `p` not
 * covered by a longer prefix; excepts are themselves required prefixes, so
 * `p` matches when it lies in the block and in no except.
 */
export function blockSelectsPrefix(block: CidrBlock, p: Prefix): boolean {
  return prefixContains(block.cidr, p) && !block.except.some((e) => prefixContains(e, p));
}
