// BfdEndpoint and BfdSession over real UDP sockets on loopback addresses
// (no root needed): two xlb sessions come Up and notice each other's silence
// within the detection time; packets go out from a source port in
// 49152-65535 with xlb's discriminator; garbage, packets for no session and
// packets from the wrong address are counted and change nothing.
import dgram from 'node:dgram';

import { afterEach, describe, expect, it } from 'vitest';

import {
  BfdEndpoint,
  BfdSocketError,
  BfdState,
  decodeControl,
  Diag,
  encodeControl,
  SOURCE_PORT_MAX,
  SOURCE_PORT_MIN,
  type BfdSession,
  type ControlPacket,
} from '../control/bgp/bfd/index.js';
import { until } from '../control/topology/agent-harness.js';
import { Cleanup, recordingLog } from './support/bgp/harness.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** 30 ms x 3: fast enough for a unit test, slow enough for a busy machine. */
const FAST = { desiredMinTxUs: 30_000, requiredMinRxUs: 30_000, detectMult: 3 };

function endpoint(localAddress: string): BfdEndpoint {
  const { log } = recordingLog();
  const e = new BfdEndpoint({ localAddress, port: 0, log });
  cleanup.add(() => e.close());
  return e;
}

async function rawSocket(address: string): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, address, resolve));
  cleanup.add(() => s.close());
  return s;
}

function nextPacket(s: dgram.Socket): Promise<{ packet: ControlPacket; port: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no BFD packet within 5 s')), 5_000);
    s.once('message', (msg, rinfo) => {
      clearTimeout(timer);
      const d = decodeControl(msg);
      if (!d.ok) reject(new Error(`xlb sent a packet that breaks ${d.reason}: ${d.detail}`));
      else resolve({ packet: d.packet, port: rinfo.port });
    });
  });
}

