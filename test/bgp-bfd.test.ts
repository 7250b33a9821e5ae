// BFD tied to the speaker's BGP sessions, against BIRD 2 (`protocol bfd` and
// `bfd on` in its bgp protocol) at 300 ms x 3, each side in its own network
// namespace: when our node falls silent BIRD drops our routes in under a
// second (the hold time is 9 s, so only BFD can be that fast); when BIRD falls
// silent our session resets in under a second, saying BFD; a peer without BFD
// gets no BFD session, and reconfiguring or stopping closes it (AdminDown).
//
// "Falls silent" closes nothing, as with a node that hangs or loses its
// uplink: our node gets a blackhole route to BIRD, BIRD is frozen with
// SIGSTOP. (Setting the veth down would tell the other side through the
// carrier, and killing BIRD would close its TCP connection: neither would
// show BFD at work.)
import { execFileSync } from 'node:child_process';

import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';

import { BfdState } from '../control/bgp/bfd/index.js';
import type { SpeakerNode } from '../control/bgp/config.js';
import { BgpSpeaker, type SpeakerInput } from '../control/bgp/speaker.js';
import { inNetns } from '../native/index.js';
import { until } from '../control/topology/agent-harness.js';
import { BirdProcess } from '../control/topology/bird.js';
import { Cleanup, recordingLog } from './support/bgp/harness.js';
import { BgpLink, PEER, XLB } from './support/bgp/link.js';
import { requirePrivileges } from './support/privileged.js';
import { freezeNamespace, speakerInput } from './support/bgp/speaker-input.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const AS = 65001;
/** The issue's promise: a dead node's routes are gone in under a second. */
const LIMIT_MS = 1000;
const PREFIX = '203.0.113.10/32';

const BIRD_CONFIG = `
router id ${PEER.v4};
protocol device {}
protocol bfd {
  interface "bgp0" {
    min rx interval 300 ms;
    min tx interval 300 ms;
    idle tx interval 1000 ms;
    multiplier 3;
  };
}
protocol bgp tor {
  local ${PEER.v4} as ${AS};
  neighbor ${XLB.v4} as ${AS};
  passive on;
  direct;
  bfd on;
  # BIRD takes even an AdminDown for a failure (it ignores RFC 5882 3.2) when
  # it arrives while the BGP session restarts; retry soon after, not in 60 s.
  error wait time 1, 2;
  ipv4 { import all; export none; };
}
`;

function peer(bfd: Record<string, unknown> | undefined): unknown {
  return {
    apiVersion: 'xlb.dev/v1alpha1',
    kind: 'BGPPeer',
    metadata: { name: 'tor' },
    spec: {
      peerAddress: PEER.v4,
      peerASN: AS,
      localASN: AS,
      // Far longer than the limit: a route gone in time was taken by BFD.
      holdTime: 9,
      ...(bfd === undefined ? {} : { bfd }),
    },
  };
}

const BFD_300x3 = { enabled: true, minRxMs: 300, minTxMs: 300, detectMultiplier: 3 };

function input(bfd: Record<string, unknown> | undefined = BFD_300x3): SpeakerInput {
  return speakerInput([peer(bfd)], PREFIX.split('/')[0]);
}

/** Stops what `ns` sends to `to` (and nothing else): a blackhole route, removed with the namespace. */
function silence(ns: string, to: string): void {
  execFileSync('ip', ['-n', ns, 'route', 'add', 'blackhole', `${to}/32`]);
}

function birdHasRoute(bird: BirdProcess): boolean {
  const out = bird.birdcOutput(`show route ${PREFIX}`);
  return out.includes(PREFIX.split('/')[0]!) && !out.includes('Network not found');
}

/** BIRD's state for its BFD session with us, lower case ('up', 'down', ...). */
function birdBfdState(bird: BirdProcess): string | undefined {
  return bird
    .birdc('show bfd sessions')
    .split('\n')
    .find((l) => l.trim().startsWith(XLB.v4))
    ?.trim()
    .split(/\s+/)[2]
    ?.toLowerCase();
}

async function setUp(bfd: Record<string, unknown> | undefined = BFD_300x3) {
  requirePrivileges('bgp-bfd');
  const link = BgpLink.build();
  cleanup.add(() => link.destroy());
  const bird = await BirdProcess.start(link.peerNs, BIRD_CONFIG);
  cleanup.add(() => bird.stop());
  const { log, lines } = recordingLog();
  const self: SpeakerNode = {
    name: 'node-a',
    labels: { 'kubernetes.io/hostname': 'node-a' },
    addresses: [XLB.v4],
  };
  const registry = new Registry();
  const speaker = new BgpSpeaker({
    node: self,
    registry,
    connect: ({ host, port }) => link.connect(host, port),
    scope: (fn) => inNetns(link.xlbNs, fn),
    sessionDefaults: { backoff: { initialMs: 100, maxMs: 500, jitter: 0.25 } },
    log,
  });
  cleanup.add(() => speaker.stop());
  const context = () =>
    `xlb log:\n${lines.slice(-15).join('\n')}\nBIRD:\n${bird.birdcOutput('show protocols all tor')}` +
    `\n${bird.birdcOutput('show bfd sessions')}`;
  const report = speaker.update(input(bfd));
  expect(report.problems).toEqual([]);
  const bfdUp = async () =>
    /xlb_bfd_session_up\{peer="tor"\} (\d)/.exec(
      await registry.getSingleMetricAsString('xlb_bfd_session_up'),
    )?.[1];
  return { link, bird, speaker, context, bfdUp, registry };
}

