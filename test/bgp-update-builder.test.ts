// The UPDATE packer: prefixes sharing attributes go out in as few UPDATEs as
// fit in 4096 bytes, IPv4 in the NLRI field, IPv6 in MP_REACH_NLRI.
import { describe, expect, it } from 'vitest';

import type { PathAttributes } from '../control/bgp/codec/attributes.js';
import { decodeMessage, encodeMessage } from '../control/bgp/codec/message.js';
import { canonicalPrefix, encodedPrefixLength, parsePrefix } from '../control/bgp/codec/prefix.js';
import type { UpdateMessage } from '../control/bgp/codec/update.js';
import { buildAnnouncements, buildWithdrawals } from '../control/bgp/update-builder.js';

const ATTRS: PathAttributes = {
  origin: 0,
  asPath: [{ type: 'sequence', asns: [65002] }],
  communities: [0xfde80064, 0xfde800c8],
  largeCommunities: [{ global: 65002, local1: 1, local2: 2 }],
  med: 10,
};

const v4 = (n: number) =>
  Array.from({ length: n }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`);
const v6 = (n: number) =>
  Array.from({ length: n }, (_, i) => canonicalPrefix(`2001:db8:1::${i.toString(16)}/128`));

/** Each message is at most 4096 bytes, and the next prefix would not have fitted in it. */
function checkPacked(updates: UpdateMessage[], prefixesOf: (u: UpdateMessage) => string[]): void {
  updates.forEach((u, i) => {
    const size = encodeMessage(u).length;
    expect(size).toBeLessThanOrEqual(4096);
    const next = updates[i + 1];
    if (next !== undefined) {
      const nextPrefix = parsePrefix(prefixesOf(next)[0]!);
      // +1 covers an attribute that would need the extended length byte.
      expect(size + encodedPrefixLength(nextPrefix)).toBeGreaterThan(4096 - 1);
    }
    const back = decodeMessage(encodeMessage(u));
    expect(back.ok && back.value).toEqual(u);
  });
}

describe('buildAnnouncements', () => {
  it('packs 3000 IPv4 /32s with shared attributes into full UPDATEs with NEXT_HOP', () => {
    const prefixes = v4(3000);
    const updates = buildAnnouncements(prefixes, ATTRS, { ipv4: '192.0.2.2' });
    expect(updates.length).toBe(4); // ~810 /32s (5 bytes each) fit beside 47 bytes of attributes
    checkPacked(updates, (u) => u.nlri);
    expect(updates.flatMap((u) => u.nlri)).toEqual(prefixes);
    for (const u of updates) expect(u.attributes).toEqual({ ...ATTRS, nextHop: '192.0.2.2' });
  });

  it('packs IPv6 /128s into MP_REACH_NLRI with a global and link-local next hop', () => {
    const prefixes = v6(1000);
    const updates = buildAnnouncements(prefixes, ATTRS, {
      ipv6: '2001:db8:b::2',
      ipv6LinkLocal: 'fe80::1',
    });
    expect(updates.length).toBe(5); // 17 bytes a prefix, ~230 a message
    checkPacked(updates, (u) => u.attributes.mpReach!.nlri);
    expect(updates.flatMap((u) => u.attributes.mpReach!.nlri)).toEqual(prefixes);
    for (const u of updates) {
      expect(u.nlri).toEqual([]);
      expect(u.attributes.nextHop).toBeUndefined();
      expect(u.attributes.mpReach).toMatchObject({
        family: 'ipv6',
        nextHop: '2001:db8:b::2',
        linkLocalNextHop: 'fe80::1',
      });
    }
  });

  it('splits a mixed list by family and ignores next hops or MP attributes passed in', () => {
    const updates = buildAnnouncements(
      ['203.0.113.10/32', '2001:db8::10/128', '203.0.113.11/32'],
      {
        ...ATTRS,
        nextHop: '198.51.100.1',
        mpUnreach: { family: 'ipv6', withdrawn: ['2001:db8::/64'] },
      },
      { ipv4: '192.0.2.2', ipv6: '2001:db8:b::2' },
    );
    expect(updates.map((u) => [u.nlri, u.attributes.mpReach?.nlri, u.attributes.nextHop])).toEqual([
      [['203.0.113.10/32', '203.0.113.11/32'], undefined, '192.0.2.2'],
      [[], ['2001:db8::10/128'], undefined],
    ]);
    expect(updates[1]!.attributes.mpUnreach).toBeUndefined();
  });

  it('refuses a family without a next hop, and attributes that leave no room', () => {
    expect(() => buildAnnouncements(['2001:db8::1/128'], ATTRS, { ipv4: '192.0.2.2' })).toThrow(
      /IPv6 routes need an IPv6 next hop/,
    );
    const huge = { ...ATTRS, communities: Array.from({ length: 1015 }, (_, i) => i) };
    expect(() => buildAnnouncements(['10.0.0.1/32'], huge, { ipv4: '192.0.2.2' })).toThrow(
      /no room for a prefix/,
    );
  });

  it('nothing to announce: no UPDATE', () => {
    expect(buildAnnouncements([], ATTRS, {})).toEqual([]);
  });
});

describe('buildWithdrawals', () => {
  it('IPv4 in the withdrawn routes field, IPv6 in MP_UNREACH_NLRI, each packed full', () => {
    const four = v4(1000);
    const six = v6(500);
    const updates = buildWithdrawals([...six, ...four]);
    const ipv4 = updates.filter((u) => u.withdrawn.length > 0);
    const ipv6 = updates.filter((u) => u.attributes.mpUnreach !== undefined);
    expect(ipv4.length).toBe(2);
    expect(ipv6.length).toBe(3);
    checkPacked(ipv4, (u) => u.withdrawn);
    checkPacked(ipv6, (u) => u.attributes.mpUnreach!.withdrawn);
    expect(ipv4.flatMap((u) => u.withdrawn)).toEqual(four);
    expect(ipv6.flatMap((u) => u.attributes.mpUnreach!.withdrawn)).toEqual(six);
  });
});
