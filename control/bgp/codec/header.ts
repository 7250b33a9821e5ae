// The 19-byte header every BGP message starts with (RFC 4271 section 4.1):
// 16 bytes of marker (all ones), the total length, the type.
import { ErrorCode, HeaderSubcode, fail, ok, type Decoded } from './errors.js';

export const MARKER_LENGTH = 16;
export const HEADER_LENGTH = 19;
/** Without the extended message capability (RFC 8654), which xlb does not offer. */
export const MAX_MESSAGE_LENGTH = 4096;

export const MessageType = {
  Open: 1,
  Update: 2,
  Notification: 3,
  Keepalive: 4,
  RouteRefresh: 5,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Smallest valid length per type (RFC 4271 section 4, RFC 2918). */
const MIN_LENGTH: Record<MessageType, number> = {
  [MessageType.Open]: 29,
  [MessageType.Update]: 23,
  [MessageType.Notification]: 21,
  [MessageType.Keepalive]: 19,
  [MessageType.RouteRefresh]: 23,
};

/** Types whose length is fixed. */
const EXACT_LENGTH: Partial<Record<MessageType, number>> = {
  [MessageType.Keepalive]: 19,
  [MessageType.RouteRefresh]: 23,
};

export interface Header {
  length: number;
  type: MessageType;
}

function lengthData(length: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(length);
  return b;
}

/**
 * Checks the header at the start of bytes (at least HEADER_LENGTH of them).
 * The errors are the ones RFC 4271 section 6.1 prescribes: 1/1 for a bad
 * marker, 1/2 with the length for a bad length, 1/3 with the type for an
 * unknown type.
 */
export function decodeHeader(bytes: Buffer): Decoded<Header> {
  if (bytes.length < HEADER_LENGTH) {
    return fail(
      ErrorCode.MessageHeader,
      HeaderSubcode.BadMessageLength,
      `message of ${bytes.length} bytes is shorter than the ${HEADER_LENGTH}-byte header`,
      lengthData(bytes.length),
    );
  }
  for (let i = 0; i < MARKER_LENGTH; i++) {
    if (bytes[i] !== 0xff) {
      return fail(
        ErrorCode.MessageHeader,
        HeaderSubcode.ConnectionNotSynchronized,
        'the marker is not all ones (the byte stream is out of step)',
      );
    }
  }
  const length = bytes.readUInt16BE(16);
  const type = bytes[18]!;
  if (length < HEADER_LENGTH || length > MAX_MESSAGE_LENGTH) {
    return fail(
      ErrorCode.MessageHeader,
      HeaderSubcode.BadMessageLength,
      `length ${length} is outside ${HEADER_LENGTH}..${MAX_MESSAGE_LENGTH}`,
      lengthData(length),
    );
  }
  if (!(type in MIN_LENGTH)) {
    return fail(
      ErrorCode.MessageHeader,
      HeaderSubcode.BadMessageType,
      `unknown message type ${type}`,
      Buffer.from([type]),
    );
  }
  const t = type as MessageType;
  const exact = EXACT_LENGTH[t];
  if ((exact !== undefined && length !== exact) || length < MIN_LENGTH[t]) {
    return fail(
      ErrorCode.MessageHeader,
      HeaderSubcode.BadMessageLength,
      `length ${length} is not valid for message type ${type}`,
      lengthData(length),
    );
  }
  return ok({ length, type: t });
}

/** A whole message: header, then body. Throws RangeError if it would exceed 4096 bytes. */
export function frameMessage(type: MessageType, body: Buffer): Buffer {
  const length = HEADER_LENGTH + body.length;
  if (length > MAX_MESSAGE_LENGTH) {
    throw new RangeError(`a BGP message of ${length} bytes exceeds ${MAX_MESSAGE_LENGTH}`);
  }
  const out = Buffer.alloc(length, 0xff);
  out.writeUInt16BE(length, 16);
  out[18] = type;
  body.copy(out, HEADER_LENGTH);
  return out;
}
