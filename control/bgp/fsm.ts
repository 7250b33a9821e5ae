// The BGP finite state machine of RFC 4271 section 8, pure: step(state,
// event) returns the next state and the actions the session must carry out
// (connect, send, start and stop timers, drop the connection, hand over
// routes). No I/O and no clock, so every transition is a table-driven test.
//
// Choices within what the RFC allows:
// - No DelayOpen. Collision detection lives in the session, which holds the
//   second connection; the FSM hears only the outcome (OpenCollisionDump,
//   CollisionWinner).
// - DampPeerOscillations: after a failure the FSM waits in Idle for the
//   IdleHoldTimer, an exponential back-off with jitter and a cap, then
//   restarts by itself; the failure count resets once a session has stayed
//   Established for stableMs.
// - An incoming connection while Idle is accepted when the FSM is only
//   waiting out its back-off (the peer restarted first), refused after a
//   ManualStop.
// - A NOTIFICATION from the peer is never answered with another.
// - A graceful ManualStop closes the connection without a NOTIFICATION, so a
//   peer that negotiated graceful restart (RFC 4724 without RFC 8538) keeps
//   our routes as stale instead of flushing them.
// - The keepalive interval is the configured one, capped at a third of the
//   negotiated hold time (timers.ts keepaliveMs).
import { CeaseSubcode, ErrorCode, FsmSubcode, type BgpProtocolError } from './codec/errors.js';
import { KEEPALIVE, type BgpMessage, type RouteRefreshMessage } from './codec/message.js';
import { shutdownNotification, type NotificationMessage } from './codec/notification.js';
import type { OpenMessage } from './codec/open.js';
import type { UpdateMessage } from './codec/update.js';
import {
  backoffDelay,
  jittered,
  keepaliveMs,
  negotiateHoldTime,
  type BackoffSettings,
} from './timers.js';

export type State = 'Idle' | 'Connect' | 'Active' | 'OpenSent' | 'OpenConfirm' | 'Established';

export type TimerName = 'connectRetry' | 'hold' | 'keepalive' | 'idleHold' | 'stable';

/** RFC 4271 section 8.1 events (names as there), plus route refresh and collision outcome. */
export type FsmEvent =
  | { type: 'ManualStart' }
  /** graceful: close without a NOTIFICATION (RFC 4724: the peer keeps our routes). */
  | { type: 'ManualStop'; message?: string; graceful?: boolean }
  /** Stop now, restart after the back-off (e.g. peer reset by an operator, BFD down). */
  | { type: 'AutomaticStop'; notification: NotificationMessage }
  | { type: 'ConnectRetryTimer_Expires' }
  | { type: 'HoldTimer_Expires' }
  | { type: 'KeepaliveTimer_Expires' }
  | { type: 'IdleHoldTimer_Expires' }
  | { type: 'StableTimer_Expires' }
  /** Our outgoing connection is up. */
  | { type: 'Tcp_CR_Acked' }
  /** An incoming connection was accepted for this peer. */
  | { type: 'TcpConnectionConfirmed' }
  | { type: 'TcpConnectionFails'; reason: string }
  /** A valid OPEN (decoded and checked against the session's expectations). */
  | { type: 'BGPOpen'; open: OpenMessage }
  | { type: 'BGPHeaderErr'; error: BgpProtocolError }
  | { type: 'BGPOpenMsgErr'; error: BgpProtocolError }
  | { type: 'OpenCollisionDump' }
  /** The other connection won collision resolution, replacing ours; it has exchanged OPENs. */
  | { type: 'CollisionWinner'; open: OpenMessage }
  | { type: 'NotifMsgVerErr'; notification: NotificationMessage }
  | { type: 'NotifMsg'; notification: NotificationMessage }
  | { type: 'KeepAliveMsg' }
  | { type: 'UpdateMsg'; update: UpdateMessage }
  | { type: 'UpdateMsgErr'; error: BgpProtocolError }
  | { type: 'RouteRefreshMsg'; message: RouteRefreshMessage };

export type FsmAction =
  | { type: 'connect' }
  /** Drop the TCP connection (after what was sent before has been written). */
  | { type: 'disconnect' }
  | { type: 'send'; message: BgpMessage }
  | { type: 'startTimer'; timer: TimerName; ms: number }
  | { type: 'stopTimer'; timer: TimerName }
  /** Entered Established: announce our routes, then End-of-RIB. */
  | { type: 'established'; peer: OpenMessage; holdTime: number }
  /** Routes from the peer. */
  | { type: 'deliver'; update: UpdateMessage }
  /** The peer asked for our routes of a family again. */
  | { type: 'refresh'; afi: number; safi: number }
  /** Left Established: every route the peer gave is gone. */
  | { type: 'releaseRoutes' };

