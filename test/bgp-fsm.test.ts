// The BGP state machine (RFC 4271 section 8), table-driven: from each state,
// each event, the next state and the actions the session must carry out.
import { describe, expect, it } from 'vitest';

import { BgpProtocolError } from '../control/bgp/codec/errors.js';
import type { BgpMessage } from '../control/bgp/codec/message.js';
import { shutdownNotification } from '../control/bgp/codec/notification.js';
import { buildOpen, type OpenMessage } from '../control/bgp/codec/open.js';
import {
  INITIAL_STATE,
  step,
  type FsmAction,
  type FsmConfig,
  type FsmEvent,
  type FsmState,
  type State,
} from '../control/bgp/fsm.js';
import {
  backoffDelay,
  DEFAULT_BACKOFF,
  jittered,
  keepaliveMs,
  negotiateHoldTime,
} from '../control/bgp/timers.js';

const OURS = buildOpen({ asn: 65002, holdTime: 90, bgpId: '192.0.2.2', capabilities: [] });
const PEER: OpenMessage = buildOpen({
  asn: 65001,
  holdTime: 30,
  bgpId: '192.0.2.1',
  capabilities: [],
});

const config = (over: Partial<FsmConfig> = {}): FsmConfig => ({
  open: OURS,
  passive: false,
  connectRetryMs: 5000,
  openHoldMs: 240_000,
  backoff: DEFAULT_BACKOFF,
  stableMs: 60_000,
  random: () => 0, // no jitter: exact numbers in the tables
  ...over,
});
const ACTIVE = config();
const PASSIVE = config({ passive: true });

function run(events: FsmEvent[], c = ACTIVE, from: FsmState = INITIAL_STATE): FsmState {
  return events.reduce((s, e) => step(s, e, c).state, from);
}

const err = (code: number, subcode: number) => new BgpProtocolError(code, subcode, 'test');
const E = {
  start: { type: 'ManualStart' },
  stop: { type: 'ManualStop', message: 'bye' },
  autoStop: { type: 'AutomaticStop', notification: shutdownNotification('', 4) },
  connectRetry: { type: 'ConnectRetryTimer_Expires' },
  hold: { type: 'HoldTimer_Expires' },
  keepaliveTimer: { type: 'KeepaliveTimer_Expires' },
  idleHold: { type: 'IdleHoldTimer_Expires' },
  stable: { type: 'StableTimer_Expires' },
  acked: { type: 'Tcp_CR_Acked' },
  confirmed: { type: 'TcpConnectionConfirmed' },
  fails: { type: 'TcpConnectionFails', reason: 'ECONNREFUSED' },
  open: { type: 'BGPOpen', open: PEER },
  headerErr: { type: 'BGPHeaderErr', error: err(1, 1) },
  openErr: { type: 'BGPOpenMsgErr', error: err(2, 2) },
  collisionDump: { type: 'OpenCollisionDump' },
  collisionWinner: { type: 'CollisionWinner', open: { ...PEER, holdTime: 9 } },
  notifVer: {
    type: 'NotifMsgVerErr',
    notification: { type: 'notification', code: 2, subcode: 1, data: Buffer.alloc(2) },
  },
  notif: { type: 'NotifMsg', notification: shutdownNotification() },
  keepalive: { type: 'KeepAliveMsg' },
  update: {
    type: 'UpdateMsg',
    update: { type: 'update', withdrawn: [], attributes: {}, nlri: [] },
  },
  updateErr: { type: 'UpdateMsgErr', error: err(3, 11) },
  refresh: {
    type: 'RouteRefreshMsg',
    message: { type: 'routeRefresh', afi: 2, safi: 1, subtype: 0 },
  },
} satisfies Record<string, FsmEvent>;

/** The states, reached the way a session reaches them. */
const FROM: Record<string, { s: FsmState; c: FsmConfig }> = {
  Idle: { s: INITIAL_STATE, c: ACTIVE },
  'Idle (backing off)': { s: run([E.start, E.fails]), c: ACTIVE },
  Connect: { s: run([E.start]), c: ACTIVE },
  'Active (passive)': { s: run([E.start], PASSIVE), c: PASSIVE },
  'Active (after OpenSent)': { s: run([E.start, E.acked, E.fails]), c: ACTIVE },
  OpenSent: { s: run([E.start, E.acked]), c: ACTIVE },
  OpenConfirm: { s: run([E.start, E.acked, E.open]), c: ACTIVE },
  Established: { s: run([E.start, E.acked, E.open, E.keepalive]), c: ACTIVE },
};

