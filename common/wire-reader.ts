import { BinaryReader } from '@bufbuild/protobuf/wire';

/**
 * A protobuf reader whose ASCII strings are sliced out of the buffer by
 * Node, allocating the string alone. @bufbuild/protobuf's reader builds an
 * array of char codes per string up to 32 bytes and spreads it into
 * `String.fromCharCode`: ~150 bytes of garbage per ipcache prefix, and the
 * largest part of what an agent allocates decoding a revision. Other strings
 * (non-ASCII) take the library's path. Pass it to a generated `decode`; the
 * nested messages are read through it too.
 */
export class WireReader extends BinaryReader {
  readonly #bytes: Buffer;

  constructor(buf: Uint8Array) {
    super(buf);
    this.#bytes = Buffer.isBuffer(buf)
      ? buf
      : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  override string(strict?: boolean): string {
    const start = this.pos;
    const len = this.uint32();
    const from = this.pos;
    const to = from + len;
    const b = this.#bytes;
    if (to > this.len) {
      this.pos = start;
      return super.string(strict); // the library's own out-of-bounds error
    }
    for (let i = from; i < to; i++) {
      if (b[i]! > 0x7f) {
        this.pos = start;
        return super.string(strict);
      }
    }
    this.pos = to;
    return b.toString('latin1', from, to);
  }
}
