// Turns a list of layer descriptions (outermost first) into wire bytes. Layers are encoded
// innermost first, so every header can see the finished bytes after it: lengths, next-header
// fields and checksums are derived rather than written by hand.

import { parseIPv4, parseIPv6 } from './addr.js';
import { toBuffer } from './bytes.js';
import type { PseudoAddresses } from './checksum.js';
import type { EncodeEnv } from './encode-env.js';
import { encodeIcmp, encodeIcmpv6, encodeQuote } from './encode-icmp.js';
import { encodeIPv4, encodeIPv6 } from './encode-ip.js';
import {
  encodeFrag6,
  encodeIPv6Ext,
  encodeOptionsHeader,
  encodeRouting,
} from './encode-ipv6ext.js';
import { encodeEth, encodeVlan } from './encode-link.js';
import { encodeTcp, encodeUdp } from './encode-transport.js';
import { sourceRouteFinalDst } from './ipv4-options.js';
import { encodeTlvOptions, homeAddressOf } from './ipv6-options.js';
import { defaultSegmentsLeft, routingData, routingFinalDst } from './ipv6-routing.js';
import {
  frag6,
  type Frag6Layer,
  type FragmentSlice,
  type IPv4Layer,
  type Layer,
} from './layers.js';

function encodeLayer(layer: Layer, env: EncodeEnv): Buffer {
  switch (layer.kind) {
    case 'eth':
      return encodeEth(layer, env);
    case 'vlan':
      return encodeVlan(layer, env);
    case 'ipv4':
      return encodeIPv4(layer, env);
    case 'ipv6':
      return encodeIPv6(layer, env);
    case 'hop-by-hop':
    case 'dest-opts':
      return encodeOptionsHeader(layer, env);
    case 'routing':
      return encodeRouting(layer, env);
    case 'frag6':
      return encodeFrag6(layer, env);
    case 'ipv6-ext':
      return encodeIPv6Ext(layer, env);
    case 'tcp':
      return encodeTcp(layer, env);
    case 'udp':
      return encodeUdp(layer, env);
    case 'icmp':
      return encodeIcmp(layer, env);
    case 'icmpv6':
      return encodeIcmpv6(layer, env);
    case 'quote':
      return encodeQuote(layer, env);
    case 'payload':
      return Buffer.concat([toBuffer(layer.data), env.rest]);
  }
}

/**
 * The addresses an upper-layer checksum uses after `layer`: those of the nearest IP header,
 * except that a source route or routing header substitutes the final destination and a
 * Mobile IPv6 home address option the source, as the receiver will see them.
 */
function pseudoAfter(
  current: PseudoAddresses | undefined,
  layer: Layer,
): PseudoAddresses | undefined {
  switch (layer.kind) {
    case 'ipv4': {
      const options = toBuffer(layer.options ?? []);
      return {
        src: parseIPv4(layer.src),
        dst: sourceRouteFinalDst(options) ?? parseIPv4(layer.dst),
      };
    }
    case 'ipv6':
      return { src: parseIPv6(layer.src), dst: parseIPv6(layer.dst) };
    case 'routing': {
      const segmentsLeft = layer.segmentsLeft ?? defaultSegmentsLeft(layer);
      const dst = routingFinalDst(layer.routingType, segmentsLeft, routingData(layer));
      return current && dst ? { ...current, dst } : current;
    }
    case 'dest-opts': {
      const src = homeAddressOf(encodeTlvOptions(layer.options ?? []));
      return current && src ? { ...current, src } : current;
    }
    default:
      return current;
  }
}

/** Element i is the bytes of layers i..end; the last element is empty. */
export function encodeSuffixes(layers: readonly Layer[]): Buffer[] {
  let pseudo: PseudoAddresses | undefined;
  const pseudoAt = layers.map((layer) => (pseudo = pseudoAfter(pseudo, layer)));
  const suffixes: Buffer[] = [Buffer.alloc(0)];
  layers.reduceRight<Buffer>((rest, layer, i) => {
    const env = { prev: layers[i - 1], next: layers[i + 1], rest, pseudo: pseudoAt[i] };
    const bytes = encodeWithContext(layer, i, { ...env, encodeStack: encodeSuffixes });
    suffixes.unshift(bytes);
    return bytes;
  }, Buffer.alloc(0));
  return suffixes;
}

function encodeWithContext(layer: Layer, index: number, env: EncodeEnv): Buffer {
  try {
    return encodeLayer(layer, env);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`layer ${index} (${layer.kind}): ${message}`, { cause: err });
  }
}

/** Wire bytes of the described packet, outermost layer first. */
export function packet(...layers: Layer[]): Buffer {
  return encodeSuffixes(layers)[0] ?? Buffer.alloc(0);
}

interface FragmentationPoint {
  readonly stack: readonly Layer[];
  readonly at: number;
  readonly point: IPv4Layer | Frag6Layer;
}

/**
 * Where the outermost IP packet gets cut: its IPv4 header, or its IPv6 fragment header. One
 * is inserted when missing, after the headers routers en route must see (RFC 8200 4.5).
 */
function fragmentationPoint(layers: readonly Layer[]): FragmentationPoint {
  const ip = layers.findIndex((l) => l.kind === 'ipv4' || l.kind === 'ipv6');
  const first = layers[ip];
  if (first === undefined) throw new Error('fragments: no ipv4/ipv6 layer to fragment');
  if (first.kind === 'ipv4') return { stack: layers, at: ip, point: first };
  let insertAt = ip + 1;
  for (let j = ip + 1; j < layers.length; j++) {
    const layer = layers[j];
    if (layer?.kind === 'frag6') return { stack: layers, at: j, point: layer };
    if (layer?.kind === 'hop-by-hop' || layer?.kind === 'routing') insertAt = j + 1;
    else if (layer?.kind !== 'dest-opts' && layer?.kind !== 'ipv6-ext') break;
  }
  const point = frag6();
  return { stack: layers.toSpliced(insertAt, 0, point), at: insertAt, point };
}

/**
 * Splits the packet into fragments of `size` payload bytes each (the last may be shorter).
 * Upper-layer checksums are computed over the whole original payload, as the sender would.
 */
export function fragments(size: number, ...layers: Layer[]): Buffer[] {
  if (!Number.isInteger(size) || size <= 0 || size % 8 !== 0) {
    throw new RangeError(`fragments: size must be a positive multiple of 8, got ${size}`);
  }
  const { stack, at, point } = fragmentationPoint(layers);
  const total = encodeSuffixes(stack)[at + 1]?.length ?? 0;
  const out: Buffer[] = [];
  for (let offset = 0; offset === 0 || offset < total; offset += size) {
    const slice: FragmentSlice = { offset, length: Math.min(size, total - offset) };
    out.push(packet(...stack.with(at, { ...point, slice })));
  }
  return out;
}
