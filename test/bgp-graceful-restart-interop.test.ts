// Graceful restart (RFC 4724) with xlb as the restarting speaker against real
// GoBGP and FRR bgpd as receiving speakers, each in its own network namespace.
// Our speaker dies without a NOTIFICATION (its TCP connection just closes):
// a peer with graceful restart keeps our routes, marked stale, for our restart
// time; a new speaker re-announces one of them (fresh again, new MED) and,
// after its End-of-RIB, the peer drops the one not re-announced. A peer with
// graceful restart off drops our routes as soon as the connection goes.
import type net from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import type { BgpSession, SessionOptions } from '../control/bgp/session.js';
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

const KEPT = '203.0.113.60/32';
const DROPPED = '203.0.113.61/32';
const RESTART_TIME = 30;

/** A route as the peer holds it. */
interface PeerRoute {
  stale: boolean;
  med: number | undefined;
}

/** What the tests need from a peer daemon. */
interface Peer {
  established(): boolean;
  route(prefix: string): PeerRoute | undefined;
  /** Whether the peer is waiting for us to come back (holding our routes). */
  helping(): boolean;
  dump(): string;
  stop(): Promise<void>;
}

async function startGobgp(ns: string, gracefulRestart: boolean): Promise<Peer> {
  const gobgp = await GobgpProcess.start(ns, gobgpPeerConfig({ gracefulRestart, connectRetry: 1 }));
  return {
    established: () => gobgp.established(XLB.v4),
    route: (prefix) => {
      const path = gobgp.rib('ipv4', prefix)?.[0];
      if (path === undefined) return undefined;
      const med = path.attrs.find((a) => a.type === 4) as { metric?: number } | undefined;
      return { stale: path.stale === true, med: med?.metric };
    },
    // GoBGP does not show a restarting neighbor in its API; its log says why the peer went down.
    helping: () => /Peer Down.*Reason=graceful-restart/.test(gobgp.log),
    dump: () =>
      `${gobgp.cli('neighbor', XLB.v4)}\n${gobgp.cli('global', 'rib', '-a', 'ipv4', '-j')}\n${gobgp.log.slice(-1500)}`,
    stop: () => gobgp.stop(),
  };
}

/** The graceful restart part of `show bgp neighbors X json`. */
interface FrrNeighborGr {
  gracefulRestartInfo?: {
    timers?: { receivedRestartTimer?: number; restartTimerRemaining?: number };
  };
}

async function startFrr(ns: string, gracefulRestart: boolean): Promise<Peer> {
  const frr = await FrrProcess.start(ns, frrPeerConfig({ gracefulRestart, connectRetry: 1 }));
  return {
    established: () => frr.bgpState(XLB.v4) === 'Established',
    route: (prefix) => {
      const path = frr.route('ipv4', prefix);
      return path === undefined ? undefined : { stale: path.stale === true, med: path.metric };
    },
    // FRR runs the restart timer (our restart time) while it waits for us.
    helping: () => {
      const gr = frr.json<Record<string, FrrNeighborGr>>(`show bgp neighbors ${XLB.v4} json`)[
        XLB.v4
      ]?.gracefulRestartInfo;
      const remaining = gr?.timers?.restartTimerRemaining;
      return (
        gr?.timers?.receivedRestartTimer === RESTART_TIME &&
        remaining !== undefined &&
        remaining > 0
      );
    },
    dump: () =>
      `${JSON.stringify(frr.json(`show bgp neighbors ${XLB.v4} json`))}\n${JSON.stringify(frr.json('show bgp ipv4 unicast json'))}\n${frr.log.slice(-1500)}`,
    stop: () => frr.stop(),
  };
}

