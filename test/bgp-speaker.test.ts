// The node's BGP speaker against a real BIRD 2 in a network namespace: the
// model's decisions for real Services, EndpointSlices and Nodes become /32
// and /128 routes in BIRD with the advertisement's communities, large
// communities and local preference, and the link bandwidth of a Local
// Service in proportion to the node's local endpoints; routes leave BIRD
// when the last local endpoint goes, when the Service goes and at stop; an
// invalid peer change leaves the running session alone.
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';

import { LINK_BANDWIDTH_PER_ENDPOINT, type SpeakerNode } from '../control/bgp/config.js';
import { BgpSpeaker, type SpeakerInput } from '../control/bgp/speaker.js';
import { deriveNode } from '../control/model/index.js';
import { parseIPPool, type IPPool } from '../control/resources/ip-pool.js';
import { until } from '../control/topology/agent-harness.js';
import { BirdProcess } from '../control/topology/bird.js';
import { Cleanup, recordingLog } from './support/bgp/harness.js';
import { BgpLink, PEER, XLB } from './support/bgp/link.js';
import { node, service, slice } from './support/k8s-objects.js';
import { requirePrivileges } from './support/privileged.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const AS = 65001;

// iBGP, so BIRD shows the LOCAL_PREF we send; `direct` because the peer is on the link.
const BIRD_CONFIG = `
router id ${PEER.v4};
protocol device {}
protocol bgp tor {
  local ${PEER.v4} as ${AS};
  neighbor ${XLB.v4} as ${AS};
  passive on;
  direct;
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}
`;

function peer(spec: Record<string, unknown> = {}): unknown {
  return {
    apiVersion: 'xlb.dev/v1alpha1',
    kind: 'BGPPeer',
    metadata: { name: 'tor' },
    spec: { peerAddress: PEER.v4, peerASN: AS, localASN: AS, holdTime: 9, ...spec },
  };
}

function advertisement(spec: Record<string, unknown>): unknown {
  return {
    apiVersion: 'xlb.dev/v1alpha1',
    kind: 'BGPAdvertisement',
    metadata: { name: 'public' },
    spec,
  };
}

const POOLS: IPPool[] = [
  parseIPPool({
    apiVersion: 'xlb.dev/v1alpha1',
    kind: 'IPPool',
    metadata: { name: 'public' },
    spec: { addresses: ['203.0.113.0/24', '2001:db8:ff::/64'] },
  }),
  parseIPPool({
    apiVersion: 'xlb.dev/v1alpha1',
    kind: 'IPPool',
    metadata: { name: 'private' },
    spec: { addresses: ['198.51.100.0/24'] },
  }),
];

const AD = advertisement({
  ipPools: ['public'],
  communities: ['65001:100', 'no-export'],
  largeCommunities: ['65001:7:8'],
  localPreference: 200,
});

const NODES: V1Node[] = [
  node({ name: 'node-a', internal: ['10.0.0.1'] }),
  node({ name: 'node-b', internal: ['10.0.0.2'] }),
  node({
    name: 'node-c',
    internal: ['10.0.0.3'],
    labels: { 'node.kubernetes.io/exclude-from-external-load-balancers': '' },
  }),
];

interface Cluster {
  services: V1Service[];
  slices: V1EndpointSlice[];
}

/**
 * web: Local, dual-stack, 3 IPv4 and 2 IPv6 endpoints on node-a, 1 of each on node-b.
 * api: Cluster, one endpoint on node-b. internal: Cluster, in the pool no advertisement names.
 */
