// Reads struct layouts and enum values from a compiled object's BTF (through
// bpftool's JSON dump) and compares them with the TypeScript ABI mirror.
import { run } from '../topology/ip.js';
import { abiEnums, abiStructs } from './abi.js';
import type { EnumMirror, StructCodec } from './codec.js';

interface BtfMember {
  name: string;
  type_id: number;
  bits_offset: number;
}

interface BtfType {
  id: number;
  kind: string;
  name?: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: BtfMember[];
  values?: Array<{ name: string; val: number }>;
}

export interface StructLayout {
  name: string;
  size: number;
  members: Array<{ name: string; offset: number; size: number }>;
}

export class Btf {
  private readonly byId = new Map<number, BtfType>();

  constructor(types: BtfType[]) {
    for (const t of types) this.byId.set(t.id, t);
  }

  static fromObject(path: string): Btf {
    const json = JSON.parse(run('bpftool', ['btf', 'dump', 'file', path, '-j'])) as {
      types: BtfType[];
    };
    return new Btf(json.types);
  }

  private named(kind: string, name: string): BtfType | undefined {
    for (const t of this.byId.values()) if (t.kind === kind && t.name === name) return t;
    return undefined;
  }

  names(kind: 'STRUCT' | 'ENUM'): string[] {
    return [...this.byId.values()].filter((t) => t.kind === kind && t.name).map((t) => t.name!);
  }

  /** Size in bytes of a type, following typedefs and qualifiers. */
  sizeOf(id: number): number {
    const t = this.byId.get(id);
    if (!t) throw new Error(`BTF type ${id} is missing`);
    switch (t.kind) {
      case 'TYPEDEF':
      case 'CONST':
      case 'VOLATILE':
      case 'RESTRICT':
        return this.sizeOf(t.type_id!);
      case 'ARRAY':
        return t.nr_elems! * this.sizeOf(t.type_id!);
      case 'PTR':
        return 8;
      default:
        if (t.size === undefined) throw new Error(`BTF type ${id} (${t.kind}) has no size`);
        return t.size;
    }
  }

  struct(name: string): StructLayout | undefined {
    const t = this.named('STRUCT', name);
    if (!t) return undefined;
    return {
      name,
      size: t.size!,
      members: (t.members ?? []).map((m) => ({
        name: m.name,
        offset: m.bits_offset / 8,
        size: this.sizeOf(m.type_id),
      })),
    };
  }

  enumValues(name: string): Map<string, number> | undefined {
    const t = this.named('ENUM', name);
    if (!t) return undefined;
    return new Map((t.values ?? []).map((v) => [v.name, v.val]));
  }
}

/** Differences between one TypeScript struct codec and BTF, as readable lines. */
export function compareStruct(btf: Btf, codec: StructCodec<unknown>): string[] {
  const c = btf.struct(codec.cName);
  if (!c) return [`struct ${codec.cName}: not in BTF`];
  const out: string[] = [];
  if (c.size !== codec.size)
    out.push(`struct ${codec.cName}: size C ${c.size}, TypeScript ${codec.size}`);
  const ts = new Map(codec.fields.map((f) => [f.name, f]));
  for (const m of c.members) {
    const f = ts.get(m.name);
    if (!f) {
      out.push(`struct ${codec.cName}: field ${m.name} (offset ${m.offset}) missing in TypeScript`);
      continue;
    }
    if (f.offset !== m.offset)
      out.push(`${codec.cName}.${m.name}: offset C ${m.offset}, TypeScript ${f.offset}`);
    if (f.size !== m.size)
      out.push(`${codec.cName}.${m.name}: size C ${m.size}, TypeScript ${f.size}`);
    ts.delete(m.name);
  }
  for (const name of ts.keys()) out.push(`${codec.cName}.${name}: in TypeScript, not in C`);
  return out;
}

export function compareEnum(btf: Btf, mirror: EnumMirror<string>): string[] {
  const c = btf.enumValues(mirror.cName);
  if (!c) return [`enum ${mirror.cName}: not in BTF`];
  const out: string[] = [];
  const ts = new Map(Object.entries(mirror.values).map(([k, v]) => [mirror.prefix + k, v]));
  for (const [name, val] of c) {
    const v = ts.get(name);
    if (v === undefined) out.push(`enum ${mirror.cName}: ${name} = ${val} missing in TypeScript`);
    else if (v !== val) out.push(`${name}: C ${val}, TypeScript ${v}`);
    ts.delete(name);
  }
  for (const name of ts.keys()) out.push(`${name}: in TypeScript, not in C`);
  return out;
}

/** The anchor struct only exists to pull the whole ABI into BTF (see xlb_abi.h). */
const ANCHOR_STRUCT = 'xlb_abi_anchor';

/**
 * Every disagreement between the object's BTF and the TypeScript ABI, also
 * structs and enums named xlb_* in C that TypeScript does not mirror.
 */
export function checkAbi(objectPath: string): string[] {
  const btf = Btf.fromObject(objectPath);
  const out = [
    ...abiStructs.flatMap((s) => compareStruct(btf, s as StructCodec<unknown>)),
    ...abiEnums.flatMap((e) => compareEnum(btf, e)),
  ];
  const mirrored = new Set<string>([
    ...abiStructs.map((s) => s.cName),
    ...abiEnums.map((e) => e.cName),
  ]);
  for (const name of [...btf.names('STRUCT'), ...btf.names('ENUM')]) {
    if (name.startsWith('xlb_') && name !== ANCHOR_STRUCT && !mirrored.has(name)) {
      out.push(`${name}: in C (bpf/include/xlb_abi.h), not mirrored in control/datapath/abi.ts`);
    }
  }
  return out;
}
