// The free space of one pool in one IP family. Addresses are bigints; the
// taken ones are kept as a sorted array of maximal runs, so finding the
// lowest free address, taking one or releasing one costs a binary search over
// the runs, however large the pool is (a /8 or an IPv6 /64 is no slower than
// a /28). Nothing here enumerates the pool.
import type { Family } from '../model/types.js';

/** Inclusive range of addresses. */
export interface AddressRange {
  first: bigint;
  last: bigint;
}

/**
 * Every allowed address in [start, end] is taken. Runs are maximal: between
 * two runs there is at least one allowed, free address of the pool or a gap
 * outside the pool. With avoidBuggyIPs a run therefore steps over the .255/.0
 * pairs it meets, which is what keeps "lowest free" one lookup away.
 */
interface Run {
  start: bigint;
  end: bigint;
}

const compareBig = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** How many x in [first, last] have x mod m === r. */
function countCongruent(first: bigint, last: bigint, r: bigint, m: bigint): bigint {
  return floorDiv(last - r, m) - floorDiv(first - 1n - r, m);
}

/** Sorts and merges overlapping or adjacent ranges. */
export function mergeRanges(ranges: readonly AddressRange[]): AddressRange[] {
  const sorted = [...ranges].sort((a, b) => compareBig(a.first, b.first));
  const out: AddressRange[] = [];
  for (const r of sorted) {
    const prev = out[out.length - 1];
    if (prev !== undefined && r.first <= prev.last + 1n) {
      if (r.last > prev.last) prev.last = r.last;
    } else out.push({ first: r.first, last: r.last });
  }
  return out;
}

export class AddressSpace {
  /** The pool's blocks, merged and sorted. */
  private readonly segments: AddressRange[];
  private readonly runs: Run[] = [];
  private taken = 0n;
  /** IPv4 .0 and .255 are never handed out (MetalLB's avoidBuggyIPs). */
  private readonly skipsBuggy: boolean;
  /** Addresses this space can hand out in all (blocks minus skipped ones). */
  readonly size: bigint;
  /**
   * Comparisons made by the searches so far. Work, not time: lets a test show
   * that the cost per allocation does not depend on the pool's size.
   */
  probes = 0;

  constructor(
    readonly family: Family,
    blocks: readonly AddressRange[],
    avoidBuggyIPs: boolean,
  ) {
    this.skipsBuggy = avoidBuggyIPs && family === 4;
    this.segments = mergeRanges(blocks);
    let size = 0n;
    for (const s of this.segments) {
      size += s.last - s.first + 1n;
      if (this.skipsBuggy)
        size -=
          countCongruent(s.first, s.last, 0n, 256n) + countCongruent(s.first, s.last, 255n, 256n);
    }
    this.size = size;
  }

  get used(): bigint {
    return this.taken;
  }

  get free(): bigint {
    return this.size - this.taken;
  }

  /** Whether `a` lies in one of the blocks (skipped addresses included). */
  inBlocks(a: bigint): boolean {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo <= hi) {
      this.probes++;
      const mid = (lo + hi) >> 1;
      const s = this.segments[mid]!;
      if (a < s.first) hi = mid - 1;
      else if (a > s.last) lo = mid + 1;
      else return true;
    }
    return false;
  }

  /** Whether `a` is one of the addresses this space hands out. */
  contains(a: bigint): boolean {
    return !this.isSkipped(a) && this.inBlocks(a);
  }

  /** Whether `a` is skipped by avoidBuggyIPs. */
  isSkipped(a: bigint): boolean {
    if (!this.skipsBuggy) return false;
    const low = a & 0xffn;
    return low === 0n || low === 255n;
  }

  isTaken(a: bigint): boolean {
    const i = this.runAtOrBefore(a);
    return i >= 0 && this.runs[i]!.end >= a;
  }

  /** The lowest address that is free, or undefined when the space is full. */
  lowestFree(): bigint | undefined {
    for (const s of this.segments) {
      let c = this.nextAllowed(s.first);
      if (c > s.last) continue;
      const i = this.runAtOrBefore(c);
      const run = i >= 0 ? this.runs[i]! : undefined;
      // Runs are maximal, so the first allowed address after a run is free.
      if (run !== undefined && run.end >= c) c = this.nextAllowed(run.end + 1n);
      if (c <= s.last) return c;
    }
    return undefined;
  }

  /** Marks `a` taken. False when it is not in the space or already taken. */
  take(a: bigint): boolean {
    if (!this.contains(a)) return false;
    const i = this.runAtOrBefore(a);
    const left = i >= 0 ? this.runs[i] : undefined;
    if (left !== undefined && left.end >= a) return false;
    const right = this.runs[i + 1];
    const joinsLeft = left !== undefined && this.nextAllowed(left.end + 1n) === a;
    const joinsRight = right !== undefined && this.nextAllowed(a + 1n) === right.start;
    if (joinsLeft && joinsRight) {
      left.end = right.end;
      this.runs.splice(i + 1, 1);
    } else if (joinsLeft) left.end = a;
    else if (joinsRight) right.start = a;
    else this.runs.splice(i + 1, 0, { start: a, end: a });
    this.taken++;
    return true;
  }

  /**
   * Takes many addresses at once: sorted and built in one pass, so restoring
   * thousands of scattered addresses at start does not shift the array per
   * address. Returns how many were newly taken.
   */
  takeAll(addresses: Iterable<bigint>): number {
    if (this.runs.length > 0) {
      let n = 0;
      for (const a of addresses) if (this.take(a)) n++;
      return n;
    }
    const sorted = [...new Set(addresses)].filter((a) => this.contains(a)).sort(compareBig);
    for (const a of sorted) {
      const last = this.runs[this.runs.length - 1];
      if (last !== undefined && this.nextAllowed(last.end + 1n) === a) last.end = a;
      else this.runs.push({ start: a, end: a });
    }
    this.taken += BigInt(sorted.length);
    return sorted.length;
  }

  /** Frees `a`. False when it was not taken. */
  release(a: bigint): boolean {
    const i = this.runAtOrBefore(a);
    const run = i >= 0 ? this.runs[i] : undefined;
    if (run === undefined || run.end < a) return false;
    const pieces: Run[] = [];
    const leftEnd = this.prevAllowed(a - 1n);
    const rightStart = this.nextAllowed(a + 1n);
    if (leftEnd >= run.start) pieces.push({ start: run.start, end: leftEnd });
    if (rightStart <= run.end) pieces.push({ start: rightStart, end: run.end });
    this.runs.splice(i, 1, ...pieces);
    this.taken--;
    return true;
  }

  /** The index of the last run starting at or before `a`; -1 if none. */
  private runAtOrBefore(a: bigint): number {
    let lo = 0;
    let hi = this.runs.length - 1;
    let found = -1;
    while (lo <= hi) {
      this.probes++;
      const mid = (lo + hi) >> 1;
      if (this.runs[mid]!.start <= a) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** `a`, or the first address after it that avoidBuggyIPs allows. */
  private nextAllowed(a: bigint): bigint {
    if (!this.skipsBuggy) return a;
    const low = a & 0xffn;
    return low === 0n ? a + 1n : low === 255n ? a + 2n : a;
  }

  /** `a`, or the last address before it that avoidBuggyIPs allows. */
  private prevAllowed(a: bigint): bigint {
    if (!this.skipsBuggy) return a;
    const low = a & 0xffn;
    return low === 255n ? a - 1n : low === 0n ? a - 2n : a;
  }
}