function name(m: BgpMessage): string {
  return m.type === 'notification' ? `NOTIFICATION ${m.code}/${m.subcode}` : m.type.toUpperCase();
}

/** Actions in words; timer stops are left out (checked on their own below). */
function words(actions: FsmAction[]): string[] {
  return actions.flatMap((a) => {
    switch (a.type) {
      case 'send':
        return [`send ${name(a.message)}`];
      case 'startTimer':
        return [`start ${a.timer} ${a.ms}`];
      case 'stopTimer':
        return [];
      case 'refresh':
        return [`refresh ${a.afi}/${a.safi}`];
      case 'established':
        return [`established hold ${a.holdTime}`];
      default:
        return [a.type];
    }
  });
}

type Row = [from: string, event: keyof typeof E, to: State, actions: string[]];

const TABLE: Row[] = [
  // Idle
  ['Idle', 'start', 'Connect', ['start connectRetry 5000', 'connect']],
  ['Idle', 'confirmed', 'Idle', ['disconnect']], // refused: never started
  ['Idle', 'idleHold', 'Idle', []],
  ['Idle', 'open', 'Idle', []],
  ['Idle', 'stop', 'Idle', []],
  ['Idle (backing off)', 'idleHold', 'Connect', ['start connectRetry 5000', 'connect']],
  ['Idle (backing off)', 'confirmed', 'OpenSent', ['send OPEN', 'start hold 240000']],
  ['Idle (backing off)', 'stop', 'Idle', []],
  // Connect
  ['Connect', 'acked', 'OpenSent', ['send OPEN', 'start hold 240000']],
  ['Connect', 'confirmed', 'OpenSent', ['send OPEN', 'start hold 240000']],
  ['Connect', 'connectRetry', 'Connect', ['disconnect', 'start connectRetry 5000', 'connect']],
  ['Connect', 'fails', 'Idle', ['disconnect', 'start idleHold 1000']],
  ['Connect', 'stop', 'Idle', ['disconnect']],
  ['Connect', 'start', 'Connect', []],
  ['Connect', 'keepalive', 'Idle', ['disconnect', 'start idleHold 1000']],
  // Active
  ['Active (passive)', 'confirmed', 'OpenSent', ['send OPEN', 'start hold 240000']],
  ['Active (passive)', 'connectRetry', 'Active', []],
  ['Active (passive)', 'fails', 'Idle', ['disconnect', 'start idleHold 1000']],
  ['Active (after OpenSent)', 'connectRetry', 'Connect', ['start connectRetry 5000', 'connect']],
  ['Active (after OpenSent)', 'stop', 'Idle', ['disconnect']],
  // OpenSent
  [
    'OpenSent',
    'open',
    'OpenConfirm',
    ['send KEEPALIVE', 'start keepalive 10000', 'start hold 30000'],
  ],
  [
    'OpenSent',
    'collisionWinner',
    'OpenConfirm',
    ['send KEEPALIVE', 'start keepalive 3000', 'start hold 9000'],
  ],
  ['OpenSent', 'hold', 'Idle', ['send NOTIFICATION 4/0', 'disconnect', 'start idleHold 1000']],
  ['OpenSent', 'headerErr', 'Idle', ['send NOTIFICATION 1/1', 'disconnect', 'start idleHold 1000']],
  ['OpenSent', 'openErr', 'Idle', ['send NOTIFICATION 2/2', 'disconnect', 'start idleHold 1000']],
  [
    'OpenSent',
    'collisionDump',
    'Idle',
    ['send NOTIFICATION 6/7', 'disconnect', 'start idleHold 1000'],
  ],
  ['OpenSent', 'notifVer', 'Idle', ['disconnect', 'start idleHold 1000']],
  ['OpenSent', 'notif', 'Idle', ['disconnect', 'start idleHold 1000']],
  ['OpenSent', 'fails', 'Active', ['disconnect', 'start connectRetry 1000']],
  ['OpenSent', 'keepalive', 'Idle', ['send NOTIFICATION 5/1', 'disconnect', 'start idleHold 1000']],
  ['OpenSent', 'update', 'Idle', ['send NOTIFICATION 5/1', 'disconnect', 'start idleHold 1000']],
  ['OpenSent', 'stop', 'Idle', ['send NOTIFICATION 6/2', 'disconnect']],
  ['OpenSent', 'autoStop', 'Idle', ['send NOTIFICATION 6/4', 'disconnect', 'start idleHold 1000']],
  // OpenConfirm
  [
    'OpenConfirm',
    'keepalive',
    'Established',
    ['start hold 30000', 'start stable 60000', 'established hold 30'],
  ],
  ['OpenConfirm', 'keepaliveTimer', 'OpenConfirm', ['send KEEPALIVE', 'start keepalive 10000']],
  [
    'OpenConfirm',
    'collisionWinner',
    'OpenConfirm',
    ['send KEEPALIVE', 'start keepalive 3000', 'start hold 9000'],
  ],
  ['OpenConfirm', 'hold', 'Idle', ['send NOTIFICATION 4/0', 'disconnect', 'start idleHold 1000']],
  ['OpenConfirm', 'notif', 'Idle', ['disconnect', 'start idleHold 1000']],
  ['OpenConfirm', 'fails', 'Idle', ['disconnect', 'start idleHold 1000']],
  ['OpenConfirm', 'update', 'Idle', ['send NOTIFICATION 5/2', 'disconnect', 'start idleHold 1000']],
  ['OpenConfirm', 'open', 'Idle', ['send NOTIFICATION 5/2', 'disconnect', 'start idleHold 1000']],
  [
    'OpenConfirm',
    'collisionDump',
    'Idle',
    ['send NOTIFICATION 6/7', 'disconnect', 'start idleHold 1000'],
  ],
  ['OpenConfirm', 'stop', 'Idle', ['send NOTIFICATION 6/2', 'disconnect']],
  // Established
  ['Established', 'keepalive', 'Established', ['start hold 30000']],
  ['Established', 'keepaliveTimer', 'Established', ['send KEEPALIVE', 'start keepalive 10000']],
  ['Established', 'update', 'Established', ['start hold 30000', 'deliver']],
  ['Established', 'refresh', 'Established', ['start hold 30000', 'refresh 2/1']],
  ['Established', 'stable', 'Established', []],
  ['Established', 'confirmed', 'Established', []], // the session closes the newcomer
  [
    'Established',
    'updateErr',
    'Idle',
    ['send NOTIFICATION 3/11', 'disconnect', 'releaseRoutes', 'start idleHold 1000'],
  ],
  [
    'Established',
    'headerErr',
    'Idle',
    ['send NOTIFICATION 1/1', 'disconnect', 'releaseRoutes', 'start idleHold 1000'],
  ],
  [
    'Established',
    'hold',
    'Idle',
    ['send NOTIFICATION 4/0', 'disconnect', 'releaseRoutes', 'start idleHold 1000'],
  ],
  ['Established', 'notif', 'Idle', ['disconnect', 'releaseRoutes', 'start idleHold 1000']],
  ['Established', 'fails', 'Idle', ['disconnect', 'releaseRoutes', 'start idleHold 1000']],
  [
    'Established',
    'open',
    'Idle',
    ['send NOTIFICATION 5/3', 'disconnect', 'releaseRoutes', 'start idleHold 1000'],
  ],
  ['Established', 'stop', 'Idle', ['send NOTIFICATION 6/2', 'disconnect', 'releaseRoutes']],
  [
    'Established',
    'autoStop',
    'Idle',
    ['send NOTIFICATION 6/4', 'disconnect', 'releaseRoutes', 'start idleHold 1000'],
  ],
];

