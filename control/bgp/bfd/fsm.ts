// The BFD session state machine of RFC 5880 section 6.8 (asynchronous mode,
// no Demand mode, no Echo function, no authentication), pure: step(state,
// event) returns the next state and what the session must do. No sockets
// and no clock: randomness for jitter is passed in, so every transition and
// every timer value is a table-driven test.
import { BfdState, Diag, type ControlPacket } from './codec.js';

/** Microseconds, as on the wire. */
export interface BfdTiming {
  /** Our bfd.DesiredMinTxInterval once Up (RFC 5880 6.8.3 floors it at 1 s otherwise). */
  desiredMinTxUs: number;
  /** Our bfd.RequiredMinRxInterval. */
  requiredMinRxUs: number;
  /** Our bfd.DetectMult. */
  detectMult: number;
}

/** The default: 300 ms x 3, a dead peer is noticed in under a second. */
export const DEFAULT_TIMING: BfdTiming = {
  desiredMinTxUs: 300_000,
  requiredMinRxUs: 300_000,
  detectMult: 3,
};

/** Section 6.8.3: while not Up, DesiredMinTxInterval is at least one second. */
export const SLOW_TX_US = 1_000_000;

/** The state variables of section 6.8.1 we use. */
export interface BfdFsmState {
  readonly timing: BfdTiming;
  readonly sessionState: BfdState;
  readonly remoteSessionState: BfdState;
  readonly localDiscr: number;
  readonly remoteDiscr: number;
  readonly localDiag: Diag;
  /** The DesiredMinTxInterval we advertise now (SLOW_TX_US floor while not Up). */
  readonly desiredMinTxUs: number;
  readonly remoteMinRxUs: number;
  readonly remoteDesiredMinTxUs: number;
  readonly remoteDetectMult: number;
  readonly remoteDemandMode: boolean;
  /** A Poll Sequence is under way: our packets carry P until one with F arrives. */
  readonly pollActive: boolean;
}

export type BfdEvent =
  | { type: 'received'; packet: ControlPacket }
  | { type: 'detectionTimeExpired' }
  | { type: 'adminDown' }
  | { type: 'adminUp' };

export type BfdAction =
  | { type: 'stateChange'; from: BfdState; to: BfdState; diag: Diag }
  /** Send a Control packet now, outside the periodic schedule (a Final, or news of a state change). */
  | { type: 'sendNow'; final: boolean }
  /** (Re)start the detection timer; the session stops it itself when it stops. */
  | { type: 'armDetection'; ms: number }
  | { type: 'disarmDetection' }
  /** The transmit interval changed: reschedule the periodic packet. */
  | { type: 'txIntervalChanged' }
  | { type: 'discard'; reason: string };

export interface StepResult {
  state: BfdFsmState;
  actions: BfdAction[];
}

export function initialState(localDiscr: number, timing: BfdTiming = DEFAULT_TIMING): BfdFsmState {
  if (localDiscr <= 0 || localDiscr > 0xffffffff || !Number.isInteger(localDiscr))
    throw new RangeError(`local discriminator ${localDiscr} must be a nonzero 32-bit integer`);
  if (timing.detectMult < 1 || timing.detectMult > 255 || !Number.isInteger(timing.detectMult))
    throw new RangeError(`detect multiplier ${timing.detectMult} must be 1..255`);
  if (timing.desiredMinTxUs < 1 || timing.requiredMinRxUs < 1)
    throw new RangeError('BFD intervals must be positive (microseconds)');
  return {
    timing,
    sessionState: BfdState.Down,
    remoteSessionState: BfdState.Down,
    localDiscr,
    remoteDiscr: 0,
    localDiag: Diag.None,
    desiredMinTxUs: Math.max(timing.desiredMinTxUs, SLOW_TX_US),
    remoteMinRxUs: 1,
    remoteDesiredMinTxUs: 0,
    remoteDetectMult: 0,
    remoteDemandMode: false,
    pollActive: false,
  };
}

/** Section 6.8.4: how long without a packet before the session goes Down, in microseconds. */
export function detectionTimeUs(s: BfdFsmState): number {
  return s.remoteDetectMult * Math.max(s.timing.requiredMinRxUs, s.remoteDesiredMinTxUs);
}

/** Section 6.8.7: the interval before jitter. */
export function txIntervalUs(s: BfdFsmState): number {
  return Math.max(s.desiredMinTxUs, s.remoteMinRxUs);
}

/**
 * Section 6.8.7: the interval reduced by a random 0-25% (at least 10% with a
 * detect multiplier of 1, so one late packet cannot bring the session
 * down), so packets of many sessions do not synchronize. random is in [0, 1).
 */
export function jitteredTxMs(s: BfdFsmState, random: number): number {
  const span = s.timing.detectMult === 1 ? 0.15 : 0.25;
  return (txIntervalUs(s) * (0.75 + span * random)) / 1000;
}

