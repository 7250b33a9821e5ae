// Shared by the capture tests: the OPEN the recording end answers with, and
// the messages a capture keeps.
import { Afi, Safi } from '../../../control/bgp/codec/capabilities.js';
import type { BgpMessage } from '../../../control/bgp/codec/message.js';
import { buildOpen } from '../../../control/bgp/codec/open.js';
import type { UpdateMessage } from '../../../control/bgp/codec/update.js';
import type { FixtureMessage } from './fixtures.js';
import { labelOf } from './labels.js';
import { XLB } from './link.js';
import type { RawPeer } from './raw-peer.js';

export const CAPTURE_AS = 65002;

/** Both families, route refresh, graceful restart (so peers send End-of-RIB). */
export const CAPTURE_OPEN = buildOpen({
  asn: CAPTURE_AS,
  holdTime: 90,
  bgpId: XLB.v4,
  capabilities: [
    { kind: 'multiprotocol', afi: Afi.Ipv4, safi: Safi.Unicast },
    { kind: 'multiprotocol', afi: Afi.Ipv6, safi: Safi.Unicast },
    { kind: 'routeRefresh' },
    { kind: 'gracefulRestart', flags: 0, restartTime: 120, families: [] },
  ],
});

export function isUpdate(pred: (m: UpdateMessage) => boolean): (m: BgpMessage) => boolean {
  return (m) => m.type === 'update' && pred(m);
}

export function withdraws(m: UpdateMessage): boolean {
  return m.withdrawn.length > 0 || (m.attributes.mpUnreach?.withdrawn.length ?? 0) > 0;
}

/** Every message received, but the periodic KEEPALIVEs after the first. */
export function comparable(peer: RawPeer): FixtureMessage[] {
  const out: FixtureMessage[] = [];
  peer.messages().forEach((m, i) => {
    const label = labelOf(m);
    if (label === 'keepalive' && out.some((x) => x.label === 'keepalive')) return;
    out.push({ label, bytes: peer.received[i]! });
  });
  return out;
}
