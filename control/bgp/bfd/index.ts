// BFD (RFC 5880 asynchronous mode, RFC 5881 single hop) as the BGP speaker
// uses it: one BfdEndpoint per local address, one BfdSession per peer; a
// session's 'down' event means the peer is gone and its BGP session must be
// reset. The codec and the FSM are pure and usable on their own.
export {
  BFD_PORT,
  BFD_TTL,
  BfdEndpoint,
  BfdSession,
  BfdSocketError,
  SOURCE_PORT_MAX,
  SOURCE_PORT_MIN,
  type BfdSessionEvents,
  type BfdSessionOptions,
  type BfdSessionStats,
  type EndpointDiscardReason,
  type EndpointOptions,
  type EndpointStats,
  type SocketScope,
} from './session.js';
export {
  DEFAULT_TIMING,
  SLOW_TX_US,
  controlPacket,
  detectionTimeUs,
  initialState,
  jitteredTxMs,
  periodicTxAllowed,
  step,
  txIntervalUs,
  type BfdAction,
  type BfdEvent,
  type BfdFsmState,
  type BfdTiming,
  type StepResult,
} from './fsm.js';
export {
  BFD_VERSION,
  BfdState,
  CONTROL_PACKET_LENGTH,
  Diag,
  decodeControl,
  encodeControl,
  type ControlPacket,
  type DecodeResult,
  type DiscardReason,
} from './codec.js';
