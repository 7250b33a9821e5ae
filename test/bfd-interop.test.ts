// xlb's BFD against BIRD 2's `protocol bfd` and FRR's bfdd, each in its own
// network namespace joined by a veth pair: the session comes Up at 300 ms x 3
// and stays Up; when xlb falls silent (a dead node) the peer declares it Down
// within 3 x 300 ms; when the peer dies xlb notices within the same time and
// emits 'down'; a graceful close tells the peer at once. bfdd also checks
// that our packets arrive with TTL 255 (RFC 5881 section 5).
import { afterEach, describe, expect, it } from 'vitest';

import { BfdEndpoint, BfdState, Diag, type BfdSession } from '../control/bgp/bfd/index.js';
import { inNetns } from '../native/index.js';
import { until } from '../control/topology/agent-harness.js';
import { BfddProcess } from './support/bgp/bfd-frr.js';
import { BirdProcess } from '../control/topology/bird.js';
import { Cleanup, recordingLog } from './support/bgp/harness.js';
import { BgpLink, PEER, XLB } from './support/bgp/link.js';
import { requirePrivileges } from './support/privileged.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** 3 x 300 ms, the default. */
const DETECTION_MS = 900;
/** What polling the peer's state and timer slack may add on a busy 2-core machine. */
const SLACK_MS = 150;

/** A real BFD implementation in the peer namespace, seen through its own CLI. */
interface Peer {
  /** Its state for xlb's session, normalized: 'up', 'down', 'init', 'admindown'. */
  state(): string | undefined;
  dump(): string;
  stop(): Promise<void>;
}

async function startBird(ns: string): Promise<Peer> {
  const bird = await BirdProcess.start(
    ns,
    `
router id ${PEER.v4};
protocol device {}
protocol bfd xlb {
  interface "bgp0" {
    min rx interval 300 ms;
    min tx interval 300 ms;
    idle tx interval 1000 ms;
    multiplier 3;
  };
  neighbor ${XLB.v4} dev "bgp0";
}
`,
  );
  return {
    state: () =>
      bird
        .birdc('show bfd sessions')
        .split('\n')
        .find((l) => l.trim().startsWith(XLB.v4))
        ?.trim()
        .split(/\s+/)[2]
        ?.toLowerCase(),
    dump: () => bird.birdcOutput('show bfd sessions'),
    stop: () => bird.stop(),
  };
}

async function startBfdd(ns: string): Promise<Peer> {
  const bfdd = await BfddProcess.start(
    ns,
    `
bfd
 peer ${XLB.v4} local-address ${PEER.v4}
  receive-interval 300
  transmit-interval 300
  detect-multiplier 3
 !
!
`,
  );
  return {
    state: () => bfdd.peer(XLB.v4)?.status,
    dump: () => `${JSON.stringify(bfdd.peer(XLB.v4))}\n${bfdd.log.slice(-1500)}`,
    stop: () => bfdd.stop(),
  };
}

async function setUp(
  start: (ns: string) => Promise<Peer>,
): Promise<{ peer: Peer; session: BfdSession }> {
  requirePrivileges('bfd-interop');
  const link = BgpLink.build();
  cleanup.add(() => link.destroy());
  const peer = await start(link.peerNs);
  cleanup.add(() => peer.stop());
  const { log, lines } = recordingLog();
  const endpoint = new BfdEndpoint({
    localAddress: XLB.v4,
    scope: (fn) => inNetns(link.xlbNs, fn),
    log,
  });
  cleanup.add(() => endpoint.close());
  const session = endpoint.session({ peerAddress: PEER.v4 });
  await until(
    () =>
      `both sides Up (xlb: ${BfdState[session.state]}; log:\n${lines.slice(-10).join('\n')}\npeer:\n${peer.dump()})`,
    () => session.state === BfdState.Up && peer.state() === 'up',
    10_000,
    20,
  );
  // The fast rate is in force on both sides once the Poll Sequences are over.
  await until(
    () => `the poll sequence to finish (${JSON.stringify(session.variables)})`,
    () => !session.variables.pollActive && session.variables.remoteDesiredMinTxUs === 300_000,
    5_000,
    20,
  );
  return { peer, session };
}

describe.each([
  ['BIRD', startBird],
  ['FRR bfdd', startBfdd],
])('BFD interop with %s', (_name, start) => {
  it('stays Up at 300 ms x 3; a silent xlb is declared Down within the detection time', async () => {
    const { peer, session } = await setUp(start);
    expect(session.variables.remoteDetectMult).toBe(3);
    expect(session.variables.remoteMinRxUs).toBe(300_000);
    // Up across several detection times: the jittered rate keeps both sides alive.
    await new Promise((r) => setTimeout(r, 2 * DETECTION_MS));
    expect(peer.state()).toBe('up');
    expect(session.state).toBe(BfdState.Up);
    expect(session.stats.sendErrors).toBe(0);

    const silent = Date.now();
    session.close({ notifyPeer: false });
    await until(
      () => `the peer to declare xlb Down (${peer.dump()})`,
      () => peer.state() === 'down',
      5_000,
      10,
    );
    const detectedAfter = Date.now() - silent;
    expect(detectedAfter).toBeLessThan(DETECTION_MS + SLACK_MS);
    // A detection, not a message: no earlier than the detection time less one interval.
    expect(detectedAfter).toBeGreaterThan(DETECTION_MS - 300);
  });

  it('xlb declares a dead peer Down within the detection time and emits down once', async () => {
    const { peer, session } = await setUp(start);
    const downs: { diag: Diag; at: number }[] = [];
    session.on('down', (diag) => downs.push({ diag, at: Date.now() }));
    const dead = Date.now();
    await peer.stop();
    await until(
      () => `xlb to notice the peer is gone (state ${BfdState[session.state]})`,
      () => downs.length > 0,
      5_000,
      5,
    );
    expect(downs[0]!.diag).toBe(Diag.ControlDetectionTimeExpired);
    expect(downs[0]!.at - dead).toBeLessThan(DETECTION_MS + SLACK_MS);
    expect(session.state).toBe(BfdState.Down);
    expect(session.variables.remoteDiscr).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(downs).toHaveLength(1);
  });

  it('a graceful close tells the peer at once, without waiting for the detection time', async () => {
    const { peer, session } = await setUp(start);
    const closed = Date.now();
    session.close();
    await until(
      () => `the peer to see xlb AdminDown (${peer.dump()})`,
      () => peer.state() !== 'up',
      5_000,
      10,
    );
    expect(Date.now() - closed).toBeLessThan(300);
  });
});
