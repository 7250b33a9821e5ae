// The BFD state machine of RFC 5880 section 6.8, table-driven: every
// transition of section 6.8.6 for each local and received state, detection
// time expiry (6.8.4), administrative control (6.8.16), Poll/Final (6.5),
// timer values with the jitter rules of 6.8.7 and the detection time.
import { describe, expect, it } from 'vitest';

import { BfdState, Diag, type ControlPacket } from '../control/bgp/bfd/codec.js';
import {
  controlPacket,
  detectionTimeUs,
  initialState,
  jitteredTxMs,
  periodicTxAllowed,
  SLOW_TX_US,
  step,
  txIntervalUs,
  type BfdAction,
  type BfdFsmState,
} from '../control/bgp/bfd/fsm.js';

const LOCAL = 0x0a0b0c0d;
const REMOTE = 0x01020304;
const { AdminDown, Down, Init, Up } = BfdState;

function inState(sessionState: BfdState, over: Partial<BfdFsmState> = {}): BfdFsmState {
  const s = initialState(LOCAL);
  return {
    ...s,
    sessionState,
    desiredMinTxUs: sessionState === Up ? 300_000 : SLOW_TX_US,
    ...(sessionState === Down || sessionState === AdminDown
      ? {}
      : { remoteDiscr: REMOTE, remoteMinRxUs: 300_000, remoteDetectMult: 3 }),
    ...over,
  };
}

function from(state: BfdState, over: Partial<ControlPacket> = {}): ControlPacket {
  return {
    version: 1,
    diag: 0,
    state,
    poll: false,
    final: false,
    controlPlaneIndependent: false,
    authentication: false,
    demand: false,
    multipoint: false,
    detectMult: 3,
    myDiscriminator: REMOTE,
    yourDiscriminator: state === Down || state === AdminDown ? 0 : LOCAL,
    desiredMinTxInterval: 300_000,
    requiredMinRxInterval: 300_000,
    requiredMinEchoRxInterval: 0,
    ...over,
  };
}

const changes = (actions: BfdAction[]) => actions.filter((a) => a.type === 'stateChange');

describe('section 6.8.6: received packets', () => {
  const table: [local: BfdState, received: BfdState, next: BfdState, diag?: Diag][] = [
    [Down, AdminDown, Down],
    [Down, Down, Init, Diag.None],
    [Down, Init, Up, Diag.None],
    [Down, Up, Down],
    [Init, AdminDown, Down, Diag.NeighborSignaledSessionDown],
    [Init, Down, Init],
    [Init, Init, Up, Diag.None],
    [Init, Up, Up, Diag.None],
    [Up, AdminDown, Down, Diag.NeighborSignaledSessionDown],
    [Up, Down, Down, Diag.NeighborSignaledSessionDown],
    [Up, Init, Up],
    [Up, Up, Up],
  ];
  it.each(table)('%s + received %s -> %s', (local, received, next, diag) => {
    const { state, actions } = step(inState(local), { type: 'received', packet: from(received) });
    expect(BfdState[state.sessionState]).toBe(BfdState[next]);
    expect(state.remoteDiscr).toBe(REMOTE);
    expect(state.remoteSessionState).toBe(received);
    if (next === local) expect(changes(actions)).toEqual([]);
    else {
      expect(changes(actions)).toEqual([{ type: 'stateChange', from: local, to: next, diag }]);
      expect(state.localDiag).toBe(diag);
      // The peer hears of the change at once.
      expect(actions).toContainEqual({ type: 'sendNow', final: false });
    }
    // Every accepted packet restarts the detection timer: 3 x max(300, 300) ms.
    expect(actions.at(-1)).toEqual({ type: 'armDetection', ms: 900 });
  });

  it('AdminDown discards every packet (but learns the peer)', () => {
    for (const received of [AdminDown, Down, Init, Up]) {
      const { state, actions } = step(inState(AdminDown), {
        type: 'received',
        packet: from(received),
      });
      expect(state.sessionState).toBe(AdminDown);
      expect(actions).toContainEqual({
        type: 'discard',
        reason: 'the session is administratively down',
      });
      expect(actions.some((a) => a.type === 'armDetection' || a.type === 'sendNow')).toBe(false);
    }
  });

  it('a Your Discriminator that is not ours is discarded and changes nothing', () => {
    const s = inState(Up);
    const { state, actions } = step(s, {
      type: 'received',
      packet: from(Down, { yourDiscriminator: LOCAL + 1 }),
    });
    expect(state).toBe(s);
    expect(actions).toEqual([{ type: 'discard', reason: 'Your Discriminator is not ours' }]);
  });

  it('records the remote timing and tells the session when the transmit interval changes', () => {
    const s = inState(Up, { remoteMinRxUs: 300_000 });
    const slower = step(s, {
      type: 'received',
      packet: from(Up, {
        requiredMinRxInterval: 500_000,
        desiredMinTxInterval: 200_000,
        detectMult: 5,
      }),
    });
    expect(slower.state).toMatchObject({
      remoteMinRxUs: 500_000,
      remoteDesiredMinTxUs: 200_000,
      remoteDetectMult: 5,
    });
    expect(txIntervalUs(slower.state)).toBe(500_000);
    expect(slower.actions).toContainEqual({ type: 'txIntervalChanged' });
    // 5 x max(our 300 ms, their 200 ms).
    expect(slower.actions).toContainEqual({ type: 'armDetection', ms: 1500 });
    const same = step(slower.state, {
      type: 'received',
      packet: from(Up, { requiredMinRxInterval: 500_000 }),
    });
    expect(same.actions).not.toContainEqual({ type: 'txIntervalChanged' });
  });
});

