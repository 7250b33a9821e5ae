// spec.sourceAddress against BIRD 2: the node has two addresses on its link
// (192.0.2.2 first, so the kernel would pick it) and the BGPPeer names the
// second. BIRD peers with the second only (a connection from any other
// address is refused), runs BFD with it, and learns our route with it as
// the next hop: the session's TCP connection and its BFD session both come
// from the configured address, through the speaker's default connect
// (native connectTcp binding the socket before its SYN).
import { afterEach, describe, expect, it } from 'vitest';

import type { SpeakerNode } from '../control/bgp/config.js';
import { BgpSpeaker, defaultPeerConnect, type SpeakerInput } from '../control/bgp/speaker.js';
import { ip } from '../control/topology/ip.js';
import { until } from '../control/topology/agent-harness.js';
import { BirdProcess } from '../control/topology/bird.js';
import { BfdState } from '../control/bgp/bfd/index.js';
import { inNetns } from '../native/index.js';
import { Cleanup, recordingLog } from './support/bgp/harness.js';
import { BgpLink, PEER, XLB } from './support/bgp/link.js';
import { requirePrivileges } from './support/privileged.js';
import { bgpPeer, speakerInput } from './support/bgp/speaker-input.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const AS = 65001;
/** The node's second address on the link: the one the BGPPeer names. */
const SOURCE = '192.0.2.3';
const PREFIX = '203.0.113.20/32';

const BIRD_CONFIG = `
router id ${PEER.v4};
protocol device {}
protocol bfd {
  interface "bgp0" { min rx interval 300 ms; min tx interval 300 ms; multiplier 3; };
}
protocol bgp tor {
  local ${PEER.v4} as ${AS};
  neighbor ${SOURCE} as ${AS};
  passive on;
  direct;
  bfd on;
  ipv4 { import all; export none; };
}
`;

function input(sourceAddress: string): SpeakerInput {
  return speakerInput(
    [
      bgpPeer({
        peerAddress: PEER.v4,
        peerASN: AS,
        localASN: AS,
        holdTime: 9,
        sourceAddress,
        bfd: { enabled: true, minRxMs: 300, minTxMs: 300, detectMultiplier: 3 },
      }),
    ],
    PREFIX.split('/')[0],
  );
}

describe('spec.sourceAddress against BIRD 2', () => {
  it('binds the BGP connection and the BFD session to the configured address', async () => {
    requirePrivileges('bgp-speaker-source');
    const link = BgpLink.build();
    cleanup.add(() => link.destroy());
    ip('-n', link.xlbNs, 'addr', 'add', `${SOURCE}/24`, 'dev', 'bgp0');
    const bird = await BirdProcess.start(link.peerNs, BIRD_CONFIG);
    cleanup.add(() => bird.stop());
    const { log, lines } = recordingLog();
    const self: SpeakerNode = { name: 'node-a', labels: {}, addresses: [XLB.v4] };
    const speaker = new BgpSpeaker({
      node: self,
      // The production connect, run inside the node's namespace.
      connect: (t) => inNetns(link.xlbNs, () => defaultPeerConnect(t)),
      scope: (fn) => inNetns(link.xlbNs, fn),
      sessionDefaults: { backoff: { initialMs: 100, maxMs: 500, jitter: 0 } },
      log,
    });
    cleanup.add(() => speaker.stop());
    const context = () =>
      `xlb log:\n${lines.slice(-10).join('\n')}\nBIRD:\n${bird.birdcOutput('show protocols all tor')}` +
      `\n${bird.birdcOutput('show bfd sessions')}`;

    expect(speaker.update(input(SOURCE)).problems).toEqual([]);
    await until(
      () => `BIRD to establish the session with ${SOURCE} (${context()})`,
      () => bird.bgpState('tor') === 'Established',
      15_000,
    );
    expect(bird.birdc('show protocols all tor')).toMatch(
      new RegExp(`Neighbor address: ${SOURCE.replaceAll('.', '\\.')}\\b`),
    );
    const route = await until(
      () => `BIRD to learn ${PREFIX} (${context()})`,
      () => {
        const out = bird.birdcOutput(`show route ${PREFIX} all`);
        return out.includes(PREFIX) ? out : undefined;
      },
    );
    expect(route).toMatch(new RegExp(`BGP\\.next_hop: ${SOURCE.replaceAll('.', '\\.')}\\b`));

    // BFD runs from the same address: BIRD's session with it comes up.
    const bfd = speaker.bfdSessions().get('tor');
    expect(bfd).toBeDefined();
    await until(
      () => `BFD Up with ${SOURCE} on both sides (${context()})`,
      () =>
        bfd!.state === BfdState.Up &&
        bird
          .birdc('show bfd sessions')
          .split('\n')
          .some((l) => l.trim().startsWith(SOURCE) && /\bUp\b/i.test(l)),
      10_000,
    );
    expect(lines.some((l) => l.includes('"from":"192.0.2.3"'))).toBe(true);
  });

  it('an address the node does not have fails each attempt with the reason, and the speaker carries on', async () => {
    requirePrivileges('bgp-speaker-source');
    const link = BgpLink.build();
    cleanup.add(() => link.destroy());
    const { log } = recordingLog();
    const speaker = new BgpSpeaker({
      node: { name: 'node-a', labels: {}, addresses: [XLB.v4] },
      connect: (t) => inNetns(link.xlbNs, () => defaultPeerConnect(t)),
      scope: (fn) => inNetns(link.xlbNs, fn),
      sessionDefaults: { backoff: { initialMs: 50, maxMs: 100, jitter: 0 } },
      log,
    });
    cleanup.add(() => speaker.stop());
    // 192.0.2.9 is on no interface of the node: bind() fails (EADDRNOTAVAIL).
    speaker.update(input('192.0.2.9'));
    const session = speaker.sessions().get('tor')!;
    await until(
      () => `the session to report the bind failure (last error: ${session.lastError})`,
      () => /EADDRNOTAVAIL|address not available/i.test(session.lastError ?? ''),
      5_000,
      10,
    );
    expect(session.state).not.toBe('Established');
    expect(session.stats.internalErrors).toBe(0);
  });
});
