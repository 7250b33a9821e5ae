// A small struct codec with C layout rules (natural alignment, tail padding),
// so a TypeScript description of a struct yields the same offsets and size
// clang gives the C one. The ABI test holds the two to each other via BTF.
import ipaddr from 'ipaddr.js';

export interface FieldType<T> {
  /** Human-readable kind, for error messages. */
  readonly kind: string;
  readonly size: number;
  readonly align: number;
  read(buf: Buffer, off: number): T;
  write(buf: Buffer, off: number, value: T): void;
  readonly zero: T;
}

function uint(kind: string, size: 1 | 2 | 4, bigEndian: boolean): FieldType<number> {
  const max = 2 ** (size * 8) - 1;
  return {
    kind,
    size,
    align: size,
    zero: 0,
    read: (b, o) => (bigEndian ? b.readUIntBE(o, size) : b.readUIntLE(o, size)),
    write: (b, o, v) => {
      if (!Number.isInteger(v) || v < 0 || v > max) {
        throw new RangeError(`${kind} value ${v} is out of range 0..${max}`);
      }
      if (bigEndian) b.writeUIntBE(v, o, size);
      else b.writeUIntLE(v, o, size);
    },
  };
}

// Host byte order fields are little-endian: xlb runs on x86_64 and arm64.
export const u8 = uint('u8', 1, false);
export const u16 = uint('u16', 2, false);
export const u32 = uint('u32', 4, false);
export const be16 = uint('be16', 2, true);
export const be32 = uint('be32', 4, true);

/** A u32 map key or value in host (little-endian) order. */
export function key32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}

export const u64: FieldType<bigint> = {
  kind: 'u64',
  size: 8,
  align: 8,
  zero: 0n,
  read: (b, o) => b.readBigUInt64LE(o),
  write: (b, o, v) => b.writeBigUInt64LE(v, o),
};

/** An IPv4 address stored in network order (a __be32), as dotted text. */
export const ipv4: FieldType<string> = {
  kind: 'ipv4',
  size: 4,
  align: 4,
  zero: '0.0.0.0',
  read: (b, o) => ipaddr.fromByteArray([...b.subarray(o, o + 4)]).toString(),
  write: (b, o, v) => {
    const a = ipaddr.parse(v);
    if (a.kind() !== 'ipv4') throw new RangeError(`'${v}' is not an IPv4 address`);
    Buffer.from(a.toByteArray()).copy(b, o);
  },
};

/** An IPv6 address as 16 bytes (__u8[16]), as text. */
export const ipv6: FieldType<string> = {
  kind: 'ipv6',
  size: 16,
  align: 1,
  zero: '::',
  read: (b, o) => ipaddr.fromByteArray([...b.subarray(o, o + 16)]).toString(),
  write: (b, o, v) => {
    const a = ipaddr.parse(v);
    if (a.kind() !== 'ipv6') throw new RangeError(`'${v}' is not an IPv6 address`);
    Buffer.from(a.toByteArray()).copy(b, o);
  },
};

/** Explicit padding: always written as zeros, read as nothing useful. */
export function pad(size: number): FieldType<null> {
  return {
    kind: `pad${size}`,
    size,
    align: 1,
    zero: null,
    read: () => null,
    write: (b, o) => void b.fill(0, o, o + size),
  };
}

export function bytes(size: number): FieldType<Buffer> {
  return {
    kind: `u8[${size}]`,
    size,
    align: 1,
    zero: Buffer.alloc(size),
    read: (b, o) => Buffer.from(b.subarray(o, o + size)),
    write: (b, o, v) => {
      if (v.length !== size) throw new RangeError(`expected ${size} bytes, got ${v.length}`);
      v.copy(b, o);
    },
  };
}

type FieldMap = Record<string, FieldType<unknown>>;
type Decoded<F extends FieldMap> = {
  [K in keyof F as F[K] extends FieldType<null> ? never : K]: F[K] extends FieldType<infer T>
    ? T
    : never;
};

export interface FieldLayout {
  name: string;
  offset: number;
  size: number;
  kind: string;
}

export interface StructCodec<T> extends FieldType<T> {
  /** The C struct's name (without `struct`). */
  readonly cName: string;
  readonly fields: readonly FieldLayout[];
  encode(value: T): Buffer;
  decode(buf: Buffer): T;
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Lays fields out in order, as a C compiler does for a plain struct. */
export function struct<F extends FieldMap>(cName: string, fields: F): StructCodec<Decoded<F>> {
  const layout: FieldLayout[] = [];
  let offset = 0;
  let align = 1;
  for (const [name, type] of Object.entries(fields)) {
    offset = alignUp(offset, type.align);
    layout.push({ name, offset, size: type.size, kind: type.kind });
    offset += type.size;
    align = Math.max(align, type.align);
  }
  const size = alignUp(offset, align);
  const entries = Object.entries(fields).map(([name, type], i) => ({
    name,
    type,
    offset: layout[i]!.offset,
  }));
  const zero = Object.fromEntries(
    entries.filter((e) => e.type.zero !== null).map((e) => [e.name, e.type.zero]),
  ) as Decoded<F>;

  const read = (buf: Buffer, off: number): Decoded<F> => {
    const out: Record<string, unknown> = {};
    for (const e of entries) {
      const v = e.type.read(buf, off + e.offset);
      if (v !== null) out[e.name] = v;
    }
    return out as Decoded<F>;
  };
  const write = (buf: Buffer, off: number, value: Decoded<F>): void => {
    const record = value as Record<string, unknown>;
    for (const e of entries) {
      const v = e.type.zero === null ? null : record[e.name];
      if (v === undefined) throw new TypeError(`struct ${cName}: field '${e.name}' is missing`);
      e.type.write(buf, off + e.offset, v);
    }
  };

  return {
    kind: `struct ${cName}`,
    cName,
    size,
    align,
    zero,
    fields: layout,
    read,
    write,
    encode(value) {
      const buf = Buffer.alloc(size);
      write(buf, 0, value);
      return buf;
    },
    decode(buf) {
      if (buf.length < size) {
        throw new RangeError(`struct ${cName} needs ${size} bytes, got ${buf.length}`);
      }
      return read(buf, 0);
    },
  };
}

/** A C enum mirrored in TypeScript: names without the common prefix. */
export interface EnumMirror<N extends string> {
  readonly cName: string;
  readonly prefix: string;
  readonly values: Readonly<Record<N, number>>;
}

export function cEnum<N extends string>(
  cName: string,
  prefix: string,
  values: Record<N, number>,
): EnumMirror<N> {
  return { cName, prefix, values };
}