function cluster(): Cluster {
  return {
    services: [
      service({
        name: 'web',
        ips: ['203.0.113.10', '2001:db8:ff::10'],
        externalTrafficPolicy: 'Local',
      }),
      service({ name: 'api', ips: ['203.0.113.20'] }),
      service({ name: 'internal', ips: ['198.51.100.5'] }),
    ],
    slices: [
      slice({
        service: 'web',
        endpoints: [
          { ip: '10.1.0.1', node: 'node-a' },
          { ip: '10.1.0.2', node: 'node-a' },
          { ip: '10.1.0.3', node: 'node-a' },
          { ip: '10.1.0.4', node: 'node-b' },
        ],
      }),
      slice({
        service: 'web',
        addressType: 'IPv6',
        endpoints: [
          { ip: 'fd00::1', node: 'node-a' },
          { ip: 'fd00::2', node: 'node-a' },
          { ip: 'fd00::4', node: 'node-b' },
        ],
      }),
      slice({ service: 'api', endpoints: [{ ip: '10.2.0.1', node: 'node-b' }] }),
      slice({ service: 'internal', endpoints: [{ ip: '10.3.0.1', node: 'node-b' }] }),
    ],
  };
}

function input(nodeName: string, c: Cluster, extra: Partial<SpeakerInput> = {}): SpeakerInput {
  const model = deriveNode({
    services: c.services,
    endpointSlices: c.slices,
    nodes: NODES,
    nodeName,
  });
  return {
    peers: [peer()],
    advertisements: [AD],
    pools: POOLS,
    announcements: model.announcements,
    ...extra,
  };
}

/** `birdc show route PREFIX all`, or undefined when BIRD has no such route. */
function birdRoute(bird: BirdProcess, prefix: string): string | undefined {
  const out = bird.birdcOutput(`show route ${prefix} all`);
  return out.includes('Network not found') || !out.includes(prefix) ? undefined : out;
}

/** The link bandwidth (bytes per second) and its AS in BIRD's route output, if any. */
function linkBandwidthOf(route: string): { asn: number; bytesPerSecond: number } | undefined {
  // BIRD prints a community it has no name for as (unknown TYPE, AS, VALUE).
  const m = /\(unknown 0x4004, (\d+), (\d+)\)/.exec(route);
  if (m === null) return undefined;
  const value = Buffer.alloc(4);
  value.writeUInt32BE(Number(m[2]));
  return { asn: Number(m[1]), bytesPerSecond: value.readFloatBE(0) };
}

async function setUp(nodeName: string) {
  requirePrivileges('bgp-speaker');
  const link = BgpLink.build();
  cleanup.add(() => link.destroy());
  const bird = await BirdProcess.start(link.peerNs, BIRD_CONFIG);
  cleanup.add(() => bird.stop());
  return { link, bird, ...startSpeaker(link, bird, nodeName) };
}

function startSpeaker(link: BgpLink, bird: BirdProcess, nodeName: string) {
  const { log, lines } = recordingLog();
  const registry = new Registry();
  const self: SpeakerNode = {
    name: nodeName,
    labels: { 'kubernetes.io/hostname': nodeName },
    addresses: [XLB.v4, XLB.v6],
  };
  const speaker = new BgpSpeaker({
    node: self,
    connect: ({ host, port }) => link.connect(host, port),
    sessionDefaults: { backoff: { initialMs: 100, maxMs: 500, jitter: 0.25 } },
    registry,
    log,
  });
  cleanup.add(() => speaker.stop());
  const context = () =>
    `xlb log:\n${lines.slice(-15).join('\n')}\nBIRD:\n${bird.birdc('show protocols all tor')}`;
  const established = () =>
    until(
      () => `BIRD to be Established (${context()})`,
      () => bird.bgpState('tor') === 'Established',
      15_000,
    );
  const route = (prefix: string) =>
    until(
      () => `${prefix} in BIRD (${context()})`,
      () => birdRoute(bird, prefix),
    );
  const gone = (prefix: string) =>
    until(
      () => `${prefix} to leave BIRD (${context()})`,
      () => birdRoute(bird, prefix) === undefined,
    );
  return { speaker, registry, established, route, gone, context };
}

