import { checkUint } from './bytes.js';
import { tcpChecksum, udpChecksum } from './checksum.js';
import { finalChecksum, requirePseudo, type EncodeEnv } from './encode-env.js';
import type { TcpLayer, UdpLayer } from './layers.js';
import { TCP_FLAG_BITS } from './numbers.js';
import { encodeTcpOptions } from './tcp-options.js';

function tcpFlagBits(layer: TcpLayer): number {
  return (layer.flags ?? []).reduce((acc, flag) => acc | TCP_FLAG_BITS[flag], 0);
}

export function encodeTcp(layer: TcpLayer, env: EncodeEnv): Buffer {
  const options = encodeTcpOptions(layer.options ?? [], layer.pad ?? 'eol');
  if (options.length > 40) throw new RangeError(`tcp: ${options.length} bytes of options, max 40`);
  const header = Buffer.alloc(20 + options.length);
  header.writeUInt16BE(checkUint('tcp sport', layer.sport, 16), 0);
  header.writeUInt16BE(checkUint('tcp dport', layer.dport, 16), 2);
  header.writeUInt32BE(checkUint('tcp seq', layer.seq ?? 0, 32), 4);
  header.writeUInt32BE(checkUint('tcp ack', layer.ack ?? 0, 32), 8);
  const dataOffset = checkUint('tcp data offset', layer.dataOffset ?? header.length / 4, 4);
  header.writeUInt8((dataOffset << 4) | checkUint('tcp reserved', layer.reserved ?? 0, 4), 12);
  header.writeUInt8(tcpFlagBits(layer), 13);
  header.writeUInt16BE(checkUint('tcp window', layer.window ?? 65535, 16), 14);
  header.writeUInt16BE(checkUint('tcp urgent', layer.urgent ?? 0, 16), 18);
  options.copy(header, 20);
  const segment = Buffer.concat([header, env.rest]);
  segment.writeUInt16BE(
    finalChecksum(layer, 'tcp', () => tcpChecksum(requirePseudo(env, 'tcp'), segment)),
    16,
  );
  return segment;
}

export function encodeUdp(layer: UdpLayer, env: EncodeEnv): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16BE(checkUint('udp sport', layer.sport, 16), 0);
  header.writeUInt16BE(checkUint('udp dport', layer.dport, 16), 2);
  header.writeUInt16BE(checkUint('udp length', layer.length ?? 8 + env.rest.length, 16), 4);
  const datagram = Buffer.concat([header, env.rest]);
  datagram.writeUInt16BE(
    finalChecksum(layer, 'udp', () => udpChecksum(requirePseudo(env, 'udp'), datagram)),
    6,
  );
  return datagram;
}