/** Section 6.8.7: periodic packets stop when the peer asked for none or is in Demand mode. */
export function periodicTxAllowed(s: BfdFsmState): boolean {
  if (s.remoteMinRxUs === 0) return false;
  return !(
    s.remoteDemandMode &&
    s.sessionState === BfdState.Up &&
    s.remoteSessionState === BfdState.Up
  );
}

/** Section 6.8.7: the packet we send now. */
export function controlPacket(
  s: BfdFsmState,
  final: boolean,
): Omit<ControlPacket, 'version' | 'authentication'> {
  return {
    diag: s.localDiag,
    state: s.sessionState,
    // A packet never carries both P and F.
    poll: s.pollActive && !final,
    final,
    controlPlaneIndependent: false,
    demand: false,
    multipoint: false,
    detectMult: s.timing.detectMult,
    myDiscriminator: s.localDiscr,
    yourDiscriminator: s.remoteDiscr,
    desiredMinTxInterval: s.desiredMinTxUs,
    requiredMinRxInterval: s.timing.requiredMinRxUs,
    requiredMinEchoRxInterval: 0,
  };
}

function withState(s: BfdFsmState, to: BfdState, diag: Diag, actions: BfdAction[]): BfdFsmState {
  if (s.sessionState === to) return s;
  actions.push({ type: 'stateChange', from: s.sessionState, to, diag });
  const desiredMinTxUs =
    to === BfdState.Up ? s.timing.desiredMinTxUs : Math.max(s.timing.desiredMinTxUs, SLOW_TX_US);
  const changed = desiredMinTxUs !== s.desiredMinTxUs;
  if (changed) actions.push({ type: 'txIntervalChanged' });
  // Tell the peer at once rather than at the next periodic packet.
  actions.push({ type: 'sendNow', final: false });
  return {
    ...s,
    sessionState: to,
    localDiag: diag,
    desiredMinTxUs,
    // Section 6.8.3: a change of timing parameters starts a Poll Sequence.
    pollActive: s.pollActive || changed,
  };
}

export function step(s: BfdFsmState, event: BfdEvent): StepResult {
  const actions: BfdAction[] = [];
  switch (event.type) {
    case 'adminDown': {
      const next = withState(s, BfdState.AdminDown, Diag.AdministrativelyDown, actions);
      actions.push({ type: 'disarmDetection' });
      return { state: next, actions };
    }
    case 'adminUp': {
      if (s.sessionState !== BfdState.AdminDown) return { state: s, actions };
      const next = withState(s, BfdState.Down, Diag.None, actions);
      return { state: next, actions };
    }
    case 'detectionTimeExpired': {
      let next: BfdFsmState = { ...s, remoteDiscr: 0, remoteSessionState: BfdState.Down };
      if (s.sessionState === BfdState.Init || s.sessionState === BfdState.Up)
        next = withState(next, BfdState.Down, Diag.ControlDetectionTimeExpired, actions);
      return { state: next, actions };
    }
    case 'received':
      return receive(s, event.packet, actions);
  }
}

/** Section 6.8.6, from "Set bfd.RemoteDiscr" on (the codec checked the rest). */
function receive(s: BfdFsmState, p: ControlPacket, actions: BfdAction[]): StepResult {
  if (p.yourDiscriminator !== 0 && p.yourDiscriminator !== s.localDiscr) {
    actions.push({ type: 'discard', reason: 'Your Discriminator is not ours' });
    return { state: s, actions };
  }
  const txBefore = txIntervalUs(s);
  let next: BfdFsmState = {
    ...s,
    remoteDiscr: p.myDiscriminator,
    remoteSessionState: p.state,
    remoteDemandMode: p.demand,
    remoteMinRxUs: p.requiredMinRxInterval,
    remoteDesiredMinTxUs: p.desiredMinTxInterval,
    remoteDetectMult: p.detectMult,
    pollActive: p.final ? false : s.pollActive,
  };
  if (txIntervalUs(next) !== txBefore) actions.push({ type: 'txIntervalChanged' });
  if (s.sessionState === BfdState.AdminDown) {
    actions.push({ type: 'discard', reason: 'the session is administratively down' });
    return { state: next, actions };
  }
  if (p.state === BfdState.AdminDown) {
    if (next.sessionState !== BfdState.Down)
      next = withState(next, BfdState.Down, Diag.NeighborSignaledSessionDown, actions);
  } else if (next.sessionState === BfdState.Down) {
    if (p.state === BfdState.Down) next = withState(next, BfdState.Init, Diag.None, actions);
    else if (p.state === BfdState.Init) next = withState(next, BfdState.Up, Diag.None, actions);
  } else if (next.sessionState === BfdState.Init) {
    if (p.state === BfdState.Init || p.state === BfdState.Up)
      next = withState(next, BfdState.Up, Diag.None, actions);
  } else if (p.state === BfdState.Down) {
    next = withState(next, BfdState.Down, Diag.NeighborSignaledSessionDown, actions);
  }
  if (p.poll) actions.push({ type: 'sendNow', final: true });
  actions.push({ type: 'armDetection', ms: detectionTimeUs(next) / 1000 });
  return { state: next, actions };
}