describe('BGP speaker against BIRD 2', () => {
  it('announces what the model decides, with the advertisement attributes and Local link bandwidth, and withdraws', async () => {
    const { bird, speaker, registry, established, route, gone } = await setUp('node-a');
    const c = cluster();
    const report = speaker.update(input('node-a', c));
    expect(report.problems).toEqual([]);
    expect(report.peers).toEqual([
      { name: 'tor', status: 'running', state: expect.any(String) as string, routes: 3 },
    ]);
    await established();

    const web4 = await route('203.0.113.10/32');
    expect(web4).toMatch(/BGP\.community: \(65001,100\) \(65535,65281\)\n/);
    expect(web4).toMatch(/BGP\.large_community: \(65001, 7, 8\)\n/);
    expect(web4).toMatch(/BGP\.local_pref: 200\n/);
    expect(web4).toMatch(/BGP\.next_hop: 192\.0\.2\.2\n/);
    // Three local IPv4 endpoints on node-a, two IPv6 ones.
    expect(linkBandwidthOf(web4)).toEqual({
      asn: AS,
      bytesPerSecond: 3 * LINK_BANDWIDTH_PER_ENDPOINT,
    });
    const web6 = await route('2001:db8:ff::10/128');
    expect(web6).toMatch(/BGP\.next_hop: 2001:db8:b::2/);
    expect(linkBandwidthOf(web6)?.bytesPerSecond).toBe(2 * LINK_BANDWIDTH_PER_ENDPOINT);
    // Cluster: announced although its only endpoint is on node-b, and unweighted.
    const api = await route('203.0.113.20/32');
    expect(linkBandwidthOf(api)).toBeUndefined();
    expect(api).toMatch(/BGP\.local_pref: 200\n/);
    // The private pool has no advertisement.
    expect(birdRoute(bird, '198.51.100.5/32')).toBeUndefined();

    // An endpoint more on node-a: the weight follows, on the same session.
    const session = speaker.sessions().get('tor')!;
    c.slices[0]!.endpoints.push({
      addresses: ['10.1.0.9'],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: 'node-a',
    });
    speaker.update(input('node-a', c));
    await until(
      () => 'the link bandwidth of four endpoints',
      () =>
        linkBandwidthOf(birdRoute(bird, '203.0.113.10/32') ?? '')?.bytesPerSecond ===
        4 * LINK_BANDWIDTH_PER_ENDPOINT,
    );

    // The last local IPv4 endpoint of the Local Service goes: its /32 is withdrawn, the /128 stays.
    c.slices[0]!.endpoints = c.slices[0]!.endpoints.filter((e) => e.nodeName !== 'node-a');
    speaker.update(input('node-a', c));
    await gone('203.0.113.10/32');
    expect(birdRoute(bird, '2001:db8:ff::10/128')).toBeDefined();

    // The Service goes: withdrawn.
    c.services = c.services.filter((s) => s.metadata?.name !== 'api');
    speaker.update(input('node-a', c));
    await gone('203.0.113.20/32');
    expect(speaker.sessions().get('tor')).toBe(session);
    expect(bird.bgpState('tor')).toBe('Established');

    const metrics = await registry.metrics();
    expect(metrics).toMatch(/xlb_bgp_session_state\{peer="tor"\} 6\n/);
    expect(metrics).toMatch(/xlb_bgp_session_flaps_total\{peer="tor"\} 0\n/);
    const sent = /xlb_bgp_updates_sent_total\{peer="tor"\} (\d+)\n/.exec(metrics);
    expect(Number(sent?.[1])).toBeGreaterThanOrEqual(4);
    expect(metrics).toMatch(/xlb_bgp_session_uptime_seconds\{peer="tor"\} [0-9.]+\n/);

    // Stop: the routes are withdrawn by an UPDATE before the Cease, then the session closes.
    const sentBefore = session.stats.updatesSent;
    await speaker.stop();
    expect(session.stats.updatesSent).toBe(sentBefore + 1);
    await gone('2001:db8:ff::10/128');
    await until(
      () => 'BIRD to drop the session',
      () => bird.bgpState('tor') !== 'Established',
    );
  });

  it('a Cluster Service is announced from every node but the excluded one; Local only where endpoints are', async () => {
    requirePrivileges('bgp-speaker');
    const link = BgpLink.build();
    cleanup.add(() => link.destroy());
    const bird = await BirdProcess.start(link.peerNs, BIRD_CONFIG);
    cleanup.add(() => bird.stop());
    const c = cluster();
    // Each node in turn plays the node on the link.
    for (const [name, webWeight] of [
      ['node-a', 3],
      ['node-b', 1],
    ] as const) {
      const { speaker, established, route, gone } = startSpeaker(link, bird, name);
      speaker.update(input(name, c));
      await established();
      const web = await route('203.0.113.10/32');
      expect(linkBandwidthOf(web)?.bytesPerSecond).toBe(webWeight * LINK_BANDWIDTH_PER_ENDPOINT);
      await route('203.0.113.20/32');
      await speaker.stop();
      await gone('203.0.113.20/32');
      await until(
        () => 'BIRD to drop the session',
        () => bird.bgpState('tor') !== 'Established',
      );
    }
    // The excluded node still peers but announces nothing.
    const { speaker, established, context } = startSpeaker(link, bird, 'node-c');
    const report = speaker.update(input('node-c', c));
    expect(report.peers).toEqual([
      { name: 'tor', status: 'running', state: expect.any(String) as string, routes: 0 },
    ]);
    await established();
    await new Promise((r) => setTimeout(r, 300));
    expect(bird.birdcOutput('show route count'), context()).toMatch(/0 of 0 routes/);
    await speaker.stop();
  });

  it('an invalid peer change is reported and leaves the running session and its routes alone; a valid change rebuilds it', async () => {
    const { bird, speaker, registry, established, route } = await setUp('node-a');
    const c = cluster();
    speaker.update(input('node-a', c));
    await established();
    await route('203.0.113.20/32');
    const session = speaker.sessions().get('tor')!;

    const bad = speaker.update(input('node-a', c, { peers: [peer({ holdTime: 2, peerASN: 0 })] }));
    expect(bad.peers).toEqual([
      {
        name: 'tor',
        status: 'invalid',
        kept: true,
        message: expect.stringMatching(/BGPPeer 'tor'.*spec\.peerASN.*spec\.holdTime/s) as string,
      },
    ]);
    expect(bad.problems[0]).toMatch(/the running session keeps its settings/);
    // The advertisement still applies to the kept session: new communities arrive.
    speaker.update(
      input('node-a', c, {
        peers: [peer({ holdTime: 2 })],
        advertisements: [advertisement({ ipPools: ['public'], communities: ['65001:999'] })],
      }),
    );
    await until(
      () => 'the new community',
      () => /\(65001,999\)/.test(birdRoute(bird, '203.0.113.20/32') ?? ''),
    );
    expect(speaker.sessions().get('tor')).toBe(session);
    expect(session.state).toBe('Established');

    // Same settings again: nothing rebuilt.
    speaker.update(input('node-a', c));
    expect(speaker.sessions().get('tor')).toBe(session);

    // A valid change of the peer's settings rebuilds only that session.
    speaker.update(input('node-a', c, { peers: [peer({ holdTime: 12 })] }));
    const rebuilt = speaker.sessions().get('tor')!;
    expect(rebuilt).not.toBe(session);
    await until(
      () => 'the rebuilt session to be Established with hold time 12',
      () =>
        rebuilt.state === 'Established' &&
        /Hold timer:.*\/12/.test(bird.birdc('show protocols all tor')),
      15_000,
    );
    await route('203.0.113.20/32');

    // BIRD restarts the session: one flap, and the session comes back by itself.
    bird.birdc('restart tor');
    await until(
      () => 'the flap to be counted',
      async () => /xlb_bgp_session_flaps_total\{peer="tor"\} 1\n/.test(await registry.metrics()),
      15_000,
    );
    await until(
      () => 'the session back',
      () => rebuilt.state === 'Established',
      15_000,
    );
    await route('203.0.113.20/32');
  });
});
