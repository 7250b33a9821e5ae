import type { Cursor } from './cursor.js';
import { dissectExtensionChain } from './dissect-ipv6ext.js';
import { namedNote, type Dissectors } from './dissect-types.js';
import { IP_PROTOCOL_NAMES } from './numbers.js';

export function dissectIPv6(c: Cursor, d: Dissectors): void {
  const start = c.pos;
  const at = c.take(4, 'ipv6.version');
  const word = c.buf.readUInt32BE(at);
  const version = word >>> 28;
  c.emit('ipv6.version', version, at, 1, version === 6 ? undefined : 'WRONG (expected 6)');
  c.emit('ipv6.trafficClass', (word >>> 20) & 0xff, at, 2);
  c.emit('ipv6.flowLabel', word & 0xfffff, at + 1, 3);
  const present = c.end - start - 40;
  const length = c.u16('ipv6.payloadLength', (v) =>
    v > present ? `exceeds the ${Math.max(present, 0)} bytes present` : undefined,
  );
  const nextHeader = c.u8('ipv6.nextHeader', namedNote(IP_PROTOCOL_NAMES));
  c.u8('ipv6.hopLimit');
  const src = c.address('ipv6.src', 16);
  const dst = c.address('ipv6.dst', 16);

  const body = c.sub(c.pos + length);
  const chain = dissectExtensionChain(body, nextHeader, { src, dst });
  const info = { addrs: chain.addrs, fragment: chain.fragment, truncated: c.pos + length > c.end };
  if (chain.fragment === 'later') body.rest('payload', `fragment data at offset ${chain.offset}`);
  else d.upper(body, chain.nextHeader, info);
  c.pos = body.end;
  c.rest('trailer');
}
