import type { Cursor } from './cursor.js';
import { namedNote, type Dissectors } from './dissect-types.js';
import { ETHERTYPE, ETHERTYPE_NAMES, VLAN_TPIDS } from './numbers.js';

/** More tags than any real network stacks; beyond it the bytes are shown as payload. */
const MAX_VLAN_TAGS = 8;

const ethertypeNote = namedNote(ETHERTYPE_NAMES);

function dissectVlanTag(c: Cursor, index: number): number {
  const p = `vlan[${index}]`;
  const at = c.take(2, `${p}.tci`);
  const tci = c.buf.readUInt16BE(at);
  c.emit(`${p}.pcp`, tci >> 13, at, 2);
  c.emit(`${p}.dei`, (tci & 0x1000) !== 0, at, 2);
  c.emit(`${p}.vid`, tci & 0x0fff, at, 2);
  return c.u16(`${p}.type`, ethertypeNote);
}

export function dissectEthernet(c: Cursor, d: Dissectors): void {
  c.mac('eth.dst');
  c.mac('eth.src');
  let type = c.u16('eth.type', ethertypeNote);
  for (let i = 0; VLAN_TPIDS.has(type) && i < MAX_VLAN_TAGS; i++) type = dissectVlanTag(c, i);
  if (type === ETHERTYPE.IPV4) d.ipv4(c);
  else if (type === ETHERTYPE.IPV6) d.ipv6(c);
  else c.rest('payload');
}
