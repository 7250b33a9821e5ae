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
