// Maglev table sizes must be prime (every skip then visits every slot).
export const MIN_TABLE_SIZE = 251;
export const MAX_TABLE_SIZE = 131071;
export const DEFAULT_TABLE_SIZE = 16381;

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

export class TableSizeError extends Error {
  constructor(m: number) {
    super(
      `Maglev table size ${m} must be a prime between ${MIN_TABLE_SIZE} and ${MAX_TABLE_SIZE} (for example 251, 1021, 4093, 16381, 65537, 131071)`,
    );
    this.name = 'TableSizeError';
  }
}

export function checkTableSize(m: number): void {
  if (m < MIN_TABLE_SIZE || m > MAX_TABLE_SIZE || !isPrime(m)) throw new TableSizeError(m);
}
