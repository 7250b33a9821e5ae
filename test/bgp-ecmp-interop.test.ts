// ECMP interop at the session level (issue 6): three xlb nodes, each with its
// own BgpSession from its own namespace and address, announce the same
// prefixes to one router. The nodes share an AS, so their AS paths are equal.
//
//   router (FRR zebra + bgpd, or GoBGP) ─┬─ node0 (xlb session)
//                                        ├─ node1 (xlb session)
//                                        └─ node2 (xlb session)
//
// FRR: bgpd with `maximum-paths 3` hands the three paths to zebra, which
// installs one multipath route in the router's kernel; a node's withdrawal
// drops its next hop, everyone's withdrawal removes the route.
// GoBGP: with use-multiple-paths all three paths are in its multipath set.
// GoBGP programs no kernel FIB by itself (it would hand the set to a zebra),
// so there is no kernel route to check: its test reads the set from GoBGP's
// best-path monitor, and shows a worse path (higher MED) left out of it.
// (BIRD, with real agents: agent-ecmp.test.ts.)
import { afterEach, describe, expect, it } from 'vitest';

import type { Route } from '../control/bgp/routes.js';
import type { BgpSession } from '../control/bgp/session.js';
import { until } from '../control/topology/agent-harness.js';
import { EcmpBed, NODE_AS, ROUTER_AS } from './support/bgp/ecmp-bed.js';
import { BGPD_WITH_ZEBRA, FrrProcess, ZEBRA, type FrrPath } from './support/bgp/frr.js';
import { GobgpProcess, type GobgpPath } from './support/bgp/gobgp.js';
import { Cleanup, recordingLog } from './support/bgp/harness.js';
import { requirePrivileges } from './support/privileged.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const V4 = '203.0.113.30/32';
const V6 = '2001:db8:ff::30/128';
const ROUTES: Route[] = [{ prefix: V4 }, { prefix: V6 }];

/** The bed, and one started session per node announcing routes(i); all removed after the test. */
function nodesAnnouncing(
  suite: string,
  routes: (i: number) => Route[],
): { bed: EcmpBed; sessions: BgpSession[]; lines: string[] } {
  requirePrivileges(suite);
  const bed = EcmpBed.build(3);
  cleanup.add(() => bed.destroy());
  const { log, lines } = recordingLog();
  const sessions = bed.nodes.map((n, i) => {
    const s = bed.session(n, log);
    cleanup.add(() => s.stop());
    s.announce(routes(i));
    return s;
  });
  return { bed, sessions, lines };
}

async function established(sessions: BgpSession[], context: () => string): Promise<void> {
  for (const s of sessions) s.start();
  await until(
    () => `every node's session Established (${context()})`,
    () => sessions.every((s) => s.state === 'Established'),
    15_000,
  );
}

function frrConfig(bed: EcmpBed): string {
  const neighbors = bed.nodes.map((n) => n.v4);
  const each = (lines: (a: string) => string[]) => neighbors.flatMap(lines).join('\n');
  return `
hostname xlbt-ecmp-frr
router bgp ${ROUTER_AS}
 bgp router-id ${bed.nodes[0]!.routerV4}
 no bgp ebgp-requires-policy
${each((a) => [` neighbor ${a} remote-as ${NODE_AS}`, ` neighbor ${a} timers connect 1`, ` neighbor ${a} passive`])}
 address-family ipv4 unicast
  maximum-paths ${neighbors.length}
 exit-address-family
 address-family ipv6 unicast
  maximum-paths ${neighbors.length}
${each((a) => [`  neighbor ${a} activate`])}
 exit-address-family
`;
}

describe('ECMP interop with FRR (zebra + bgpd)', () => {
  it('three nodes make one multipath route in the router kernel; withdrawals shrink and remove it', async () => {
    const { bed, sessions, lines } = nodesAnnouncing('bgp-ecmp-interop', () => ROUTES);
    const zebra = await FrrProcess.start(bed.routerNs, 'hostname xlbt-ecmp-zebra\n', ZEBRA);
    cleanup.add(() => zebra.stop());
    const bgpd = await FrrProcess.start(bed.routerNs, frrConfig(bed), BGPD_WITH_ZEBRA, zebra);
    cleanup.add(() => bgpd.stop());
    const context = () =>
      `kernel: ${JSON.stringify([bed.routerRoutes(V4), bed.routerRoutes(V6)])}\nxlb log:\n${lines.slice(-15).join('\n')}\nzebra:\n${zebra.log.slice(-1500)}\nbgpd:\n${bgpd.log.slice(-1500)}`;
    await established(sessions, context);

    /** Waits until the kernel route for prefix has exactly hops (none: no route), then checks zebra and bgpd agree. */
    const expectNextHops = async (prefix: string, hops: string[]) => {
      const family = prefix.includes(':') ? 'ipv6' : 'ipv4';
      const want = [...hops].sort();
      await until(
        () => `the router's kernel route ${prefix} via [${want.join(', ')}] (${context()})`,
        () => JSON.stringify(bed.routerNextHops(prefix)) === JSON.stringify(want),
        15_000,
      );
      if (want.length === 0) {
        expect(bed.routerRoutes(prefix)).toEqual([]);
        expect(zebra.zebraRoutes(prefix)).toEqual([]);
        expect(bgpd.paths(family, prefix)).toEqual([]);
        return;
      }
      expect(bed.routerRoutes(prefix)).toEqual([{ protocol: 'bgp', nextHops: want }]);
      const [route, ...others] = zebra.zebraRoutes(prefix);
      expect(others).toEqual([]);
      expect(route).toMatchObject({ protocol: 'bgp', selected: true, installed: true });
      expect(route!.nexthops!.map((n) => n.ip).sort()).toEqual(want);
      expect(route!.nexthops!.every((n) => n.active === true && n.fib === true)).toBe(true);
      // bgpd: one path per node left, all valid and all in the multipath set, one of them best.
      const paths = bgpd.paths(family, prefix);
      const hop = (p: FrrPath) => (p.nexthops as { ip: string }[])[0]!.ip;
      expect(paths.map(hop).sort()).toEqual(want);
      for (const p of paths)
        expect(p).toMatchObject({ valid: true, aspath: { string: String(NODE_AS) } });
      if (want.length > 1) expect(paths.every((p) => p.multipath === true)).toBe(true);
      expect(paths.filter((p) => (p.bestpath as { overall?: boolean })?.overall)).toHaveLength(1);
    };

    const [n0, n1, n2] = bed.nodes;
    await expectNextHops(V4, [n0!.v4, n1!.v4, n2!.v4]);
    await expectNextHops(V6, [n0!.v6, n1!.v6, n2!.v6]);

    sessions[0]!.withdraw([V4, V6]);
    await expectNextHops(V4, [n1!.v4, n2!.v4]);
    await expectNextHops(V6, [n1!.v6, n2!.v6]);

    sessions[1]!.withdraw([V4, V6]);
    sessions[2]!.withdraw([V4, V6]);
    await expectNextHops(V4, []);
    await expectNextHops(V6, []);
    for (const s of sessions) expect(s.stats.internalErrors).toBe(0);
  });
});