export interface FsmConfig {
  /** Our OPEN. */
  open: OpenMessage;
  /** Never connect, only accept. */
  passive: boolean;
  /** How long one TCP connection attempt may take (ConnectRetryTimer in Connect). */
  connectRetryMs: number;
  /** HoldTimer while waiting for the peer's OPEN (RFC 4271 suggests 4 minutes). */
  openHoldMs: number;
  backoff: BackoffSettings;
  /** Time Established after which the failure count starts afresh. */
  stableMs: number;
  /** Configured keepalive interval, seconds; capped at a third of the hold time. */
  keepaliveSeconds?: number;
  /** Jitter source, injectable for tests. */
  random: () => number;
}

export interface FsmState {
  state: State;
  /** Consecutive failures (ConnectRetryCounter); sets the back-off. */
  connectRetryCounter: number;
  /** Started and not stopped by an operator: restarts by itself after failures. */
  autoRestart: boolean;
  /** Negotiated hold time, seconds, from OpenConfirm on. */
  holdTime?: number;
  /** The peer's OPEN, from OpenConfirm on. */
  peer?: OpenMessage;
  /** Why the FSM last fell back (kept until the next Established). */
  lastError?: string;
}

export interface Step {
  state: FsmState;
  actions: FsmAction[];
}

export const INITIAL_STATE: FsmState = Object.freeze({
  state: 'Idle',
  connectRetryCounter: 0,
  autoRestart: false,
});

const ALL_TIMERS: TimerName[] = ['connectRetry', 'hold', 'keepalive', 'idleHold', 'stable'];

function notification(
  code: number,
  subcode: number,
  data: Buffer = Buffer.alloc(0),
): NotificationMessage {
  return { type: 'notification', code, subcode, data };
}

function fromError(e: BgpProtocolError): NotificationMessage {
  const n = e.notification;
  return notification(n.code, n.subcode, n.data);
}

const FSM_ERROR_SUBCODE: Partial<Record<State, number>> = {
  OpenSent: FsmSubcode.UnexpectedInOpenSent,
  OpenConfirm: FsmSubcode.UnexpectedInOpenConfirm,
  Established: FsmSubcode.UnexpectedInEstablished,
};

/** Everything a state holds, as when entering Idle. */
function toIdle(
  s: FsmState,
  config: FsmConfig,
  how: { reason: string; send?: NotificationMessage; failure: boolean; stop?: boolean },
): Step {
  const actions: FsmAction[] = [];
  if (how.send !== undefined) actions.push({ type: 'send', message: how.send });
  if (s.state !== 'Idle') actions.push({ type: 'disconnect' });
  for (const timer of ALL_TIMERS) actions.push({ type: 'stopTimer', timer });
  if (s.state === 'Established') actions.push({ type: 'releaseRoutes' });
  const counter = how.stop ? 0 : s.connectRetryCounter + (how.failure ? 1 : 0);
  const autoRestart = how.stop ? false : s.autoRestart;
  if (autoRestart) {
    actions.push({
      type: 'startTimer',
      timer: 'idleHold',
      ms: backoffDelay(Math.max(1, counter), config.backoff, config.random),
    });
  }
  return {
    state: { state: 'Idle', connectRetryCounter: counter, autoRestart, lastError: how.reason },
    actions,
  };
}

/** Leaves Idle: connect (active) or wait for the peer (passive). */
function start(s: FsmState, config: FsmConfig): Step {
  const base = {
    connectRetryCounter: s.connectRetryCounter,
    autoRestart: true,
    ...(s.lastError === undefined ? {} : { lastError: s.lastError }),
  };
  const actions: FsmAction[] = [{ type: 'stopTimer', timer: 'idleHold' }];
  if (config.passive) return { state: { ...base, state: 'Active' }, actions };
  actions.push(
    { type: 'startTimer', timer: 'connectRetry', ms: config.connectRetryMs },
    { type: 'connect' },
  );
  return { state: { ...base, state: 'Connect' }, actions };
}

/** A connection is up (either direction): send OPEN, wait for the peer's. */
function openSent(s: FsmState, config: FsmConfig): Step {
  return {
    state: {
      state: 'OpenSent',
      connectRetryCounter: s.connectRetryCounter,
      autoRestart: s.autoRestart,
      ...(s.lastError === undefined ? {} : { lastError: s.lastError }),
    },
    actions: [
      { type: 'stopTimer', timer: 'connectRetry' },
      { type: 'stopTimer', timer: 'idleHold' },
      { type: 'send', message: config.open },
      { type: 'startTimer', timer: 'hold', ms: config.openHoldMs },
    ],
  };
}

