// The one order every allocation decision follows: oldest first, then by key.
// Kubernetes sets creationTimestamp on every object; objects from a YAML
// directory have none and sort before all others, by key alone.
import { asRecord, compareStrings } from '../model/guards.js';

/** Milliseconds since the epoch; -Infinity when absent or unreadable. */
export function creationTime(metadata: unknown): number {
  const raw = asRecord(metadata)?.['creationTimestamp'];
  const ms =
    raw instanceof Date ? raw.getTime() : typeof raw === 'string' ? Date.parse(raw) : Number.NaN;
  return Number.isNaN(ms) ? -Infinity : ms;
}

export interface Aged {
  created: number;
  key: string;
}

export function byAge(a: Aged, b: Aged): number {
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  return compareStrings(a.key, b.key);
}
