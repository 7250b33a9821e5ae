// Graceful restart (RFC 4724) as the restarting speaker. Against a raw peer:
// the OPEN carries the capability with our restart time and the forwarding
// bit, the Restart State bit only in the first OPEN after a restart, and
// End-of-RIB waits for ribComplete(); a graceful stop closes without a
// NOTIFICATION only when the peer advertised the capability too. Against BIRD 2: our speaker dies
// without a NOTIFICATION, BIRD keeps its routes as stale, a new speaker
// comes up within the restart time, re-announced routes are fresh again and
// the rest leave after our End-of-RIB.
import type net from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import {
  Afi,
  GracefulRestartFlag,
  GracefulRestartForwarding,
  Safi,
  type Capability,
} from '../control/bgp/codec/capabilities.js';
import type { BgpMessage } from '../control/bgp/codec/message.js';
import { capabilitiesOf, type OpenMessage } from '../control/bgp/codec/open.js';
import { endOfRibFamily } from '../control/bgp/codec/update.js';
import { BgpSession, type SessionOptions } from '../control/bgp/session.js';
import { until } from '../control/topology/agent-harness.js';
import { BirdProcess } from '../control/topology/bird.js';
import {
  Cleanup,
  FAST,
  handshake,
  peerOpen,
  RawServer,
  Recorder,
  recordingLog,
} from './support/bgp/harness.js';
import { BgpLink, PEER, XLB } from './support/bgp/link.js';
import { requirePrivileges } from './support/privileged.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function gracefulRestartOf(open: OpenMessage): Extract<Capability, { kind: 'gracefulRestart' }> {
  const cap = capabilitiesOf(open).find((c) => c.kind === 'gracefulRestart');
  if (cap?.kind !== 'gracefulRestart') throw new Error('no graceful restart capability in OPEN');
  return cap;
}

