import { checkUint, toBuffer } from './bytes.js';
import { carriedPart, protocolAfter, type EncodeEnv } from './encode-env.js';
import { encodeTlvOptions } from './ipv6-options.js';
import { defaultSegmentsLeft, routingData } from './ipv6-routing.js';
import type {
  DestOptsLayer,
  Frag6Layer,
  HopByHopLayer,
  IPv6ExtLayer,
  Layer,
  RoutingLayer,
} from './layers.js';
import { IPPROTO } from './numbers.js';

interface ExtFields {
  readonly kind: Layer['kind'];
  readonly nextHeader?: number;
  readonly hdrExtLen?: number;
}

/**
 * The generic layout: next header, length, body. The length counts 8-octet units beyond the
 * first, except for AH which counts 4-octet units beyond the second (RFC 4302).
 */
function extHeader(layer: ExtFields, env: EncodeEnv, type: number, body: Buffer): Buffer {
  const total = 2 + body.length;
  const unit = type === IPPROTO.AH ? 4 : 8;
  if (layer.hdrExtLen === undefined && total % unit !== 0) {
    throw new RangeError(`${layer.kind}: header is ${total} bytes, not a multiple of ${unit}`);
  }
  const length = layer.hdrExtLen ?? total / unit - (unit === 4 ? 2 : 1);
  const nextHeader = layer.nextHeader ?? protocolAfter(env.next, layer.kind);
  const head = Buffer.from([
    checkUint('next header', nextHeader, 8),
    checkUint('hdr ext len', length, 8),
  ]);
  return Buffer.concat([head, body, env.rest]);
}

export function encodeOptionsHeader(layer: HopByHopLayer | DestOptsLayer, env: EncodeEnv): Buffer {
  const type = layer.kind === 'hop-by-hop' ? IPPROTO.HOPOPTS : IPPROTO.DSTOPTS;
  return extHeader(layer, env, type, encodeTlvOptions(layer.options ?? []));
}

export function encodeRouting(layer: RoutingLayer, env: EncodeEnv): Buffer {
  const segmentsLeft = layer.segmentsLeft ?? defaultSegmentsLeft(layer);
  const fixed = Buffer.from([
    checkUint('routing type', layer.routingType, 8),
    checkUint('segments left', segmentsLeft, 8),
  ]);
  return extHeader(layer, env, IPPROTO.ROUTING, Buffer.concat([fixed, routingData(layer)]));
}

export function encodeIPv6Ext(layer: IPv6ExtLayer, env: EncodeEnv): Buffer {
  return extHeader(layer, env, checkUint('extension type', layer.type, 8), toBuffer(layer.body));
}

/** Fragment header (RFC 8200 section 4.5): fixed 8 bytes, so it has no length to compute. */
export function encodeFrag6(layer: Frag6Layer, env: EncodeEnv): Buffer {
  const carried = carriedPart('frag6', env.rest, layer.slice, {
    offset: layer.offset,
    more: layer.more ?? false,
  });
  const header = Buffer.alloc(8);
  header.writeUInt8(
    checkUint('frag6 next header', layer.nextHeader ?? protocolAfter(env.next, 'frag6'), 8),
    0,
  );
  header.writeUInt16BE(carried.offset | (carried.more ? 1 : 0), 2);
  header.writeUInt32BE(checkUint('frag6 id', layer.id ?? 0, 32), 4);
  return Buffer.concat([header, carried.data]);
}
