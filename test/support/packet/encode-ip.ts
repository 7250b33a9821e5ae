import { parseIPv4, parseIPv6 } from './addr.js';
import { checkUint, toBuffer } from './bytes.js';
import { ipv4HeaderChecksum } from './checksum.js';
import { carriedPart, finalChecksum, protocolAfter, type EncodeEnv } from './encode-env.js';
import { copiedIPv4Options, padIPv4Options } from './ipv4-options.js';
import type { IPv4Layer, IPv6Layer } from './layers.js';
import { IPV4_FLAG_BITS } from './numbers.js';

function ipv4Options(layer: IPv4Layer, fragmentOffset: number): Buffer {
  const raw = toBuffer(layer.options ?? []);
  const options = padIPv4Options(fragmentOffset > 0 ? copiedIPv4Options(raw) : raw);
  if (options.length > 40) throw new RangeError(`ipv4: ${options.length} bytes of options, max 40`);
  return options;
}

function ipv4FlagBits(layer: IPv4Layer, more: boolean): number {
  const bits = (layer.flags ?? []).reduce((acc, flag) => acc | IPV4_FLAG_BITS[flag], 0);
  return more ? bits | IPV4_FLAG_BITS.MF : bits & ~IPV4_FLAG_BITS.MF;
}

export function encodeIPv4(layer: IPv4Layer, env: EncodeEnv): Buffer {
  const carried = carriedPart('ipv4', env.rest, layer.slice, {
    offset: layer.fragOffset,
    more: layer.flags?.includes('MF') ?? false,
  });
  const options = ipv4Options(layer, carried.offset);
  const header = Buffer.alloc(20 + options.length);
  const ihl = checkUint('ipv4 ihl', layer.ihl ?? header.length / 4, 4);
  header.writeUInt8(0x40 | ihl, 0);
  header.writeUInt8(checkUint('ipv4 tos', layer.tos ?? 0, 8), 1);
  const total = layer.totalLength ?? header.length + carried.data.length;
  header.writeUInt16BE(checkUint('ipv4 total length', total, 16), 2);
  header.writeUInt16BE(checkUint('ipv4 id', layer.id ?? 0, 16), 4);
  header.writeUInt16BE(ipv4FlagBits(layer, carried.more) | (carried.offset / 8), 6);
  header.writeUInt8(checkUint('ipv4 ttl', layer.ttl ?? 64, 8), 8);
  header.writeUInt8(
    checkUint('ipv4 protocol', layer.protocol ?? protocolAfter(env.next, 'ipv4'), 8),
    9,
  );
  header.set(parseIPv4(layer.src), 12);
  header.set(parseIPv4(layer.dst), 16);
  options.copy(header, 20);
  header.writeUInt16BE(
    finalChecksum(layer, 'ipv4', () => ipv4HeaderChecksum(header)),
    10,
  );
  return Buffer.concat([header, carried.data]);
}

export function encodeIPv6(layer: IPv6Layer, env: EncodeEnv): Buffer {
  const header = Buffer.alloc(40);
  const trafficClass = checkUint('ipv6 traffic class', layer.trafficClass ?? 0, 8);
  const flowLabel = checkUint('ipv6 flow label', layer.flowLabel ?? 0, 20);
  header.writeUInt32BE(((6 << 28) | (trafficClass << 20) | flowLabel) >>> 0, 0);
  const length = layer.payloadLength ?? env.rest.length;
  header.writeUInt16BE(checkUint('ipv6 payload length', length, 16), 4);
  header.writeUInt8(
    checkUint('ipv6 next header', layer.nextHeader ?? protocolAfter(env.next, 'ipv6'), 8),
    6,
  );
  header.writeUInt8(checkUint('ipv6 hop limit', layer.hopLimit ?? 64, 8), 7);
  header.set(parseIPv6(layer.src), 8);
  header.set(parseIPv6(layer.dst), 24);
  return Buffer.concat([header, env.rest]);
}
