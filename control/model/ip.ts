// Strict address and CIDR parsing for values read from Kubernetes objects.
// ipaddr.parse alone also accepts "10.1", "0xa.0.0.1" and "010.0.0.1" (octal):
// forms the API server rejects and that humans misread, so they are invalid here.
import ipaddr from 'ipaddr.js';

import type { Family } from './types.js';

export interface ParsedIp {
  family: Family;
  /** Canonical text: dotted quad, or RFC 5952 for IPv6. */
  address: string;
}

/** A dotted quad as ipaddr writes it (no leading zeros, octets up to 255): its own canonical text. */
const CANONICAL_IPV4 =
  /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseIp(text: unknown): ParsedIp | undefined {
  if (typeof text !== 'string') return undefined;
  // Most addresses in a cluster: no need to parse and print them again.
  if (CANONICAL_IPV4.test(text)) return { family: 4, address: text };
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) {
    return { family: 4, address: ipaddr.IPv4.parse(text).toString() };
  }
  if (!ipaddr.IPv6.isValid(text)) return undefined;
  const a = ipaddr.IPv6.parse(text);
  // A zone only means something on one host's link; an IPv4-mapped address
  // never arrives as IPv6 on the wire. Neither can be a VIP or a pod address.
  if (a.zoneId !== undefined || a.isIPv4MappedAddress()) return undefined;
  return { family: 6, address: a.toString() };
}

export interface ParsedCidr {
  family: Family;
  /** Canonical `network/prefix`, host bits cleared. */
  cidr: string;
}

export function parseCidr(text: unknown): ParsedCidr | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const prefixText = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  const addressText = text.slice(0, slash);
  if (ipaddr.IPv4.isValidFourPartDecimal(addressText)) {
    if (prefix > 32) return undefined;
    const network = ipaddr.IPv4.networkAddressFromCIDR(`${addressText}/${prefix}`);
    return { family: 4, cidr: `${network.toString()}/${prefix}` };
  }
  if (!ipaddr.IPv6.isValid(addressText) || prefix > 128) return undefined;
  if (ipaddr.IPv6.parse(addressText).zoneId !== undefined) return undefined;
  const network = ipaddr.IPv6.networkAddressFromCIDR(`${addressText}/${prefix}`);
  return { family: 6, cidr: `${network.toString()}/${prefix}` };
}

export const familyTag = (family: Family): 'v4' | 'v6' => (family === 4 ? 'v4' : 'v6');
