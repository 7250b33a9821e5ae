// Communities as operators write them ('65000:100', 'no-export',
// '65000:1:2') and the link-bandwidth extended community that carries a
// node's weight for weighted ECMP (draft-ietf-idr-link-bandwidth: type 0x40,
// subtype 0x04, the AS in two bytes, then bytes per second as an IEEE float).
import type { ExtendedCommunity, LargeCommunity } from './codec/attributes.js';

export class CommunityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommunityError';
  }
}

/** RFC 1997, RFC 3765, RFC 7999, RFC 8326. */
export const WellKnownCommunity = {
  'graceful-shutdown': 0xffff0000,
  blackhole: 0xffff029a,
  'no-export': 0xffffff01,
  'no-advertise': 0xffffff02,
  'no-export-subconfed': 0xffffff03,
  'no-peer': 0xffffff04,
} as const;

function uint(text: string, max: number, what: string, whole: string): number {
  if (!/^\d+$/.test(text) || Number(text) > max) {
    throw new CommunityError(`'${whole}': ${what} '${text}' is not a number in 0..${max}`);
  }
  return Number(text);
}

/** '65000:100' or a well-known name -> the 32-bit community. */
export function parseCommunity(text: string): number {
  const known = (WellKnownCommunity as Record<string, number>)[text.toLowerCase()];
  if (known !== undefined) return known;
  const parts = text.split(':');
  if (parts.length !== 2) {
    throw new CommunityError(`'${text}' is not a community (like 65000:100 or no-export)`);
  }
  return uint(parts[0]!, 0xffff, 'AS', text) * 0x10000 + uint(parts[1]!, 0xffff, 'value', text);
}

export function formatCommunity(c: number): string {
  const name = Object.entries(WellKnownCommunity).find(([, v]) => v === c)?.[0];
  return name ?? `${Math.floor(c / 0x10000)}:${c & 0xffff}`;
}

/** '65000:1:2' -> the large community (RFC 8092). */
export function parseLargeCommunity(text: string): LargeCommunity {
  const parts = text.split(':');
  if (parts.length !== 3) {
    throw new CommunityError(`'${text}' is not a large community (like 4200000000:1:2)`);
  }
  const max = 0xffffffff;
  return {
    global: uint(parts[0]!, max, 'global administrator', text),
    local1: uint(parts[1]!, max, 'local data 1', text),
    local2: uint(parts[2]!, max, 'local data 2', text),
  };
}

export function formatLargeCommunity(c: LargeCommunity): string {
  return `${c.global}:${c.local1}:${c.local2}`;
}

const LINK_BANDWIDTH_TYPE = 0x40; // two-octet AS specific, non-transitive
const LINK_BANDWIDTH_SUBTYPE = 0x04;

/**
 * The link-bandwidth extended community. An ASN above 65535 is carried as
 * AS_TRANS (23456), as the draft allows; routers only use the bandwidth.
 */
export function linkBandwidth(asn: number, bytesPerSecond: number): ExtendedCommunity {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond < 0) {
    throw new CommunityError(`link bandwidth ${bytesPerSecond} is not a non-negative number`);
  }
  const value = Buffer.alloc(6);
  value.writeUInt16BE(asn > 0xffff ? 23456 : asn, 0);
  value.writeFloatBE(bytesPerSecond, 2);
  return { type: LINK_BANDWIDTH_TYPE, subtype: LINK_BANDWIDTH_SUBTYPE, value };
}

/** The AS and bandwidth of a link-bandwidth community (transitive or not), else undefined. */
export function decodeLinkBandwidth(
  c: ExtendedCommunity,
): { asn: number; bytesPerSecond: number } | undefined {
  if ((c.type & ~0x40) !== 0 || c.subtype !== LINK_BANDWIDTH_SUBTYPE || c.value.length !== 6) {
    return undefined;
  }
  return { asn: c.value.readUInt16BE(0), bytesPerSecond: c.value.readFloatBE(2) };
}
