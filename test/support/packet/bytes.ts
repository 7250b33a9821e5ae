/** Raw bytes as tests like to write them: a Buffer, a Uint8Array or a plain list of octets. */
export type BytesLike = Uint8Array | readonly number[];

export function toBuffer(data: BytesLike): Buffer {
  if (data instanceof Uint8Array) return Buffer.from(data);
  data.forEach((b, i) => checkUint(`byte[${i}]`, b, 8));
  return Buffer.from(data);
}

/**
 * Throws unless `value` is an unsigned integer that fits in `bits`. The builder writes
 * whatever it is told, including nonsense, but a value that does not fit its field is
 * always a typo in a test, and silent truncation would hide it.
 */
export function checkUint(name: string, value: number, bits: number): number {
  const max = 2 ** bits - 1;
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer in [0, ${max}], got ${value}`);
  }
  return value;
}

export function hex(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex');
}

export function hex16(value: number): string {
  return `0x${value.toString(16).padStart(4, '0')}`;
}

/** Smallest d >= 0 such that (pos + d) is congruent to `y` modulo `x` (RFC 8200 "xn+y"). */
export function alignmentPadding(pos: number, x: number, y: number): number {
  return (((y - pos) % x) + x) % x;
}
