// The BGP codec on hand-made vectors: the exact bytes of each message kind,
// and every malformation RFC 4271 section 6 names, answered with its
// NOTIFICATION code, subcode and data.
import { describe, expect, it } from 'vitest';

import {
  carryUnknown,
  decodeAttributes,
  type PathAttributes,
} from '../control/bgp/codec/attributes.js';
import { Afi, Safi } from '../control/bgp/codec/capabilities.js';
import { describeNotification, isKnownNotification } from '../control/bgp/codec/errors.js';
import {
  decodeMessage,
  encodeMessage,
  KEEPALIVE,
  type BgpMessage,
} from '../control/bgp/codec/message.js';
import { shutdownMessage, shutdownNotification } from '../control/bgp/codec/notification.js';
import {
  AS_TRANS,
  asnOf,
  buildOpen,
  validateOpen,
  type OpenExpectations,
  type OpenMessage,
} from '../control/bgp/codec/open.js';
import { canonicalPrefix, parsePrefix } from '../control/bgp/codec/prefix.js';
import { endOfRib, endOfRibFamily } from '../control/bgp/codec/update.js';
import {
  formatCommunity,
  linkBandwidth,
  decodeLinkBandwidth,
  parseCommunity,
  parseLargeCommunity,
} from '../control/bgp/communities.js';

const MARKER = 'ff'.repeat(16);

/** A whole message from the hex of its body. */
function msg(type: number, bodyHex: string): Buffer {
  const body = Buffer.from(bodyHex.replace(/\s+/g, ''), 'hex');
  const head = Buffer.alloc(3);
  head.writeUInt16BE(19 + body.length);
  head[2] = type;
  return Buffer.concat([Buffer.from(MARKER, 'hex'), head, body]);
}

/** An UPDATE from the hex of its withdrawn routes, path attributes and NLRI. */
function updateBytes(attrsHex: string, nlriHex = '', withdrawnHex = ''): Buffer {
  const w = Buffer.from(withdrawnHex.replace(/\s+/g, ''), 'hex');
  const a = Buffer.from(attrsHex.replace(/\s+/g, ''), 'hex');
  const n = Buffer.from(nlriHex.replace(/\s+/g, ''), 'hex');
  const wl = Buffer.alloc(2);
  wl.writeUInt16BE(w.length);
  const al = Buffer.alloc(2);
  al.writeUInt16BE(a.length);
  return msg(2, Buffer.concat([wl, w, al, a, n]).toString('hex'));
}

function decoded(bytes: Buffer): BgpMessage {
  const d = decodeMessage(bytes);
  if (!d.ok) throw new Error(d.error.message);
  return d.value;
}

function errorOf(bytes: Buffer): { code: number; subcode: number; data: string } {
  const d = decodeMessage(bytes);
  if (d.ok) throw new Error(`decoded as ${JSON.stringify(d.value)}`);
  const n = d.error.notification;
  return { code: n.code, subcode: n.subcode, data: n.data.toString('hex') };
}

// ORIGIN IGP, AS_PATH [65001], NEXT_HOP 192.0.2.1: what an IPv4 announcement needs.
const ORIGIN = '40 01 01 00';
const AS_PATH = '40 02 06 02 01 0000fde9';
const NEXT_HOP = '40 03 04 c0000201';
const NLRI = '20 cb00710a'; // 203.0.113.10/32

