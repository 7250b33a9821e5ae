// NOTIFICATION error codes and subcodes (RFC 4271 section 4.5, RFC 4486,
// RFC 5492, RFC 7313, RFC 8538, RFC 9384), and the one error type every
// decoder returns: it carries the NOTIFICATION the session must send, so a
// malformed message is answered by construction, never by a thrown exception.

export const ErrorCode = {
  MessageHeader: 1,
  Open: 2,
  Update: 3,
  HoldTimerExpired: 4,
  Fsm: 5,
  Cease: 6,
  RouteRefresh: 7,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const HeaderSubcode = {
  Unspecific: 0,
  ConnectionNotSynchronized: 1,
  BadMessageLength: 2,
  BadMessageType: 3,
} as const;

export const OpenSubcode = {
  Unspecific: 0,
  UnsupportedVersionNumber: 1,
  BadPeerAs: 2,
  BadBgpIdentifier: 3,
  UnsupportedOptionalParameter: 4,
  // 5 (authentication failure) is deprecated by RFC 4271.
  UnacceptableHoldTime: 6,
  UnsupportedCapability: 7,
} as const;

export const UpdateSubcode = {
  Unspecific: 0,
  MalformedAttributeList: 1,
  UnrecognizedWellKnownAttribute: 2,
  MissingWellKnownAttribute: 3,
  AttributeFlagsError: 4,
  AttributeLengthError: 5,
  InvalidOriginAttribute: 6,
  // 7 (AS routing loop) is deprecated by RFC 4271.
  InvalidNextHopAttribute: 8,
  OptionalAttributeError: 9,
  InvalidNetworkField: 10,
  MalformedAsPath: 11,
} as const;

/** RFC 6608. */
export const FsmSubcode = {
  Unspecific: 0,
  UnexpectedInOpenSent: 1,
  UnexpectedInOpenConfirm: 2,
  UnexpectedInEstablished: 3,
} as const;

/** RFC 4486, RFC 8538 (hard reset), RFC 9384 (BFD down). */
export const CeaseSubcode = {
  Unspecific: 0,
  MaximumPrefixesReached: 1,
  AdministrativeShutdown: 2,
  PeerDeconfigured: 3,
  AdministrativeReset: 4,
  ConnectionRejected: 5,
  OtherConfigurationChange: 6,
  ConnectionCollisionResolution: 7,
  OutOfResources: 8,
  HardReset: 9,
  BfdDown: 10,
} as const;

/** RFC 7313. */
export const RouteRefreshSubcode = {
  Reserved: 0,
  InvalidMessageLength: 1,
} as const;

const SUBCODES: Record<number, Record<string, number>> = {
  [ErrorCode.MessageHeader]: HeaderSubcode,
  [ErrorCode.Open]: OpenSubcode,
  [ErrorCode.Update]: UpdateSubcode,
  [ErrorCode.HoldTimerExpired]: {},
  [ErrorCode.Fsm]: FsmSubcode,
  [ErrorCode.Cease]: CeaseSubcode,
  [ErrorCode.RouteRefresh]: RouteRefreshSubcode,
};

const CODE_NAMES: Record<number, string> = {
  1: 'Message Header Error',
  2: 'OPEN Message Error',
  3: 'UPDATE Message Error',
  4: 'Hold Timer Expired',
  5: 'Finite State Machine Error',
  6: 'Cease',
  7: 'ROUTE-REFRESH Message Error',
};

/** True when code/subcode is a pair some RFC defines (subcode 0 is always allowed). */
export function isKnownNotification(code: number, subcode: number): boolean {
  const subs = SUBCODES[code];
  if (subs === undefined) return false;
  return subcode === 0 || Object.values(subs).includes(subcode);
}

/** "UPDATE Message Error / Malformed AS_PATH (3/11)", for logs and error messages. */
export function describeNotification(code: number, subcode: number): string {
  const name = CODE_NAMES[code] ?? `unknown error code`;
  const subs = SUBCODES[code] ?? {};
  const sub = Object.entries(subs).find(([, v]) => v === subcode)?.[0];
  const subName = sub === undefined ? '' : ` / ${sub.replace(/([a-z])([A-Z])/g, '$1 $2')}`;
  return `${name}${subName} (${code}/${subcode})`;
}

/** What a NOTIFICATION carries. */
export interface NotificationFields {
  code: number;
  subcode: number;
  data: Buffer;
}

/**
 * A protocol error found while decoding or checking a message: the
 * NOTIFICATION RFC 4271 section 6 prescribes, and why, in words.
 */
export class BgpProtocolError extends Error {
  readonly notification: NotificationFields;

  constructor(code: number, subcode: number, reason: string, data: Buffer = Buffer.alloc(0)) {
    super(`${describeNotification(code, subcode)}: ${reason}`);
    this.name = 'BgpProtocolError';
    this.notification = { code, subcode, data };
  }
}

/** A decoder's answer: the value, or the error with its NOTIFICATION. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; error: BgpProtocolError };

export function ok<T>(value: T): Decoded<T> {
  return { ok: true, value };
}

export function fail<T = never>(
  code: number,
  subcode: number,
  reason: string,
  data?: Buffer,
): Decoded<T> {
  return { ok: false, error: new BgpProtocolError(code, subcode, reason, data) };
}
