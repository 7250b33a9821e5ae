// Messages captured from BIRD 2.0.12 and GoBGP 3.10.0 (see the fixtures'
// headers and bgp-capture-*.test.ts): every field decoded, and every message
// re-encoded to the very bytes the peer sent.
import { describe, expect, it } from 'vitest';

import {
  decodeLinkBandwidth,
  formatCommunity,
  formatLargeCommunity,
} from '../control/bgp/communities.js';
import type { PathAttributes } from '../control/bgp/codec/attributes.js';
import { decodeMessage, encodeMessage, type BgpMessage } from '../control/bgp/codec/message.js';
import { shutdownMessage } from '../control/bgp/codec/notification.js';
import { asnOf, capabilitiesOf } from '../control/bgp/codec/open.js';
import { endOfRibFamily } from '../control/bgp/codec/update.js';
import { byLabel, readFixture } from './support/bgp/fixtures.js';

function decode(bytes: Buffer): BgpMessage {
  const d = decodeMessage(bytes);
  if (!d.ok) throw new Error(d.error.message);
  return d.value;
}

function update(bytes: Buffer): { withdrawn: string[]; nlri: string[]; a: PathAttributes } {
  const m = decode(bytes);
  if (m.type !== 'update') throw new Error(`expected an UPDATE, got ${m.type}`);
  return { withdrawn: m.withdrawn, nlri: m.nlri, a: m.attributes };
}

for (const name of ['bird-2.0.12', 'gobgp-3.10.0']) {
  describe(`${name}: every captured message`, () => {
    for (const { label, bytes } of readFixture(name)) {
      it(`${label} decodes and re-encodes to the same bytes`, () => {
        const m = decode(bytes);
        expect(encodeMessage(m).toString('hex')).toBe(bytes.toString('hex'));
      });
    }
  });
}

describe('BIRD 2.0.12, field by field', () => {
  const f = readFixture('bird-2.0.12');

  it('OPEN', () => {
    const m = decode(byLabel(f, 'open'));
    expect(m).toMatchObject({
      type: 'open',
      version: 4,
      myAs: 65001,
      holdTime: 240,
      bgpId: '192.0.2.1',
    });
    if (m.type !== 'open') return;
    expect(m.parameters).toHaveLength(1);
    expect(m.extendedParameters).toBeUndefined();
    expect(asnOf(m)).toBe(65001);
    expect(capabilitiesOf(m)).toEqual([
      { kind: 'multiprotocol', afi: 1, safi: 1 },
      { kind: 'multiprotocol', afi: 2, safi: 1 },
      { kind: 'routeRefresh' },
      { kind: 'gracefulRestart', flags: 0, restartTime: 120, families: [] },
      { kind: 'fourOctetAs', asn: 65001 },
      // Enhanced route refresh (RFC 7313) and long-lived graceful restart: kept as bytes.
      { kind: 'unknown', code: 70, value: Buffer.alloc(0) },
      { kind: 'unknown', code: 71, value: Buffer.alloc(0) },
    ]);
  });

  it('KEEPALIVE', () => {
    expect(decode(byLabel(f, 'keepalive'))).toEqual({ type: 'keepalive' });
  });

  it('UPDATE: one IPv4 route with MED, communities, extended and large communities', () => {
    const { withdrawn, nlri, a } = update(byLabel(f, 'announce:203.0.113.10/32'));
    expect(withdrawn).toEqual([]);
    expect(nlri).toEqual(['203.0.113.10/32']);
    expect(a).toEqual({
      origin: 0,
      asPath: [{ type: 'sequence', asns: [65001] }],
      nextHop: '192.0.2.1',
      med: 50,
      communities: [0xfde90064, 0xfde900c8],
      extendedCommunities: [
        { type: 0x00, subtype: 0x02, value: Buffer.from('fde900000007', 'hex') },
      ],
      largeCommunities: [{ global: 65001, local1: 1, local2: 2 }],
    });
    expect(a.communities!.map(formatCommunity)).toEqual(['65001:100', '65001:200']);
    expect(a.largeCommunities!.map(formatLargeCommunity)).toEqual(['65001:1:2']);
  });

  it('UPDATE: three IPv4 prefixes sharing attributes in one message', () => {
    const { nlri, a } = update(byLabel(f, 'announce:203.0.113.16/28'));
    expect(nlri).toEqual(['203.0.113.16/28', '203.0.113.32/28', '203.0.113.0/28']);
    expect(a).toEqual({
      origin: 0,
      asPath: [{ type: 'sequence', asns: [65001] }],
      nextHop: '192.0.2.1',
    });
  });

  it('UPDATE: IPv6 in MP_REACH_NLRI with a global and a link-local next hop', () => {
    const { nlri, a } = update(byLabel(f, 'announce:2001:db8:ff::10/128'));
    expect(nlri).toEqual([]);
    expect(a).toEqual({
      origin: 0,
      asPath: [{ type: 'sequence', asns: [65001] }],
      med: 60,
      communities: [0xfde9012c],
      largeCommunities: [{ global: 65001, local1: 3, local2: 4 }],
      mpReach: {
        family: 'ipv6',
        nextHop: '2001:db8:b::1',
        linkLocalNextHop: 'fe80::ff:fe00:b001',
        nlri: ['2001:db8:ff::10/128'],
      },
      // BIRD puts MP_REACH_NLRI first, with the extended length flag.
      wire: { order: [14, 1, 2, 4, 8, 32], extendedLength: [14], partial: [] },
    });
    const two = update(byLabel(f, 'announce:2001:db8:ff:1::/64'));
    expect(two.a.mpReach?.nlri).toEqual(['2001:db8:ff:1::/64', '2001:db8:ff::/64']);
  });

  it('End-of-RIB for both families', () => {
    for (const family of ['ipv4', 'ipv6'] as const) {
      const m = decode(byLabel(f, `end-of-rib-${family}`));
      expect(m.type === 'update' && endOfRibFamily(m)).toBe(family);
    }
  });

  it('withdrawals of both families', () => {
    expect(update(byLabel(f, 'withdraw:203.0.113.32/28'))).toEqual({
      withdrawn: ['203.0.113.32/28'],
      nlri: [],
      a: {},
    });
    const v6 = update(byLabel(f, 'withdraw:2001:db8:ff:1::/64'));
    expect(v6.a.mpUnreach).toEqual({ family: 'ipv6', withdrawn: ['2001:db8:ff:1::/64'] });
    expect(v6.withdrawn).toEqual([]);
    expect(endOfRibFamily({ type: 'update', ...v6, attributes: v6.a })).toBeUndefined();
  });

  it('ROUTE-REFRESH for both families', () => {
    expect(decode(byLabel(f, 'route-refresh-afi1'))).toEqual({
      type: 'routeRefresh',
      afi: 1,
      safi: 1,
      subtype: 0,
    });
    expect(decode(byLabel(f, 'route-refresh-afi2'))).toMatchObject({ afi: 2, safi: 1 });
  });

  it('NOTIFICATION: administrative shutdown with a shutdown communication', () => {
    const m = decode(byLabel(f, 'notification-6-2'));
    expect(m).toMatchObject({ type: 'notification', code: 6, subcode: 2 });
    expect(m.type === 'notification' && shutdownMessage(m)).toBe('maintenance window');
  });
});

