// Address arithmetic for the fake Service CIDRs: cluster IPs are handed out
// in order, the lowest free address first.
import ipaddr from 'ipaddr.js';

export type Family = 'IPv4' | 'IPv6';

export function familyOf(ip: string): Family | undefined {
  if (!ipaddr.isValid(ip)) return undefined;
  return ipaddr.parse(ip).kind() === 'ipv4' ? 'IPv4' : 'IPv6';
}

/** Strictly valid (no IPv4 with leading zeros, no zone) like netutils.ParseIPSloppy's callers expect. */
export function isIP(ip: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(ip) || (ipaddr.IPv6.isValid(ip) && !ip.includes('%'));
}

export function isCIDR(cidr: string): boolean {
  try {
    ipaddr.parseCIDR(cidr);
    return true;
  } catch {
    return false;
  }
}

function toBig(ip: string): bigint {
  return ipaddr
    .parse(ip)
    .toByteArray()
    .reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
}

function fromBig(n: bigint, family: Family): string {
  const len = family === 'IPv4' ? 4 : 16;
  const bytes: number[] = [];
  for (let i = 0; i < len; i++) {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

export function cidrFamily(cidr: string): Family {
  return ipaddr.parseCIDR(cidr)[0].kind() === 'ipv4' ? 'IPv4' : 'IPv6';
}

export function inCIDR(ip: string, cidr: string): boolean {
  const [net, bits] = ipaddr.parseCIDR(cidr);
  const addr = ipaddr.parse(ip);
  return addr.kind() === net.kind() && addr.match(net, bits);
}

/** The lowest address of the CIDR, past the network address, that is not in `used`. */
export function firstFree(cidr: string, used: Set<string>): string | undefined {
  const [net, bits] = ipaddr.parseCIDR(cidr);
  const family = net.kind() === 'ipv4' ? 'IPv4' : 'IPv6';
  const width = family === 'IPv4' ? 32 : 128;
  const base = toBig(net.toString()) & ~((1n << BigInt(width - bits)) - 1n);
  const size = 1n << BigInt(width - bits);
  const normalized = new Set([...used].filter(isIP).map((u) => toBig(u)));
  // Skip the network address and, for IPv4, the broadcast address.
  const last = family === 'IPv4' ? size - 2n : size - 1n;
  for (let i = 1n; i <= last; i++) {
    if (!normalized.has(base + i)) return fromBig(base + i, family);
  }
  return undefined;
}
