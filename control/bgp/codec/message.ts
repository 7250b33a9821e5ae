// Every BGP message as one union, and the two entry points: decodeMessage()
// (never throws; a malformed message comes back as the error whose
// NOTIFICATION answers it) and encodeMessage().
import { DEFAULT_CONTEXT, type CodecContext } from './attributes.js';
import { ErrorCode, HeaderSubcode, fail, ok, type Decoded } from './errors.js';
import { decodeHeader, frameMessage, HEADER_LENGTH, MessageType } from './header.js';
import {
  decodeNotificationBody,
  encodeNotificationBody,
  type NotificationMessage,
} from './notification.js';
import { decodeOpenBody, encodeOpenBody, type OpenMessage } from './open.js';
import { decodeUpdateBody, encodeUpdateBody, type UpdateMessage } from './update.js';

export interface KeepaliveMessage {
  type: 'keepalive';
}

/** RFC 2918; subtype is RFC 7313's (0 = normal request, 1 = BoRR, 2 = EoRR). */
export interface RouteRefreshMessage {
  type: 'routeRefresh';
  afi: number;
  safi: number;
  subtype: number;
}

export type BgpMessage =
  OpenMessage | UpdateMessage | NotificationMessage | KeepaliveMessage | RouteRefreshMessage;

export const KEEPALIVE: KeepaliveMessage = Object.freeze({ type: 'keepalive' });

export function encodeMessage(m: BgpMessage, ctx: CodecContext = DEFAULT_CONTEXT): Buffer {
  switch (m.type) {
    case 'open':
      return frameMessage(MessageType.Open, encodeOpenBody(m));
    case 'update':
      return frameMessage(MessageType.Update, encodeUpdateBody(m, ctx));
    case 'notification':
      return frameMessage(MessageType.Notification, encodeNotificationBody(m));
    case 'keepalive':
      return frameMessage(MessageType.Keepalive, Buffer.alloc(0));
    case 'routeRefresh': {
      const body = Buffer.alloc(4);
      body.writeUInt16BE(m.afi, 0);
      body[2] = m.subtype;
      body[3] = m.safi;
      return frameMessage(MessageType.RouteRefresh, body);
    }
  }
}

/**
 * Decodes one whole message, header included. Never throws: any malformed
 * input yields { ok: false, error } with the NOTIFICATION to send.
 */
export function decodeMessage(
  bytes: Buffer,
  ctx: CodecContext = DEFAULT_CONTEXT,
): Decoded<BgpMessage> {
  const header = decodeHeader(bytes);
  if (!header.ok) return header;
  const { length, type } = header.value;
  if (length !== bytes.length) {
    const data = Buffer.alloc(2);
    data.writeUInt16BE(length);
    return fail(
      ErrorCode.MessageHeader,
      HeaderSubcode.BadMessageLength,
      `length field says ${length} bytes, the message has ${bytes.length}`,
      data,
    );
  }
  const body = bytes.subarray(HEADER_LENGTH);
  switch (type) {
    case MessageType.Open:
      return decodeOpenBody(body);
    case MessageType.Update:
      return decodeUpdateBody(body, ctx);
    case MessageType.Notification:
      return decodeNotificationBody(body);
    case MessageType.Keepalive:
      return ok({ type: 'keepalive' });
    case MessageType.RouteRefresh:
      return ok({
        type: 'routeRefresh',
        afi: body.readUInt16BE(0),
        subtype: body[2]!,
        safi: body[3]!,
      });
  }
}
