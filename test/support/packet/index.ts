export * from './layers.js';
export { packet, fragments } from './build.js';
export { dissect, formatFields, formatValue, type DissectOptions } from './dissect.js';
export type { Field, FieldValue } from './cursor.js';
export { diffPackets } from './diff.js';
export { hexdump } from './hexdump.js';
export {
  checksumVerifies,
  corruptChecksum,
  icmpChecksum,
  icmpv6Checksum,
  internetChecksum,
  ipv4HeaderChecksum,
  ipv4PseudoHeader,
  ipv6PseudoHeader,
  onesComplementSum,
  pseudoHeader,
  tcpChecksum,
  udpChecksum,
  type PseudoAddresses,
} from './checksum.js';
export type { BytesLike } from './bytes.js';
export type { IPv4Flag, TcpFlag } from './numbers.js';