describe('message vectors, byte for byte', () => {
  const cases: [string, BgpMessage, string][] = [
    ['KEEPALIVE', KEEPALIVE, `${MARKER}001304`],
    [
      'NOTIFICATION hold timer expired',
      { type: 'notification', code: 4, subcode: 0, data: Buffer.alloc(0) },
      `${MARKER}0015030400`,
    ],
    [
      'ROUTE-REFRESH IPv6 unicast',
      { type: 'routeRefresh', afi: 2, safi: 1, subtype: 0 },
      `${MARKER}00170500020001`,
    ],
    ['End-of-RIB IPv4', endOfRib('ipv4'), `${MARKER}00170200000000`],
    ['End-of-RIB IPv6', endOfRib('ipv6'), `${MARKER}001d0200000006800f03000201`],
    [
      'OPEN of a 4-octet ASN',
      buildOpen({
        asn: 4200000001,
        holdTime: 90,
        bgpId: '192.0.2.2',
        capabilities: [
          { kind: 'multiprotocol', afi: Afi.Ipv4, safi: Safi.Unicast },
          { kind: 'multiprotocol', afi: Afi.Ipv6, safi: Safi.Unicast },
          { kind: 'routeRefresh' },
          {
            kind: 'gracefulRestart',
            flags: 0x8,
            restartTime: 120,
            families: [{ afi: 1, safi: 1, flags: 0x80 }],
          },
        ],
      }),
      MARKER +
        '003b' +
        '01' +
        '04' +
        '5ba0' +
        '005a' +
        'c0000202' +
        '1e' +
        '02 1c' +
        '0104 00010001' +
        '0104 00020001' +
        '0200' +
        '4006 8078 00010180' +
        '4104 fa56ea01',
    ],
    [
      'UPDATE with AS_SET, LOCAL_PREF, ATOMIC_AGGREGATE, AGGREGATOR and an unknown transitive attribute',
      {
        type: 'update',
        withdrawn: ['198.51.100.0/24'],
        nlri: ['203.0.113.10/32', '10.0.0.0/8'],
        attributes: {
          origin: 2,
          asPath: [
            { type: 'sequence', asns: [4200000001, 65001] },
            { type: 'set', asns: [64512, 64513] },
          ],
          nextHop: '192.0.2.1',
          localPref: 200,
          atomicAggregate: true,
          aggregator: { asn: 65001, address: '192.0.2.9' },
          other: [{ flags: 0xe0, type: 99, value: Buffer.from('abcd', 'hex') }],
        },
      },
      MARKER +
        '005e' +
        '02' +
        '0004 18c63364' +
        '003c' +
        '40 01 01 02' +
        '40 02 14 0202fa56ea010000fde9 0102 0000fc000000fc01' +
        '40 03 04 c0000201' +
        '40 05 04 000000c8' +
        '40 06 00' +
        'c0 07 08 0000fde9c0000209' +
        'e0 63 02 abcd' +
        '20cb00710a 080a',
    ],
  ];
  for (const [name, m, hex] of cases) {
    it(name, () => {
      const bytes = Buffer.from(hex.replace(/\s+/g, ''), 'hex');
      expect(encodeMessage(m).toString('hex')).toBe(bytes.toString('hex'));
      expect(decoded(bytes)).toEqual(m);
    });
  }

  it('OPEN: the RFC 9072 extended optional parameters length, decoded and re-encoded', () => {
    // Optional parameters length 255, type 255, a 2-byte length, 2-byte parameter lengths.
    const bytes = msg(1, '04 fde9 00b4 c0000201 ff ff 000b 02 0008 0104 00010001 4100');
    const bad = decodeMessage(bytes);
    expect(bad.ok).toBe(false); // 4-octet AS capability of length 0: malformed
    const good = msg(1, '04 fde9 00b4 c0000201 ff ff 000d 02 000a 0104 00010001 0200 0200');
    const m = decoded(good) as OpenMessage;
    expect(m.extendedParameters).toBe(true);
    expect(m.parameters).toEqual([
      {
        kind: 'capabilities',
        capabilities: [
          { kind: 'multiprotocol', afi: 1, safi: 1 },
          { kind: 'routeRefresh' },
          { kind: 'routeRefresh' },
        ],
      },
    ]);
    expect(encodeMessage(m).toString('hex')).toBe(good.toString('hex'));
  });

  it('OPEN: AS_TRANS stands in for an ASN above 65535; the capability has the real one', () => {
    const m = buildOpen({ asn: 4200000001, holdTime: 90, bgpId: '192.0.2.2', capabilities: [] });
    expect(m.myAs).toBe(AS_TRANS);
    expect(asnOf(decoded(encodeMessage(m)) as OpenMessage)).toBe(4200000001);
  });

  it('UPDATE with 2-octet ASNs (a peer without the 4-octet AS capability) and AS4_PATH', () => {
    const ctx = { fourOctetAs: false };
    const attrs: PathAttributes = {
      origin: 0,
      asPath: [{ type: 'sequence', asns: [AS_TRANS, 65001] }],
      nextHop: '192.0.2.1',
      aggregator: { asn: 65001, address: '192.0.2.9' },
      as4Path: [{ type: 'sequence', asns: [4200000001, 65001] }],
    };
    const m: BgpMessage = {
      type: 'update',
      withdrawn: [],
      attributes: attrs,
      nlri: ['203.0.113.0/24'],
    };
    const bytes = encodeMessage(m, ctx);
    expect(bytes.toString('hex')).toContain('4002 06 0202 5ba0 fde9'.replace(/\s/g, ''));
    expect(bytes.toString('hex')).toContain('c007 06 fde9 c0000209'.replace(/\s/g, ''));
    const back = decodeMessage(bytes, ctx);
    expect(back.ok && back.value).toEqual(m);
  });

  it('End-of-RIB is recognized only when the UPDATE holds nothing else', () => {
    expect(endOfRibFamily(endOfRib('ipv4'))).toBe('ipv4');
    expect(endOfRibFamily(endOfRib('ipv6'))).toBe('ipv6');
    expect(
      endOfRibFamily({ type: 'update', withdrawn: ['10.0.0.0/8'], attributes: {}, nlri: [] }),
    ).toBeUndefined();
    expect(
      endOfRibFamily({
        type: 'update',
        withdrawn: [],
        attributes: { origin: 0, mpUnreach: { family: 'ipv6', withdrawn: [] } },
        nlri: [],
      }),
    ).toBeUndefined();
  });

  it('unknown optional transitive attributes are passed on with the partial flag, non-transitive ones not', () => {
    const a = decodeAttributes(Buffer.from('c0 63 01 aa 80 64 01 bb'.replace(/\s/g, ''), 'hex'));
    expect(a.ok && a.value.other).toEqual([
      { flags: 0xc0, type: 99, value: Buffer.from('aa', 'hex') },
      { flags: 0x80, type: 100, value: Buffer.from('bb', 'hex') },
    ]);
    expect(carryUnknown(a.ok ? a.value.other : [])).toEqual([
      { flags: 0xe0, type: 99, value: Buffer.from('aa', 'hex') },
    ]);
  });

  it('prefixes: host bits beyond the length are ignored on the wire, refused from users', () => {
    // 203.0.113.0/20 and /23 on the wire: bits past the length are "irrelevant" (RFC 4271).
    const m = decoded(updateBytes(`${ORIGIN} ${AS_PATH} ${NEXT_HOP}`, '14 cb0071 17 cb0071'));
    expect(m.type === 'update' && m.nlri).toEqual(['203.0.112.0/20', '203.0.112.0/23']);
    expect(() => parsePrefix('203.0.113.1/24')).toThrow(/203\.0\.113\.0\/24/);
    expect(() => parsePrefix('not-a-prefix')).toThrow(/not an IP prefix/);
    expect(canonicalPrefix('2001:DB8:0::10')).toBe('2001:db8::10/128');
    expect(canonicalPrefix('0.0.0.0/0')).toBe('0.0.0.0/0');
  });
});

