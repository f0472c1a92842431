import { decodeResource } from '../../common/index.js';
import { TYPE_IPCACHE, type IpcacheShard } from '../../proto/index.js';

// IpcacheShard { uint32 shard = 1; repeated IpcacheEntry entries = 2; }
// IpcacheEntry { string prefix = 1; uint32 identity = 2; }
const TAG_SHARD = 0x08; // field 1, varint
const TAG_ENTRY = 0x12; // field 2, length-delimited
const TAG_PREFIX = 0x0a; // field 1, length-delimited
const TAG_IDENTITY = 0x10; // field 2, varint

/**
 * An ipcache shard as the bytes it travels in, one character per byte
 * (latin1), decoded only when asked (`value`).
 *
 * Most revisions replace shards with one prefix more or less: decoding the
 * held and the new shard made an object and a string per prefix, twice, for
 * the one that changed — most of an agent's work and garbage in a burst of
 * pod changes. When the bytes are `direct` — known fields, each once per
 * entry, ASCII prefixes, entries in prefix order: what the control plane
 * writes — `EntryCursor` reads the entries in place and the translation
 * compares the two shards without decoding them (IpcacheTranslation). Any
 * other valid encoding is decoded at once and takes the decoded path, so both
 * read the same entries.
 */
export class ShardBytes {
  readonly bytes: string;
  readonly direct: boolean;
  /**
   * The payload `bytes` was copied from, while the revision is applied: the
   * prefixes the translation emits are sliced from it, each its own string.
   * A substring of 13 or more characters is a view of its parent in V8, so a
   * prefix kept as a datapath key would keep every replaced shard's bytes.
   */
  readonly received: Buffer | undefined;
  #decoded: IpcacheShard | undefined;

  constructor(bytes: string, direct: boolean, decoded?: IpcacheShard, received?: Buffer) {
    this.bytes = bytes;
    this.direct = direct;
    this.#decoded = decoded;
    this.received = received;
  }

  /** A received payload (copied); throws the decoder's error when it is not an IpcacheShard. */
  static fromPayload(payload: Uint8Array): ShardBytes {
    // The decoder's payloads are Buffers already (views of the response): no second view.
    const received = Buffer.isBuffer(payload)
      ? payload
      : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const bytes = received.toString('latin1');
    if (isDirect(bytes)) return new ShardBytes(bytes, true, undefined, received);
    return new ShardBytes(bytes, false, decodeShard(received));
  }

  get typeUrl(): typeof TYPE_IPCACHE {
    return TYPE_IPCACHE;
  }

  get value(): IpcacheShard {
    return (this.#decoded ??= decodeShard(Buffer.from(this.bytes, 'latin1')));
  }
}

function decodeShard(payload: Uint8Array): IpcacheShard {
  const r = decodeResource(TYPE_IPCACHE, payload);
  if (r.typeUrl !== TYPE_IPCACHE) throw new TypeError('not an ipcache shard'); // never: decoded as one
  return r.value;
}

/**
 * The entries of direct shard bytes, one at a time, read in place: the
 * prefix as a span of the bytes (a string only on `prefix()`) and the
 * identity. Undefined on bytes that are not direct.
 */
export class EntryCursor {
  #s = '';
  #received: Buffer | undefined;
  #pos = 0;
  #at = false;
  /** the entry's prefix span */
  #prefixStart = 0;
  #prefixEnd = 0;
  /** the previous entry's prefix span (-1: none) */
  #previousStart = -1;
  #previousEnd = -1;
  identity = 0;

  /**
   * Starts over on `bytes` ('' : no entries), whose prefixes are sliced from
   * `received` if given (see ShardBytes.received); true if it has a first entry.
   */
  reset(bytes: string, received?: Buffer): boolean {
    this.#s = bytes;
    this.#received = received;
    this.#pos = 0;
    this.#at = false;
    this.#previousStart = this.#previousEnd = -1;
    return this.next();
  }