describe('BGP FSM transitions', () => {
  for (const [from, event, to, actions] of TABLE) {
    it(`${from} + ${E[event].type} -> ${to}`, () => {
      const { s, c } = FROM[from]!;
      const r = step(s, E[event], c);
      expect(r.state.state).toBe(to);
      expect(words(r.actions)).toEqual(actions);
    });
  }

  it('every state leaves for Idle with all timers stopped and the connection dropped', () => {
    for (const [from, { s, c }] of Object.entries(FROM)) {
      for (const e of Object.values(E)) {
        const r = step(s, e, c);
        if (r.state.state !== 'Idle' || s.state === 'Idle') continue;
        const stopped = r.actions.filter((a) => a.type === 'stopTimer').map((a) => a.timer);
        expect(new Set(stopped), `${from} + ${e.type}`).toEqual(
          new Set(['connectRetry', 'hold', 'keepalive', 'idleHold', 'stable']),
        );
        expect(words(r.actions), `${from} + ${e.type}`).toContain('disconnect');
        // Whatever is sent goes before the connection is dropped.
        const sendAt = r.actions.findIndex((a) => a.type === 'send');
        if (sendAt >= 0)
          expect(sendAt).toBeLessThan(r.actions.findIndex((a) => a.type === 'disconnect'));
        // After an operator's stop nothing restarts; after a failure the back-off does.
        const restarts = r.actions.some((a) => a.type === 'startTimer' && a.timer === 'idleHold');
        expect(restarts, `${from} + ${e.type}`).toBe(e.type !== 'ManualStop');
      }
    }
  });

  it('the OPEN sent is ours; the peer OPEN is kept from OpenConfirm on', () => {
    const r = step(FROM.Connect!.s, E.acked, ACTIVE);
    expect(r.actions).toContainEqual({ type: 'send', message: OURS });
    const est = FROM.Established!.s;
    expect(est.peer).toBe(PEER);
    expect(est.holdTime).toBe(30);
  });

  it('a NOTIFICATION received is never answered, in any state', () => {
    for (const { s, c } of Object.values(FROM)) {
      for (const e of [E.notif, E.notifVer]) {
        expect(step(s, e, c).actions.some((a) => a.type === 'send')).toBe(false);
      }
    }
  });

  it('ManualStop carries the operator message as a shutdown communication', () => {
    const r = step(FROM.Established!.s, { type: 'ManualStop', message: 'maintenance' }, ACTIVE);
    expect(r.actions[0]).toEqual({ type: 'send', message: shutdownNotification('maintenance') });
  });
});

