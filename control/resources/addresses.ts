// Strict parsing of the addresses users write in manifests. ipaddr.js on its
// own also accepts inet_aton forms ("10.1", "0x0a.0.0.1") and IPv6 zone ids,
// which nobody means in a Kubernetes object and the apiserver rejects.
import ipaddr from 'ipaddr.js';

export type IPFamily = 4 | 6;
export type IPAddress = ipaddr.IPv4 | ipaddr.IPv6;

export function parseIP(text: string): IPAddress | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text);
  if (text.includes(':') && ipaddr.IPv6.isValid(text)) {
    const a = ipaddr.IPv6.parse(text);
    if (a.zoneId === undefined) return a;
  }
  return undefined;
}

export function familyOf(a: IPAddress): IPFamily {
  return a.kind() === 'ipv4' ? 4 : 6;
}

export function addressToBigInt(a: IPAddress): bigint {
  let n = 0n;
  for (const byte of a.toByteArray()) n = (n << 8n) | BigInt(byte);
  return n;
}

export interface ParsedCIDR {
  address: IPAddress;
  prefix: number;
  family: IPFamily;
}

/** Either the parsed CIDR or a sentence saying what is wrong with it. */
export function parseCIDR(text: string): ParsedCIDR | string {
  const slash = text.indexOf('/');
  if (slash < 0) return `'${text}' is not a CIDR (address/prefix length)`;
  const address = parseIP(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (address === undefined) return `'${text}' does not start with a valid IP address`;
  const family = familyOf(address);
  const max = family === 4 ? 32 : 128;
  const prefix = /^(0|[1-9]\d{0,2})$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix <= max))
    return `'${text}' has prefix length '${prefixText}': IPv${family} allows 0 to ${max}`;
  return { address, prefix, family };
}

/** The CIDR's network address as text, for "did you mean" messages. */
export function networkOf(cidr: ParsedCIDR): IPAddress {
  const bits = cidr.family === 4 ? 32 : 128;
  const mask = ((1n << BigInt(cidr.prefix)) - 1n) << BigInt(bits - cidr.prefix);
  return fromBigInt(addressToBigInt(cidr.address) & mask, cidr.family);
}

export function fromBigInt(n: bigint, family: IPFamily): IPAddress {
  const length = family === 4 ? 4 : 16;
  const bytes = new Array<number>(length);
  for (let i = length - 1; i >= 0; i--) {
    bytes[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return ipaddr.fromByteArray(bytes);
}