describe('section 6.8.3 and 6.5: timing changes and Poll/Final', () => {
  it('comes Up at the fast rate with a Poll Sequence, and a Final ends it', () => {
    const init = step(initialState(LOCAL), { type: 'received', packet: from(Down) }).state;
    expect(init.desiredMinTxUs).toBe(SLOW_TX_US);
    expect(init.pollActive).toBe(false);
    const up = step(init, { type: 'received', packet: from(Up) });
    expect(up.state.desiredMinTxUs).toBe(300_000);
    expect(up.state.pollActive).toBe(true);
    expect(up.actions).toContainEqual({ type: 'txIntervalChanged' });
    expect(controlPacket(up.state, false)).toMatchObject({ poll: true, final: false, state: Up });
    const done = step(up.state, { type: 'received', packet: from(Up, { final: true }) });
    expect(done.state.pollActive).toBe(false);
    expect(controlPacket(done.state, false).poll).toBe(false);
  });

  it('answers a Poll with a Final at once, never with both bits', () => {
    const s = inState(Up, { pollActive: true });
    const { actions } = step(s, { type: 'received', packet: from(Up, { poll: true }) });
    expect(actions).toContainEqual({ type: 'sendNow', final: true });
    expect(controlPacket(s, true)).toMatchObject({ poll: false, final: true });
  });

  it('falls back to one packet a second when leaving Up', () => {
    const { state } = step(inState(Up), { type: 'detectionTimeExpired' });
    expect(state.desiredMinTxUs).toBe(SLOW_TX_US);
    expect(controlPacket(state, false).desiredMinTxInterval).toBe(SLOW_TX_US);
  });

  it('a slower configured rate is kept while not Up', () => {
    const s = initialState(LOCAL, {
      desiredMinTxUs: 2_000_000,
      requiredMinRxUs: 300_000,
      detectMult: 3,
    });
    expect(s.desiredMinTxUs).toBe(2_000_000);
  });
});

describe('section 6.8.4: detection time', () => {
  it.each([
    [Up, Diag.ControlDetectionTimeExpired, Down],
    [Init, Diag.ControlDetectionTimeExpired, Down],
  ])('%s -> Down with diag 1 and the remote discriminator forgotten', (local, diag, next) => {
    const { state, actions } = step(inState(local), { type: 'detectionTimeExpired' });
    expect(state.sessionState).toBe(next);
    expect(state.remoteDiscr).toBe(0);
    expect(changes(actions)).toEqual([{ type: 'stateChange', from: local, to: next, diag }]);
    expect(controlPacket(state, false)).toMatchObject({ diag, yourDiscriminator: 0, state: Down });
  });

  it('in Down only forgets the remote discriminator', () => {
    const { state, actions } = step(inState(Down, { remoteDiscr: REMOTE }), {
      type: 'detectionTimeExpired',
    });
    expect(state.sessionState).toBe(Down);
    expect(state.remoteDiscr).toBe(0);
    expect(actions).toEqual([]);
  });

  it.each([
    // [our RequiredMinRx, their DesiredMinTx, their DetectMult, detection ms]
    [300_000, 300_000, 3, 900],
    [300_000, 1_000_000, 3, 3000],
    [300_000, 100_000, 3, 900],
    [50_000, 100_000, 5, 500],
    [1_000_000, 10_000, 1, 1000],
  ])('rx %d us, remote tx %d us x %d -> %d ms', (rx, remoteTx, mult, ms) => {
    const s = inState(Up, {
      timing: { desiredMinTxUs: 300_000, requiredMinRxUs: rx, detectMult: 3 },
      remoteDesiredMinTxUs: remoteTx,
      remoteDetectMult: mult,
    });
    expect(detectionTimeUs(s) / 1000).toBe(ms);
  });
});

