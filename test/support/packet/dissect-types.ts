import type { PseudoAddresses } from './checksum.js';
import type { Cursor } from './cursor.js';
import { hex16 } from './bytes.js';

/** What an upper layer needs to know about the IP header that carried it. */
export interface IpInfo {
  /** As the checksum sees them: final destination of a route, home address as source. */
  readonly addrs: PseudoAddresses;
  readonly fragment: 'none' | 'first' | 'later';
  /** The header announced more payload than the buffer holds (captures, ICMP quotes). */
  readonly truncated: boolean;
}

/**
 * The dispatch points layers call for what follows them. Passed in rather than imported so
 * that the tunnel and ICMP-quote recursion does not turn into an import cycle.
 */
export interface Dissectors {
  readonly ipv4: (c: Cursor) => void;
  readonly ipv6: (c: Cursor) => void;
  /** By the version nibble. */
  readonly ip: (c: Cursor) => void;
  readonly upper: (c: Cursor, protocol: number, ip: IpInfo) => void;
}

export function fragmentState(offset: number, more: boolean): IpInfo['fragment'] {
  if (offset > 0) return 'later';
  return more ? 'first' : 'none';
}

/** Why an upper-layer checksum cannot be checked, if it cannot: it covers bytes not here. */
export function unverifiable(ip: IpInfo): string | undefined {
  if (ip.fragment !== 'none') return 'unverifiable (fragment)';
  if (ip.truncated) return 'unverifiable (truncated)';
  return undefined;
}

export function checksumNote(stored: number, expected: number): string {
  if (stored === expected) return 'correct';
  // The two ones-complement zeros verify alike, though a sender normally writes `expected`.
  if ((stored ^ expected) === 0xffff && (stored === 0 || expected === 0)) {
    return `correct (other zero form of ${hex16(expected)})`;
  }
  return `WRONG (expected ${hex16(expected)})`;
}

export function namedNote(
  names: ReadonlyMap<number, string>,
): (value: number) => string | undefined {
  return (value) => names.get(value);
}
