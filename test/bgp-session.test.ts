// xlb's BGP session over real sockets on loopback: against a raw peer the
// test drives byte by byte (handshake, announcements, every kind of
// malformed input, silence, collisions), and against a second xlb session.
import net from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { Afi, Safi } from '../control/bgp/codec/capabilities.js';
import {
  decodeMessage,
  encodeMessage,
  KEEPALIVE,
  type BgpMessage,
} from '../control/bgp/codec/message.js';
import { capabilitiesOf, type OpenMessage } from '../control/bgp/codec/open.js';
import { endOfRibFamily, type UpdateMessage } from '../control/bgp/codec/update.js';
import { shutdownMessage } from '../control/bgp/codec/notification.js';
import { MessageType } from '../control/bgp/codec/header.js';
import { decodeLinkBandwidth } from '../control/bgp/communities.js';
import { MessageFramer } from '../control/bgp/framer.js';
import { BgpListener } from '../control/bgp/listener.js';
import { BgpSession, type SessionOptions } from '../control/bgp/session.js';
import { until } from '../control/topology/agent-harness.js';
import {
  Cleanup,
  FAST,
  handshake,
  peerOpen,
  RawServer,
  Recorder,
  recordingLog,
} from './support/bgp/harness.js';
import { RawPeer } from './support/bgp/raw-peer.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const LOCAL_ID = '198.51.100.2';

/** A session of AS 65002 towards a raw peer of AS 65001 on peerAddress:port. */
function makeSession(over: Partial<SessionOptions> & { peerAddress: string }) {
  const { log, lines } = recordingLog();
  const session = new BgpSession({
    localAs: 65002,
    peerAs: 65001,
    routerId: LOCAL_ID,
    ...FAST,
    log,
    ...over,
  });
  cleanup.add(() => session.stop());
  const rec = new Recorder(session);
  const context = () => `session log:\n${lines.slice(-30).join('\n')}`;
  return { session, rec, lines, context };
}

const updates = (p: RawPeer): UpdateMessage[] =>
  p.messages().filter((m): m is UpdateMessage => m.type === 'update');
const notifications = (p: RawPeer) =>
  p
    .messages()
    .filter((m): m is Extract<BgpMessage, { type: 'notification' }> => m.type === 'notification');

/** A raw server and a session connecting to it from a loopback address of its own. */
async function activePair(host: string, local: string, over: Partial<SessionOptions> = {}) {
  const server = await RawServer.start(host, cleanup);
  const s = makeSession({ peerAddress: host, peerPort: server.port, localAddress: local, ...over });
  return { server, ...s };
}

