// The BFD Control packet of RFC 5880 section 4.1, and the reception checks
// of section 6.8.6 that need nothing but the packet itself. Decoding never
// throws: a packet that must be discarded comes back with the rule it broke,
// so the session can count and log it.
//
// Authentication (section 4.2) is not supported: xlb never enables it, so by
// 6.8.6 a packet with the A bit set is discarded.

/** Section 4.1: the State field. */
export enum BfdState {
  AdminDown = 0,
  Down = 1,
  Init = 2,
  Up = 3,
}

/** Section 4.1: the Diagnostic codes. */
export enum Diag {
  None = 0,
  ControlDetectionTimeExpired = 1,
  EchoFunctionFailed = 2,
  NeighborSignaledSessionDown = 3,
  ForwardingPlaneReset = 4,
  PathDown = 5,
  ConcatenatedPathDown = 6,
  AdministrativelyDown = 7,
  ReverseConcatenatedPathDown = 8,
}

export const BFD_VERSION = 1;
/** Length of a Control packet without the Authentication Section. */
export const CONTROL_PACKET_LENGTH = 24;
const MIN_LENGTH_WITH_AUTH = 26;

export interface ControlPacket {
  version: number;
  diag: number;
  state: BfdState;
  poll: boolean;
  final: boolean;
  controlPlaneIndependent: boolean;
  authentication: boolean;
  demand: boolean;
  multipoint: boolean;
  detectMult: number;
  myDiscriminator: number;
  yourDiscriminator: number;
  /** Microseconds, as on the wire. */
  desiredMinTxInterval: number;
  requiredMinRxInterval: number;
  requiredMinEchoRxInterval: number;
}

/** The rule of RFC 5880 section 6.8.6 a discarded packet broke. */
export type DiscardReason =
  | 'truncated'
  | 'badVersion'
  | 'badLength'
  | 'lengthExceedsPayload'
  | 'zeroDetectMult'
  | 'multipoint'
  | 'zeroMyDiscriminator'
  | 'zeroYourDiscriminatorNotDown'
  | 'authenticationNotInUse';

export type DecodeResult =
  { ok: true; packet: ControlPacket } | { ok: false; reason: DiscardReason; detail: string };

const discard = (reason: DiscardReason, detail: string): DecodeResult => ({
  ok: false,
  reason,
  detail,
});

export function decodeControl(bytes: Uint8Array): DecodeResult {
  if (bytes.length < CONTROL_PACKET_LENGTH)
    return discard('truncated', `${bytes.length} bytes, a Control packet has at least 24`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = bytes[0]! >> 5;
  if (version !== BFD_VERSION) return discard('badVersion', `version ${version}, expected 1`);
  const flags = bytes[1]!;
  const authentication = (flags & 0x04) !== 0;
  const length = bytes[3]!;
  const minLength = authentication ? MIN_LENGTH_WITH_AUTH : CONTROL_PACKET_LENGTH;
  if (length < minLength)
    return discard('badLength', `Length field ${length} is below the minimum ${minLength}`);
  if (length > bytes.length)
    return discard(
      'lengthExceedsPayload',
      `Length field ${length} exceeds the ${bytes.length}-byte datagram`,
    );
  const packet: ControlPacket = {
    version,
    diag: bytes[0]! & 0x1f,
    // Two bits: always one of the four states.
    state: flags >> 6,
    poll: (flags & 0x20) !== 0,
    final: (flags & 0x10) !== 0,
    controlPlaneIndependent: (flags & 0x08) !== 0,
    authentication,
    demand: (flags & 0x02) !== 0,
    multipoint: (flags & 0x01) !== 0,
    detectMult: bytes[2]!,
    myDiscriminator: view.getUint32(4),
    yourDiscriminator: view.getUint32(8),
    desiredMinTxInterval: view.getUint32(12),
    requiredMinRxInterval: view.getUint32(16),
    requiredMinEchoRxInterval: view.getUint32(20),
  };
  if (packet.detectMult === 0) return discard('zeroDetectMult', 'Detect Mult is zero');
  if (packet.multipoint) return discard('multipoint', 'the Multipoint (M) bit is set');
  if (packet.myDiscriminator === 0)
    return discard('zeroMyDiscriminator', 'My Discriminator is zero');
  if (
    packet.yourDiscriminator === 0 &&
    packet.state !== BfdState.Down &&
    packet.state !== BfdState.AdminDown
  )
    return discard(
      'zeroYourDiscriminatorNotDown',
      `Your Discriminator is zero in state ${BfdState[packet.state]}`,
    );
  if (authentication)
    return discard('authenticationNotInUse', 'the A bit is set but authentication is not in use');
  return { ok: true, packet };
}

/** Encodes without an Authentication Section (A is always clear). */
export function encodeControl(p: Omit<ControlPacket, 'version' | 'authentication'>): Buffer {
  const out = Buffer.alloc(CONTROL_PACKET_LENGTH);
  out[0] = (BFD_VERSION << 5) | (p.diag & 0x1f);
  out[1] =
    ((p.state & 0x3) << 6) |
    (p.poll ? 0x20 : 0) |
    (p.final ? 0x10 : 0) |
    (p.controlPlaneIndependent ? 0x08 : 0) |
    (p.demand ? 0x02 : 0) |
    (p.multipoint ? 0x01 : 0);
  out[2] = p.detectMult & 0xff;
  out[3] = CONTROL_PACKET_LENGTH;
  out.writeUInt32BE(p.myDiscriminator >>> 0, 4);
  out.writeUInt32BE(p.yourDiscriminator >>> 0, 8);
  out.writeUInt32BE(p.desiredMinTxInterval >>> 0, 12);
  out.writeUInt32BE(p.requiredMinRxInterval >>> 0, 16);
  out.writeUInt32BE(p.requiredMinEchoRxInterval >>> 0, 20);
  return out;
}
