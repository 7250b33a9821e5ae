// Records what a real BIRD 2 sends to a BGP neighbour and holds it to the
// fixture test/fixtures/bgp/bird-2.0.12.hex, which the codec tests decode
// field by field. BIRD runs in one namespace and connects to a listener of
// this test in the other; the test answers OPEN and KEEPALIVE by hand, then
// has BIRD withdraw routes, ask for a route refresh and shut the session down.
//
// After a BIRD upgrade (or to extend the capture):
//   XLB_BGP_WRITE_FIXTURES=1 npx vitest run test/bgp-capture-bird.test.ts
// rewrites the fixture instead of comparing.
import { afterEach, describe, expect, it } from 'vitest';

import { KEEPALIVE } from '../control/bgp/codec/message.js';
import { endOfRibFamily } from '../control/bgp/codec/update.js';
import { BirdProcess } from '../control/topology/bird.js';
import { CAPTURE_OPEN, comparable, isUpdate, withdraws } from './support/bgp/capture.js';
import { readFixture, writeFixture, type FixtureMessage } from './support/bgp/fixtures.js';
import { BgpLink, PEER, XLB } from './support/bgp/link.js';
import { RawPeer } from './support/bgp/raw-peer.js';
import { requirePrivileges } from './support/privileged.js';

const PORT = 1790;
const FIXTURE = 'bird-2.0.12';

const BIRD_CAPTURE_CONFIG = `
router id ${PEER.v4};
protocol device {}
# Routes with every attribute xlb decodes; two that share attributes, to be packed together.
protocol static s4 {
  ipv4;
  route 203.0.113.10/32 blackhole {
    bgp_community.add((65001,100)); bgp_community.add((65001,200));
    bgp_large_community.add((65001,1,2));
    bgp_ext_community.add((rt, 65001, 7));
  };
  route 203.0.113.0/28 blackhole;
  route 203.0.113.16/28 blackhole;
}
protocol static s6 {
  ipv6;
  route 2001:db8:ff::10/128 blackhole {
    bgp_community.add((65001,300));
    bgp_large_community.add((65001,3,4));
  };
  route 2001:db8:ff::/64 blackhole;
}
# Withdrawn during the capture.
protocol static s4w { ipv4; route 203.0.113.32/28 blackhole; }
protocol static s6w { ipv6; route 2001:db8:ff:1::/64 blackhole; }
protocol bgp xlb {
  local ${PEER.v4} as 65001;
  neighbor ${XLB.v4} port ${PORT} as 65002;
  connect delay time 1;
  # BIRD sends MED to an external neighbour only when the export filter sets it.
  ipv4 { import none; export filter { if net = 203.0.113.10/32 then bgp_med = 50; accept; }; };
  ipv6 {
    import none;
    export filter { if net = 2001:db8:ff::10/128 then bgp_med = 60; accept; };
    next hop address ${PEER.v6};
  };
}
`;

describe('capture from BIRD 2', () => {
  let link: BgpLink | undefined;
  let bird: BirdProcess | undefined;
  let peer: RawPeer | undefined;

  afterEach(async () => {
    peer?.close();
    await bird?.stop();
    link?.destroy();
    link = bird = peer = undefined;
  });

  it('sends the messages of the fixture, byte for byte', async () => {
    requirePrivileges('bgp-capture-bird');
    link = BgpLink.build();
    const server = link.listen(PORT);
    try {
      const accepted = RawPeer.accept(server);
      bird = await BirdProcess.start(link.peerNs, BIRD_CAPTURE_CONFIG);
      peer = await accepted;
    } finally {
      server.close();
    }
    await peer.waitFor('BIRD to send OPEN', (m) => m.type === 'open');
    peer.send(CAPTURE_OPEN);
    peer.send(KEEPALIVE);
    await peer.waitFor(
      'End-of-RIB for both families',
      isUpdate((m) => endOfRibFamily(m) !== undefined),
      2,
    );
    bird.birdc('disable s4w');
    bird.birdc('disable s6w');
    await peer.waitFor('the withdrawals', isUpdate(withdraws), 2);
    bird.birdc('reload in xlb');
    await peer.waitFor('ROUTE-REFRESH for both families', (m) => m.type === 'routeRefresh', 2);
    bird.birdc('disable xlb "maintenance window"');
    await peer.waitFor('the NOTIFICATION', (m) => m.type === 'notification');
    expect(peer.framingError).toBeUndefined();

    const captured = comparable(peer);
    if (process.env.XLB_BGP_WRITE_FIXTURES === '1') {
      writeFixture(
        FIXTURE,
        `Messages BIRD 2.0.12 (Debian 12) sent to a BGP neighbour, captured by
test/bgp-capture-bird.test.ts: BIRD in a network namespace with the config in that
test, connecting to a listener of the test that answered OPEN and KEEPALIVE
(AS 65002, both families, route refresh, graceful restart), then
'birdc disable s4w', 'disable s6w', 'reload in xlb', 'disable xlb "maintenance window"'.
Periodic KEEPALIVEs after the first are left out.
Rewrite: XLB_BGP_WRITE_FIXTURES=1 npx vitest run test/bgp-capture-bird.test.ts`,
        captured,
      );
    }
    // The peer may order UPDATEs of one burst differently from run to run.
    const lines = (list: FixtureMessage[]) =>
      list.map((m) => `${m.label} ${m.bytes.toString('hex')}`).sort();
    expect(lines(captured)).toEqual(lines(readFixture(FIXTURE)));
  });
});
