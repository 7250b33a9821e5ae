// IP prefixes as BGP carries them in NLRI and withdrawn-routes fields
// (RFC 4271 section 4.3, RFC 4760 section 5): one length byte, then only the
// bytes that length needs. In xlb a prefix is text, '192.0.2.10/32' or
// '2001:db8::10/128', always in the canonical form prefixText() produces.
import ipaddr from 'ipaddr.js';

export type Family = 'ipv4' | 'ipv6';

export interface ParsedPrefix {
  family: Family;
  /** 4 or 16 bytes, host bits zero. */
  bytes: Buffer;
  length: number;
}

export class PrefixError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrefixError';
  }
}

export function addressBytes(family: Family): 4 | 16 {
  return family === 'ipv4' ? 4 : 16;
}

function maskHostBits(bytes: Buffer, length: number): Buffer {
  const out = Buffer.from(bytes);
  for (let bit = length; bit < out.length * 8; bit++) {
    out[bit >> 3]! &= ~(0x80 >> (bit & 7));
  }
  return out;
}

/** Canonical text of an address given as bytes (RFC 5952 for IPv6, IPv4-mapped as ::ffff:a.b.c.d). */
export function addressText(bytes: Uint8Array): string {
  const addr = ipaddr.fromByteArray([...bytes]);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
    return `::ffff:${(addr as ipaddr.IPv6).toIPv4Address().toString()}`;
  }
  return addr.toString();
}

export function prefixText(p: ParsedPrefix): string {
  return `${addressText(p.bytes)}/${p.length}`;
}

/**
 * Parses '192.0.2.0/24', '2001:db8::/32' or a bare address (a host route).
 * Throws PrefixError naming the problem, including host bits set beyond the
 * length, which usually means a typo.
 */
export function parsePrefix(text: string): ParsedPrefix {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  let length: number;
  try {
    if (text.includes('/')) {
      [addr, length] = ipaddr.parseCIDR(text);
    } else {
      addr = ipaddr.parse(text);
      length = addr.kind() === 'ipv4' ? 32 : 128;
    }
  } catch {
    throw new PrefixError(`'${text}' is not an IP prefix (like 192.0.2.10/32 or 2001:db8::/64)`);
  }
  const family: Family = addr.kind() === 'ipv4' ? 'ipv4' : 'ipv6';
  const raw = Buffer.from(addr.toByteArray());
  const bytes = maskHostBits(raw, length);
  if (!bytes.equals(raw)) {
    throw new PrefixError(
      `'${text}' has bits set beyond its length; the prefix is ${prefixText({ family, bytes, length })}`,
    );
  }
  return { family, bytes, length };
}

/** The canonical text of a prefix; throws PrefixError if it is not one. */
export function canonicalPrefix(text: string): string {
  return prefixText(parsePrefix(text));
}

export function prefixFamily(text: string): Family {
  return parsePrefix(text).family;
}

/** Bytes one prefix takes on the wire. */
export function encodedPrefixLength(p: ParsedPrefix): number {
  return 1 + Math.ceil(p.length / 8);
}

export function writePrefix(p: ParsedPrefix, out: Buffer, offset: number): number {
  const n = Math.ceil(p.length / 8);
  out[offset] = p.length;
  p.bytes.copy(out, offset + 1, 0, n);
  return offset + 1 + n;
}

export function encodePrefixes(prefixes: readonly ParsedPrefix[]): Buffer {
  const out = Buffer.alloc(prefixes.reduce((n, p) => n + encodedPrefixLength(p), 0));
  let off = 0;
  for (const p of prefixes) off = writePrefix(p, out, off);
  return out;
}

/**
 * Decodes a run of prefixes filling bytes exactly. Bits beyond a prefix's
 * length are ignored (RFC 4271 calls them irrelevant) and come back zero.
 * Returns the reason as a string when the run is malformed.
 */
export function decodePrefixes(bytes: Buffer, family: Family): string[] | { error: string } {
  const max = addressBytes(family) * 8;
  const out: string[] = [];
  let off = 0;
  while (off < bytes.length) {
    const length = bytes[off]!;
    if (length > max) {
      return { error: `prefix length ${length} exceeds ${max} for ${family}` };
    }
    const n = Math.ceil(length / 8);
    if (off + 1 + n > bytes.length) {
      return { error: `a /${length} prefix at byte ${off} runs past the end of its field` };
    }
    const addr = Buffer.alloc(addressBytes(family));
    bytes.copy(addr, 0, off + 1, off + 1 + n);
    out.push(prefixText({ family, bytes: maskHostBits(addr, length), length }));
    off += 1 + n;
  }
  return out;
}
