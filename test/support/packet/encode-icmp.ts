import { checkUint, toBuffer } from './bytes.js';
import { icmpChecksum, icmpv6Checksum } from './checksum.js';
import { finalChecksum, requirePseudo, type EncodeEnv } from './encode-env.js';
import type { IcmpLayer, Icmpv6Layer, Layer, QuoteLayer } from './layers.js';

function restOfHeader(layer: IcmpLayer | Icmpv6Layer): Buffer {
  const rest = layer.rest ?? 0;
  if (typeof rest === 'number') {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(checkUint(`${layer.kind} rest`, rest, 32));
    return b;
  }
  const b = toBuffer(rest);
  if (b.length !== 4) throw new RangeError(`${layer.kind} rest must be 4 bytes, got ${b.length}`);
  return b;
}

function icmpMessage(layer: IcmpLayer | Icmpv6Layer, env: EncodeEnv): Buffer {
  const head = Buffer.from([
    checkUint(`${layer.kind} type`, layer.type, 8),
    checkUint(`${layer.kind} code`, layer.code ?? 0, 8),
    0,
    0,
  ]);
  return Buffer.concat([head, restOfHeader(layer), env.rest]);
}

export function encodeIcmp(layer: IcmpLayer, env: EncodeEnv): Buffer {
  const message = icmpMessage(layer, env);
  message.writeUInt16BE(
    finalChecksum(layer, 'icmp', () => icmpChecksum(message)),
    2,
  );
  return message;
}

export function encodeIcmpv6(layer: Icmpv6Layer, env: EncodeEnv): Buffer {
  const message = icmpMessage(layer, env);
  const compute = (): number => icmpv6Checksum(requirePseudo(env, 'icmpv6'), message);
  message.writeUInt16BE(finalChecksum(layer, 'icmpv6', compute), 2);
  return message;
}

const IP_FAMILY: ReadonlySet<Layer['kind']> = new Set([
  'ipv4',
  'ipv6',
  'hop-by-hop',
  'dest-opts',
  'routing',
  'frag6',
  'ipv6-ext',
]);

/** RFC 4443: as much of the packet as fits in the IPv6 minimum MTU with IPv6 + ICMPv6 headers. */
const ICMPV6_QUOTE_MAX = 1280 - 40 - 8;

/** RFC 792: the IP header (with extensions) plus the first 64 bits of what follows it. */
function headerPlus8(layers: readonly Layer[], suffixes: readonly Buffer[]): number {
  const whole = suffixes[0] ?? Buffer.alloc(0);
  const firstAfterIp = layers.findIndex((l) => !IP_FAMILY.has(l.kind));
  if (firstAfterIp < 0) return whole.length;
  const tail = suffixes[firstAfterIp] ?? Buffer.alloc(0);
  return whole.length - tail.length + 8;
}

export function encodeQuote(layer: QuoteLayer, env: EncodeEnv): Buffer {
  const suffixes = env.encodeStack(layer.layers);
  const whole = suffixes[0] ?? Buffer.alloc(0);
  const keep =
    layer.length ??
    (env.prev?.kind === 'icmpv6' ? ICMPV6_QUOTE_MAX : headerPlus8(layer.layers, suffixes));
  return Buffer.concat([whole.subarray(0, keep), env.rest]);
}