describe('BFD sessions over loopback', () => {
  it('two xlb sessions come Up; one falling silent is detected within 3 x 30 ms', async () => {
    const a = endpoint('127.0.0.1');
    const b = endpoint('127.0.0.2');
    const sa = a.session({ peerAddress: '127.0.0.2', peerPort: b.port, timing: FAST });
    const sb = b.session({ peerAddress: '127.0.0.1', peerPort: a.port, timing: FAST });
    const events: string[] = [];
    sa.on('up', () => events.push('up'));
    sa.on('down', (d) => events.push(`down:${Diag[d]}`));
    await until(
      () => `both Up (${BfdState[sa.state]}, ${BfdState[sb.state]})`,
      () => sa.state === BfdState.Up && sb.state === BfdState.Up,
      10_000,
      5,
    );
    await until(
      () => 'the fast rate on both sides',
      () => sa.variables.remoteDesiredMinTxUs === 30_000 && !sa.variables.pollActive,
      5_000,
      5,
    );
    const silent = Date.now();
    sb.close({ notifyPeer: false });
    await until(
      () => 'a to go Down',
      () => sa.state === BfdState.Down,
      5_000,
      2,
    );
    const after = Date.now() - silent;
    // 90 ms plus slack for a busy machine; the slow rate would take 3 s.
    expect(after).toBeLessThan(300);
    expect(events).toEqual(['up', 'down:ControlDetectionTimeExpired']);
    expect(a.stats.discarded).toEqual({});
  });

  it("a peer's graceful close is AdminDown, not a failure; our own close emits nothing", async () => {
    const a = endpoint('127.0.0.1');
    const b = endpoint('127.0.0.2');
    const sa = a.session({ peerAddress: '127.0.0.2', peerPort: b.port, timing: FAST });
    const sb = b.session({ peerAddress: '127.0.0.1', peerPort: a.port, timing: FAST });
    const events: string[] = [];
    for (const [name, s] of [
      ['a', sa],
      ['b', sb],
    ] as const) {
      s.on('down', (d) => events.push(`${name} down:${Diag[d]}`));
      s.on('peerAdminDown', () => events.push(`${name} peerAdminDown`));
    }
    await until(
      () => 'both Up',
      () => sa.state === BfdState.Up && sb.state === BfdState.Up,
      10_000,
      5,
    );
    sb.close();
    await until(
      () => 'a to go Down',
      () => sa.state === BfdState.Down,
      5_000,
      2,
    );
    expect(sa.variables.localDiag).toBe(Diag.NeighborSignaledSessionDown);
    expect(sb.state).toBe(BfdState.AdminDown);
    expect(events).toEqual(['a peerAdminDown']);
  });

  it('sends from a port in 49152-65535 with its discriminator, and follows a raw peer', async () => {
    const e = endpoint('127.0.0.1');
    const raw = await rawSocket('127.0.0.4');
    const session = e.session({
      peerAddress: '127.0.0.4',
      peerPort: raw.address().port,
      timing: FAST,
    });
    const first = await nextPacket(raw);
    expect(first.port).toBeGreaterThanOrEqual(SOURCE_PORT_MIN);
    expect(first.port).toBeLessThanOrEqual(SOURCE_PORT_MAX);
    expect(first.packet).toMatchObject({
      state: BfdState.Down,
      myDiscriminator: session.localDiscr,
      yourDiscriminator: 0,
      desiredMinTxInterval: 1_000_000,
      requiredMinRxInterval: 30_000,
      detectMult: 3,
    });
    const down = {
      diag: 0,
      state: BfdState.Down,
      poll: false,
      final: false,
      controlPlaneIndependent: false,
      demand: false,
      multipoint: false,
      detectMult: 3,
      myDiscriminator: 77,
      yourDiscriminator: 0,
      desiredMinTxInterval: 1_000_000,
      requiredMinRxInterval: 30_000,
      requiredMinEchoRxInterval: 0,
    };
    raw.send(encodeControl(down), e.port, '127.0.0.1');
    const reply = await nextPacket(raw);
    expect(reply.packet).toMatchObject({ state: BfdState.Init, yourDiscriminator: 77 });
    expect(session.state).toBe(BfdState.Init);
    // A Poll is answered with a Final at once.
    const seen: ControlPacket[] = [];
    raw.on('message', (msg) => {
      const d = decodeControl(msg);
      if (d.ok) seen.push(d.packet);
    });
    raw.send(
      encodeControl({
        ...down,
        state: BfdState.Up,
        poll: true,
        yourDiscriminator: session.localDiscr,
      }),
      e.port,
      '127.0.0.1',
    );
    await until(
      () => 'a Final',
      () => seen.some((p) => p.final && !p.poll),
      5_000,
      5,
    );
    expect(session.state).toBe(BfdState.Up);
  });

  it('counts garbage, unknown sessions and wrong sources, and keeps running', async () => {
    const e = endpoint('127.0.0.1');
    const raw = await rawSocket('127.0.0.5');
    const stranger = await rawSocket('127.0.0.6');
    const session: BfdSession = e.session({
      peerAddress: '127.0.0.5',
      peerPort: raw.address().port,
      timing: FAST,
    });
    const good = {
      diag: 0,
      state: BfdState.Up,
      poll: false,
      final: false,
      controlPlaneIndependent: false,
      demand: false,
      multipoint: false,
      detectMult: 3,
      myDiscriminator: 5,
      yourDiscriminator: session.localDiscr,
      desiredMinTxInterval: 30_000,
      requiredMinRxInterval: 30_000,
      requiredMinEchoRxInterval: 0,
    };
    raw.send(Buffer.from('not a BFD packet'), e.port, '127.0.0.1');
    raw.send(Buffer.alloc(24), e.port, '127.0.0.1');
    raw.send(
      encodeControl({ ...good, yourDiscriminator: session.localDiscr ^ 1 }),
      e.port,
      '127.0.0.1',
    );
    stranger.send(encodeControl(good), e.port, '127.0.0.1');
    stranger.send(
      encodeControl({ ...good, state: BfdState.Down, yourDiscriminator: 0 }),
      e.port,
      '127.0.0.1',
    );
    await until(
      () => `5 packets received (${JSON.stringify(e.stats)})`,
      () => e.stats.received === 5,
      5_000,
      5,
    );
    expect(e.stats.discarded).toEqual({
      truncated: 1,
      badVersion: 1,
      noSession: 2,
      wrongSource: 1,
    });
    expect(session.state).toBe(BfdState.Down);
    expect(session.stats.received).toBe(0);
  });

  it('refuses a second endpoint on the same address and port with an error that says so', () => {
    const e = endpoint('127.0.0.1');
    expect(() => new BfdEndpoint({ localAddress: '127.0.0.1', port: e.port })).toThrow(
      BfdSocketError,
    );
  });

  it('runs over IPv6 as well', async () => {
    const a = endpoint('::1');
    const b = endpoint('0:0:0:0:0:0:0:1');
    const sa = a.session({ peerAddress: '::1', peerPort: b.port, timing: FAST });
    const sb = b.session({ peerAddress: '::1', peerPort: a.port, timing: FAST });
    await until(
      () => `both Up (${BfdState[sa.state]}, ${BfdState[sb.state]})`,
      () => sa.state === BfdState.Up && sb.state === BfdState.Up,
      10_000,
      5,
    );
    expect(a.localAddress).toBe('::1');
    expect(b.localAddress).toBe('::1');
  });

  it('refuses a peer of the other family', () => {
    const e = endpoint('127.0.0.1');
    expect(() => e.session({ peerAddress: '::1' })).toThrow(/differ in family/);
  });
});