describe('malformed messages get the NOTIFICATION RFC 4271 section 6 prescribes', () => {
  const update = (attrs: string, nlri = NLRI, withdrawn = '') =>
    updateBytes(attrs, nlri, withdrawn);
  const cases: [string, Buffer, number, number, string?][] = [
    ['marker not all ones', Buffer.from(`${'ff'.repeat(15)}fe001304`, 'hex'), 1, 1, ''],
    ['length below 19', Buffer.from(`${MARKER}001204`, 'hex'), 1, 2, '0012'],
    ['length above 4096', Buffer.from(`${MARKER}100104`, 'hex'), 1, 2, '1001'],
    ['KEEPALIVE of 20 bytes', Buffer.from(`${MARKER}00140400`, 'hex'), 1, 2, '0014'],
    ['OPEN shorter than 29 bytes', msg(1, '04fde900b4c000020100'.slice(0, 16)), 1, 2, '001b'],
    ['unknown message type 6', msg(6, ''), 1, 3, '06'],
    [
      'length field unlike the bytes',
      Buffer.concat([msg(4, ''), Buffer.from('00', 'hex')]),
      1,
      2,
      '0013',
    ],
    ['OPEN version 3', msg(1, '03 fde9 00b4 c0000201 00'), 2, 1, '0004'],
    ['OPEN hold time 2', msg(1, '04 fde9 0002 c0000201 00'), 2, 6, '0002'],
    ['OPEN BGP identifier 0.0.0.0', msg(1, '04 fde9 00b4 00000000 00'), 2, 3, '00000000'],
    ['OPEN from AS 0', msg(1, '04 0000 00b4 c0000201 00'), 2, 2],
    ['OPEN parameters length past the end', msg(1, '04 fde9 00b4 c0000201 08 0206 0104'), 2, 0],
    ['OPEN capability of the wrong length', msg(1, '04 fde9 00b4 c0000201 04 0202 4100'), 2, 0],
    ['UPDATE withdrawn length past the end', msg(2, '0010 0000'), 3, 1],
    ['UPDATE attribute length past the end', msg(2, '0000 0010 400101'), 3, 1],
    ['attribute past the path attributes', update('40 01 05 00'), 3, 1],
    ['attribute twice', update(`${ORIGIN} ${ORIGIN} ${AS_PATH} ${NEXT_HOP}`), 3, 1],
    ['unknown well-known attribute', update(`${ORIGIN} 40 63 01 00`), 3, 2, '40630100'],
    ['no ORIGIN', update(`${AS_PATH} ${NEXT_HOP}`), 3, 3, '01'],
    ['no AS_PATH', update(`${ORIGIN} ${NEXT_HOP}`), 3, 3, '02'],
    ['no NEXT_HOP with IPv4 NLRI', update(`${ORIGIN} ${AS_PATH}`), 3, 3, '03'],
    ['ORIGIN flagged optional', update(`c0 01 01 00 ${AS_PATH} ${NEXT_HOP}`), 3, 4, 'c0010100'],
    [
      'MED flagged transitive',
      update(`${ORIGIN} ${AS_PATH} ${NEXT_HOP} c0 04 04 00000001`),
      3,
      4,
      'c00404' + '00000001',
    ],
    ['ORIGIN of 2 bytes', update(`40 01 02 0000 ${AS_PATH} ${NEXT_HOP}`), 3, 5, '40010' + '20000'],
    [
      'COMMUNITIES of 5 bytes',
      update(`${ORIGIN} ${AS_PATH} ${NEXT_HOP} c0 08 05 0000000000`),
      3,
      5,
      'c008050000000000',
    ],
    ['ORIGIN 3', update(`40 01 01 03 ${AS_PATH} ${NEXT_HOP}`), 3, 6, '40010103'],
    [
      'NEXT_HOP 0.0.0.0',
      update(`${ORIGIN} ${AS_PATH} 40 03 04 00000000`),
      3,
      8,
      '400304' + '00000000',
    ],
    [
      'NEXT_HOP multicast',
      update(`${ORIGIN} ${AS_PATH} 40 03 04 e0000001`),
      3,
      8,
      '400304e0000001',
    ],
    [
      'MP_REACH_NLRI next hop of 5 bytes',
      update(`${ORIGIN} ${AS_PATH} 80 0e 0a 0002 01 05 2001db8000 00 00`, ''),
      3,
      9,
    ],
    [
      'MP_REACH_NLRI prefix /129',
      update(`${ORIGIN} ${AS_PATH} 80 0e 16 0002 01 10 20010db8000000000000000000000001 00 81`, ''),
      3,
      9,
    ],
    ['NLRI prefix /33', update(`${ORIGIN} ${AS_PATH} ${NEXT_HOP}`, '21 cb00710a00'), 3, 10],
    ['NLRI prefix cut short', update(`${ORIGIN} ${AS_PATH} ${NEXT_HOP}`, '20 cb0071'), 3, 10],
    ['withdrawn prefix /40', update('', '', '28 0102030405'), 3, 10],
    ['AS_PATH segment type 5', update(`${ORIGIN} 40 02 06 05 01 0000fde9 ${NEXT_HOP}`), 3, 11],
    [
      'AS_PATH segment past the attribute',
      update(`${ORIGIN} 40 02 06 02 02 0000fde9 ${NEXT_HOP}`),
      3,
      11,
    ],
    ['AS_PATH empty segment', update(`${ORIGIN} 40 02 02 0200 ${NEXT_HOP}`), 3, 11],
  ];
  for (const [name, bytes, code, subcode, data] of cases) {
    it(`${name} -> ${describeNotification(code, subcode)}`, () => {
      const e = errorOf(bytes);
      expect({ code: e.code, subcode: e.subcode }).toEqual({ code, subcode });
      if (data !== undefined) expect(e.data).toBe(data.replace(/\s/g, ''));
      expect(isKnownNotification(e.code, e.subcode)).toBe(true);
    });
  }

  describe('OPEN checks that need the session', () => {
    const open = buildOpen({ asn: 65001, holdTime: 90, bgpId: '192.0.2.1', capabilities: [] });
    const expectations: OpenExpectations = {
      peerAs: 65001,
      localAs: 65002,
      localBgpId: '192.0.2.2',
    };
    const subcodeOf = (m: OpenMessage, e = expectations) => {
      const r = validateOpen(m, e);
      return r.ok ? 'ok' : `${r.error.notification.code}/${r.error.notification.subcode}`;
    };
    it('accepts what matches', () => expect(subcodeOf(open)).toBe('ok'));
    it('a peer AS other than configured -> 2/2', () =>
      expect(subcodeOf(open, { ...expectations, peerAs: 65009 })).toBe('2/2'));
    it('an internal peer with our own identifier -> 2/3', () =>
      expect(subcodeOf({ ...open, bgpId: '192.0.2.2' }, { ...expectations, localAs: 65001 })).toBe(
        '2/3',
      ));
    it('a hold time below our floor -> 2/6', () =>
      expect(subcodeOf(open, { ...expectations, minHoldTime: 120 })).toBe('2/6'));
    it('hold time 0 (no keepalives) is always acceptable', () =>
      expect(subcodeOf({ ...open, holdTime: 0 }, { ...expectations, minHoldTime: 120 })).toBe(
        'ok',
      ));
    it('an optional parameter other than capabilities -> 2/4', () =>
      expect(
        subcodeOf({ ...open, parameters: [{ kind: 'unknown', type: 1, value: Buffer.alloc(0) }] }),
      ).toBe('2/4'));
  });
});

