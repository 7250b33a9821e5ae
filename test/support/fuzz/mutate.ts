// Turns base packets into the fuzz stream: copies mutated with plain Buffer
// operations (byte flips, cuts at layer boundaries and anywhere, length and
// protocol fields set to odd values, cuts with the IP lengths fixed up so the
// parser goes deeper), and pure or IP-shaped random bytes. Cheap enough to
// make a million frames in a few seconds.
import type { Base, FieldRef } from './corpus.js';
import type { Rng } from './rng.js';
import { NODE4, NODE6, VIPS } from './world.js';
import { parseIPv4, parseIPv6 } from '../packet/addr.js';

/** The smallest frame bpf_prog_test_run accepts for XDP (ETH_HLEN). */
export const MIN_FRAME = 14;
export const MAX_FRAME = 1600;

const INTERESTING_PROTOCOLS = [
  0, 1, 4, 6, 17, 41, 43, 44, 47, 50, 51, 58, 59, 60, 132, 135, 139, 140, 253, 254, 255,
];
const INTERESTING_ETHERTYPES = [0x0800, 0x86dd, 0x8100, 0x88a8, 0x9100, 0x0806, 0x0000, 0xffff];

const ADDR4 = [...VIPS.v4, NODE4].map(parseIPv4);
const ADDR6 = [...VIPS.v6, NODE6].map(parseIPv6);

export type MutationName =
  'flip' | 'cut-boundary' | 'cut-random' | 'cut-fix' | 'length' | 'protocol' | 'frag' | 'extend';

const MUTATIONS: readonly (readonly [number, MutationName])[] = [
  [26, 'flip'],
  [14, 'cut-boundary'],
  [7, 'cut-random'],
  [14, 'cut-fix'],
  [22, 'length'],
  [8, 'protocol'],
  [4, 'frag'],
  [5, 'extend'],
];

export class Mutator {
  /** Seeded noise that random frames and trailers are copied from. */
  private readonly noise: Buffer;

  constructor(private readonly r: Rng) {
    this.noise = r.bytes(1 << 20);
  }

  private noiseAt(n: number): Buffer {
    const at = this.r.below(this.noise.length - n);
    return this.noise.subarray(at, at + n);
  }

  /** A mutated copy of `base`; `applied` collects what was done (for reports). */
  mutate(base: Base, applied: string[]): Buffer {
    const r = this.r;
    const src = base.bytes;
    const b = Buffer.allocUnsafe(src.length + 64);
    src.copy(b);
    let len = src.length;
    const n = r.weighted([
      [60, 1],
      [30, 2],
      [10, 3],
    ]);
    for (let i = 0; i < n; i++) {
      const m = r.weighted(MUTATIONS);
      applied.push(m);
      switch (m) {
        case 'flip': {
          const k = r.int(1, 4);
          for (let j = 0; j < k; j++) {
            const at = r.chance(0.7) ? r.below(Math.min(len, 96)) : r.below(len);
            b[at] = r.chance(0.5) ? b[at]! ^ (1 << r.below(8)) : r.below(256);
          }
          break;
        }
        case 'cut-boundary':
          len = this.cutAtBoundary(base, len);
          break;
        case 'cut-random':
          len = r.int(MIN_FRAME, len);
          break;
        case 'cut-fix':
          len = r.chance(0.7) ? this.cutAtBoundary(base, len) : r.int(MIN_FRAME, len);
          fixLengths(b, base, len);
          break;
        case 'length': {
          const f = pickBelow(r, base.lengths, len, (x) => x.off);
          if (f) setLength(r, b, f, len);
          break;
        }
        case 'protocol': {
          if (r.chance(0.7)) {
            const at = pickBelow(r, base.protocols, len, (x) => x);
            if (at !== undefined)
              b[at] = r.chance(0.8) ? r.pick(INTERESTING_PROTOCOLS) : r.below(256);
          } else {
            const at = pickBelow(r, base.ethertypes, len - 1, (x) => x);
            if (at !== undefined) {
              b.writeUInt16BE(
                r.chance(0.8) ? r.pick(INTERESTING_ETHERTYPES) : r.below(0x10000),
                at,
              );
            }
          }
          break;
        }
        case 'frag': {
          const at = pickBelow(r, base.fragWords, len - 1, (x) => x);
          if (at !== undefined) b.writeUInt16BE(r.below(0x10000), at);
          break;
        }
        case 'extend': {
          const extra = Math.min(r.int(1, 64), b.length - len);
          this.noiseAt(extra).copy(b, len);
          len += extra;
          break;
        }
      }
    }
    return b.subarray(0, len);
  }

  private cutAtBoundary(base: Base, len: number): number {
    const r = this.r;
    const at = r.pick(base.boundaries) + r.pick([-2, -1, 0, 0, 0, 1, 2]);
    return Math.max(MIN_FRAME, Math.min(len, at));
  }

