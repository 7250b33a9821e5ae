// OPEN (RFC 4271 section 4.2) with its optional parameters, including the
// extended optional parameters length of RFC 9072, and the checks of section
// 6.2 that need no session context. validateOpen() adds the ones that do
// (expected peer AS, our own identifier).
import { addressText } from './prefix.js';
import { decodeCapabilities, encodeCapability, type Capability } from './capabilities.js';
import { ErrorCode, OpenSubcode, fail, ok, type Decoded } from './errors.js';

export const BGP_VERSION = 4;
/** RFC 6793: the 2-octet stand-in for an ASN above 65535. */
export const AS_TRANS = 23456;
export const OptionalParameterType = { Capabilities: 2 } as const;

export type OptionalParameter =
  | { kind: 'capabilities'; capabilities: Capability[] }
  | { kind: 'unknown'; type: number; value: Buffer };

export interface OpenMessage {
  type: 'open';
  version: number;
  /** The 2-octet My Autonomous System field (AS_TRANS when the real ASN is larger). */
  myAs: number;
  /** Seconds; 0 or at least 3. */
  holdTime: number;
  /** Dotted quad. */
  bgpId: string;
  parameters: OptionalParameter[];
  /** Encode the parameters in the RFC 9072 extended format (decoded: the peer did). */
  extendedParameters?: boolean;
}

/** Every capability of every capabilities parameter, in order. */
export function capabilitiesOf(open: OpenMessage): Capability[] {
  return open.parameters.flatMap((p) => (p.kind === 'capabilities' ? p.capabilities : []));
}

/** The speaker's real ASN: the 4-octet AS capability if present, else My Autonomous System. */
export function asnOf(open: OpenMessage): number {
  const cap = capabilitiesOf(open).find((c) => c.kind === 'fourOctetAs');
  return cap?.kind === 'fourOctetAs' ? cap.asn : open.myAs;
}

export interface OpenSettings {
  asn: number;
  holdTime: number;
  bgpId: string;
  capabilities: Capability[];
}

/** The OPEN xlb sends: every capability in one parameter, 4-octet AS always offered. */
export function buildOpen(s: OpenSettings): OpenMessage {
  const caps = s.capabilities.some((c) => c.kind === 'fourOctetAs')
    ? s.capabilities
    : [...s.capabilities, { kind: 'fourOctetAs' as const, asn: s.asn }];
  return {
    type: 'open',
    version: BGP_VERSION,
    myAs: s.asn > 0xffff ? AS_TRANS : s.asn,
    holdTime: s.holdTime,
    bgpId: s.bgpId,
    parameters: [{ kind: 'capabilities', capabilities: caps }],
  };
}

function ipv4Bytes(text: string): Buffer {
  const parts = text.split('.');
  const bytes = parts.map(Number);
  if (parts.length !== 4 || bytes.some((b, i) => !/^\d{1,3}$/.test(parts[i]!) || b > 255)) {
    throw new RangeError(`'${text}' is not a dotted-quad BGP identifier`);
  }
  return Buffer.from(bytes);
}

export function encodeOpenBody(m: OpenMessage): Buffer {
  const params = m.parameters.map((p) => {
    if (p.kind === 'capabilities') {
      return {
        type: OptionalParameterType.Capabilities,
        value: Buffer.concat(p.capabilities.map(encodeCapability)),
      };
    }
    return { type: p.type, value: p.value };
  });
  const extended = m.extendedParameters === true || params.some((p) => p.value.length > 255);
  const encoded = params.map((p) => {
    const head = extended ? Buffer.alloc(3) : Buffer.alloc(2);
    head[0] = p.type;
    if (extended) head.writeUInt16BE(p.value.length, 1);
    else head[1] = p.value.length;
    return Buffer.concat([head, p.value]);
  });
  const body = Buffer.concat(encoded);
  let lengthField: Buffer;
  if (extended) {
    lengthField = Buffer.from([255, 255, 0, 0]);
    lengthField.writeUInt16BE(body.length, 2);
  } else {
    if (body.length > 255) throw new RangeError('optional parameters exceed 255 bytes');
    lengthField = Buffer.from([body.length]);
  }
  const fixed = Buffer.alloc(9);
  fixed[0] = m.version;
  fixed.writeUInt16BE(m.myAs, 1);
  fixed.writeUInt16BE(m.holdTime, 3);
  ipv4Bytes(m.bgpId).copy(fixed, 5);
  return Buffer.concat([fixed, lengthField, body]);
}

function openError(subcode: number, reason: string, data?: Buffer): Decoded<never> {
  return fail(ErrorCode.Open, subcode, reason, data);
}

