import ipaddr from 'ipaddr.js';

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function parseMac(text: string): Buffer {
  if (!MAC_RE.test(text)) throw new Error(`not a MAC address (aa:bb:cc:dd:ee:ff): '${text}'`);
  return Buffer.from(text.replaceAll(':', ''), 'hex');
}

export function formatMac(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}

export function parseIPv4(text: string): Buffer {
  // Only dotted quads: ipaddr.js also accepts '0x7f.1' and friends, which in a test is
  // far more likely a mistake than intent.
  if (!ipaddr.IPv4.isValidFourPartDecimal(text)) throw new Error(`not an IPv4 address: '${text}'`);
  return Buffer.from(ipaddr.IPv4.parse(text).toByteArray());
}

export function parseIPv6(text: string): Buffer {
  if (!ipaddr.IPv6.isValid(text)) throw new Error(`not an IPv6 address: '${text}'`);
  return Buffer.from(ipaddr.IPv6.parse(text).toByteArray());
}

/** Canonical text of a 4- or 16-byte address (RFC 5952 for IPv6). */
export function formatIP(bytes: Uint8Array): string {
  return ipaddr.fromByteArray(Array.from(bytes)).toString();
}
