// Addresses as the datapath stores them: 16 bytes, IPv4 in the first four.
import ipaddr from 'ipaddr.js';

export type Family = 4 | 6;

export interface DatapathAddress {
  family: Family;
  bytes: Buffer;
}

export class AddressError extends Error {
  constructor(text: string, why: string) {
    super(`'${text}' ${why}`);
    this.name = 'AddressError';
  }
}

export function toDatapathAddress(text: string): DatapathAddress {
  if (!ipaddr.isValid(text)) throw new AddressError(text, 'is not an IP address');
  const a = ipaddr.parse(text);
  const bytes = Buffer.alloc(16);
  Buffer.from(a.toByteArray()).copy(bytes);
  return { family: a.kind() === 'ipv4' ? 4 : 6, bytes };
}

export function fromDatapathAddress(bytes: Buffer, family: Family): string {
  return ipaddr.fromByteArray([...bytes.subarray(0, family === 4 ? 4 : 16)]).toString();
}

/** A CIDR as (address, prefix length), validated. */
export function parseCidr(text: string): { address: DatapathAddress; prefix: number } {
  if (!ipaddr.isValidCIDR(text)) throw new AddressError(text, 'is not a CIDR (address/prefix)');
  const [addr, prefix] = ipaddr.parseCIDR(text);
  return { address: toDatapathAddress(addr.toString()), prefix };
}

/** The address with every bit after `prefix` cleared, as text. */
export function networkAddress(bytes: Buffer, family: Family, prefix: number): string {
  const out = Buffer.from(bytes.subarray(0, family === 4 ? 4 : 16));
  for (let bit = prefix; bit < out.length * 8; bit++) out[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return fromDatapathAddress(out, family);
}

/** One spelling per address ('2001:DB8::0:1' and '2001:db8::1' are one address). */
export function canonicalAddress(text: string): string {
  const a = toDatapathAddress(text);
  return fromDatapathAddress(a.bytes, a.family);
}

/** One spelling per prefix, host bits cleared, with its family ('10.1.2.3/8' -> '10.0.0.0/8'). */
export function canonicalCidr(text: string): { cidr: string; family: Family } {
  const { address, prefix } = parseCidr(text);
  return {
    cidr: `${networkAddress(address.bytes, address.family, prefix)}/${prefix}`,
    family: address.family,
  };
}