  /** Moves to the next entry; false at the end. */
  next(): boolean {
    const s = this.#s;
    let pos = this.#pos;
    if (this.#at) {
      this.#previousStart = this.#prefixStart;
      this.#previousEnd = this.#prefixEnd;
    }
    while (pos < s.length) {
      const tag = s.charCodeAt(pos++);
      if (tag === TAG_SHARD) {
        pos = varintEnd(s, pos);
        continue;
      }
      // TAG_ENTRY: direct bytes have nothing else
      const len = readVarint(s, pos);
      pos = varintEnd(s, pos);
      const entryEnd = pos + len;
      this.#prefixStart = this.#prefixEnd = pos;
      this.identity = 0;
      while (pos < entryEnd) {
        if (s.charCodeAt(pos++) === TAG_PREFIX) {
          const n = s.charCodeAt(pos++); // < 0x80: prefixes are short (checked)
          this.#prefixStart = pos;
          this.#prefixEnd = pos += n;
        } else {
          this.identity = readVarint(s, pos);
          pos = varintEnd(s, pos);
        }
      }
      this.#pos = entryEnd;
      return (this.#at = true);
    }
    this.#pos = pos;
    return (this.#at = false);
  }

  prefix(): string {
    return this.#received !== undefined
      ? this.#received.toString('latin1', this.#prefixStart, this.#prefixEnd)
      : this.#s.substring(this.#prefixStart, this.#prefixEnd);
  }

  /** The entry's prefix against `other`'s, in string order. */
  comparePrefix(other: EntryCursor): number {
    return compareSpans(
      this.#s,
      this.#prefixStart,
      this.#prefixEnd,
      other.#s,
      other.#prefixStart,
      other.#prefixEnd,
    );
  }

  /** Whether the entry repeats the previous entry's prefix. */
  repeatsPrevious(): boolean {
    return (
      this.#previousStart >= 0 &&
      compareSpans(
        this.#s,
        this.#previousStart,
        this.#previousEnd,
        this.#s,
        this.#prefixStart,
        this.#prefixEnd,
      ) === 0
    );
  }
}

/**
 * The varint at `at` (at most 5 bytes, within 32 bits: checked), in integer
 * arithmetic: a small value stays a small integer, where floating-point
 * arithmetic would make every identity the datapath keeps a heap number.
 */
function readVarint(s: string, at: number): number {
  let v = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    const b = s.charCodeAt(at++);
    v |= (b & 0x7f) << shift;
    if (b < 0x80) return v;
  }
  return (v >>> 0) + s.charCodeAt(at) * 2 ** 28; // 2^28 and above (5 bytes)
}

/** The position after the varint at `at`. */
function varintEnd(s: string, at: number): number {
  while (s.charCodeAt(at++) & 0x80);
  return at;
}

function compareSpans(
  a: string,
  as: number,
  ae: number,
  b: string,
  bs: number,
  be: number,
): number {
  const n = Math.min(ae - as, be - bs);
  for (let i = 0; i < n; i++) {
    const d = a.charCodeAt(as + i) - b.charCodeAt(bs + i);
    if (d !== 0) return d;
  }
  return ae - as - (be - bs);
}

/**
 * Whether `bytes` is an IpcacheShard EntryCursor reads as the generated
 * decoder would: only the shard number and entries at the top, only a prefix
 * and an identity in an entry, each at most once; varints of at most five
 * bytes within 32 bits; ASCII prefixes shorter than 128 bytes; entries in
 * prefix order (repeats allowed: the translation refuses them). Anything else
 * is left to the decoder.
 */
export function isDirect(bytes: string): boolean {
  const n = bytes.length;
  let pos = 0;
  let prevStart = -1;
  let prevEnd = -1;
  while (pos < n) {
    const tag = bytes.charCodeAt(pos++);
    if (tag === TAG_SHARD) {
      pos = checkVarint(bytes, pos, n);
      if (pos < 0) return false;
      continue;
    }
    if (tag !== TAG_ENTRY) return false;
    const lengthAt = pos;
    pos = checkVarint(bytes, pos, n);
    if (pos < 0) return false;
    const end = pos + readVarint(bytes, lengthAt);
    if (end > n) return false;
    let prefixStart = pos;
    let prefixEnd = pos;
    let seenPrefix = false;
    let seenIdentity = false;
    while (pos < end) {
      const t = bytes.charCodeAt(pos++);
      if (t === TAG_PREFIX && !seenPrefix) {
        seenPrefix = true;
        if (pos >= end) return false;
        const l = bytes.charCodeAt(pos++);
        if (l >= 0x80 || pos + l > end) return false;
        for (let i = pos; i < pos + l; i++) if (bytes.charCodeAt(i) >= 0x80) return false;
        prefixStart = pos;
        prefixEnd = pos += l;
      } else if (t === TAG_IDENTITY && !seenIdentity) {
        seenIdentity = true;
        pos = checkVarint(bytes, pos, end);
        if (pos < 0) return false;
      } else return false;
    }
    if (
      prevStart >= 0 &&
      compareSpans(bytes, prevStart, prevEnd, bytes, prefixStart, prefixEnd) > 0
    )
      return false;
    prevStart = prefixStart;
    prevEnd = prefixEnd;
  }
  return true;
}

/** The position after a varint at `at` of at most 5 bytes, within 32 bits, ending by `end`; -1 if it is not one. */
function checkVarint(bytes: string, at: number, end: number): number {
  for (let i = 0; i < 5; i++) {
    if (at + i >= end) return -1;
    const b = bytes.charCodeAt(at + i);
    if (i === 4 && b > 0x0f) return -1;
    if (b < 0x80) return at + i + 1;
  }
  return -1;
}
