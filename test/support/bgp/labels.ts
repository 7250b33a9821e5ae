// Names for captured messages, from what they carry, so a fixture line says
// what it is and tests look messages up by meaning, not by position.
import type { BgpMessage } from '../../../control/bgp/codec/message.js';
import { endOfRibFamily } from '../../../control/bgp/codec/update.js';

export function labelOf(m: BgpMessage): string {
  switch (m.type) {
    case 'open':
    case 'keepalive':
      return m.type;
    case 'notification':
      return `notification-${m.code}-${m.subcode}`;
    case 'routeRefresh':
      return `route-refresh-afi${m.afi}`;
    case 'update': {
      const eor = endOfRibFamily(m);
      if (eor !== undefined) return `end-of-rib-${eor}`;
      const a = m.attributes;
      const announced = [...m.nlri, ...(a.mpReach?.nlri ?? [])];
      if (announced.length > 0) return `announce:${announced[0]}`;
      const withdrawn = [...m.withdrawn, ...(a.mpUnreach?.withdrawn ?? [])];
      return `withdraw:${withdrawn[0] ?? 'nothing'}`;
    }
  }
}