describe('BGP session against a raw peer', () => {
  it('opens with its capabilities, announces both families with attributes, then End-of-RIB', async () => {
    const { server, session, rec } = await activePair('127.0.0.11', '127.0.0.12', {
      nextHops: { ipv6: '2001:db8:b::2' },
    });
    const result = session.announce([
      {
        prefix: '203.0.113.10/32',
        attributes: {
          med: 20,
          communities: ['65002:100', 'no-export'],
          largeCommunities: ['65002:1:2'],
          linkBandwidth: 12_500_000,
        },
      },
      { prefix: '2001:db8:ff::10', attributes: { communities: [0xfdea0064] } },
    ]);
    expect(result).toEqual({ accepted: 2, rejected: [] });
    session.start();
    const peer = await server.next();
    // The session binds its local address.
    expect(peer.socket.remoteAddress).toBe('127.0.0.12');
    const [open] = (await peer.waitFor('OPEN', (m) => m.type === 'open')) as OpenMessage[];
    expect(open).toMatchObject({ version: 4, myAs: 65002, holdTime: 90, bgpId: LOCAL_ID });
    expect(capabilitiesOf(open!)).toEqual([
      { kind: 'multiprotocol', afi: Afi.Ipv4, safi: Safi.Unicast },
      { kind: 'multiprotocol', afi: Afi.Ipv6, safi: Safi.Unicast },
      { kind: 'routeRefresh' },
      { kind: 'fourOctetAs', asn: 65002 },
    ]);
    await handshake(peer);
    await rec.waitState('Established');
    await peer.waitFor(
      'End-of-RIB for both families',
      (m) => m.type === 'update' && endOfRibFamily(m) !== undefined,
      2,
    );

    const all = updates(peer);
    const v4 = all.find((u) => u.nlri.length > 0)!;
    expect(v4.nlri).toEqual(['203.0.113.10/32']);
    const { extendedCommunities, ...rest } = v4.attributes;
    expect(rest).toEqual({
      origin: 0,
      asPath: [{ type: 'sequence', asns: [65002] }],
      nextHop: '127.0.0.12',
      med: 20,
      communities: [0xfdea0064, 0xffffff01],
      largeCommunities: [{ global: 65002, local1: 1, local2: 2 }],
    });
    expect(extendedCommunities!.map(decodeLinkBandwidth)).toEqual([
      { asn: 65002, bytesPerSecond: 12_500_000 },
    ]);
    const v6 = all.find((u) => u.attributes.mpReach !== undefined)!;
    expect(v6.attributes).toEqual({
      origin: 0,
      asPath: [{ type: 'sequence', asns: [65002] }],
      communities: [0xfdea0064],
      mpReach: { family: 'ipv6', nextHop: '2001:db8:b::2', nlri: ['2001:db8:ff::10/128'] },
    });
    // End-of-RIB comes after the routes.
    const kinds = all.map((u) => endOfRibFamily(u) ?? 'routes');
    expect(kinds.slice(-2).sort()).toEqual(['ipv4', 'ipv6']);
    expect(session.stats.internalErrors).toBe(0);
  });

  it('sends changes at once, packing a burst of calls into one UPDATE', async () => {
    const { server, session, rec } = await activePair('127.0.0.11', '127.0.0.13');
    session.start();
    const peer = await server.next();
    await handshake(peer);
    await rec.waitState('Established');
    await peer.waitFor('End-of-RIB', (m) => m.type === 'update' && endOfRibFamily(m) === 'ipv4');
    const before = updates(peer).length;
    const prefixes = Array.from({ length: 300 }, (_, i) => `10.1.${i >> 8}.${i & 255}/32`);
    for (const p of prefixes) session.announce([{ prefix: p }]);
    await peer.waitFor('the announcements', (m) => m.type === 'update' && m.nlri.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    const announced = updates(peer).slice(before);
    expect(announced).toHaveLength(1);
    expect(announced[0]!.nlri).toEqual(prefixes);

    // New attributes for one route: only that route goes out again.
    session.announce([{ prefix: prefixes[7]!, attributes: { med: 5 } }]);
    await peer.waitFor('the changed route', (m) => m.type === 'update' && m.attributes.med === 5);
    expect(updates(peer).at(-1)!.nlri).toEqual([prefixes[7]]);

    // Withdrawals, also packed; prefixes never announced are not withdrawn.
    session.withdraw([...prefixes, '10.9.9.9/32']);
    await peer.waitFor('the withdrawals', (m) => m.type === 'update' && m.withdrawn.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    const w = updates(peer).filter((u) => u.withdrawn.length > 0);
    expect(w).toHaveLength(1);
    expect(w[0]!.withdrawn).toEqual(prefixes);
    expect(session.routes()).toEqual([]);
  });

  it('refuses invalid routes with reasons and never throws', () => {
    const { session } = makeSession({ peerAddress: '127.0.0.11' });
    const r = session.announce([
      { prefix: '203.0.113.1/24' },
      { prefix: 'nonsense' },
      { prefix: '203.0.113.10/32', attributes: { communities: ['65536:1'] } },
      { prefix: '203.0.113.11/32', attributes: { med: -1 } },
      {
        prefix: '203.0.113.12/32',
        attributes: { communities: Array.from({ length: 1100 }, (_, i) => i) },
      },
      { prefix: '203.0.113.13/32' },
    ]);
    expect(r.accepted).toBe(1);
    expect(r.rejected.map((x) => x.prefix)).toEqual([
      '203.0.113.1/24',
      'nonsense',
      '203.0.113.10/32',
      '203.0.113.11/32',
      '203.0.113.12/32',
    ]);
    expect(r.rejected[0]!.reason).toMatch(/203\.0\.113\.0\/24/);
    expect(r.rejected[2]!.reason).toMatch(/65536/);
    expect(r.rejected[4]!.reason).toMatch(/no room/);
    expect(session.routes()).toEqual(['203.0.113.13/32']);
    expect(session.withdraw(['bad']).rejected).toHaveLength(1);
  });

  it('an internal peer gets LOCAL_PREF and an empty AS_PATH', async () => {
    const { server, session, rec } = await activePair('127.0.0.11', '127.0.0.14', {
      peerAs: 65002,
    });
    session.announce([
      { prefix: '203.0.113.10/32' },
      { prefix: '203.0.113.11/32', attributes: { localPref: 300 } },
    ]);
    session.start();
    const peer = await server.next();
    await handshake(peer, peerOpen({ asn: 65002 }));
    await rec.waitState('Established');
    const got = await peer.waitFor(
      'two UPDATEs',
      (m) => m.type === 'update' && m.nlri.length > 0,
      2,
    );
    const attrs = (got as UpdateMessage[]).map((u) => [
      u.nlri,
      u.attributes.asPath,
      u.attributes.localPref,
    ]);
    expect(attrs).toEqual([
      [['203.0.113.10/32'], [], 100],
      [['203.0.113.11/32'], [], 300],
    ]);
  });

  it('speaks 2-octet AS to a peer without the capability, and only IPv4 without multiprotocol', async () => {
    const { server, session, rec } = await activePair('127.0.0.11', '127.0.0.15', {
      localAs: 4200000001,
      nextHops: { ipv6: '2001:db8:b::2' },
    });
    session.announce([{ prefix: '203.0.113.10/32' }, { prefix: '2001:db8::10/128' }]);
    session.start();
    const peer = await server.next();
    const [open] = (await peer.waitFor('OPEN', (m) => m.type === 'open')) as OpenMessage[];
    expect(open!.myAs).toBe(23456);
    // An old speaker: no capabilities at all.
    peer.send({
      type: 'open',
      version: 4,
      myAs: 65001,
      holdTime: 90,
      bgpId: '198.51.100.1',
      parameters: [],
    });
    peer.send(KEEPALIVE);
    await rec.waitState('Established');
    await until('an UPDATE', () => peer.received.some((b) => b[18] === 2 && b.length > 23));
    await new Promise((r) => setTimeout(r, 50));
    const raw = peer.received.filter((b) => b[18] === 2);
    const decoded = raw.map((b) => decodeMessage(b, { fourOctetAs: false }));
    const ups = decoded.map((d) => (d.ok && d.value.type === 'update' ? d.value : undefined));
    const route = ups.find((u) => u && u.nlri.length > 0)!;
    expect(route.attributes.asPath).toEqual([{ type: 'sequence', asns: [23456] }]);
    expect(route.attributes.as4Path).toEqual([{ type: 'sequence', asns: [4200000001] }]);
    // No IPv6 routes and no IPv6 End-of-RIB: the family was not negotiated.
    expect(ups.some((u) => u?.attributes.mpReach || u?.attributes.mpUnreach)).toBe(false);
    expect(ups.filter((u) => u && endOfRibFamily(u) === 'ipv4')).toHaveLength(1);
  });

  it('answers ROUTE-REFRESH by sending its routes again', async () => {
    const { server, session, rec } = await activePair('127.0.0.11', '127.0.0.16');
    session.announce([{ prefix: '203.0.113.10/32' }]);
    session.start();
    const peer = await server.next();
    await handshake(peer);
    await rec.waitState('Established');
    await peer.waitFor('the route', (m) => m.type === 'update' && m.nlri.length > 0);
    peer.send({ type: 'routeRefresh', afi: 1, safi: 1, subtype: 0 });
    await peer.waitFor('the route again', (m) => m.type === 'update' && m.nlri.length > 0, 2);
    // A family not negotiated is ignored, not an error.
    peer.send({ type: 'routeRefresh', afi: 25, safi: 70, subtype: 0 });
    await new Promise((r) => setTimeout(r, 50));
    expect(session.state).toBe('Established');
  });

  it('sends keepalives at a third of the hold time and gives up on a silent peer with 4/0', async () => {
    const { server, session, rec } = await activePair('127.0.0.11', '127.0.0.17', { holdTime: 3 });
    session.start();
    const peer = await server.next();
    await handshake(peer, peerOpen({ holdTime: 30 }));
    await rec.waitState('Established');
    const t0 = Date.now();
    const [n] = await peer.waitFor('NOTIFICATION', (m) => m.type === 'notification', 1, 8000);
    const elapsed = Date.now() - t0;
    expect(n).toMatchObject({ code: 4, subcode: 0 });
    // 3 s after the last message from the peer (its KEEPALIVE, just before t0).
    expect(elapsed).toBeGreaterThan(2500);
    expect(elapsed).toBeLessThan(6000);
    // Keepalives went out meanwhile (one with OPEN's answer, then every ~0.75-1 s).
    expect(peer.messages().filter((m) => m.type === 'keepalive').length).toBeGreaterThanOrEqual(3);
    await peer.waitClosed();
    expect(rec.states.some((s) => s.to === 'Idle' && /HoldTimer/.test(s.reason ?? ''))).toBe(true);
    expect(rec.released).toBe(1);
    // And it comes back.
    await server.next();
  });

  it('sends keepalives at the configured keepaliveTime, capped at a third of the negotiated hold time', async () => {
    /** Arrival times of the KEEPALIVEs after Established, read off the wire. */
    const keepalivesAfterEstablished = async (
      host: string,
      local: string,
      over: Partial<SessionOptions>,
      peerHoldTime: number,
    ): Promise<number[]> => {
      const { server, session, rec } = await activePair(host, local, over);
      session.start();
      const peer = await server.next();
      const times: number[] = [];
      const framer = new MessageFramer();
      peer.socket.on('data', (chunk: Buffer) => {
        for (const f of framer.push(chunk))
          if (f.ok && f.header.type === MessageType.Keepalive) times.push(Date.now());
      });
      await handshake(peer, peerOpen({ holdTime: peerHoldTime }));
      // The peer keeps our hold timer from expiring meanwhile.
      const ticking = setInterval(() => peer.send(KEEPALIVE), 500);
      cleanup.add(() => clearInterval(ticking));
      await rec.waitState('Established');
      const from = times.length;
      await until('three more KEEPALIVEs', () => times.length >= from + 3, 8_000, 5);
      clearInterval(ticking);
      return times.slice(from);
    };
    const gaps = (t: number[]) => t.slice(1).map((x, i) => x - t[i]!);

    // Configured 1 s under a 90 s hold time: every 0.75-1 s (jitter takes up to a quarter off).
    const configured = gaps(
      await keepalivesAfterEstablished(
        '127.0.0.81',
        '127.0.0.82',
        { holdTime: 90, keepaliveTime: 1 },
        90,
      ),
    );
    for (const g of configured) {
      expect(g, `gaps ${configured.join(', ')}`).toBeGreaterThanOrEqual(700);
      expect(g, `gaps ${configured.join(', ')}`).toBeLessThan(1_400);
    }
    // Configured 20 s, but the peer offers a 3 s hold time: a third of that wins.
    const capped = gaps(
      await keepalivesAfterEstablished(
        '127.0.0.83',
        '127.0.0.84',
        { holdTime: 90, keepaliveTime: 20 },
        3,
      ),
    );
    for (const g of capped) {
      expect(g, `gaps ${capped.join(', ')}`).toBeGreaterThanOrEqual(700);
      expect(g, `gaps ${capped.join(', ')}`).toBeLessThan(1_400);
    }
    expect(() => makeSession({ peerAddress: '127.0.0.85', keepaliveTime: 0 })).toThrow(
      /keepalive time 0 s: must be an integer in 1\.\.65535/,
    );
  });

  it('backs off exponentially, with a cap, while the peer refuses connections', async () => {
    // A port nobody listens on: bind one, note it, close it.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.18', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const attempts: number[] = [];
    const { session } = makeSession({
      peerAddress: '127.0.0.18',
      peerPort: port,
      connect: (t) => {
        attempts.push(Date.now());
        return net.connect({ host: t.host, port: t.port });
      },
    });
    session.start();
    await until('7 connection attempts', () => attempts.length >= 7, 10_000);
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
    // 20, 40, 80, 160, then the 200 ms cap.
    const expected = [20, 40, 80, 160, 200, 200];
    gaps.slice(0, 6).forEach((g, i) => {
      expect(g, `gaps ${gaps.join(', ')}`).toBeGreaterThanOrEqual(expected[i]! - 2);
      // Timers fire late on a busy machine, never early.
      expect(g, `gaps ${gaps.join(', ')}`).toBeLessThan(expected[i]! + 400);
    });
    expect(['Idle', 'Connect']).toContain(session.state);
    expect(session.lastError).toMatch(/ECONNREFUSED/);
  });

  it('stop() sends Cease with the message, closes, and stays down', async () => {
    const { server, session, rec } = await activePair('127.0.0.11', '127.0.0.19');
    session.start();
    const peer = await server.next();
    await handshake(peer);
    await rec.waitState('Established');
    await session.stop('maintenance window');
    expect(session.state).toBe('Idle');
    const [n] = notifications(peer);
    expect(n).toMatchObject({ code: 6, subcode: 2 });
    expect(shutdownMessage(n!)).toBe('maintenance window');
    await peer.waitClosed();
    await new Promise((r) => setTimeout(r, 300));
    expect(server.peers).toHaveLength(1);
    expect(rec.notifications.map((x) => `${x.direction} ${x.text}`)).toEqual([
      'sent Cease / Administrative Shutdown (6/2): "maintenance window"',
    ]);
  });

  it('a NOTIFICATION from the peer resets the session without an answer, then it reconnects', async () => {
    const { server, session, rec } = await activePair('127.0.0.11', '127.0.0.20');
    session.start();
    const peer = await server.next();
    await handshake(peer);
    await rec.waitState('Established');
    peer.send({ type: 'notification', code: 6, subcode: 4, data: Buffer.alloc(0) });
    await rec.waitState('Idle');
    expect(rec.notifications.map((n) => `${n.direction} ${n.code}/${n.subcode}`)).toEqual([
      'received 6/4',
    ]);
    await peer.waitClosed();
    expect(notifications(peer)).toEqual([]);
    const again = await server.next();
    await handshake(again);
    await rec.waitState('Established');
  });
});

describe('BGP session edges', () => {
  it('refuses settings that cannot work, with the reason', () => {
    const base = { localAs: 65002, peerAs: 65001, routerId: LOCAL_ID, peerAddress: '127.0.0.11' };
    expect(() => new BgpSession({ ...base, holdTime: 2 })).toThrow(/hold time 2/);
    expect(() => new BgpSession({ ...base, routerId: '0.0.0.0' })).toThrow(/router id/);
    expect(() => new BgpSession({ ...base, routerId: '300.1.1.1' })).toThrow(/300\.1\.1\.1/);
    expect(() => new BgpSession({ ...base, peerAs: 0 })).toThrow(/peer AS 0/);
  });

  it('a connect function that throws is a failed attempt: back-off and retry', async () => {
    let calls = 0;
    const { session, rec } = makeSession({
      peerAddress: '127.0.0.11',
      connect: () => {
        calls++;
        throw new Error('cannot bind 192.0.2.99');
      },
    });
    session.start();
    await until('three attempts', () => calls >= 3);
    expect(session.lastError).toMatch(/cannot bind 192\.0\.2\.99/);
    expect(session.stats.internalErrors).toBe(0);
    expect(rec.states.map((s) => s.to).slice(0, 4)).toEqual(['Connect', 'Idle', 'Connect', 'Idle']);
  });

  it('a listener that throws is logged and counted; the session carries on', async () => {
    const { server, session, rec, lines } = await activePair('127.0.0.11', '127.0.0.21');
    session.on('update', () => {
      throw new Error('consumer bug');
    });
    session.start();
    const peer = await server.next();
    await handshake(peer);
    await rec.waitState('Established');
    peer.send(header(2, updateBody(`${ORIGIN} ${AS_PATH} ${NEXT_HOP}`)));
    await until('the update to reach the recorder', () => rec.updates.length === 1);
    expect(session.stats.listenerErrors).toBe(1);
    expect(session.stats.internalErrors).toBe(0);
    expect(session.state).toBe('Established');
    expect(lines.some((l) => l.includes('consumer bug'))).toBe(true);
  });

  it('the listener closes connections from addresses that are no peer of ours', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.22', r));
    cleanup.add(() => new Promise((r) => server.close(r)));
    const { log, lines } = recordingLog();
    const listener = new BgpListener({ server, log });
    cleanup.add(() => listener.close());
    const { session } = makeSession({ peerAddress: '127.0.0.23', passive: true });
    listener.add(session);
    session.start();
    const port = (server.address() as net.AddressInfo).port;
    const stranger = new RawPeer(
      net.connect({ host: '127.0.0.22', port, localAddress: '127.0.0.24' }),
    );
    cleanup.add(() => stranger.close());
    await stranger.waitClosed();
    expect(stranger.received).toEqual([]);
    expect(lines.some((l) => l.includes('unknown peer'))).toBe(true);
    // The peer itself is taken: our OPEN comes.
    const friend = new RawPeer(
      net.connect({ host: '127.0.0.22', port, localAddress: '127.0.0.23' }),
    );
    cleanup.add(() => friend.close());
    await handshake(friend);
    await until('Established', () => session.state === 'Established');
  });
});

/** Where the raw peer must have brought the session before it misbehaves. */
type Stage = 'OpenSent' | 'OpenConfirm' | 'Established';

function header(type: number, body: string, lengthOverride?: number): Buffer {
  const b = Buffer.from(body.replace(/\s+/g, ''), 'hex');
  const h = Buffer.alloc(19, 0xff);
  h.writeUInt16BE(lengthOverride ?? 19 + b.length, 16);
  h[18] = type;
  return Buffer.concat([h, b]);
}

const ORIGIN = '40010100';
const AS_PATH = '40020602010000fde9'; // [65001], the peer
const NEXT_HOP = '400304c0000201';
const NLRI = '20cb00710a';

/** An UPDATE body: no withdrawn routes, these attributes, this NLRI. */
function updateBody(attrs: string, nlri = NLRI): string {
  const a = attrs.replace(/\s+/g, '');
  return `0000 ${(a.length / 2).toString(16).padStart(4, '0')} ${a} ${nlri}`;
}
const MALFORMED: [string, Stage, Buffer | BgpMessage, number, number, string?][] = [
  ['OPEN of version 3', 'OpenSent', header(1, '03 fde9 005a c6336401 00'), 2, 1, '0004'],
  ['OPEN from the wrong AS', 'OpenSent', peerOpen({ asn: 65009 }), 2, 2],
  ['OPEN with hold time 1', 'OpenSent', header(1, '04 fde9 0001 c6336401 00'), 2, 6, '0001'],
  [
    'OPEN with an unknown optional parameter',
    'OpenSent',
    header(1, '04 fde9 005a c6336401 03 0901aa'),
    2,
    4,
  ],
  ['OPEN with identifier 0.0.0.0', 'OpenSent', header(1, '04 fde9 005a 00000000 00'), 2, 3],
  ['KEEPALIVE before OPEN', 'OpenSent', KEEPALIVE, 5, 1],
  ['UPDATE before KEEPALIVE', 'OpenConfirm', header(2, '0000 0000'), 5, 2],
  [
    'a broken marker',
    'Established',
    Buffer.from(`${'ff'.repeat(8)}${'00'.repeat(8)}001304`, 'hex'),
    1,
    1,
  ],
  ['a length of 5000', 'Established', header(4, '', 5000), 1, 2, '1388'],
  ['message type 9', 'Established', header(9, ''), 1, 3, '09'],
  [
    'UPDATE without ORIGIN',
    'Established',
    header(2, updateBody(`${AS_PATH} ${NEXT_HOP}`)),
    3,
    3,
    '01',
  ],
  [
    'UPDATE with NEXT_HOP 0.0.0.0',
    'Established',
    header(2, updateBody(`${ORIGIN} ${AS_PATH} 40030400000000`)),
    3,
    8,
    '40030400000000',
  ],
  [
    'UPDATE whose AS_PATH does not start with the peer',
    'Established',
    header(2, updateBody(`${ORIGIN} 40020602010000fdea ${NEXT_HOP}`)),
    3,
    11,
  ],
  [
    'UPDATE with a /33',
    'Established',
    header(2, updateBody(`${ORIGIN} ${AS_PATH} ${NEXT_HOP}`, '21cb00710a00')),
    3,
    10,
  ],
  [
    'UPDATE with COMMUNITIES flagged well-known',
    'Established',
    header(2, updateBody(`${ORIGIN} ${AS_PATH} ${NEXT_HOP} 400804fde90001`)),
    3,
    4,
    '400804fde90001',
  ],
  ['a second OPEN', 'Established', peerOpen(), 5, 3],
  ['garbage', 'Established', Buffer.from('deadbeef'.repeat(50), 'hex'), 1, 1],
];

describe('malformed input: the NOTIFICATION, a reset, then a reconnect', () => {
  let n = 30;
  for (const [name, stage, input, code, subcode, data] of MALFORMED) {
    const local = `127.0.0.${n++}`;
    it(`${name} in ${stage} -> ${code}/${subcode}`, async () => {
      const { server, session, rec, context } = await activePair('127.0.0.11', local);
      session.start();
      const peer = await server.next();
      await peer.waitFor('OPEN', (m) => m.type === 'open');
      if (stage !== 'OpenSent') peer.send(peerOpen());
      if (stage === 'Established') {
        peer.send(KEEPALIVE);
        await rec.waitState('Established');
      } else if (stage === 'OpenConfirm') {
        await rec.waitState('OpenConfirm');
      }
      peer.send(Buffer.isBuffer(input) ? input : encodeMessage(input));
      const [got] = await peer.waitFor(
        `NOTIFICATION (${context()})`,
        (m) => m.type === 'notification',
      );
      expect(got).toMatchObject({ code, subcode });
      if (data !== undefined && got?.type === 'notification')
        expect(got.data.toString('hex')).toBe(data);
      await peer.waitClosed();
      expect(rec.states.some((s) => s.to === 'Idle')).toBe(true);
      // Back off, then try again: the agent is still alive and well.
      const again = await server.next();
      await handshake(again);
      await rec.waitState('Established');
      expect(session.stats.internalErrors).toBe(0);
    });
  }
});

describe('connection collisions (RFC 4271 section 6.8)', () => {
  /**
   * The session connects out to r1 (which stays silent after OPEN), and the
   * peer connects in from the same address as r2 through the listener.
   */
  async function collide(peerId: string, local: string) {
    const server = await RawServer.start('127.0.0.12', cleanup);
    const listenerServer = net.createServer();
    await new Promise<void>((r) => listenerServer.listen(0, local, r));
    cleanup.add(() => new Promise((r) => listenerServer.close(r)));
    const s = makeSession({
      peerAddress: '127.0.0.12',
      peerPort: server.port,
      localAddress: local,
    });
    const listener = new BgpListener({ server: listenerServer, log: recordingLog().log });
    listener.add(s.session);
    cleanup.add(() => listener.close());
    s.session.start();
    const r1 = await server.next();
    await r1.waitFor('OPEN on the outgoing connection', (m) => m.type === 'open');
    const socket = net.connect({
      host: local,
      port: (listenerServer.address() as net.AddressInfo).port,
      localAddress: '127.0.0.12',
    });
    const r2 = new RawPeer(socket);
    cleanup.add(() => r2.close());
    await r2.waitFor('OPEN on the incoming connection', (m) => m.type === 'open');
    r2.send(peerOpen({ bgpId: peerId }));
    return { ...s, r1, r2, listenerPort: (listenerServer.address() as net.AddressInfo).port };
  }

  it('a peer with the higher identifier: its connection wins, ours gets Cease 6/7', async () => {
    const { r1, r2, session, rec } = await collide('198.51.100.9', '127.0.0.60');
    const [n] = await r1.waitFor('Cease on our connection', (m) => m.type === 'notification');
    expect(n).toMatchObject({ code: 6, subcode: 7 });
    await r1.waitClosed();
    await r2.waitFor('KEEPALIVE on theirs', (m) => m.type === 'keepalive');
    r2.send(KEEPALIVE);
    await rec.waitState('Established');
    session.announce([{ prefix: '203.0.113.10/32' }]);
    await r2.waitFor(
      'the route on the winning connection',
      (m) => m.type === 'update' && m.nlri.length > 0,
    );
  });

  it('a peer with the lower identifier: its new connection gets Cease 6/7, ours carries on', async () => {
    const { r1, r2, rec } = await collide('198.51.100.1', '127.0.0.61');
    const [n] = await r2.waitFor('Cease on their connection', (m) => m.type === 'notification');
    expect(n).toMatchObject({ code: 6, subcode: 7 });
    await r2.waitClosed();
    expect(notifications(r1)).toEqual([]);
    r1.send(peerOpen({ bgpId: '198.51.100.1' }));
    r1.send(KEEPALIVE);
    await rec.waitState('Established');
  });

  it('once Established, a new connection from the peer is closed with 6/7', async () => {
    const { r1, r2, rec, session, listenerPort } = await collide('198.51.100.1', '127.0.0.62');
    await r2.waitClosed();
    r1.send(peerOpen({ bgpId: '198.51.100.1' }));
    r1.send(KEEPALIVE);
    await rec.waitState('Established');
    const r3 = new RawPeer(
      net.connect({ host: '127.0.0.62', port: listenerPort, localAddress: '127.0.0.12' }),
    );
    cleanup.add(() => r3.close());
    const [n] = await r3.waitFor('Cease', (m) => m.type === 'notification');
    expect(n).toMatchObject({ code: 6, subcode: 7 });
    await r3.waitClosed();
    expect(session.state).toBe('Established');
    expect(notifications(r1)).toEqual([]);
  });
});

describe('two xlb speakers', () => {
  it('both active and listening: they settle on one connection and exchange routes', async () => {
    const A = '127.0.0.70';
    const B = '127.0.0.71';
    const servers = await Promise.all(
      [A, B].map(async (host) => {
        const s = net.createServer();
        await new Promise<void>((r) => s.listen(0, host, r));
        cleanup.add(() => new Promise((r) => s.close(r)));
        return s;
      }),
    );
    const portOf = (s: net.Server) => (s.address() as net.AddressInfo).port;
    const a = makeSession({
      localAs: 65001,
      peerAs: 65002,
      routerId: '198.51.100.1',
      peerAddress: B,
      peerPort: portOf(servers[1]!),
      localAddress: A,
    });
    const b = makeSession({
      localAs: 65002,
      peerAs: 65001,
      routerId: '198.51.100.2',
      peerAddress: A,
      peerPort: portOf(servers[0]!),
      localAddress: B,
    });
    const la = new BgpListener({ server: servers[0], log: recordingLog().log });
    const lb = new BgpListener({ server: servers[1], log: recordingLog().log });
    la.add(a.session);
    lb.add(b.session);
    cleanup.add(() => la.close());
    cleanup.add(() => lb.close());
    a.session.announce([{ prefix: '203.0.113.1/32', attributes: { communities: ['65001:1'] } }]);
    b.session.announce([{ prefix: '2001:db8::2/128' }]);
    // b has no IPv6 address on this IPv4 session: it needs a next hop for IPv6.
    a.session.start();
    b.session.start();
    await a.rec.waitState('Established');
    await b.rec.waitState('Established');
    await until('a to reach b', () => b.rec.updates.some((u) => u.nlri.includes('203.0.113.1/32')));
    const fromA = b.rec.updates.find((u) => u.nlri.length > 0)!;
    expect(fromA.attributes).toMatchObject({
      asPath: [{ type: 'sequence', asns: [65001] }],
      nextHop: A,
      communities: [0xfde90001],
    });
    // Stays up on one connection.
    await new Promise((r) => setTimeout(r, 300));
    expect(a.session.state).toBe('Established');
    expect(b.session.state).toBe('Established');
    expect(a.rec.states.filter((s) => s.to === 'Established')).toHaveLength(1);
    // b's IPv6 route had no next hop: not announced, and said so.
    expect(b.lines.some((l) => l.includes('no ipv6 next hop'))).toBe(true);

    await b.session.stop('maintenance');
    await a.rec.waitState('Idle');
    expect(a.rec.notifications.at(-1)?.text).toMatch(/Administrative Shutdown.*"maintenance"/);
    expect(a.rec.released).toBe(1);
    // a retries; b refuses while stopped (Cease 6/5) ... until it starts again.
    b.session.start();
    await a.rec.waitState('Established');
    await b.rec.waitState('Established');
  });
});