/** The peer's OPEN is in: agree on the hold time, send KEEPALIVE, wait for theirs. */
function openConfirm(s: FsmState, config: FsmConfig, peer: OpenMessage): Step {
  const holdTime = negotiateHoldTime(config.open.holdTime, peer.holdTime);
  const actions: FsmAction[] = [
    { type: 'stopTimer', timer: 'hold' },
    { type: 'stopTimer', timer: 'keepalive' },
    { type: 'send', message: KEEPALIVE },
  ];
  if (holdTime > 0) {
    actions.push(
      {
        type: 'startTimer',
        timer: 'keepalive',
        ms: jittered(keepaliveMs(holdTime, config.keepaliveSeconds), 0.25, config.random),
      },
      { type: 'startTimer', timer: 'hold', ms: holdTime * 1000 },
    );
  }
  return {
    state: {
      state: 'OpenConfirm',
      connectRetryCounter: s.connectRetryCounter,
      autoRestart: s.autoRestart,
      holdTime,
      peer,
      ...(s.lastError === undefined ? {} : { lastError: s.lastError }),
    },
    actions,
  };
}

function withoutError(s: FsmState): FsmState {
  const { lastError: _gone, ...rest } = s;
  return rest;
}

function restartHold(s: FsmState): FsmAction[] {
  return s.holdTime ? [{ type: 'startTimer', timer: 'hold', ms: s.holdTime * 1000 }] : [];
}

function sendKeepalive(s: FsmState, config: FsmConfig): FsmAction[] {
  const actions: FsmAction[] = [{ type: 'send', message: KEEPALIVE }];
  if (s.holdTime) {
    const ms = jittered(keepaliveMs(s.holdTime, config.keepaliveSeconds), 0.25, config.random);
    actions.push({ type: 'startTimer', timer: 'keepalive', ms });
  }
  return actions;
}

function describe(e: FsmEvent): string {
  switch (e.type) {
    case 'BGPHeaderErr':
    case 'BGPOpenMsgErr':
    case 'UpdateMsgErr':
      return e.error.message;
    case 'TcpConnectionFails':
      return `connection lost: ${e.reason}`;
    case 'NotifMsg':
    case 'NotifMsgVerErr':
      return `peer sent NOTIFICATION ${e.notification.code}/${e.notification.subcode}`;
    default:
      return e.type;
  }
}

