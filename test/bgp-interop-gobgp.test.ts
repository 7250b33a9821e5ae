// xlb's BGP speaker against a real GoBGP (gobgpd 3.10), each in its own
// network namespace: routes of both families arrive in GoBGP's RIB with our
// next hops, AS path, communities and large communities; a withdrawal
// removes them; stopping our speaker tears the session down.
import { afterEach, describe, expect, it } from 'vitest';

import { until } from '../control/topology/agent-harness.js';
import { GobgpProcess, type GobgpPath } from './support/bgp/gobgp.js';
import { Cleanup, recordingLog } from './support/bgp/harness.js';
import { INTEROP_ROUTES, interopSession } from './support/bgp/interop.js';
import { BgpLink, XLB } from './support/bgp/link.js';
import { requirePrivileges } from './support/privileged.js';
import { gobgpPeerConfig } from './support/bgp/peer-configs.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const CONFIG = gobgpPeerConfig({ ipv6: true });

/** A path's attributes by type code, without the type field. */
function attrs(p: GobgpPath): Record<number, Record<string, unknown>> {
  return Object.fromEntries(p.attrs.map(({ type, ...rest }) => [type, rest]));
}

describe('interop with GoBGP', () => {
  it('routes arrive with next hop, AS path, communities and large communities; withdraw and stop remove them', async () => {
    requirePrivileges('bgp-interop-gobgp');
    const link = BgpLink.build();
    cleanup.add(() => link.destroy());
    const gobgp = await GobgpProcess.start(link.peerNs, CONFIG);
    cleanup.add(() => gobgp.stop());
    const { log, lines } = recordingLog();
    const session = interopSession(link, log);
    cleanup.add(() => session.stop());
    const context = () =>
      `xlb log:\n${lines.slice(-15).join('\n')}\ngobgpd:\n${gobgp.log.slice(-2000)}`;
    session.announce(INTEROP_ROUTES);
    session.start();
    await until(
      () => `Established (${context()})`,
      () => session.state === 'Established',
      15_000,
    );
    await until(
      () => `GoBGP to see the session Established (${context()})`,
      () => gobgp.established(XLB.v4),
    );

    const [v4] = await until(
      () => `the IPv4 route in GoBGP (${context()})`,
      () => gobgp.rib('ipv4', '203.0.113.10/32'),
    );
    expect(attrs(v4!)).toEqual({
      1: { value: 0 },
      2: { as_paths: [{ segment_type: 2, num: 1, asns: [65002] }] },
      3: { nexthop: XLB.v4 },
      4: { metric: 20 },
      8: { communities: [65002 * 65536 + 100] },
      32: { value: [{ ASN: 65002, LocalData1: 1, LocalData2: 2 }] },
    });
    const [v6] = await until(
      () => `the IPv6 route in GoBGP (${context()})`,
      () => gobgp.rib('ipv6', '2001:db8:ff::10/128'),
    );
    expect(attrs(v6!)).toEqual({
      1: { value: 0 },
      2: { as_paths: [{ segment_type: 2, num: 1, asns: [65002] }] },
      8: { communities: [65002 * 65536 + 200] },
      14: { nexthop: XLB.v6, afi: 2, safi: 1, value: [{ prefix: '2001:db8:ff::10/128' }] },
    });

    session.withdraw(['2001:db8:ff::10/128']);
    await until(
      () => `the IPv6 route to leave GoBGP (${context()})`,
      () => gobgp.rib('ipv6', '2001:db8:ff::10/128') === undefined,
    );
    expect(gobgp.rib('ipv4', '203.0.113.10/32')).toBeDefined();

    await session.stop();
    await until(
      () => `GoBGP to drop the session and the route (${context()})`,
      () => !gobgp.established(XLB.v4) && gobgp.rib('ipv4', '203.0.113.10/32') === undefined,
    );
    expect(session.stats.internalErrors).toBe(0);
  });
});