describe('shutdown communication (RFC 9003)', () => {
  it('carries an operator message, cut to 255 bytes on a character boundary', () => {
    const n = shutdownNotification('maintenance window');
    expect(n.data.toString('hex')).toBe('12' + Buffer.from('maintenance window').toString('hex'));
    expect(shutdownMessage(n)).toBe('maintenance window');
    const long = shutdownNotification('é'.repeat(200));
    expect(long.data[0]).toBe(254);
    expect(shutdownMessage(long)).toBe('é'.repeat(127));
    expect(shutdownNotification().data.length).toBe(0);
  });
});

describe('communities as operators write them', () => {
  it('parses and formats', () => {
    expect(parseCommunity('65000:100')).toBe(0xfde80064);
    expect(parseCommunity('no-export')).toBe(0xffffff01);
    expect(formatCommunity(0xffffff01)).toBe('no-export');
    expect(parseLargeCommunity('4200000000:1:2')).toEqual({
      global: 4200000000,
      local1: 1,
      local2: 2,
    });
    expect(() => parseCommunity('65536:1')).toThrow(/AS '65536'/);
    expect(() => parseLargeCommunity('1:2')).toThrow(/not a large community/);
  });

  it('link bandwidth round-trips through its float', () => {
    const ec = linkBandwidth(65001, 125_000_000);
    expect(Buffer.concat([Buffer.from([ec.type, ec.subtype]), ec.value]).toString('hex')).toBe(
      '4004fde94cee6b28',
    );
    expect(decodeLinkBandwidth(ec)).toEqual({ asn: 65001, bytesPerSecond: 125_000_000 });
    expect(decodeLinkBandwidth({ type: 0, subtype: 2, value: Buffer.alloc(6) })).toBeUndefined();
  });
});
