// BfdEndpoint and BfdSession over real UDP sockets on loopback addresses
// (no root needed): two xlb sessions come Up and notice each other's silence
// within the detection time; packets go out from a source port in
// 49152-65535 with xlb's discriminator; garbage, packets for no session and
// packets from the wrong address are counted and change nothing; packets
// with a TTL (hop limit) below 255 are dropped by the kernel and counted as
// lowTtl (RFC 5881 section 5), on loopback and across a veth link from
// another network namespace.
import dgram from 'node:dgram';
import net from 'node:net';

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
import { inNetns } from '../native/index.js';
import { Cleanup, recordingLog } from './support/bgp/harness.js';
import { BgpLink, PEER, XLB } from './support/bgp/link.js';
import { requirePrivileges } from './support/privileged.js';

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

/** A raw BFD peer: sends with TTL 255, as RFC 5881 asks (the endpoint drops less). */
async function rawSocket(address: string, ttl = 255): Promise<dgram.Socket> {
  const s = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
  await new Promise<void>((resolve) => s.bind(0, address, resolve));
  cleanup.add(() => s.close());
  s.setTTL(ttl);
  return s;
}

/** Sends and waits until the datagram has left (the TTL in force is the one at send time). */
function sendNow(s: dgram.Socket, bytes: Buffer, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) =>
    s.send(bytes, port, address, (e) => (e ? reject(e) : resolve())),
  );
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
    const down = downControl(77);
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

/** A peer's first packet: Down, not knowing our discriminator yet. Accepted, it takes the session to Init. */
function downPacket(myDiscriminator: number): Buffer {
  return encodeControl(downControl(myDiscriminator));
}

function downControl(myDiscriminator: number): Omit<ControlPacket, 'version' | 'authentication'> {
  return {
    diag: 0,
    state: BfdState.Down,
    poll: false,
    final: false,
    controlPlaneIndependent: false,
    demand: false,
    multipoint: false,
    detectMult: 3,
    myDiscriminator,
    yourDiscriminator: 0,
    desiredMinTxInterval: 1_000_000,
    requiredMinRxInterval: 30_000,
    requiredMinEchoRxInterval: 0,
  };
}

/**
 * The peer sends with TTL 254 (one router away): the kernel drops it and the
 * endpoint counts it; the same packet with TTL 255 takes the session to Init.
 */
async function ttlCheck(e: BfdEndpoint, session: BfdSession, peer: dgram.Socket): Promise<void> {
  expect(e.ttlChecked).toBe(true);
  peer.setTTL(254);
  await sendNow(peer, downPacket(91), e.port, e.localAddress);
  await until(
    () => `the kernel to drop the TTL 254 packet (${JSON.stringify(e.stats)})`,
    () => e.stats.discarded.lowTtl === 1,
    5_000,
    5,
  );
  expect(e.stats).toEqual({ received: 0, discarded: { lowTtl: 1 } });
  expect(session.state).toBe(BfdState.Down);
  expect(session.stats.received).toBe(0);
  peer.setTTL(255);
  await sendNow(peer, downPacket(92), e.port, e.localAddress);
  await until(
    () => `the TTL 255 packet to take the session to Init (${JSON.stringify(e.stats)})`,
    () => session.state === BfdState.Init,
    5_000,
    5,
  );
  expect(session.variables.remoteDiscr).toBe(92);
  expect(e.stats).toEqual({ received: 1, discarded: { lowTtl: 1 } });
}

describe('received TTL (RFC 5881 section 5)', () => {
  for (const [family, local, peer] of [
    ['IPv4', '127.0.0.1', '127.0.0.7'],
    ['IPv6', '::1', '::1'],
  ] as const) {
    it(`${family} on loopback: TTL 254 is dropped and counted, 255 accepted`, async () => {
      const e = endpoint(local);
      const raw = await rawSocket(peer);
      const session = e.session({ peerAddress: peer, peerPort: raw.address().port, timing: FAST });
      await ttlCheck(e, session, raw);
    });
  }

  it('from another namespace across a veth, IPv4 and IPv6', async () => {
    requirePrivileges('bfd-session');
    const link = BgpLink.build();
    cleanup.add(() => link.destroy());
    for (const [local, peer] of [
      [XLB.v4, PEER.v4],
      [XLB.v6, PEER.v6],
    ] as const) {
      const { log } = recordingLog();
      const e = new BfdEndpoint({
        localAddress: local,
        scope: (fn) => inNetns(link.xlbNs, fn),
        log,
      });
      cleanup.add(() => e.close());
      // Bound synchronously (an address needs no lookup), so inside the peer's namespace.
      const type = net.isIPv6(peer) ? 'udp6' : 'udp4';
      const raw = inNetns(link.peerNs, () => {
        const s = dgram.createSocket({
          type,
          lookup: (host, _o, cb) =>
            (cb as (e: null, a: string, f: number) => void)(null, host, type === 'udp6' ? 6 : 4),
        });
        s.bind({ address: peer, port: 0 });
        return s;
      });
      cleanup.add(() => raw.close());
      const session = e.session({ peerAddress: peer, peerPort: raw.address().port, timing: FAST });
      await ttlCheck(e, session, raw);
    }
  });
});
