// Records what a real GoBGP 3.10 sends to a BGP neighbour and holds it to the
// fixture test/fixtures/bgp/gobgp-3.10.0.hex (decoded field by field in
// bgp-codec-fixtures.test.ts). gobgpd runs in one namespace and connects to
// a listener of this test in the other; routes are added through its API
// before the test answers OPEN, so they come in the first UPDATEs.
//
// After a GoBGP upgrade (or to extend the capture):
//   XLB_BGP_WRITE_FIXTURES=1 npx vitest run test/bgp-capture-gobgp.test.ts
import { afterEach, describe, expect, it } from 'vitest';

import { KEEPALIVE } from '../control/bgp/codec/message.js';
import {
  CAPTURE_AS,
  CAPTURE_OPEN,
  comparable,
  isUpdate,
  withdraws,
} from './support/bgp/capture.js';
import { readFixture, writeFixture, type FixtureMessage } from './support/bgp/fixtures.js';
import { GobgpProcess } from './support/bgp/gobgp.js';
import { BgpLink, PEER, XLB } from './support/bgp/link.js';
import { RawPeer } from './support/bgp/raw-peer.js';
import { requirePrivileges } from './support/privileged.js';

const PORT = 1790;
const FIXTURE = 'gobgp-3.10.0';

const GOBGP_CAPTURE_CONFIG = `
[global.config]
  as = 65003
  router-id = "${PEER.v4}"
  port = -1
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${XLB.v4}"
    peer-as = ${CAPTURE_AS}
  [neighbors.transport.config]
    remote-port = ${PORT}
    local-address = "${PEER.v4}"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
`;

describe('capture from GoBGP', () => {
  let link: BgpLink | undefined;
  let gobgp: GobgpProcess | undefined;
  let peer: RawPeer | undefined;

  afterEach(async () => {
    peer?.close();
    await gobgp?.stop();
    link?.destroy();
    link = gobgp = peer = undefined;
  });

  it('sends the messages of the fixture, byte for byte', async () => {
    requirePrivileges('bgp-capture-gobgp');
    link = BgpLink.build();
    const server = link.listen(PORT);
    try {
      const accepted = RawPeer.accept(server);
      gobgp = await GobgpProcess.start(link.peerNs, GOBGP_CAPTURE_CONFIG);
      peer = await accepted;
    } finally {
      server.close();
    }
    const g = gobgp;
    g.cli(
      'global',
      'rib',
      'add',
      '-a',
      'ipv4',
      '203.0.113.20/32',
      'origin',
      'igp',
      'med',
      '70',
      'community',
      '65003:100,65003:200',
      'large-community',
      '65003:5:6',
    );
    g.cli('global', 'rib', 'add', '-a', 'ipv4', '203.0.113.48/28', 'origin', 'igp');
    g.cli(
      'global',
      'rib',
      'add',
      '-a',
      'ipv6',
      '2001:db8:fe::20/128',
      'origin',
      'igp',
      'community',
      '65003:300',
      'large-community',
      '65003:7:8',
    );
    await peer.waitFor('GoBGP to send OPEN', (m) => m.type === 'open');
    peer.send(CAPTURE_OPEN);
    peer.send(KEEPALIVE);
    // GoBGP sends End-of-RIB only with graceful restart configured on its side.
    await peer.waitFor(
      'the three routes',
      isUpdate((m) => m.nlri.length + (m.attributes.mpReach?.nlri.length ?? 0) > 0),
      3,
    );
    g.cli('global', 'rib', 'del', '-a', 'ipv4', '203.0.113.48/28');
    g.cli('global', 'rib', 'del', '-a', 'ipv6', '2001:db8:fe::20/128');
    await peer.waitFor('the withdrawals', isUpdate(withdraws), 2);
    g.cli('neighbor', XLB.v4, 'disable', '--reason', 'maintenance window');
    await peer.waitFor('the NOTIFICATION', (m) => m.type === 'notification');
    expect(peer.framingError).toBeUndefined();

    const captured = comparable(peer);
    if (process.env.XLB_BGP_WRITE_FIXTURES === '1') {
      writeFixture(
        FIXTURE,
        `Messages GoBGP 3.10.0 (gobgpd, Debian 12) sent to a BGP neighbour, captured by
test/bgp-capture-gobgp.test.ts: gobgpd in a network namespace with the config in
that test and routes added with 'gobgp global rib add', connecting to a listener
of the test that answered OPEN and KEEPALIVE (AS 65002, both families, route
refresh, graceful restart), then two 'gobgp global rib del' and 'gobgp neighbor
192.0.2.2 disable --reason "maintenance window"'. (GoBGP keeps its Adj-RIB-In, so
a soft reset sends no ROUTE-REFRESH; the BIRD capture has those.)
Periodic KEEPALIVEs after the first are left out.
Rewrite: XLB_BGP_WRITE_FIXTURES=1 npx vitest run test/bgp-capture-gobgp.test.ts`,
        captured,
      );
    }
    // The peer may order UPDATEs of one burst differently from run to run.
    const lines = (list: FixtureMessage[]) =>
      list.map((m) => `${m.label} ${m.bytes.toString('hex')}`).sort();
    expect(lines(captured)).toEqual(lines(readFixture(FIXTURE)));
  });
});
