// The Adj-RIB-Out: only differences go out, and only what was announced is
// ever withdrawn.
import { describe, expect, it } from 'vitest';

import { AdjRibOut, groupByAttributes } from '../control/bgp/rib-out.js';
import { normalizeRoute, exportAttributes } from '../control/bgp/routes.js';

const route = (prefix: string, med?: number) =>
  normalizeRoute({ prefix, attributes: med === undefined ? {} : { med } }, 65002);

describe('AdjRibOut', () => {
  it('reports new and changed routes once, and withdraws only what the peer has', () => {
    const rib = new AdjRibOut();
    rib.set(route('203.0.113.1/32'));
    rib.set(route('203.0.113.2/32'));
    rib.set(route('2001:db8::1/128'));
    const first = rib.takeChanges();
    expect(first.announce.map((r) => r.prefix)).toEqual([
      '203.0.113.1/32',
      '203.0.113.2/32',
      '2001:db8::1/128',
    ]);
    expect(first.withdraw).toEqual([]);
    rib.markAdvertised(first.announce.map((r) => r.prefix));
    expect(rib.takeChanges()).toEqual({ announce: [], withdraw: [] });

    rib.set(route('203.0.113.1/32')); // same attributes: no change
    rib.set(route('203.0.113.2/32', 7)); // new attributes: announce again
    rib.delete('2001:db8::1/128');
    rib.set(route('203.0.113.3/32'));
    rib.delete('203.0.113.3/32'); // never announced: nothing to withdraw
    rib.delete('198.51.100.1/32'); // never there
    const second = rib.takeChanges();
    expect(second.announce.map((r) => [r.prefix, r.attributes.med])).toEqual([
      ['203.0.113.2/32', 7],
    ]);
    expect(second.withdraw).toEqual(['2001:db8::1/128']);
    expect(rib.prefixes()).toEqual(['203.0.113.1/32', '203.0.113.2/32']);
    expect(rib.routes('ipv6')).toEqual([]);
  });

  it('after reset (a new session) the peer has nothing: nothing is withdrawn', () => {
    const rib = new AdjRibOut();
    rib.set(route('203.0.113.1/32'));
    rib.markAdvertised(['203.0.113.1/32']);
    rib.takeChanges();
    rib.reset();
    rib.delete('203.0.113.1/32');
    expect(rib.takeChanges()).toEqual({ announce: [], withdraw: [] });
  });

  it('groups routes by attributes', () => {
    const groups = groupByAttributes([
      route('10.0.0.1/32'),
      route('10.0.0.2/32', 1),
      route('10.0.0.3/32'),
    ]);
    expect(groups.map((g) => g.map((r) => r.prefix))).toEqual([
      ['10.0.0.1/32', '10.0.0.3/32'],
      ['10.0.0.2/32'],
    ]);
  });
});

describe('route attributes towards a peer', () => {
  const base = normalizeRoute(
    { prefix: '203.0.113.1/32', attributes: { localPref: 300, communities: ['65002:1'] } },
    4200000001,
  ).attributes;

  it('external: our AS prepended, no LOCAL_PREF; AS4_PATH for a 2-octet peer', () => {
    expect(
      exportAttributes(base, { localAs: 4200000001, internal: false, fourOctetAs: true }),
    ).toEqual({
      origin: 0,
      communities: [0xfdea0001],
      asPath: [{ type: 'sequence', asns: [4200000001] }],
    });
    expect(
      exportAttributes(base, { localAs: 4200000001, internal: false, fourOctetAs: false }).as4Path,
    ).toEqual([{ type: 'sequence', asns: [4200000001] }]);
  });

  it('internal: empty AS_PATH and LOCAL_PREF (100 unless set)', () => {
    expect(
      exportAttributes(base, { localAs: 65002, internal: true, fourOctetAs: true }),
    ).toMatchObject({
      asPath: [],
      localPref: 300,
    });
    const plain = normalizeRoute({ prefix: '203.0.113.2/32' }, 65002).attributes;
    expect(
      exportAttributes(plain, { localAs: 65002, internal: true, fourOctetAs: true }).localPref,
    ).toBe(100);
  });
});
