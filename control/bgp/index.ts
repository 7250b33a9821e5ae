// xlb's BGP speaker as the agent uses it: one BgpSession per peer, one
// BgpListener per node for the connections peers open, routes announced and
// withdrawn by prefix. The codec and the FSM underneath are pure and usable
// on their own (tests, tools).
export {
  BgpSession,
  BGP_PORT,
  defaultConnect,
  type AnnounceResult,
  type ConnectFunction,
  type GracefulRestartOptions,
  type NotificationEvent,
  type SessionEvents,
  type SessionOptions,
  type SessionStats,
} from './session.js';
export { BgpListener, type ListenerOptions } from './listener.js';
export {
  GTSM_TTL,
  readSocketTtls,
  socketTtls,
  TransportConfigError,
  type TransportOptions,
} from './transport.js';
export { BgpSpeaker, type SpeakerInput, type SpeakerReport } from './speaker.js';
export * as bfd from './bfd/index.js';
export type { Route, RouteAttributes } from './routes.js';
export {
  CommunityError,
  WellKnownCommunity,
  decodeLinkBandwidth,
  formatCommunity,
  formatLargeCommunity,
  linkBandwidth,
  parseCommunity,
  parseLargeCommunity,
} from './communities.js';
export {
  INITIAL_STATE,
  step,
  type FsmAction,
  type FsmConfig,
  type FsmEvent,
  type FsmState,
  type State,
} from './fsm.js';
export { DEFAULT_BACKOFF, backoffDelay, type BackoffSettings } from './timers.js';
export { MessageFramer, type Frame } from './framer.js';
export { buildAnnouncements, buildWithdrawals, type NextHops } from './update-builder.js';
export { decodeMessage, encodeMessage, KEEPALIVE, type BgpMessage } from './codec/message.js';
export { BgpProtocolError, describeNotification, type Decoded } from './codec/errors.js';
export { canonicalPrefix, parsePrefix, PrefixError, type Family } from './codec/prefix.js';
export type { PathAttributes, ExtendedCommunity, LargeCommunity } from './codec/attributes.js';
export type { OpenMessage } from './codec/open.js';
export type { UpdateMessage } from './codec/update.js';