async function setUp(start: (ns: string, gracefulRestart: boolean) => Promise<Peer>, gr: boolean) {
  requirePrivileges('bgp-graceful-restart-interop');
  const link = BgpLink.build();
  cleanup.add(() => link.destroy());
  const peer = await start(link.peerNs, gr);
  cleanup.add(() => peer.stop());
  const { log, lines } = recordingLog();
  const sockets: net.Socket[] = [];
  const speaker = (over: Partial<SessionOptions>): BgpSession => {
    const s = interopSession(link, log, { families: ['ipv4'], ...over }, sockets);
    cleanup.add(() => s.stop());
    return s;
  };
  const context = () => `xlb log:\n${lines.slice(-10).join('\n')}\npeer:\n${peer.dump()}`;
  /** The agent dies: its connection closes without a NOTIFICATION. */
  const die = async (s: BgpSession) => {
    for (const sock of sockets) sock.destroy();
    await s.stop();
    await until(
      () => `the peer to see the session go (${context()})`,
      () => !peer.established(),
    );
  };
  return { peer, speaker, context, die };
}

describe.each([
  ['GoBGP', startGobgp],
  ['FRR', startFrr],
] as const)('graceful restart with %s', (_name, start) => {
  it('keeps our routes stale while we restart; End-of-RIB removes the ones not re-announced', async () => {
    const { peer, speaker, context, die } = await setUp(start, true);
    const first = speaker({ gracefulRestart: { restartTimeSeconds: RESTART_TIME } });
    first.announce([{ prefix: KEPT }, { prefix: DROPPED }]);
    first.start();
    await until(
      () => `both routes at the peer (${context()})`,
      () => peer.route(KEPT) && peer.route(DROPPED),
      15_000,
    );
    expect(peer.route(KEPT)).toEqual({ stale: false, med: undefined });

    await die(first);
    // The peer holds our routes, stale, waiting for us.
    await until(
      () => `the peer to mark our routes stale (${context()})`,
      () => peer.route(KEPT)?.stale && peer.route(DROPPED)?.stale,
    );
    expect(peer.route(KEPT)).toEqual({ stale: true, med: undefined });
    expect(peer.route(DROPPED)).toEqual({ stale: true, med: undefined });
    // GoBGP's log line may come a moment after the routes are marked.
    await until(
      () => `the peer to say it waits for our restart (${context()})`,
      () => peer.helping(),
    );

    // A new agent within the restart time re-announces only one route so far.
    const second = speaker({
      gracefulRestart: { restartTimeSeconds: RESTART_TIME, restarting: true },
    });
    second.announce([{ prefix: KEPT, attributes: { med: 7 } }]);
    second.start();
    await until(
      () => `the re-announced route at the peer (${context()})`,
      () => peer.route(KEPT)?.med === 7,
      15_000,
    );
    expect(peer.route(KEPT)).toEqual({ stale: false, med: 7 });
    // Until our End-of-RIB the other one stays, stale.
    await new Promise((r) => setTimeout(r, 300));
    expect(peer.route(DROPPED), context()).toEqual({ stale: true, med: undefined });

    second.ribComplete();
    await until(
      () => `the stale route to leave the peer after End-of-RIB (${context()})`,
      () => peer.route(DROPPED) === undefined,
    );
    expect(peer.route(KEPT)).toEqual({ stale: false, med: 7 });
    expect(second.state).toBe('Established');
    expect(second.stats.internalErrors).toBe(0);
  });

  it('without graceful restart at the peer, our routes go as soon as the connection does', async () => {
    const { peer, speaker, context, die } = await setUp(start, false);
    const s = speaker({ gracefulRestart: { restartTimeSeconds: RESTART_TIME } });
    s.announce([{ prefix: KEPT }]);
    s.start();
    await until(
      () => `the route at the peer (${context()})`,
      () => peer.route(KEPT),
      15_000,
    );
    await die(s);
    // Well within our restart time of 30 s.
    await until(
      () => `the route to leave the peer at once (${context()})`,
      () => peer.route(KEPT) === undefined,
      3_000,
    );
    expect(peer.helping()).toBe(false);
  });
});
