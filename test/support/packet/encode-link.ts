import { parseMac } from './addr.js';
import { checkUint } from './bytes.js';
import { ethertypeAfter, type EncodeEnv } from './encode-env.js';
import type { EthLayer, VlanLayer } from './layers.js';

export function encodeEth(layer: EthLayer, env: EncodeEnv): Buffer {
  const header = Buffer.alloc(14);
  header.set(parseMac(layer.dst), 0);
  header.set(parseMac(layer.src), 6);
  header.writeUInt16BE(checkUint('eth type', layer.type ?? ethertypeAfter(env.next), 16), 12);
  return Buffer.concat([header, env.rest]);
}

/** The 4 bytes after the TPID (which the previous layer wrote as its ethertype). */
export function encodeVlan(layer: VlanLayer, env: EncodeEnv): Buffer {
  const pcp = checkUint('vlan pcp', layer.pcp ?? 0, 3);
  const vid = checkUint('vlan vid', layer.vid, 12);
  const tci = (pcp << 13) | ((layer.dei ? 1 : 0) << 12) | vid;
  const header = Buffer.alloc(4);
  header.writeUInt16BE(tci, 0);
  header.writeUInt16BE(checkUint('vlan type', layer.type ?? ethertypeAfter(env.next), 16), 2);
  return Buffer.concat([header, env.rest]);
}
