// TCP MD5 (RFC 2385) against real GoBGP (`auth-password`) and FRR bgpd
// (`neighbor X password`), each in its own network namespace. With the same
// password the session comes up and our route arrives, whether we open the
// signed connection or the peer opens it to our listener; with a wrong one
// the peer's kernel drops every segment (counted as TCPMD5Failure in its
// namespace), the session never comes up, and ours says the password is the
// likely cause.
import { execFileSync } from 'node:child_process';

import { afterEach, describe, expect, it } from 'vitest';

import { BgpListener } from '../control/bgp/listener.js';

import { until } from '../control/topology/agent-harness.js';
import { FrrProcess } from './support/bgp/frr.js';
import { GobgpProcess } from './support/bgp/gobgp.js';
import { Cleanup, recordingLog } from './support/bgp/harness.js';
import { interopSession } from './support/bgp/interop.js';
import { BgpLink, XLB } from './support/bgp/link.js';
import { requirePrivileges } from './support/privileged.js';
import { frrPeerConfig, gobgpPeerConfig } from './support/bgp/peer-configs.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const PASSWORD = 'xlb-md5-interop';
const ROUTE = { prefix: '203.0.113.30/32' };

/** What the tests need from a peer daemon. */
interface Peer {
  established(): boolean;
  hasRoute(prefix: string): boolean;
  dump(): string;
  stop(): Promise<void>;
}

/** The peer's side: its password, and whether it waits for us to connect (else it connects). */
interface PeerConfig {
  password: string;
  passive: boolean;
}

async function startGobgp(ns: string, { password, passive }: PeerConfig): Promise<Peer> {
  const gobgp = await GobgpProcess.start(
    ns,
    gobgpPeerConfig({ password, passive, connectRetry: 1 }),
  );
  return {
    established: () => gobgp.established(XLB.v4),
    hasRoute: (prefix) => gobgp.rib('ipv4', prefix) !== undefined,
    dump: () => `${gobgp.cli('neighbor', XLB.v4)}\n${gobgp.log.slice(-1500)}`,
    stop: () => gobgp.stop(),
  };
}

async function startFrr(ns: string, { password, passive }: PeerConfig): Promise<Peer> {
  const frr = await FrrProcess.start(ns, frrPeerConfig({ password, passive, connectRetry: 1 }));
  return {
    established: () => frr.bgpState(XLB.v4) === 'Established',
    hasRoute: (prefix) => frr.route('ipv4', prefix) !== undefined,
    dump: () => `${frr.bgpState(XLB.v4)}\n${frr.log.slice(-1500)}`,
    stop: () => frr.stop(),
  };
}

/** The kernel's count of TCP segments whose MD5 signature did not verify, in a namespace. */
function md5Failures(ns: string): number {
  const lines = execFileSync('ip', ['netns', 'exec', ns, 'cat', '/proc/net/netstat'], {
    encoding: 'utf8',
  }).split('\n');
  const [names, values] = lines.filter((l) => l.startsWith('TcpExt:')).map((l) => l.split(/\s+/));
  const i = names!.indexOf('TCPMD5Failure');
  if (i < 0) throw new Error('this kernel does not count TCPMD5Failure');
  return Number(values![i]);
}

/**
 * The peer and our session with the given passwords. With xlbPassive our
 * session only accepts, through a listener on port 179 in xlb's namespace
 * that carries the key; otherwise the peer only accepts.
 */
async function setUp(
  start: (ns: string, config: PeerConfig) => Promise<Peer>,
  passwords: { peer: string; xlb: string },
  xlbPassive = false,
) {
  requirePrivileges('bgp-md5-interop');
  const link = BgpLink.build();
  cleanup.add(() => link.destroy());
  const { log, lines } = recordingLog();
  const session = interopSession(link, log, {
    families: ['ipv4'],
    md5Password: passwords.xlb,
    connectRetryMs: 1000,
    openHoldMs: 2000,
    passive: xlbPassive,
  });
  cleanup.add(() => session.stop());
  if (xlbPassive) {
    const server = link.listen(179);
    cleanup.add(() => new Promise((r) => server.close(r)));
    const listener = new BgpListener({ server, log });
    listener.add(session);
    cleanup.add(() => listener.close());
  }
  const peer = await start(link.peerNs, { password: passwords.peer, passive: !xlbPassive });
  cleanup.add(() => peer.stop());
  const context = () => `xlb log:\n${lines.slice(-10).join('\n')}\npeer:\n${peer.dump()}`;
  session.announce([ROUTE]);
  session.start();
  return { link, peer, session, context };
}

describe.each([
  ['GoBGP', startGobgp],
  ['FRR', startFrr],
] as const)('TCP MD5 with %s', (_name, start) => {
  it('comes up with the same password and the route arrives', async () => {
    const { peer, session, context } = await setUp(start, { peer: PASSWORD, xlb: PASSWORD });
    await until(
      () => `the peer to be Established (${context()})`,
      () => peer.established(),
      15_000,
    );
    await until(
      () => `the route at the peer (${context()})`,
      () => peer.hasRoute(ROUTE.prefix),
    );
    expect(session.state).toBe('Established');
    expect(session.stats.internalErrors).toBe(0);
  });

  it('comes up with the same password when the peer connects to our listener', async () => {
    const { peer, session, context } = await setUp(start, { peer: PASSWORD, xlb: PASSWORD }, true);
    await until(
      () => `the peer to be Established (${context()})`,
      () => peer.established(),
      15_000,
    );
    await until(
      () => `the route at the peer (${context()})`,
      () => peer.hasRoute(ROUTE.prefix),
    );
    expect(session.state).toBe('Established');
  });

  it('never comes up with a wrong password; the peer kernel drops it and we name the cause', async () => {
    const { link, peer, session, context } = await setUp(start, {
      peer: PASSWORD,
      xlb: 'not-the-password',
    });
    const reported = await until(
      () => `the session to report the unanswered connection (${context()})`,
      () => session.lastError?.includes('not answered') && session.lastError,
      10_000,
    );
    expect(reported).toMatch(/TCP MD5 is on: a password that differs from the peer's/);
    // The peer's kernel, not the daemon, threw our SYNs away (the namespace's counters start at 0).
    expect(md5Failures(link.peerNs)).toBeGreaterThan(0);
    expect(session.state).not.toBe('Established');
    expect(peer.established()).toBe(false);
    expect(peer.hasRoute(ROUTE.prefix)).toBe(false);
  });
});
