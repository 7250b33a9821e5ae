// Reading side of the dissector: a bounded cursor that records every field it reads, and
// signals running out of bytes with an exception so parsers can be written straight-line.

import { formatIP, formatMac } from './addr.js';
import { hex } from './bytes.js';

export type FieldValue = number | string | boolean;

export interface Field {
  /** Dotted name, prefixed for nested packets: 'ipv4.ttl', 'icmp.inner.ipv4.src'. */
  readonly path: string;
  readonly value: FieldValue;
  /** Byte range in the dissected buffer; bit fields share the bytes that hold them. */
  readonly offset: number;
  readonly length: number;
  /** Verdicts and explanations: checksum 'correct' / 'WRONG (expected 0x1234)', names. */
  readonly note?: string;
}

export class Truncated extends Error {
  constructor(
    readonly offset: number,
    readonly available: number,
    wanted: number,
    path: string,
  ) {
    super(`${path} needs ${wanted} bytes at offset ${offset}, ${available} left`);
  }
}

type Note = string | undefined | ((value: number) => string | undefined);

export class Cursor {
  constructor(
    readonly buf: Buffer,
    private readonly out: Field[],
    readonly prefix: string,
    public pos: number,
    readonly end: number,
    /** Packets nested inside this one so far; garbage can claim arbitrarily deep tunnels. */
    readonly depth = 0,
  ) {}

  get left(): number {
    return this.end - this.pos;
  }

  /** Claims `n` bytes for `name` and returns their offset, or throws Truncated. */
  take(n: number, name: string): number {
    if (n > this.left) throw new Truncated(this.pos, this.left, n, this.prefix + name);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  emit(name: string, value: FieldValue, offset: number, length: number, note?: string): void {
    const field = { path: this.prefix + name, value, offset, length };
    this.out.push(note === undefined ? field : { ...field, note });
  }

  uint(name: string, bytes: number, note?: Note): number {
    const at = this.take(bytes, name);
    const value = this.buf.readUIntBE(at, bytes);
    this.emit(name, value, at, bytes, typeof note === 'function' ? note(value) : note);
    return value;
  }

  u8(name: string, note?: Note): number {
    return this.uint(name, 1, note);
  }

  u16(name: string, note?: Note): number {
    return this.uint(name, 2, note);
  }

  u32(name: string, note?: Note): number {
    return this.uint(name, 4, note);
  }

  /** Claims `n` bytes without recording a field (the caller records finer ones). */
  bytes(n: number, name: string): Buffer {
    const at = this.take(n, name);
    return this.buf.subarray(at, at + n);
  }

  mac(name: string): void {
    const at = this.take(6, name);
    this.emit(name, formatMac(this.buf.subarray(at, at + 6)), at, 6);
  }

  address(name: string, size: 4 | 16): Buffer {
    const at = this.take(size, name);
    const bytes = this.buf.subarray(at, at + size);
    this.emit(name, formatIP(bytes), at, size);
    return bytes;
  }

  /** Records whatever is left (if anything) as one hex field. */
  rest(name: string, note?: string): void {
    if (this.left <= 0) return;
    const at = this.pos;
    this.pos = this.end;
    this.emit(name, hex(this.buf.subarray(at, this.end)), at, this.end - at, note);
  }

  /** Gives up on a malformed layer: says why and keeps the remaining bytes visible. */
  fail(message: string): void {
    this.emit('error', message, this.pos, 0);
    this.rest('unparsed');
  }

  /** A cursor over [pos, end) of the same buffer; a prefix marks a nested packet. */
  sub(end: number, prefix = ''): Cursor {
    const depth = prefix === '' ? this.depth : this.depth + 1;
    const bounded = Math.max(this.pos, Math.min(end, this.end));
    return new Cursor(this.buf, this.out, this.prefix + prefix, this.pos, bounded, depth);
  }

  /** Runs a parser, turning running out of bytes into a 'truncated' field. */
  guard(parse: () => void): void {
    try {
      parse();
    } catch (err) {
      if (!(err instanceof Truncated)) throw err;
      this.emit('truncated', err.message, err.offset, err.available);
    }
  }
}
