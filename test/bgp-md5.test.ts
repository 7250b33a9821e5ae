// Session hardening against a real BIRD 2 in its own network namespace: TCP
// MD5 (RFC 2385) in both directions (we connect; BIRD connects to our
// listener), a wrong password that never gets a session and is reported as
// such, and GTSM (RFC 5082): our sockets send with TTL 255 and refuse less,
// so a BIRD with TTL security comes up and one sending TTL 1 does not.
import { execFileSync } from 'node:child_process';
import type net from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { BgpListener } from '../control/bgp/listener.js';
import { BgpSession, type SessionOptions } from '../control/bgp/session.js';
import { connectTcp } from '../native/socket.js';
import { readSocketTtls, socketTtls, TransportConfigError } from '../control/bgp/transport.js';
import { until } from '../control/topology/agent-harness.js';
import { BirdProcess } from '../control/topology/bird.js';
import { Cleanup, recordingLog } from './support/bgp/harness.js';
import { BgpLink, PEER, XLB } from './support/bgp/link.js';
import { requirePrivileges } from './support/privileged.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const PASSWORD = 'xlb-md5-secret';
const ROUTE = { prefix: '203.0.113.20/32' };

function birdConfig(opts: { passive: boolean; password?: string; ttlSecurity?: boolean }): string {
  return `
router id ${PEER.v4};
protocol device {}
protocol bgp xlb {
  local ${PEER.v4} as 65001;
  neighbor ${XLB.v4} as 65002;
  ${opts.passive ? 'passive on;' : ''}
  ${opts.password === undefined ? '' : `password "${opts.password}";`}
  ${opts.ttlSecurity ? 'ttl security on;' : ''}
  connect delay time 1;
  connect retry time 1;
  error wait time 1, 2;
  ipv4 { import all; export none; };
}
`;
}

/** The kernel's count of TCP packets dropped for a TTL below IP_MINTTL, in a namespace. */
function minTtlDrops(ns: string): number {
  const lines = execFileSync('ip', ['netns', 'exec', ns, 'cat', '/proc/net/netstat'], {
    encoding: 'utf8',
  }).split('\n');
  const [names, values] = lines.filter((l) => l.startsWith('TcpExt:')).map((l) => l.split(/\s+/));
  const i = names!.indexOf('TCPMinTTLDrop');
  if (i < 0) throw new Error('this kernel does not count TCPMinTTLDrop');
  return Number(values![i]);
}

function birdHas(bird: BirdProcess, prefix: string): boolean {
  const out = bird.birdcOutput(`show route ${prefix} all`);
  return out.includes(prefix) && !out.includes('Network not found');
}

async function setUp(
  bird: Parameters<typeof birdConfig>[0],
  xlb: Pick<SessionOptions, 'md5Password' | 'ttlSecurity' | 'passive' | 'holdTime'>,
  opts: { listenerTtlSecurity?: boolean } = {},
) {
  requirePrivileges('bgp-md5');
  const link = BgpLink.build();
  cleanup.add(() => link.destroy());
  const { log, lines } = recordingLog();
  const server = link.listen(179);
  cleanup.add(() => new Promise((r) => server.close(r)));
  const sockets: net.Socket[] = [];
  server.on('connection', (s) => sockets.push(s));
  const session = new BgpSession({
    localAs: 65002,
    peerAs: 65001,
    routerId: XLB.v4,
    peerAddress: PEER.v4,
    holdTime: 9,
    families: ['ipv4'],
    connectRetryMs: 1000,
    openHoldMs: 2000,
    backoff: { initialMs: 100, maxMs: 500, jitter: 0 },
    connect: ({ host, port, md5Password, ttl, minTtl }) => {
      const s = link.connect(host, port, {
        ...(md5Password === undefined ? {} : { md5Password }),
        ...(ttl === undefined ? {} : { ttl }),
        ...(minTtl === undefined ? {} : { minTtl }),
      });
      sockets.push(s);
      return s;
    },
    log,
    ...xlb,
  });
  cleanup.add(() => session.stop());
  const listener = new BgpListener({
    server,
    log,
    ...(opts.listenerTtlSecurity ? { ttlSecurity: true } : {}),
  });
  listener.add(session);
  cleanup.add(() => listener.close());
  const birdProcess = await BirdProcess.start(link.peerNs, birdConfig(bird));
  cleanup.add(() => birdProcess.stop());
  const context = () =>
    `xlb log:\n${lines.slice(-10).join('\n')}\nBIRD:\n${birdProcess.birdc('show protocols all xlb')}`;
  session.announce([ROUTE]);
  session.start();
  return { session, bird: birdProcess, sockets, context, link };
}

