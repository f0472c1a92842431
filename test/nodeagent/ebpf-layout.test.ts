// The TypeScript declarations of the kernel maps' keys and values against the
// C structs, as the compiled object's BTF describes them (bpftool reads the
// object file; no privileges needed). Needs `make -C bpf` (bootstrap runs it).
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_OBJECT_PATH,
  LAYOUT_VERSION,
  STRUCTS,
  decodeAddress,
  encodeIpcacheKey,
} from '../../nodeagent/datapath/ebpf/index.js';

const run = promisify(execFile);

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number }[];
}

async function btfTypes(): Promise<Map<number, BtfType>> {
  const { stdout } = await run(
    'bpftool',
    ['-j', 'btf', 'dump', 'file', DEFAULT_OBJECT_PATH, 'format', 'raw'],
    { maxBuffer: 64 << 20 },
  );
  const types = (JSON.parse(stdout) as { types: BtfType[] }).types;
  return new Map(types.map((t) => [t.id, t]));
}

function sizeOf(types: Map<number, BtfType>, id: number): number {
  const t = types.get(id)!;
  switch (t.kind) {
    case 'INT':
    case 'STRUCT':
    case 'UNION':
    case 'ENUM':
      return t.size!;
    case 'ARRAY':
      return t.nr_elems! * sizeOf(types, t.type_id!);
    case 'TYPEDEF':
    case 'CONST':
    case 'VOLATILE':
      return sizeOf(types, t.type_id!);
    default:
      throw new Error(`no size for BTF kind ${t.kind}`);
  }
}

describe('eBPF map layouts', () => {
  it('match the C structs in the compiled object, field by field', async () => {
    const types = await btfTypes();
    for (const [name, layout] of Object.entries(STRUCTS)) {
      const struct = [...types.values()].find((t) => t.kind === 'STRUCT' && t.name === name);
      expect(struct, `struct ${name} in the object's BTF`).toBeDefined();
      expect({ name, size: struct!.size }).toEqual({ name, size: layout.size });
      for (const [field, want] of Object.entries(layout.fields)) {
        const m = struct!.members!.find((x) => x.name === field);
        expect(m, `${name}.${field} in BTF`).toBeDefined();
        expect({
          field: `${name}.${field}`,
          offset: m!.bits_offset / 8,
          size: sizeOf(types, m!.type_id),
        }).toEqual({
          field: `${name}.${field}`,
          ...want,
        });
      }
    }
  });

  it('carries the same layout version as bpf/meshplane.h', async () => {
    const header = await readFile(new URL('../../bpf/meshplane.h', import.meta.url), 'utf8');
    expect(/#define MESHPLANE_LAYOUT_VERSION (\d+)/.exec(header)?.[1]).toBe(String(LAYOUT_VERSION));
  });

  it('encodes prefixes as LPM keys and reads back the canonical text', () => {
    for (const prefix of ['10.1.0.5/32', '198.18.0.0/15', 'fd00::5/128', '2001:db8::/32', '::/0']) {
      const key = encodeIpcacheKey(prefix);
      const family = key.readUInt8(STRUCTS.ipcache_key.fields.family.offset);
      const len = key.readUInt32LE(0) - 32;
      expect(`${decodeAddress(family, key, STRUCTS.ipcache_key.fields.addr.offset)}/${len}`).toBe(
        prefix,
      );
    }
  });
});