describe('graceful restart against a raw peer', () => {
  it('OPEN carries restart time, F bit, and the R bit only in the first OPEN after a restart', async () => {
    const server = await RawServer.start('127.0.0.31', cleanup);
    const { log } = recordingLog();
    const session = new BgpSession({
      localAs: 65002,
      peerAs: 65001,
      routerId: '192.0.2.31',
      peerAddress: '127.0.0.31',
      peerPort: server.port,
      localAddress: '127.0.0.32',
      families: ['ipv4', 'ipv6'],
      gracefulRestart: { restartTimeSeconds: 120, restarting: true },
      log,
      ...FAST,
    });
    cleanup.add(() => session.stop());
    const rec = new Recorder(session);
    session.announce([{ prefix: '203.0.113.40/32' }]);
    session.start();
    const first = await server.next();
    await handshake(first);
    const open1 = first.messages().find((m) => m.type === 'open') as OpenMessage;
    expect(gracefulRestartOf(open1)).toEqual({
      kind: 'gracefulRestart',
      flags: GracefulRestartFlag.Restarting,
      restartTime: 120,
      families: [
        { afi: Afi.Ipv4, safi: Safi.Unicast, flags: GracefulRestartForwarding },
        { afi: Afi.Ipv6, safi: Safi.Unicast, flags: GracefulRestartForwarding },
      ],
    });
    await rec.waitState('Established');
    await first.waitFor('the re-announced route', (m) => m.type === 'update');
    // End-of-RIB is held until the routes are complete.
    await new Promise((r) => setTimeout(r, 100));
    expect(first.messages().filter((m) => m.type === 'update')).toHaveLength(1);
    session.ribComplete();
    const updates = await first.waitFor('two End-of-RIBs', (m) => m.type === 'update', 3);
    expect(updates.slice(1).map(describeEor)).toEqual(['ipv4', 'ipv6']);

    // The connection drops; the next OPEN of the same speaker is no restart.
    first.close();
    const second = await server.next();
    await second.waitFor('the second OPEN', (m) => m.type === 'open');
    const open2 = second.messages().find((m) => m.type === 'open') as OpenMessage;
    expect(gracefulRestartOf(open2).flags).toBe(0);
    expect(gracefulRestartOf(open2).restartTime).toBe(120);
    expect(session.stats.internalErrors).toBe(0);
  });

  it('without restarting, End-of-RIB follows the routes at once; bad restart times are refused', async () => {
    const server = await RawServer.start('127.0.0.33', cleanup);
    const session = new BgpSession({
      localAs: 65002,
      peerAs: 65001,
      routerId: '192.0.2.33',
      peerAddress: '127.0.0.33',
      peerPort: server.port,
      localAddress: '127.0.0.34',
      families: ['ipv4'],
      gracefulRestart: { restartTimeSeconds: 5, forwardingPreserved: false },
      log: recordingLog().log,
      ...FAST,
    });
    cleanup.add(() => session.stop());
    session.announce([{ prefix: '203.0.113.41/32' }]);
    session.start();
    const peer = await server.next();
    await handshake(peer);
    const open = peer.messages().find((m) => m.type === 'open') as OpenMessage;
    expect(gracefulRestartOf(open)).toEqual({
      kind: 'gracefulRestart',
      flags: 0,
      restartTime: 5,
      families: [{ afi: Afi.Ipv4, safi: Safi.Unicast, flags: 0 }],
    });
    const updates = await peer.waitFor('route and End-of-RIB', (m) => m.type === 'update', 2);
    expect(describeEor(updates[1]!)).toBe('ipv4');
    expect(
      () =>
        new BgpSession({
          localAs: 1,
          peerAs: 2,
          routerId: '192.0.2.9',
          peerAddress: '192.0.2.1',
          gracefulRestart: { restartTimeSeconds: 4096 },
        }),
    ).toThrow(/0\.\.4095/);
  });
  it('a graceful stop closes without a NOTIFICATION only when the peer advertised graceful restart', async () => {
    const stopOnce = async (host: string, local: string, peerGr: boolean) => {
      const server = await RawServer.start(host, cleanup);
      const session = new BgpSession({
        localAs: 65002,
        peerAs: 65001,
        routerId: '192.0.2.37',
        peerAddress: host,
        peerPort: server.port,
        localAddress: local,
        families: ['ipv4'],
        gracefulRestart: { restartTimeSeconds: 120 },
        log: recordingLog().log,
        ...FAST,
      });
      cleanup.add(() => session.stop());
      session.announce([{ prefix: '203.0.113.42/32' }]);
      session.start();
      const peer = await server.next();
      const open = peerOpen();
      await handshake(
        peer,
        peerGr
          ? {
              ...open,
              parameters: [
                {
                  kind: 'capabilities',
                  capabilities: [
                    ...capabilitiesOf(open),
                    { kind: 'gracefulRestart', flags: 0, restartTime: 90, families: [] },
                  ],
                },
              ],
            }
          : open,
      );
      await peer.waitFor('route and End-of-RIB', (m) => m.type === 'update', 2);
      expect(session.gracefulRestartNegotiated).toBe(peerGr);
      await session.stop('agent restarting', { graceful: true });
      await peer.waitClosed();
      expect(session.state).toBe('Idle');
      return peer.messages().slice(-1)[0]!;
    };
    // Graceful restart on both sides: the connection just closes, the route stays announced.
    expect(describeEor(await stopOnce('127.0.0.86', '127.0.0.87', true))).toBe('ipv4');
    // The peer did not advertise it: a Cease, which makes it flush our routes.
    expect(await stopOnce('127.0.0.88', '127.0.0.89', false)).toMatchObject({
      type: 'notification',
      code: 6,
      subcode: 2,
    });
  });

  it('sends End-of-RIB after the restart time when ribComplete() never comes', async () => {
    const server = await RawServer.start('127.0.0.35', cleanup);
    const session = new BgpSession({
      localAs: 65002,
      peerAs: 65001,
      routerId: '192.0.2.35',
      peerAddress: '127.0.0.35',
      peerPort: server.port,
      localAddress: '127.0.0.36',
      families: ['ipv4'],
      gracefulRestart: { restartTimeSeconds: 1, restarting: true },
      log: recordingLog().log,
      ...FAST,
    });
    cleanup.add(() => session.stop());
    session.start();
    const peer = await server.next();
    await handshake(peer);
    const established = Date.now();
    const [eor] = await peer.waitFor('End-of-RIB', (m) => m.type === 'update', 1, 3000);
    expect(Date.now() - established).toBeGreaterThanOrEqual(900);
    expect(describeEor(eor!)).toBe('ipv4');
  });
});

/** 'ipv4' / 'ipv6' for an End-of-RIB marker, 'routes' for any other UPDATE. */
function describeEor(m: BgpMessage): string {
  return m.type === 'update' ? (endOfRibFamily(m) ?? 'routes') : m.type;
}