/** One transition. Never throws; events a state does not expect are handled as the RFC says. */
export function step(s: FsmState, e: FsmEvent, config: FsmConfig): Step {
  const stay = (actions: FsmAction[] = []): Step => ({ state: s, actions });
  const fail = (send?: NotificationMessage) =>
    toIdle(s, config, { reason: describe(e), send, failure: true });

  // Events with the same meaning in every state but Idle.
  if (s.state !== 'Idle') {
    switch (e.type) {
      case 'ManualStop': {
        const connected = ['OpenSent', 'OpenConfirm', 'Established'].includes(s.state);
        return toIdle(s, config, {
          reason: 'stopped',
          send:
            connected && e.graceful !== true ? shutdownNotification(e.message ?? '') : undefined,
          failure: false,
          stop: true,
        });
      }
      case 'AutomaticStop': {
        const connected = ['OpenSent', 'OpenConfirm', 'Established'].includes(s.state);
        return toIdle(s, config, {
          reason: `stopped: NOTIFICATION ${e.notification.code}/${e.notification.subcode}`,
          send: connected ? e.notification : undefined,
          failure: true,
        });
      }
      case 'ManualStart':
        return stay();
    }
  }

  switch (s.state) {
    case 'Idle':
      switch (e.type) {
        case 'ManualStart':
          return start({ ...s, connectRetryCounter: 0 }, config);
        case 'IdleHoldTimer_Expires':
          return s.autoRestart ? start(s, config) : stay();
        case 'ManualStop':
          return {
            state: { ...s, connectRetryCounter: 0, autoRestart: false },
            actions: [{ type: 'stopTimer', timer: 'idleHold' }],
          };
        case 'TcpConnectionConfirmed':
          return s.autoRestart ? openSent(s, config) : stay([{ type: 'disconnect' }]);
        default:
          return stay();
      }

    case 'Connect':
    case 'Active':
      switch (e.type) {
        case 'ConnectRetryTimer_Expires':
          if (config.passive) return stay();
          return {
            state: { ...s, state: 'Connect' },
            actions: [
              ...(s.state === 'Connect' ? [{ type: 'disconnect' } as const] : []),
              { type: 'startTimer', timer: 'connectRetry', ms: config.connectRetryMs },
              { type: 'connect' },
            ],
          };
        case 'Tcp_CR_Acked':
        case 'TcpConnectionConfirmed':
          return openSent(s, config);
        case 'TcpConnectionFails':
          return fail();
        case 'HoldTimer_Expires':
        case 'KeepaliveTimer_Expires':
        case 'IdleHoldTimer_Expires':
        case 'StableTimer_Expires':
          // Timers of other states: stopped on the way here, so only a late echo.
          return stay();
        default:
          // Anything else needs a connection this state does not have.
          return fail();
      }

    case 'OpenSent':
      switch (e.type) {
        case 'HoldTimer_Expires':
          return fail(notification(ErrorCode.HoldTimerExpired, 0));
        case 'TcpConnectionFails': {
          // Back to Active, waiting for the peer or (active) retrying after the back-off.
          const counter = s.connectRetryCounter + 1;
          const actions: FsmAction[] = [
            { type: 'disconnect' },
            { type: 'stopTimer', timer: 'hold' },
          ];
          if (!config.passive) {
            const ms = backoffDelay(counter, config.backoff, config.random);
            actions.push({ type: 'startTimer', timer: 'connectRetry', ms });
          }
          return {
            state: { ...s, state: 'Active', connectRetryCounter: counter, lastError: describe(e) },
            actions,
          };
        }
        case 'BGPOpen':
        case 'CollisionWinner':
          return openConfirm(s, config, e.open);
        case 'BGPHeaderErr':
        case 'BGPOpenMsgErr':
          return fail(fromError(e.error));
        case 'OpenCollisionDump':
          return fail(notification(ErrorCode.Cease, CeaseSubcode.ConnectionCollisionResolution));
        case 'NotifMsgVerErr':
          return toIdle(s, config, { reason: describe(e), failure: false });
        case 'NotifMsg':
          return fail();
        case 'TcpConnectionConfirmed':
        case 'Tcp_CR_Acked':
        case 'IdleHoldTimer_Expires':
        case 'StableTimer_Expires':
          return stay();
        default:
          return fail(notification(ErrorCode.Fsm, FSM_ERROR_SUBCODE.OpenSent!));
      }

    case 'OpenConfirm':
      switch (e.type) {
        case 'HoldTimer_Expires':
          return fail(notification(ErrorCode.HoldTimerExpired, 0));
        case 'KeepaliveTimer_Expires':
          return stay(sendKeepalive(s, config));
        case 'KeepAliveMsg':
          return {
            state: { ...withoutError(s), state: 'Established' },
            actions: [
              ...restartHold(s),
              { type: 'startTimer', timer: 'stable', ms: config.stableMs },
              { type: 'established', peer: s.peer!, holdTime: s.holdTime ?? 0 },
            ],
          };
        case 'CollisionWinner':
          return openConfirm(s, config, e.open);
        case 'TcpConnectionFails':
        case 'NotifMsg':
          return fail();
        case 'NotifMsgVerErr':
          return toIdle(s, config, { reason: describe(e), failure: false });
        case 'BGPHeaderErr':
        case 'BGPOpenMsgErr':
          return fail(fromError(e.error));
        case 'OpenCollisionDump':
          return fail(notification(ErrorCode.Cease, CeaseSubcode.ConnectionCollisionResolution));
        case 'TcpConnectionConfirmed':
        case 'Tcp_CR_Acked':
        case 'IdleHoldTimer_Expires':
        case 'StableTimer_Expires':
          return stay();
        default:
          return fail(notification(ErrorCode.Fsm, FSM_ERROR_SUBCODE.OpenConfirm!));
      }

    case 'Established':
      switch (e.type) {
        case 'HoldTimer_Expires':
          return fail(notification(ErrorCode.HoldTimerExpired, 0));
        case 'KeepaliveTimer_Expires':
          return stay(sendKeepalive(s, config));
        case 'KeepAliveMsg':
          return stay(restartHold(s));
        case 'UpdateMsg':
          return stay([...restartHold(s), { type: 'deliver', update: e.update }]);
        case 'RouteRefreshMsg':
          return stay([
            ...restartHold(s),
            { type: 'refresh', afi: e.message.afi, safi: e.message.safi },
          ]);
        case 'StableTimer_Expires':
          return { state: { ...s, connectRetryCounter: 0 }, actions: [] };
        case 'UpdateMsgErr':
        case 'BGPHeaderErr':
        case 'BGPOpenMsgErr':
          return fail(fromError(e.error));
        case 'TcpConnectionFails':
        case 'NotifMsg':
        case 'NotifMsgVerErr':
          return fail();
        case 'OpenCollisionDump':
          return fail(notification(ErrorCode.Cease, CeaseSubcode.ConnectionCollisionResolution));
        case 'TcpConnectionConfirmed':
        case 'Tcp_CR_Acked':
        case 'IdleHoldTimer_Expires':
          return stay();
        default:
          return fail(notification(ErrorCode.Fsm, FSM_ERROR_SUBCODE.Established!));
      }
  }
}