/** Established with our route in BIRD, BFD Up on both sides at the 300 ms rate. */
async function allUp({ bird, speaker, context }: Awaited<ReturnType<typeof setUp>>) {
  await until(
    () => `BGP Established and the route in BIRD (${context()})`,
    () =>
      speaker.sessions().get('tor')?.state === 'Established' &&
      bird.bgpState('tor') === 'Established' &&
      birdHasRoute(bird),
    15_000,
  );
  const bfd = speaker.bfdSessions().get('tor');
  expect(bfd).toBeDefined();
  await until(
    () => `BFD Up on both sides at 300 ms (${JSON.stringify(bfd!.variables)}; ${context()})`,
    () =>
      bfd!.state === BfdState.Up &&
      !bfd!.variables.pollActive &&
      bfd!.variables.remoteDesiredMinTxUs === 300_000 &&
      birdBfdState(bird) === 'up',
    10_000,
  );
  expect(bfd!.variables.remoteDetectMult).toBe(3);
  return bfd!;
}

describe('BFD tied to the BGP sessions, against BIRD 2', () => {
  it('BIRD takes a silent node’s routes away in under a second', async () => {
    const s = await setUp();
    await allUp(s);
    const { link, bird, context } = s;
    expect(await s.bfdUp()).toBe('1');

    const dead = Date.now();
    silence(link.xlbNs, PEER.v4);
    await until(
      () => `BIRD to drop ${PREFIX} (${context()})`,
      () => !birdHasRoute(bird),
      5_000,
      10,
    );
    const goneAfter = Date.now() - dead;
    expect(goneAfter).toBeLessThan(LIMIT_MS);
    // BIRD says why: its BFD session with us went down, not the hold timer.
    expect(bird.birdcOutput('show protocols all tor')).toMatch(/BFD session down/);
  });

  it('our session resets in under a second when BIRD falls silent, and says BFD', async () => {
    const s = await setUp();
    await allUp(s);
    const { link, speaker } = s;
    const session = speaker.sessions().get('tor')!;
    const left: { to: string; at: number }[] = [];
    session.on('state', (to) => left.push({ to, at: Date.now() }));

    const dead = Date.now();
    freezeNamespace(link.peerNs);
    await until(
      // Not BIRD's view: a frozen BIRD does not answer birdc.
      () => `our session to leave Established (last error: ${session.lastError})`,
      () => left.length > 0,
      5_000,
      5,
    );
    expect(left[0]!.at - dead).toBeLessThan(LIMIT_MS);
    expect(left[0]!.to).not.toBe('Established');
    expect(session.lastError).toMatch(/^BFD: peer 192\.0\.2\.1 unreachable/);
    // The session is kept and tries again (BIRD is passive: it waits in Active/Connect).
    expect(speaker.sessions().get('tor')).toBe(session);
    expect(await s.bfdUp()).toBe('0');
  });

  it('no BFD session without bfd.enabled; turning it off closes it, and stop() tells BIRD AdminDown', async () => {
    const s = await setUp({ enabled: false });
    const { bird, speaker, context } = s;
    await until(
      () => `BGP Established (${context()})`,
      () => bird.bgpState('tor') === 'Established',
      15_000,
    );
    expect(speaker.bfdSessions().size).toBe(0);
    expect(await s.bfdUp()).toBeUndefined();

    // Enabling BFD rebuilds the session with it.
    expect(speaker.update(input()).problems).toEqual([]);
    const bfd = await allUp(s);

    // Disabling closes our BFD session with AdminDown: BIRD sees it at once.
    expect(speaker.update(input({ enabled: false })).problems).toEqual([]);
    expect(speaker.bfdSessions().size).toBe(0);
    // Once the Cease is out (the next turn).
    await until(
      () => `our BFD session to close (${BfdState[bfd.state]})`,
      () => bfd.state === BfdState.AdminDown,
      1_000,
      5,
    );
    await until(
      () => `BIRD to see our BFD session go (${context()})`,
      () => birdBfdState(bird) !== 'up',
      2_000,
    );

    await allUp((speaker.update(input()), s));
    await speaker.stop();
    expect(speaker.bfdSessions().size).toBe(0);
    await until(
      () => `BIRD to see BFD AdminDown after stop (${context()})`,
      () => birdBfdState(bird) !== 'up',
      2_000,
    );
  });
  it('drops BFD packets that crossed a router (TTL 254) and counts them per local address', async () => {
    const s = await setUp();
    const bfd = await allUp(s);
    const discarded = async () =>
      /xlb_bfd_packets_discarded_total\{local="([^"]+)",reason="lowTtl"\} (\d+)/.exec(
        await s.registry.getSingleMetricAsString('xlb_bfd_packets_discarded_total'),
      );
    expect(await discarded()).toBeNull();
    // Three packets one hop further away than a single-hop peer can be.
    execFileSync('ip', [
      'netns',
      'exec',
      s.link.peerNs,
      'python3',
      '-c',
      'import socket,sys\n' +
        's=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n' +
        's.setsockopt(socket.IPPROTO_IP,socket.IP_TTL,254)\n' +
        'for _ in range(3): s.sendto(bytes(24),(sys.argv[1],3784))',
      XLB.v4,
    ]);
    await until(
      () => `three lowTtl discards in xlb_bfd_packets_discarded_total (${s.context()})`,
      async () => (await discarded())?.[2] === '3',
      2_000,
      20,
    );
    expect((await discarded())?.[1]).toBe(XLB.v4);
    // The session never saw them.
    expect(bfd.state).toBe(BfdState.Up);
  });
});