describe('hold time and keepalive', () => {
  it('the smaller offer wins; 0 means no timers at all', () => {
    expect(negotiateHoldTime(90, 30)).toBe(30);
    expect(negotiateHoldTime(90, 240)).toBe(90);
    expect(negotiateHoldTime(90, 0)).toBe(0);
    expect(keepaliveMs(90)).toBe(30_000);
    expect(keepaliveMs(3)).toBe(1000);
    const r = step(FROM.OpenSent!.s, { type: 'BGPOpen', open: { ...PEER, holdTime: 0 } }, ACTIVE);
    expect(r.state.holdTime).toBe(0);
    expect(r.actions.filter((a) => a.type === 'startTimer')).toEqual([]);
    const est = step(r.state, E.keepalive, ACTIVE);
    expect(words(est.actions)).toEqual(['start stable 60000', 'established hold 0']);
  });

  it('keepalives are jittered down by at most a quarter', () => {
    expect(jittered(10_000, 0.25, () => 0)).toBe(10_000);
    expect(jittered(10_000, 0.25, () => 1)).toBe(7_500);
    const r = step(FROM.OpenSent!.s, E.open, config({ random: () => 0.5 }));
    expect(words(r.actions)).toContain('start keepalive 8750');
  });
});

describe('connect-retry back-off', () => {
  it('doubles per failure up to the cap, jitter only ever shortens it', () => {
    const delays = Array.from({ length: 10 }, (_, i) =>
      backoffDelay(i + 1, DEFAULT_BACKOFF, () => 0),
    );
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 64000, 120000, 120000, 120000]);
    expect(backoffDelay(20, DEFAULT_BACKOFF, () => 1)).toBe(90_000);
  });

  it('grows through consecutive failures and starts afresh after a stable session', () => {
    let s = run([E.start]);
    const seen: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = step(s, E.fails, ACTIVE);
      const hold = r.actions.find((a) => a.type === 'startTimer' && a.timer === 'idleHold');
      seen.push(hold?.type === 'startTimer' ? hold.ms : -1);
      s = run([E.idleHold], ACTIVE, r.state);
      expect(s.state).toBe('Connect');
    }
    expect(seen).toEqual([1000, 2000, 4000, 8000]);
    s = run([E.acked, E.open, E.keepalive], ACTIVE, s);
    expect(s.connectRetryCounter).toBe(4);
    // A flap right after Established still counts...
    expect(step(s, E.fails, ACTIVE).actions).toContainEqual({
      type: 'startTimer',
      timer: 'idleHold',
      ms: 16000,
    });
    // ...but not once the session has been up for stableMs.
    s = run([E.stable], ACTIVE, s);
    expect(s.connectRetryCounter).toBe(0);
    expect(step(s, E.fails, ACTIVE).actions).toContainEqual({
      type: 'startTimer',
      timer: 'idleHold',
      ms: 1000,
    });
  });

  it('remembers why it last failed until the next Established', () => {
    let s = run([E.start, E.fails]);
    expect(s.lastError).toBe('connection lost: ECONNREFUSED');
    s = run([E.idleHold, E.acked, E.open], ACTIVE, s);
    expect(s.state).toBe('OpenConfirm');
    expect(s.lastError).toBe('connection lost: ECONNREFUSED');
    s = run([E.keepalive], ACTIVE, s);
    expect(s.lastError).toBeUndefined();
  });

  it('ManualStart after a ManualStop starts from the shortest delay', () => {
    const s = run([E.start, E.fails, E.idleHold, E.fails, E.stop, E.start]);
    expect(s.connectRetryCounter).toBe(0);
    expect(s.state).toBe('Connect');
  });
});