describe('section 6.8.7: transmission', () => {
  it('sends at max(our DesiredMinTx, their RequiredMinRx), 75-100% jittered', () => {
    const s = inState(Up, { remoteMinRxUs: 400_000 });
    expect(txIntervalUs(s)).toBe(400_000);
    expect(jitteredTxMs(s, 0)).toBe(300);
    expect(jitteredTxMs(s, 0.5)).toBe(350);
    expect(jitteredTxMs(s, 0.999999)).toBeLessThan(400);
    expect(jitteredTxMs(inState(Up, { remoteMinRxUs: 1 }), 0)).toBe(225);
  });

  it('with a detect multiplier of 1, at 75-90% so one late packet cannot end the session', () => {
    const s = inState(Up, {
      timing: { desiredMinTxUs: 100_000, requiredMinRxUs: 100_000, detectMult: 1 },
      desiredMinTxUs: 100_000,
      remoteMinRxUs: 100_000,
    });
    expect(jitteredTxMs(s, 0)).toBeCloseTo(75);
    expect(jitteredTxMs(s, 0.999999)).toBeLessThan(90);
    expect(jitteredTxMs(s, 0.999999)).toBeGreaterThan(89.9);
  });

  it('sends nothing periodically when the peer asks for none or runs Demand mode', () => {
    expect(periodicTxAllowed(inState(Up))).toBe(true);
    expect(periodicTxAllowed(inState(Up, { remoteMinRxUs: 0 }))).toBe(false);
    expect(periodicTxAllowed(inState(Up, { remoteDemandMode: true, remoteSessionState: Up }))).toBe(
      false,
    );
    expect(
      periodicTxAllowed(inState(Init, { remoteDemandMode: true, remoteSessionState: Up })),
    ).toBe(true);
  });

  it('fills the packet from the state variables', () => {
    expect(controlPacket(inState(Up), false)).toEqual({
      diag: Diag.None,
      state: Up,
      poll: false,
      final: false,
      controlPlaneIndependent: false,
      demand: false,
      multipoint: false,
      detectMult: 3,
      myDiscriminator: LOCAL,
      yourDiscriminator: REMOTE,
      desiredMinTxInterval: 300_000,
      requiredMinRxInterval: 300_000,
      requiredMinEchoRxInterval: 0,
    });
  });
});

describe('section 6.8.16: administrative control', () => {
  it.each([Down, Init, Up])('%s -> AdminDown with diag 7, detection off', (local) => {
    const { state, actions } = step(inState(local), { type: 'adminDown' });
    expect(state.sessionState).toBe(AdminDown);
    expect(state.localDiag).toBe(Diag.AdministrativelyDown);
    expect(changes(actions)).toEqual([
      { type: 'stateChange', from: local, to: AdminDown, diag: Diag.AdministrativelyDown },
    ]);
    expect(actions).toContainEqual({ type: 'sendNow', final: false });
    expect(actions).toContainEqual({ type: 'disarmDetection' });
  });

  it('adminUp returns to Down with no diagnostic; in any other state it does nothing', () => {
    const { state } = step(inState(AdminDown, { localDiag: Diag.AdministrativelyDown }), {
      type: 'adminUp',
    });
    expect(state.sessionState).toBe(Down);
    expect(state.localDiag).toBe(Diag.None);
    const up = inState(Up);
    expect(step(up, { type: 'adminUp' })).toEqual({ state: up, actions: [] });
  });
});

describe('initial state (section 6.8.1)', () => {
  it('starts Down, slow, with no remote', () => {
    expect(initialState(LOCAL)).toMatchObject({
      sessionState: Down,
      remoteSessionState: Down,
      remoteDiscr: 0,
      remoteMinRxUs: 1,
      desiredMinTxUs: SLOW_TX_US,
      localDiag: Diag.None,
      pollActive: false,
    });
  });

  it.each([
    [0, {}],
    [2 ** 32, {}],
    [1.5, {}],
    [1, { detectMult: 0 }],
    [1, { detectMult: 256 }],
    [1, { desiredMinTxUs: 0 }],
    [1, { requiredMinRxUs: 0 }],
  ])('refuses discriminator %d with timing %o', (discr, over) => {
    expect(() =>
      initialState(discr, {
        desiredMinTxUs: 300_000,
        requiredMinRxUs: 300_000,
        detectMult: 3,
        ...over,
      }),
    ).toThrow(RangeError);
  });
});