describe('TCP MD5 (RFC 2385) with BIRD 2', () => {
  it('comes up with the same password when we connect, and the route arrives', async () => {
    const { session, bird, context } = await setUp(
      { passive: true, password: PASSWORD },
      { md5Password: PASSWORD },
    );
    await until(
      () => `BIRD to be Established (${context()})`,
      () => bird.bgpState('xlb') === 'Established',
      15_000,
    );
    await until(
      () => `the route in BIRD (${context()})`,
      () => birdHas(bird, ROUTE.prefix),
    );
    expect(session.state).toBe('Established');
  });

  it('comes up with the same password when BIRD connects to our listener', async () => {
    const { session, bird, context } = await setUp(
      { passive: false, password: PASSWORD },
      { md5Password: PASSWORD, passive: true },
    );
    await until(
      () => `BIRD to be Established (${context()})`,
      () => bird.bgpState('xlb') === 'Established',
      15_000,
    );
    expect(session.state).toBe('Established');
    await until(
      () => `the route in BIRD (${context()})`,
      () => birdHas(bird, ROUTE.prefix),
    );
  });

  it('never comes up with a wrong password, and says the password is the likely cause', async () => {
    const { session, bird, context } = await setUp(
      { passive: true, password: PASSWORD },
      { md5Password: 'not-the-password' },
    );
    const reported = await until(
      () => `the session to report the unanswered connection (${context()})`,
      () => session.lastError?.includes('not answered') && session.lastError,
      10_000,
    );
    expect(reported).toMatch(/TCP MD5 is on: a password that differs from the peer's/);
    // Another attempt later: still nothing got through.
    await new Promise((r) => setTimeout(r, 1500));
    expect(session.state).not.toBe('Established');
    expect(bird.bgpState('xlb')).not.toBe('Established');
  });

  it('a peer without a password is not let in by our listener', async () => {
    const { session, bird, context } = await setUp(
      { passive: false },
      { md5Password: PASSWORD, passive: true },
    );
    // BIRD tries every second; give it a few attempts.
    await new Promise((r) => setTimeout(r, 2500));
    expect(session.state, context()).toBe('Active');
    expect(bird.bgpState('xlb')).not.toBe('Established');
  });
});

describe('TCP MD5 on a listener of our own', () => {
  it('a session added before listen() gets its key on the socket; only the right key gets in', async () => {
    requirePrivileges('bgp-md5');
    const { log } = recordingLog();
    const session = new BgpSession({
      localAs: 65002,
      peerAs: 65001,
      routerId: '192.0.2.41',
      peerAddress: '127.0.0.42',
      passive: true,
      md5Password: PASSWORD,
      log,
    });
    cleanup.add(() => session.stop());
    const listener = new BgpListener({ host: '127.0.0.41', port: 0, log });
    listener.add(session);
    await listener.listen();
    cleanup.add(() => listener.close());
    session.start();
    /** Connects from the peer's address; resolves with the first bytes or 'timeout'. */
    const dial = (md5Key: string) =>
      new Promise<string>((resolve) => {
        const s = connectTcp({
          host: '127.0.0.41',
          port: listener.port!,
          localAddress: '127.0.0.42',
          md5Key,
        });
        cleanup.add(() => s.destroy());
        const timer = setTimeout(() => resolve('timeout'), 1500);
        s.on('error', (e) => resolve(`error: ${e.message}`));
        s.once('data', (d: Buffer) => {
          clearTimeout(timer);
          resolve(`BGP message type ${d[18]}`);
        });
      });
    expect(await dial('a-wrong-password')).toBe('timeout');
    expect(session.state).toBe('Active');
    // Our OPEN (type 1) comes back only over the signed connection.
    expect(await dial(PASSWORD)).toBe('BGP message type 1');
    expect(session.state).toBe('OpenSent');
  });
});

describe('GTSM / TTL security (RFC 5082) with BIRD 2', () => {
  it('sends with TTL 255 and refuses less on the socket; BIRD with TTL security comes up', async () => {
    const { session, bird, sockets, context } = await setUp(
      { passive: true, ttlSecurity: true },
      { ttlSecurity: true },
    );
    // BIRD's own minimum TTL is 255: it only answers packets we sent with 255.
    await until(
      () => `BIRD to be Established (${context()})`,
      () => bird.bgpState('xlb') === 'Established',
      15_000,
    );
    expect(session.state).toBe('Established');
    const live = sockets.filter((s) => !s.destroyed);
    expect(live.length).toBeGreaterThan(0);
    for (const s of live) expect(readSocketTtls(s)).toEqual({ ttl: 255, minTtl: 255 });
  });

  it('refuses a peer whose packets arrive with a TTL below 255', async () => {
    // Without TTL security BIRD sends eBGP with TTL 1, as a peer further away would arrive.
    const { session, bird, context, link } = await setUp({ passive: true }, { ttlSecurity: true });
    const reported = await until(
      () => `the session to report the peer's silence (${context()})`,
      () => /not answered|no OPEN/.test(session.lastError ?? '') && session.lastError,
      10_000,
    );
    expect(reported).toMatch(/TTL security \(GTSM\) is on/);
    // The kernel, not luck, kept BIRD's packets out.
    expect(minTtlDrops(link.xlbNs)).toBeGreaterThan(0);
    expect(session.state).not.toBe('Established');
    expect(bird.bgpState('xlb')).not.toBe('Established');
  });

  it('sets TTL 255 and minimum 255 on a connection BIRD opens to our listener', async () => {
    const { session, bird, sockets, context } = await setUp(
      { passive: false, ttlSecurity: true },
      { ttlSecurity: true, passive: true },
    );
    await until(
      () => `BIRD to be Established (${context()})`,
      () => bird.bgpState('xlb') === 'Established',
      15_000,
    );
    expect(session.state).toBe('Established');
    const accepted = sockets.filter((s) => !s.destroyed);
    expect(accepted.length).toBeGreaterThan(0);
    // An IPv4 peer on our dual-stack listener: the IPv4 options are the ones in force.
    for (const s of accepted) expect(readSocketTtls(s)).toEqual({ ttl: 255, minTtl: 255 });
  });

  it('an incoming connection whose packets arrive below TTL 255 never comes up', async () => {
    // The listener is shared: the first segments may be read before the
    // accepted socket gets its minimum TTL, but nothing after them is.
    const { session, bird, context, link } = await setUp(
      { passive: false },
      { ttlSecurity: true, passive: true, holdTime: 3 },
    );
    const reported = await until(
      () => `the session to report the peer's silence (${context()})`,
      () => /no OPEN|no KEEPALIVE/.test(session.lastError ?? '') && session.lastError,
      10_000,
    );
    expect(reported).toMatch(/TTL security \(GTSM\) is on/);
    expect(minTtlDrops(link.xlbNs)).toBeGreaterThan(0);
    expect(bird.bgpState('xlb')).not.toBe('Established');
  });

  it('a GTSM listener drops the SYNs of a peer below TTL 255 before any connection exists', async () => {
    const { session, bird, context, link } = await setUp(
      { passive: false },
      { ttlSecurity: true, passive: true },
      { listenerTtlSecurity: true },
    );
    await until(
      () => `the kernel to drop BIRD's SYNs (${context()})`,
      () => minTtlDrops(link.xlbNs) > 0,
      5000,
    );
    expect(session.state).toBe('Active');
    expect(bird.bgpState('xlb')).not.toBe('Established');
  });

  it('works out the TTLs from the options and refuses bad ones', () => {
    expect(socketTtls({})).toEqual({});
    expect(socketTtls({ ttlSecurity: true })).toEqual({ ttl: 255, minTtl: 255 });
    expect(socketTtls({ multihopTtl: 3 })).toEqual({ ttl: 3 });
    expect(socketTtls({ ttlSecurity: true, multihopTtl: 3 })).toEqual({ ttl: 255, minTtl: 253 });
    expect(() => socketTtls({ multihopTtl: 0 })).toThrow(TransportConfigError);
    expect(() => socketTtls({ md5Password: 'x'.repeat(81) })).toThrow(/1\.\.80/);
    expect(
      () =>
        new BgpSession({
          localAs: 1,
          peerAs: 2,
          routerId: '192.0.2.9',
          peerAddress: '192.0.2.1',
          multihopTtl: 300,
        }),
    ).toThrow(/multihopTtl 300/);
  });
});
