// NOTIFICATION (RFC 4271 section 4.5) and the shutdown communication some
// Cease subcodes carry (RFC 9003): a length byte and up to 255 bytes of UTF-8.
import { CeaseSubcode, ErrorCode, HeaderSubcode, fail, ok, type Decoded } from './errors.js';

export interface NotificationMessage {
  type: 'notification';
  code: number;
  subcode: number;
  data: Buffer;
}

export function encodeNotificationBody(m: NotificationMessage): Buffer {
  return Buffer.concat([Buffer.from([m.code, m.subcode]), m.data]);
}

export function decodeNotificationBody(body: Buffer): Decoded<NotificationMessage> {
  if (body.length < 2) {
    return fail(ErrorCode.MessageHeader, HeaderSubcode.BadMessageLength, 'NOTIFICATION too short');
  }
  return ok({
    type: 'notification',
    code: body[0]!,
    subcode: body[1]!,
    data: Buffer.from(body.subarray(2)),
  });
}

const SHUTDOWN_SUBCODES: number[] = [
  CeaseSubcode.AdministrativeShutdown,
  CeaseSubcode.AdministrativeReset,
];

/** A Cease / Administrative Shutdown with an operator's message (cut to 255 bytes of UTF-8). */
export function shutdownNotification(
  message = '',
  subcode: number = CeaseSubcode.AdministrativeShutdown,
): NotificationMessage {
  let text = Buffer.from(message, 'utf8');
  if (text.length > 255) {
    // Cut on a character boundary, never inside a multi-byte sequence.
    let end = 255;
    while (end > 0 && (text[end]! & 0xc0) === 0x80) end--;
    text = text.subarray(0, end);
  }
  const data = message === '' ? Buffer.alloc(0) : Buffer.concat([Buffer.from([text.length]), text]);
  return { type: 'notification', code: ErrorCode.Cease, subcode, data };
}

/** The shutdown communication in a Cease NOTIFICATION, if there is a well-formed one. */
export function shutdownMessage(m: NotificationMessage): string | undefined {
  if (m.code !== ErrorCode.Cease || !SHUTDOWN_SUBCODES.includes(m.subcode)) return undefined;
  if (m.data.length < 1 || m.data[0] !== m.data.length - 1) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(m.data.subarray(1));
  } catch {
    return undefined;
  }
}