  /** Random bytes: pure, with an IP ethertype, or with a plausible IP header to a VIP or this node. */
  random(applied: string[]): Buffer {
    const r = this.r;
    const len = r.int(MIN_FRAME, MAX_FRAME);
    const b = Buffer.from(this.noiseAt(len));
    const shape = r.weighted([
      [35, 'noise'],
      [25, 'ethertype'],
      [40, 'ip-header'],
    ] as const);
    applied.push(`random ${shape}`);
    if (shape === 'noise') return b;
    const v6 = r.chance(0.5);
    let l3 = 14;
    if (r.chance(0.15) && len >= 18) {
      b.writeUInt16BE(0x8100, 12);
      l3 = 18;
    }
    b.writeUInt16BE(v6 ? 0x86dd : 0x0800, l3 - 2);
    if (shape === 'ethertype') return b;
    if (!v6 && len >= l3 + 20) {
      const ihl = r.chance(0.8) ? 5 : r.int(0, 15);
      b[l3] = 0x40 | ihl;
      b.writeUInt16BE(r.chance(0.8) ? len - l3 : r.below(0x10000), l3 + 2);
      b.writeUInt16BE(r.chance(0.7) ? 0x4000 : r.below(0x10000), l3 + 6);
      b[l3 + 8] = r.chance(0.9) ? 64 : r.below(3);
      b[l3 + 9] = r.pick(INTERESTING_PROTOCOLS);
      r.pick(ADDR4).copy(b, l3 + 16);
    } else if (v6 && len >= l3 + 40) {
      b[l3] = 0x60 | (b[l3]! & 0x0f);
      b.writeUInt16BE(r.chance(0.8) ? len - l3 - 40 : r.below(0x10000), l3 + 4);
      b[l3 + 6] = r.pick(INTERESTING_PROTOCOLS);
      b[l3 + 7] = r.chance(0.9) ? 64 : r.below(3);
      r.pick(ADDR6).copy(b, l3 + 24);
    }
    return b;
  }
}

/** A random element whose offset (per `off`) is below `limit`, or undefined. */
function pickBelow<T>(
  r: Rng,
  items: readonly T[],
  limit: number,
  off: (x: T) => number,
): T | undefined {
  for (let tries = 0; tries < 4 && items.length > 0; tries++) {
    const x = r.pick(items);
    if (off(x) < limit) return x;
  }
  return undefined;
}

function setLength(r: Rng, b: Buffer, f: FieldRef, len: number): void {
  const old = f.width === 'u16' && f.off + 2 <= len ? b.readUInt16BE(f.off) : b[f.off]!;
  const how = r.weighted([
    [35, 'near'],
    [30, 'random'],
    [15, 'zero'],
    [10, 'max'],
    [10, 'small'],
  ] as const);
  const pick = (max: number, cur: number): number => {
    switch (how) {
      case 'near':
        return Math.max(0, Math.min(max, cur + r.pick([-9, -8, -4, -2, -1, 1, 2, 4, 8, 9])));
      case 'random':
        return r.below(max + 1);
      case 'zero':
        return 0;
      case 'max':
        return max;
      case 'small':
        return r.below(Math.min(max, 64) + 1);
    }
  };
  switch (f.width) {
    case 'u16':
      if (f.off + 2 <= len) b.writeUInt16BE(pick(0xffff, old), f.off);
      break;
    case 'u8':
      b[f.off] = pick(0xff, old);
      break;
    case 'lo4':
      b[f.off] = (old & 0xf0) | pick(15, old & 0x0f);
      break;
    case 'hi4':
      b[f.off] = (old & 0x0f) | (pick(15, old >> 4) << 4);
      break;
  }
}

/** After a cut at `len`: every IP header of the packet itself claims exactly what is left. */
function fixLengths(b: Buffer, base: Base, len: number): void {
  for (const h of base.ipHeaders) {
    if (h.version === 4 && h.start + 4 <= len) {
      b.writeUInt16BE(len - h.start, h.start + 2);
    } else if (h.version === 6 && h.start + 40 <= len) {
      b.writeUInt16BE(len - h.start - 40, h.start + 4);
    }
  }
}

/**
 * The base packet cut at every layer boundary (and one byte either side):
 * as cut, and with its IP lengths fixed up to the cut.
 */
export function* boundaryCuts(base: Base): Generator<{ frame: Buffer; how: string }> {
  const seen = new Set<number>();
  for (const b of base.boundaries) {
    for (const at of [b - 1, b, b + 1]) {
      if (at < MIN_FRAME || at >= base.bytes.length || seen.has(at)) continue;
      seen.add(at);
      yield { frame: base.bytes.subarray(0, at), how: `cut at ${at}` };
      if (base.ipHeaders.some((h) => h.start < at)) {
        const fixed = Buffer.from(base.bytes.subarray(0, at));
        fixLengths(fixed, base, at);
        yield { frame: fixed, how: `cut at ${at}, IP lengths fixed` };
      }
    }
  }
}
