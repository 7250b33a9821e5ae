// A BGP-only reconfiguration keeps the peer's BFD session, against BIRD 2
// with its default error wait (60 s): BIRD 2.0.12 takes a BFD AdminDown that
// arrives while its BGP session restarts for a failure, and then waits a
// minute before it takes the session up again. So we send none.
// Changing the hold and keepalive times rebuilds the BGP session (a Cease,
// a new connection) while the same BFD session carries on (BIRD itself
// takes its side down with its BGP session and up again with the next), and
// the route is back in BIRD within seconds, and the kept BFD session now
// resets the new BGP session when BIRD falls silent. Changing a BFD setting
// does replace the BFD session.

import { afterEach, describe, expect, it } from 'vitest';

import { BfdState } from '../control/bgp/bfd/index.js';
import type { SpeakerNode } from '../control/bgp/config.js';
import { BgpSpeaker, type SpeakerInput } from '../control/bgp/speaker.js';
import { until } from '../control/topology/agent-harness.js';
import { BirdProcess } from '../control/topology/bird.js';
import { inNetns } from '../native/index.js';
import { Cleanup, recordingLog } from './support/bgp/harness.js';
import { BgpLink, PEER, XLB } from './support/bgp/link.js';
import { requirePrivileges } from './support/privileged.js';
import { bgpPeer, freezeNamespace, speakerInput } from './support/bgp/speaker-input.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const AS = 65001;
const PREFIX = '203.0.113.30/32';
/** "Within a few seconds", against BIRD's 60 s error wait. */
const BACK_WITHIN_MS = 5_000;

// No `error wait time`: BIRD's default of 60 s is what a lost BFD session costs.
const BIRD_CONFIG = `
router id ${PEER.v4};
protocol device {}
protocol bfd {
  interface "bgp0" { min rx interval 300 ms; min tx interval 300 ms; multiplier 3; };
}
protocol bgp tor {
  local ${PEER.v4} as ${AS};
  neighbor ${XLB.v4} as ${AS};
  passive on;
  direct;
  bfd on;
  ipv4 { import all; export none; };
}
`;

const BFD = { enabled: true, minRxMs: 300, minTxMs: 300, detectMultiplier: 3 };

function input(spec: Record<string, unknown>): SpeakerInput {
  return speakerInput(
    [bgpPeer({ peerAddress: PEER.v4, peerASN: AS, localASN: AS, bfd: BFD, ...spec })],
    PREFIX.split('/')[0],
  );
}

function birdBfdUp(bird: BirdProcess): boolean {
  return bird
    .birdc('show bfd sessions')
    .split('\n')
    .some((l) => l.trim().startsWith(XLB.v4) && /\bUp\b/i.test(l));
}

describe('BFD kept across a BGP-only reconfiguration, against BIRD 2', () => {
  it('rebuilds the BGP session on new timers with the same BFD session Up; the route is back in seconds', async () => {
    requirePrivileges('bgp-speaker-bfd-keep');
    const link = BgpLink.build();
    cleanup.add(() => link.destroy());
    const bird = await BirdProcess.start(link.peerNs, BIRD_CONFIG);
    cleanup.add(() => bird.stop());
    const { log, lines } = recordingLog();
    const self: SpeakerNode = { name: 'node-a', labels: {}, addresses: [XLB.v4] };
    const speaker = new BgpSpeaker({
      node: self,
      connect: ({ host, port }) => link.connect(host, port),
      scope: (fn) => inNetns(link.xlbNs, fn),
      sessionDefaults: { backoff: { initialMs: 100, maxMs: 500, jitter: 0 } },
      log,
    });
    cleanup.add(() => speaker.stop());
    const context = () =>
      `xlb log:\n${lines.slice(-12).join('\n')}\nBIRD:\n${bird.birdcOutput('show protocols all tor')}` +
      `\n${bird.birdcOutput('show bfd sessions')}`;
    const birdHasRoute = () => bird.birdcOutput(`show route ${PREFIX}`).includes(PREFIX);
    const allUp = async (what: string) => {
      await until(
        () => `${what}: BGP Established, the route in BIRD and BFD Up (${context()})`,
        () =>
          speaker.sessions().get('tor')?.state === 'Established' &&
          bird.bgpState('tor') === 'Established' &&
          birdHasRoute() &&
          speaker.bfdSessions().get('tor')?.state === BfdState.Up &&
          birdBfdUp(bird),
        15_000,
      );
    };

    expect(speaker.update(input({ holdTime: 9 })).problems).toEqual([]);
    await allUp('first start');
    const session = speaker.sessions().get('tor')!;
    const bfd = speaker.bfdSessions().get('tor')!;
    const bfdStates: BfdState[] = [];
    bfd.on('state', (to) => bfdStates.push(to));

    // BGP-only settings: a new session, the same BFD session.
    const changed = Date.now();
    expect(speaker.update(input({ holdTime: 12, keepaliveTime: 3 })).problems).toEqual([]);
    const rebuilt = speaker.sessions().get('tor')!;
    expect(rebuilt).not.toBe(session);
    expect(speaker.bfdSessions().get('tor')).toBe(bfd);
    await until(
      () => `BIRD to see the old session go (${context()})`,
      () => bird.bgpState('tor') !== 'Established' || rebuilt.state === 'Established',
      5_000,
      10,
    );
    await allUp('after the BGP-only change');
    expect(Date.now() - changed).toBeLessThan(BACK_WITHIN_MS);
    expect(rebuilt.state).toBe('Established');
    expect(rebuilt.peerOpen).toBeDefined();
    // We never took the BFD session down. BIRD ties its BFD session to its
    // BGP session: AdminDown when that closed (our side: Down, BGP left
    // alone), up again with the new one.
    expect(bfdStates).not.toContain(BfdState.AdminDown);
    expect(bfdStates.filter((s) => s !== BfdState.Up).every((s) => s === BfdState.Down)).toBe(true);
    expect(bfd.state).toBe(BfdState.Up);
    expect(bird.birdc('show protocols all tor')).not.toMatch(/BFD session down/);
    expect(lines.some((l) => l.includes('its BFD session carries on'))).toBe(true);

    // The kept BFD session now guards the new BGP session: BIRD falls
    // silent (frozen) and the rebuilt session resets, saying BFD.
    const frozen = Date.now();
    freezeNamespace(link.peerNs);
    await until(
      () => `the rebuilt session to reset (last error: ${rebuilt.lastError})`,
      () => rebuilt.state !== 'Established',
      5_000,
      5,
    );
    expect(Date.now() - frozen).toBeLessThan(2_000);
    expect(rebuilt.lastError).toMatch(/^BFD: peer 192\.0\.2\.1 unreachable/);

    // Changing a BFD setting does replace the BFD session (AdminDown on the old one).
    expect(
      speaker.update(input({ holdTime: 12, keepaliveTime: 3, bfd: { ...BFD, minTxMs: 400 } }))
        .problems,
    ).toEqual([]);
    const replaced = speaker.bfdSessions().get('tor');
    expect(replaced).toBeDefined();
    expect(replaced).not.toBe(bfd);
    await until(
      () => `the old BFD session to close with AdminDown (${BfdState[bfd.state]})`,
      () => bfd.state === BfdState.AdminDown,
      2_000,
      5,
    );
  });
});