function gobgpConfig(bed: EcmpBed): string {
  const neighbor = (address: string) => `
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${address}"
    peer-as = ${NODE_AS}
  [neighbors.transport.config]
    passive-mode = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
`;
  return `
[global.config]
  as = ${ROUTER_AS}
  router-id = "${bed.nodes[0]!.routerV4}"
[global.use-multiple-paths.config]
  enabled = true
${bed.nodes.map((n) => neighbor(n.v4)).join('')}`;
}

/** The neighbors a set of GoBGP paths came from, sorted. */
const from = (paths: GobgpPath[] | undefined) => (paths ?? []).map((p) => p['neighbor-ip']).sort();

describe('ECMP interop with GoBGP (use-multiple-paths)', () => {
  it("the three nodes' equal paths form GoBGP's multipath set; a worse path stays out", async () => {
    // A third prefix that node2 announces with a higher MED (same neighbor
    // AS, so MED counts): it is worse and must stay out of the set.
    const WORSE = '203.0.113.31/32';
    const { bed, sessions, lines } = nodesAnnouncing('bgp-ecmp-interop', (i) => [
      ...ROUTES,
      { prefix: WORSE, attributes: { med: i === 2 ? 50 : 10 } },
    ]);
    const gobgp = await GobgpProcess.start(bed.routerNs, gobgpConfig(bed));
    cleanup.add(() => gobgp.stop());
    const context = () =>
      `xlb log:\n${lines.slice(-15).join('\n')}\ngobgpd:\n${gobgp.log.slice(-2000)}`;
    await established(sessions, context);
    const [n0, n1, n2] = bed.nodes.map((n) => n.v4);
    const all = [n0!, n1!, n2!].sort();

    // Every path is in the RIB (one marked best there) ...
    for (const [family, prefix] of [
      ['ipv4', V4],
      ['ipv6', V6],
      ['ipv4', WORSE],
    ] as const) {
      const rib = await until(
        () => `three paths for ${prefix} in GoBGP's RIB (${context()})`,
        () => {
          const paths = gobgp.rib(family, prefix);
          return paths?.length === 3 ? paths : undefined;
        },
        15_000,
      );
      expect(from(rib)).toEqual(all);
      expect(rib.filter((p) => p.best)).toHaveLength(1);
    }
    // ... and the multipath set holds the equal ones only.
    const set = await gobgp.multipathBest();
    expect(from(set[V4])).toEqual(all);
    expect(from(set[V6])).toEqual(all);
    expect(from(set[WORSE])).toEqual([n0, n1].sort());
    const v6Hops = set[V6]!.map(
      (p) => p.attrs.find((a) => a.type === 14)?.nexthop as string | undefined,
    );
    expect(v6Hops.sort()).toEqual(bed.nodes.map((n) => n.v6).sort());

    sessions[0]!.withdraw([V4, V6]);
    await until(
      () => `node0's paths to leave GoBGP's multipath set (${context()})`,
      async () => {
        const s = await gobgp.multipathBest();
        return from(s[V4]).length === 2 && from(s[V6]).length === 2 ? s : undefined;
      },
      15_000,
    ).then((s) => {
      expect(from(s[V4])).toEqual([n1, n2].sort());
      expect(from(s[V6])).toEqual([n1, n2].sort());
    });

    for (const s of sessions) s.withdraw([V4, V6, WORSE]);
    await until(
      () => `every path to leave GoBGP (${context()})`,
      () =>
        gobgp.rib('ipv4', V4) === undefined &&
        gobgp.rib('ipv6', V6) === undefined &&
        gobgp.rib('ipv4', WORSE) === undefined,
      15_000,
    );
    expect(await gobgp.multipathBest(500)).toEqual({});
    for (const s of sessions) expect(s.stats.internalErrors).toBe(0);
  });
});