describe('GoBGP 3.10.0, field by field', () => {
  const f = readFixture('gobgp-3.10.0');

  it('OPEN', () => {
    const m = decode(byLabel(f, 'open'));
    expect(m).toMatchObject({
      type: 'open',
      version: 4,
      myAs: 65003,
      holdTime: 90,
      bgpId: '192.0.2.1',
    });
    if (m.type !== 'open') return;
    expect(capabilitiesOf(m)).toEqual([
      { kind: 'routeRefresh' },
      // FQDN (draft-walton-bgp-hostname-capability): host name 'xlbt-gobgp', no domain.
      { kind: 'unknown', code: 73, value: Buffer.from('\x0axlbt-gobgp\x00', 'latin1') },
      { kind: 'multiprotocol', afi: 1, safi: 1 },
      { kind: 'multiprotocol', afi: 2, safi: 1 },
      { kind: 'fourOctetAs', asn: 65003 },
      // Extended next hop (RFC 8950): IPv4 unicast over an IPv6 next hop.
      { kind: 'unknown', code: 5, value: Buffer.from('000100010002', 'hex') },
    ]);
  });

  it('UPDATE: IPv4 with MED, communities and large communities', () => {
    const { nlri, a } = update(byLabel(f, 'announce:203.0.113.20/32'));
    expect(nlri).toEqual(['203.0.113.20/32']);
    expect(a).toEqual({
      origin: 0,
      asPath: [{ type: 'sequence', asns: [65003] }],
      nextHop: '192.0.2.1',
      med: 70,
      communities: [0xfdeb0064, 0xfdeb00c8],
      largeCommunities: [{ global: 65003, local1: 5, local2: 6 }],
    });
  });

  it('UPDATE: IPv6 with an IPv4-mapped next hop, MP_REACH_NLRI after COMMUNITIES', () => {
    const { a } = update(byLabel(f, 'announce:2001:db8:fe::20/128'));
    expect(a).toEqual({
      origin: 0,
      asPath: [{ type: 'sequence', asns: [65003] }],
      communities: [0xfdeb012c],
      largeCommunities: [{ global: 65003, local1: 7, local2: 8 }],
      mpReach: { family: 'ipv6', nextHop: '::ffff:192.0.2.1', nlri: ['2001:db8:fe::20/128'] },
    });
  });

  it('withdrawals and the NOTIFICATION', () => {
    expect(update(byLabel(f, 'withdraw:203.0.113.48/28')).withdrawn).toEqual(['203.0.113.48/28']);
    expect(update(byLabel(f, 'withdraw:2001:db8:fe::20/128')).a).toEqual({
      mpUnreach: { family: 'ipv6', withdrawn: ['2001:db8:fe::20/128'] },
    });
    expect(decode(byLabel(f, 'notification-6-2'))).toEqual({
      type: 'notification',
      code: 6,
      subcode: 2,
      data: Buffer.alloc(0),
    });
  });
});

describe('link bandwidth', () => {
  it('reads the community BIRD would send for 1 MB/s', () => {
    // (generic, 0x4004fde9, 0x49742400) in BIRD's syntax.
    const ec = { type: 0x40, subtype: 0x04, value: Buffer.from('fde949742400', 'hex') };
    expect(decodeLinkBandwidth(ec)).toEqual({ asn: 65001, bytesPerSecond: 1_000_000 });
  });
});
