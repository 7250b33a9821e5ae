// TLV options of the IPv6 hop-by-hop and destination options headers (RFC 8200 section 4.2).

import { alignmentPadding, checkUint, toBuffer } from './bytes.js';
import type { IPv6Option } from './layers.js';

const PAD1 = 0;
const PADN = 1;
const HOME_ADDRESS = 0xc9;

export const IPV6_OPTION_NAMES: ReadonlyMap<number, string> = new Map([
  [PAD1, 'pad1'],
  [PADN, 'padn'],
  [0x04, 'tunnel-encap-limit'],
  [0x05, 'router-alert'],
  [0x06, 'quick-start'],
  [0xc2, 'jumbo'],
  [HOME_ADDRESS, 'home-address'],
]);

function padding(length: number): Buffer {
  if (length === 0) return Buffer.alloc(0);
  if (length === 1) return Buffer.from([PAD1]);
  return Buffer.concat([Buffer.from([PADN, length - 2]), Buffer.alloc(length - 2)]);
}

function encodeOption(option: IPv6Option): Buffer {
  checkUint('IPv6 option type', option.type, 8);
  if (option.type === PAD1) return Buffer.from([PAD1]);
  const data = toBuffer(option.data ?? []);
  checkUint('IPv6 option data length', data.length, 8);
  return Buffer.concat([Buffer.from([option.type, data.length]), data]);
}

/**
 * The options area of a hop-by-hop/destination header: each option preceded by the padding
 * its alignment needs, the whole padded so the header (which starts `start` bytes before the
 * area) is a multiple of 8 octets.
 */
export function encodeTlvOptions(options: readonly IPv6Option[], start = 2): Buffer {
  const parts: Buffer[] = [];
  let pos = start;
  for (const option of options) {
    const [x, y] = option.align ?? [1, 0];
    const pad = padding(alignmentPadding(pos, x, y));
    const encoded = encodeOption(option);
    parts.push(pad, encoded);
    pos += pad.length + encoded.length;
  }
  parts.push(padding(alignmentPadding(pos, 8, 0)));
  return Buffer.concat(parts);
}

export interface TlvOption {
  readonly type: number;
  /** Offset of the type byte within the options area. */
  readonly offset: number;
  readonly length: number;
  readonly data: Buffer;
  readonly malformed?: true;
}

export function parseTlvOptions(area: Buffer): TlvOption[] {
  const out: TlvOption[] = [];
  let pos = 0;
  while (pos < area.length) {
    const type = area[pos] ?? PAD1;
    if (type === PAD1) {
      out.push({ type, offset: pos, length: 1, data: area.subarray(pos, pos) });
      pos += 1;
      continue;
    }
    const dataLength = area[pos + 1];
    if (dataLength === undefined || pos + 2 + dataLength > area.length) {
      const rest = area.subarray(pos);
      out.push({ type, offset: pos, length: rest.length, data: rest, malformed: true });
      break;
    }
    const data = area.subarray(pos + 2, pos + 2 + dataLength);
    out.push({ type, offset: pos, length: 2 + dataLength, data });
    pos += 2 + dataLength;
  }
  return out;
}

/**
 * The home address a destination options header carries, if any: with Mobile IPv6 it stands
 * in for the source address in upper-layer checksums (RFC 6275 section 6.3).
 */
export function homeAddressOf(area: Buffer): Buffer | undefined {
  const hao = parseTlvOptions(area).find(
    (o) => o.type === HOME_ADDRESS && !o.malformed && o.data.length === 16,
  );
  return hao?.data;
}
