// Maglev consistent hashing (Eisenbud et al., NSDI 2016): fills a lookup table
// of prime size M so that each backend owns about M/N slots, and a change in
// the backend set moves few slots. Pure: same backends in, same table out, on
// every node, whatever order they are given in.
import { murmur3 } from './hash.js';
import { checkTableSize } from './primes.js';

export interface MaglevBackend {
  /** Stable identity, the same on every node (e.g. "10.0.1.7:8080"). */
  name: string;
  /** Relative weight, a positive integer; default 1. */
  weight?: number;
}

export class MaglevError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MaglevError';
  }
}

const OFFSET_SEED = 0x4d61676c; // "Magl"
const SKIP_SEED = 0x65763136; // "ev16"
const utf8 = new TextEncoder();

/** offset and skip from two independently seeded hashes of the name. */
function permutationOf(name: string, m: number): { offset: number; skip: number } {
  const bytes = utf8.encode(name);
  return {
    offset: murmur3(bytes, OFFSET_SEED) % m,
    skip: (murmur3(bytes, SKIP_SEED) % (m - 1)) + 1,
  };
}

/**
 * The table: entry[slot] = index into the returned `order` (the backends
 * sorted by name). Backends take turns claiming their next preferred free
 * slot; with weights, a backend's turns come in proportion to its weight
 * (it banks weight/maxWeight per round and claims a slot per whole unit).
 */
export function buildTable(
  backends: readonly MaglevBackend[],
  m: number,
): { order: MaglevBackend[]; table: Uint32Array } {
  checkTableSize(m);
  if (backends.length === 0) throw new MaglevError('a Maglev table needs at least one backend');
  const order = [...backends].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let i = 1; i < order.length; i++) {
    if (order[i]!.name === order[i - 1]!.name)
      throw new MaglevError(`backend '${order[i]!.name}' is listed twice`);
  }
  const n = order.length;
  if (n > m) throw new MaglevError(`${n} backends do not fit a table of ${m} slots`);
  const weights = order.map((b) => b.weight ?? 1);
  for (const [i, w] of weights.entries()) {
    if (!Number.isInteger(w) || w < 1)
      throw new MaglevError(
        `backend '${order[i]!.name}' has weight ${w}: weights are positive integers`,
      );
  }
  const maxWeight = Math.max(...weights);
  // pos[i] is backend i's next preferred slot, (offset + j * skip) mod M
  // walked one step at a time; skip < M, so one subtraction keeps it in range.
  const pos = new Uint32Array(n);
  const skip = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const p = permutationOf(order[i]!.name, m);
    pos[i] = p.offset;
    skip[i] = p.skip;
  }
  const credit = new Float64Array(n);
  const table = new Uint32Array(m).fill(0xffffffff);
  const weighted = weights.some((w) => w !== maxWeight);
  let filled = 0;
  while (filled < m) {
    for (let i = 0; i < n && filled < m; i++) {
      let turns = 1;
      if (weighted) {
        credit[i]! += weights[i]! / maxWeight;
        turns = Math.floor(credit[i]!);
        credit[i]! -= turns;
      }
      for (; turns > 0 && filled < m; turns--) {
        let c = pos[i]!;
        const s = skip[i]!;
        while (table[c] !== 0xffffffff) {
          c += s;
          if (c >= m) c -= m;
        }
        table[c] = i;
        c += s;
        pos[i] = c >= m ? c - m : c;
        filled++;
      }
    }
  }
  return { order, table };
}
