// xlb's BGP speaker against a real FRR bgpd (8.4, without zebra), each in
// its own network namespace: routes of both families arrive with our next
// hops and attributes; a withdrawal removes them; stopping our speaker makes
// FRR drop the session and the routes.
import { afterEach, describe, expect, it } from 'vitest';

import { until } from '../control/topology/agent-harness.js';
import { FrrProcess } from './support/bgp/frr.js';
import { Cleanup, recordingLog } from './support/bgp/harness.js';
import { INTEROP_ROUTES, interopSession } from './support/bgp/interop.js';
import { BgpLink, XLB } from './support/bgp/link.js';
import { requirePrivileges } from './support/privileged.js';
import { frrPeerConfig } from './support/bgp/peer-configs.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const CONFIG = frrPeerConfig({ ipv6: true, connectRetry: 1 });

describe('interop with FRR', () => {
  it('routes arrive with next hop and attributes; withdraw and stop remove them', async () => {
    requirePrivileges('bgp-interop-frr');
    const link = BgpLink.build();
    cleanup.add(() => link.destroy());
    const frr = await FrrProcess.start(link.peerNs, CONFIG);
    cleanup.add(() => frr.stop());
    const { log, lines } = recordingLog();
    const session = interopSession(link, log);
    cleanup.add(() => session.stop());
    const context = () =>
      `xlb log:\n${lines.slice(-15).join('\n')}\nbgpd:\n${frr.log.slice(-2000)}`;
    session.announce(INTEROP_ROUTES);
    session.start();
    await until(
      () => `Established (${context()})`,
      () => session.state === 'Established',
      15_000,
    );
    await until(
      () => `FRR to be Established (${context()})`,
      () => frr.bgpState(XLB.v4) === 'Established',
    );
    const v4 = await until(
      () => `the IPv4 route in FRR (${context()})`,
      () => frr.route('ipv4', '203.0.113.10/32'),
    );
    expect(v4).toMatchObject({
      valid: true,
      aspath: { string: '65002' },
      origin: 'IGP',
      metric: 20,
      community: { list: ['65002:100'] },
      largeCommunity: { list: ['65002:1:2'] },
      nexthops: [{ ip: XLB.v4, afi: 'ipv4' }],
      peer: { routerId: XLB.v4, type: 'external' },
    });
    const v6 = await until(
      () => `the IPv6 route in FRR (${context()})`,
      () => frr.route('ipv6', '2001:db8:ff::10/128'),
    );
    expect(v6).toMatchObject({
      valid: true,
      aspath: { string: '65002' },
      community: { list: ['65002:200'] },
      nexthops: [{ ip: XLB.v6, afi: 'ipv6', scope: 'global' }],
    });

    session.withdraw(['203.0.113.10/32']);
    await until(
      () => `the IPv4 route to leave FRR (${context()})`,
      () => frr.route('ipv4', '203.0.113.10/32') === undefined,
    );
    expect(frr.route('ipv6', '2001:db8:ff::10/128')).toBeDefined();

    await session.stop('test over');
    await until(
      () => `FRR to drop the session and the route (${context()})`,
      () =>
        frr.bgpState(XLB.v4) !== 'Established' &&
        frr.route('ipv6', '2001:db8:ff::10/128') === undefined,
    );
    expect(
      frr.json<
        Record<string, { lastNotificationReason?: string; lastShutdownDescription?: string }>
      >(`show bgp neighbors ${XLB.v4} json`)[XLB.v4],
    ).toMatchObject({
      lastNotificationReason: expect.stringMatching(/Cease\/Administrative Shutdown/) as unknown,
    });
    expect(session.stats.internalErrors).toBe(0);
  });
});