/** Decodes an OPEN body (the bytes after the header). */
export function decodeOpenBody(body: Buffer): Decoded<OpenMessage> {
  if (body.length < 10) {
    return openError(OpenSubcode.Unspecific, `OPEN body of ${body.length} bytes is too short`);
  }
  const version = body[0]!;
  if (version !== BGP_VERSION) {
    const data = Buffer.alloc(2);
    data.writeUInt16BE(BGP_VERSION);
    return openError(
      OpenSubcode.UnsupportedVersionNumber,
      `peer speaks BGP version ${version}, xlb only ${BGP_VERSION}`,
      data,
    );
  }
  const myAs = body.readUInt16BE(1);
  const holdTime = body.readUInt16BE(3);
  const bgpId = addressText(body.subarray(5, 9));
  const declared = body[9]!;
  let extended = false;
  let paramsStart = 10;
  let paramsLength = declared;
  // RFC 9072: a length of 255 followed by type 255 announces a 2-byte length
  // and 2-byte parameter lengths.
  if (declared === 255 && body.length >= 11 && body[10] === 255) {
    if (body.length < 13) {
      return openError(OpenSubcode.Unspecific, 'extended optional parameters length cut short');
    }
    extended = true;
    paramsLength = body.readUInt16BE(11);
    paramsStart = 13;
  }
  if (paramsStart + paramsLength !== body.length) {
    return openError(
      OpenSubcode.Unspecific,
      `optional parameters length ${paramsLength} does not match the ${body.length - paramsStart} bytes left`,
    );
  }
  const parameters: OptionalParameter[] = [];
  const headLen = extended ? 3 : 2;
  let off = paramsStart;
  while (off < body.length) {
    if (off + headLen > body.length) {
      return openError(
        OpenSubcode.Unspecific,
        `optional parameter header cut short at byte ${off}`,
      );
    }
    const type = body[off]!;
    const len = extended ? body.readUInt16BE(off + 1) : body[off + 1]!;
    const start = off + headLen;
    if (start + len > body.length) {
      return openError(
        OpenSubcode.Unspecific,
        `optional parameter ${type} of ${len} bytes runs past the message`,
      );
    }
    const value = body.subarray(start, start + len);
    off = start + len;
    if (type === OptionalParameterType.Capabilities) {
      const caps = decodeCapabilities(value);
      if (!Array.isArray(caps)) return openError(OpenSubcode.Unspecific, caps.error);
      parameters.push({ kind: 'capabilities', capabilities: caps });
    } else {
      parameters.push({ kind: 'unknown', type, value: Buffer.from(value) });
    }
  }
  const open: OpenMessage = { type: 'open', version, myAs, holdTime, bgpId, parameters };
  if (extended) open.extendedParameters = true;
  if (holdTime === 1 || holdTime === 2) {
    const data = Buffer.alloc(2);
    data.writeUInt16BE(holdTime);
    return openError(
      OpenSubcode.UnacceptableHoldTime,
      `hold time ${holdTime} s is neither 0 nor at least 3`,
      data,
    );
  }
  if (bgpId === '0.0.0.0') {
    return openError(OpenSubcode.BadBgpIdentifier, 'BGP identifier 0.0.0.0', body.subarray(5, 9));
  }
  if (asnOf(open) === 0) {
    return openError(OpenSubcode.BadPeerAs, 'peer AS 0 is reserved (RFC 7607)');
  }
  return ok(open);
}

export interface OpenExpectations {
  /** The ASN configured for this peer; undefined accepts any. */
  peerAs?: number;
  localBgpId: string;
  localAs: number;
  /** Hold times below this (other than 0) are refused; RFC 4271 requires at least 3. */
  minHoldTime?: number;
}

/**
 * The OPEN checks that depend on this session (RFC 4271 section 6.2,
 * RFC 6286, RFC 6793): peer AS, identifier collisions, hold time floor,
 * optional parameters xlb does not know.
 */
export function validateOpen(open: OpenMessage, e: OpenExpectations): Decoded<OpenMessage> {
  const unknown = open.parameters.find((p) => p.kind === 'unknown');
  if (unknown?.kind === 'unknown') {
    return openError(
      OpenSubcode.UnsupportedOptionalParameter,
      `optional parameter type ${unknown.type} is not supported`,
    );
  }
  const peerAs = asnOf(open);
  if (e.peerAs !== undefined && peerAs !== e.peerAs) {
    const data = Buffer.alloc(2);
    data.writeUInt16BE(open.myAs);
    return openError(OpenSubcode.BadPeerAs, `peer says AS ${peerAs}, configured ${e.peerAs}`, data);
  }
  if (open.bgpId === e.localBgpId && peerAs === e.localAs) {
    return openError(
      OpenSubcode.BadBgpIdentifier,
      `internal peer uses our own BGP identifier ${open.bgpId}`,
      ipv4Bytes(open.bgpId),
    );
  }
  const floor = Math.max(3, e.minHoldTime ?? 3);
  if (open.holdTime !== 0 && open.holdTime < floor) {
    const data = Buffer.alloc(2);
    data.writeUInt16BE(open.holdTime);
    return openError(
      OpenSubcode.UnacceptableHoldTime,
      `hold time ${open.holdTime} s is below the minimum of ${floor} s`,
      data,
    );
  }
  return ok(open);
}