const BIRD_CONFIG = `
router id ${PEER.v4};
protocol device {}
protocol bgp xlb {
  local ${PEER.v4} as 65001;
  neighbor ${XLB.v4} as 65002;
  passive on;
  graceful restart aware;
  hold time 9;
  ipv4 { import all; export none; };
}
`;

describe('graceful restart with BIRD 2', () => {
  it('BIRD keeps our routes while the agent restarts; End-of-RIB removes the ones not re-announced', async () => {
    requirePrivileges('bgp-graceful-restart');
    const link = BgpLink.build();
    cleanup.add(() => link.destroy());
    const bird = await BirdProcess.start(link.peerNs, BIRD_CONFIG);
    cleanup.add(() => bird.stop());
    const { log, lines } = recordingLog();
    const sockets: net.Socket[] = [];
    const speaker = (over: Partial<SessionOptions>) => {
      const s = new BgpSession({
        localAs: 65002,
        peerAs: 65001,
        routerId: XLB.v4,
        peerAddress: PEER.v4,
        holdTime: 9,
        families: ['ipv4'],
        backoff: { initialMs: 100, maxMs: 500, jitter: 0 },
        connect: ({ host, port }) => {
          const sock = link.connect(host, port);
          sockets.push(sock);
          return sock;
        },
        log,
        ...over,
      });
      cleanup.add(() => s.stop());
      return s;
    };
    const context = () =>
      `xlb log:\n${lines.slice(-10).join('\n')}\nBIRD:\n${bird.birdc('show protocols all xlb')}\n${bird.birdcOutput('show route all')}`;

    const first = speaker({ gracefulRestart: { restartTimeSeconds: 30 } });
    first.announce([{ prefix: '203.0.113.50/32' }, { prefix: '203.0.113.51/32' }]);
    first.start();
    const routes = () => bird.birdcOutput('show route all');
    const protocol = () => bird.birdc('show protocols all xlb');
    /** BIRD's line for a route: prefix, protocol and the time it was learnt. */
    const routeLine = (prefix: string) =>
      routes()
        .split('\n')
        .find((l) => l.startsWith(prefix + ' '));
    await until(
      () => `both routes in BIRD (${context()})`,
      () => routeLine('203.0.113.50/32') && routeLine('203.0.113.51/32'),
      15_000,
    );
    // BIRD saw our capability: restart time, forwarding preserved; no restart yet.
    expect(protocol()).toMatch(
      /Graceful restart\n\s+Restart time: 30\n\s+AF supported: ipv4\n\s+AF preserved: ipv4/,
    );
    const learnt51 = routeLine('203.0.113.51/32');

    // The agent dies: its connection closes with no NOTIFICATION.
    for (const s of sockets) s.destroy();
    await first.stop();
    await until(
      () => `BIRD to see the session go (${context()})`,
      () => bird.bgpState('xlb') !== 'Established',
    );
    // BIRD waits for us with the routes kept (stale) instead of withdrawing them.
    expect(protocol()).toMatch(/Neighbor graceful restart active\n\s+Restart timer:/);
    expect(routeLine('203.0.113.50/32')).toBeDefined();
    expect(routeLine('203.0.113.51/32')).toBe(learnt51);

    // A new agent within the restart time re-announces only one route so far.
    const second = speaker({ gracefulRestart: { restartTimeSeconds: 30, restarting: true } });
    second.announce([{ prefix: '203.0.113.50/32', attributes: { med: 7 } }]);
    second.start();
    await until(
      () => `the re-announced route in BIRD (${context()})`,
      () => /BGP\.med: 7/.test(routes()),
      15_000,
    );
    // BIRD saw the Restart State bit and is in GR recovery until our End-of-RIB:
    // the route not re-announced yet is still there, stale (learnt by the first session).
    expect(protocol()).toMatch(/Restart time: 30\n\s+Restart recovery\n/);
    expect(protocol()).toMatch(/Neighbor GR:\s+Regular/);
    expect(routeLine('203.0.113.51/32')).toBe(learnt51);
    await new Promise((r) => setTimeout(r, 200));
    expect(routeLine('203.0.113.51/32')).toBe(learnt51);

    second.ribComplete();
    await until(
      () => `the stale route to leave BIRD after End-of-RIB (${context()})`,
      () => routeLine('203.0.113.51/32') === undefined,
    );
    expect(protocol()).not.toMatch(/Neighbor GR:/);
    expect(routes()).toMatch(/203\.0\.113\.50\/32[^]*BGP\.med: 7/);
    expect(second.state).toBe('Established');
    expect(second.stats.internalErrors).toBe(0);
  });
});
