// xlb's BGP speaker against a real BIRD 2, each in its own network namespace
// joined by a veth pair: the session comes up, routes of both families
// arrive with the next hops and attributes we sent, withdrawals remove them,
// stopping our speaker makes BIRD drop them, and BIRD connecting to our
// listener works as well as us connecting to it.
import { afterEach, describe, expect, it } from 'vitest';

import { BgpListener } from '../control/bgp/listener.js';
import { until } from '../control/topology/agent-harness.js';
import { BirdProcess } from '../control/topology/bird.js';
import { Cleanup, Recorder, recordingLog } from './support/bgp/harness.js';
import { interopSession } from './support/bgp/interop.js';
import { BgpLink, PEER, XLB } from './support/bgp/link.js';
import { requirePrivileges } from './support/privileged.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function birdConfig(opts: { passive: boolean }): string {
  return `
router id ${PEER.v4};
protocol device {}
protocol bgp xlb {
  local ${PEER.v4} as 65001;
  neighbor ${XLB.v4} as 65002;
  ${opts.passive ? 'passive on;' : ''}
  connect delay time 1;
  connect retry time 1;
  error wait time 1, 2;
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}
`;
}

const ROUTES = [
  {
    prefix: '203.0.113.10/32',
    attributes: {
      med: 20,
      communities: ['65002:100', '65002:200'],
      largeCommunities: ['65002:1:2'],
    },
  },
  { prefix: '203.0.113.11/32', attributes: { communities: ['65002:300'] } },
  {
    prefix: '2001:db8:ff::10/128',
    attributes: { communities: ['65002:100'], largeCommunities: ['65002:3:4'] },
  },
];

/** `birdc show route PREFIX all`, or undefined when BIRD has no such route. */
function birdRoute(bird: BirdProcess, prefix: string): string | undefined {
  const out = bird.birdcOutput(`show route ${prefix} all`);
  return out.includes('Network not found') || !out.includes(prefix) ? undefined : out;
}

async function setUp(opts: { birdPassive: boolean; xlbPassive: boolean }) {
  requirePrivileges('bgp-interop-bird');
  const link = BgpLink.build();
  cleanup.add(() => link.destroy());
  const { log, lines } = recordingLog();
  // A listener in xlb's namespace, as the agent has on port 179.
  const server = link.listen(179);
  cleanup.add(() => new Promise((r) => server.close(r)));
  const session = interopSession(link, log, {
    passive: opts.xlbPassive,
    backoff: { initialMs: 100, maxMs: 1000, jitter: 0.25 },
  });
  cleanup.add(() => session.stop());
  const listener = new BgpListener({ server, log });
  listener.add(session);
  cleanup.add(() => listener.close());
  const rec = new Recorder(session);
  const bird = await BirdProcess.start(link.peerNs, birdConfig({ passive: opts.birdPassive }));
  cleanup.add(() => bird.stop());
  const context = () =>
    `xlb log:\n${lines.slice(-20).join('\n')}\nBIRD:\n${bird.birdc('show protocols all xlb')}`;
  return { link, session, rec, bird, context };
}

describe('interop with BIRD 2', () => {
  it('routes of both families arrive with next hop, communities, large communities and AS path; withdraw and stop remove them', async () => {
    const { session, rec, bird, context } = await setUp({ birdPassive: true, xlbPassive: false });
    expect(session.announce(ROUTES).rejected).toEqual([]);
    session.start();
    await until(
      () => `BIRD to be Established (${context()})`,
      () => bird.bgpState('xlb') === 'Established',
      15_000,
    );
    expect(session.state).toBe('Established');

    const v4 = await until(
      () => `203.0.113.10/32 in BIRD (${context()})`,
      () => birdRoute(bird, '203.0.113.10/32'),
    );
    expect(v4).toMatch(/via 192\.0\.2\.2 on bgp0/);
    expect(v4).toMatch(/BGP\.as_path: 65002\n/);
    expect(v4).toMatch(/BGP\.next_hop: 192\.0\.2\.2\n/);
    expect(v4).toMatch(/BGP\.med: 20\n/);
    expect(v4).toMatch(/BGP\.community: \(65002,100\) \(65002,200\)\n/);
    expect(v4).toMatch(/BGP\.large_community: \(65002, 1, 2\)\n/);
    expect(birdRoute(bird, '203.0.113.11/32')).toMatch(/BGP\.community: \(65002,300\)\n/);

    const v6 = await until(
      () => `2001:db8:ff::10/128 in BIRD (${context()})`,
      () => birdRoute(bird, '2001:db8:ff::10/128'),
    );
    expect(v6).toMatch(/via 2001:db8:b::2 on bgp0/);
    expect(v6).toMatch(/BGP\.as_path: 65002\n/);
    expect(v6).toMatch(/BGP\.next_hop: 2001:db8:b::2\n/);
    expect(v6).toMatch(/BGP\.community: \(65002,100\)\n/);
    expect(v6).toMatch(/BGP\.large_community: \(65002, 3, 4\)\n/);

    session.withdraw(['203.0.113.10/32', '2001:db8:ff::10/128']);
    await until(
      () => `the withdrawn routes to leave BIRD (${context()})`,
      () =>
        birdRoute(bird, '203.0.113.10/32') === undefined &&
        birdRoute(bird, '2001:db8:ff::10/128') === undefined,
    );
    expect(birdRoute(bird, '203.0.113.11/32')).toBeDefined();

    await session.stop('test over');
    await until(
      () => `BIRD to drop the session (${context()})`,
      () => bird.bgpState('xlb') !== 'Established',
    );
    await until(
      () => `BIRD to drop the routes (${context()})`,
      () => birdRoute(bird, '203.0.113.11/32') === undefined,
    );
    expect(bird.birdc('show protocols all xlb')).toMatch(/test over/);
    expect(rec.states.filter((s) => s.to === 'Established')).toHaveLength(1);
    expect(session.stats.internalErrors).toBe(0);
  });

  it('BIRD connects to our listener (xlb passive)', async () => {
    const { session, bird, context } = await setUp({ birdPassive: false, xlbPassive: true });
    session.announce(ROUTES);
    session.start();
    await until(
      () => `Established (${context()})`,
      () => bird.bgpState('xlb') === 'Established',
      15_000,
    );
    await until(
      () => `203.0.113.10/32 in BIRD (${context()})`,
      () => birdRoute(bird, '203.0.113.10/32'),
    );
  });

  // Both connect; which connection survives depends on timing (collision
  // resolution itself is held to exact cases in bgp-session.test.ts).
  it('both sides active and listening: one stable session', async () => {
    const { session, rec, bird, context } = await setUp({ birdPassive: false, xlbPassive: false });
    session.announce(ROUTES);
    session.start();
    await until(
      () => `Established (${context()})`,
      () => bird.bgpState('xlb') === 'Established',
      15_000,
    );
    await until(
      () => `the routes in BIRD (${context()})`,
      () => birdRoute(bird, '2001:db8:ff::10/128'),
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(bird.bgpState('xlb')).toBe('Established');
    expect(session.state).toBe('Established');
    expect(rec.states.filter((s) => s.to === 'Established')).toHaveLength(1);
  });
});
