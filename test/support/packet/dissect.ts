// Buffer -> flat, ordered list of named fields. Never throws: whatever cannot be parsed is
// reported as 'truncated', 'error' or 'unparsed' fields next to what could be.

import { Cursor, type Field, type FieldValue } from './cursor.js';
import { dissectIcmp, dissectIcmpv6 } from './dissect-icmp.js';
import { dissectIPv4 } from './dissect-ipv4.js';
import { dissectIPv6 } from './dissect-ipv6.js';
import { dissectEthernet } from './dissect-link.js';
import { dissectTcp, dissectUdp } from './dissect-transport.js';
import type { Dissectors, IpInfo } from './dissect-types.js';
import { IPPROTO } from './numbers.js';

export type { Field, FieldValue };

/** Tunnels and quotes nest; real traffic never goes this deep, garbage can. */
const MAX_DEPTH = 8;

function tunnel(c: Cursor, parse: (inner: Cursor) => void): void {
  const inner = c.sub(c.end, 'inner.');
  inner.guard(() => parse(inner));
  c.pos = inner.end;
}

function upper(c: Cursor, protocol: number, ip: IpInfo): void {
  if (c.depth >= MAX_DEPTH) return c.rest('payload', 'nested too deep to dissect');
  switch (protocol) {
    case IPPROTO.TCP:
      return dissectTcp(c, ip);
    case IPPROTO.UDP:
      return dissectUdp(c, ip);
    case IPPROTO.ICMP:
      return dissectIcmp(c, ip, dissectors);
    case IPPROTO.ICMPV6:
      return dissectIcmpv6(c, ip, dissectors);
    case IPPROTO.IPIP:
      return tunnel(c, dissectors.ipv4);
    case IPPROTO.IPV6:
      return tunnel(c, dissectors.ipv6);
    default:
      return c.rest('payload');
  }
}

const dissectors: Dissectors = {
  ipv4: (c) => dissectIPv4(c, dissectors),
  ipv6: (c) => dissectIPv6(c, dissectors),
  ip: (c) => {
    const version = (c.buf[c.pos] ?? 0) >> 4;
    if (version === 4) dissectors.ipv4(c);
    else if (version === 6) dissectors.ipv6(c);
    else if (c.left === 0) c.take(1, 'ip.version');
    else c.fail(`not an IP packet (version ${version})`);
  },
  upper,
};

export interface DissectOptions {
  /** What the buffer starts with: an Ethernet frame (default) or an IP packet. */
  readonly link?: 'eth' | 'ip';
}

export function dissect(packet: Uint8Array, options: DissectOptions = {}): Field[] {
  const buf = Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
  const out: Field[] = [];
  const c = new Cursor(buf, out, '', 0, buf.length);
  try {
    c.guard(() => (options.link === 'ip' ? dissectors.ip(c) : dissectEthernet(c, dissectors)));
  } catch (err) {
    // A bug in the dissector must not hide the test failure it is helping to explain.
    const message = err instanceof Error ? err.message : String(err);
    out.push({ path: 'error', value: `dissector failed: ${message}`, offset: c.pos, length: 0 });
  }
  return out;
}

export function formatValue(value: FieldValue): string {
  if (typeof value === 'number') {
    return value < 10 ? String(value) : `${value} (0x${value.toString(16)})`;
  }
  if (typeof value === 'string') return value === '' ? "''" : value;
  return String(value);
}

/** One line per field: offset, length, path, value and note. */
export function formatFields(fields: readonly Field[]): string {
  return fields
    .map((f) => {
      const where = `${String(f.offset).padStart(4)} +${String(f.length).padEnd(3)}`;
      const note = f.note === undefined ? '' : `  [${f.note}]`;
      return `${where} ${f.path} = ${formatValue(f.value)}${note}`;
    })
    .join('\n');
}
