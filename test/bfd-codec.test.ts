// The BFD Control packet codec (RFC 5880 section 4.1) and the reception
// checks of section 6.8.6: a packet BIRD 2 sent decodes to its fields and
// re-encodes to the same bytes; each rule discards exactly the packet that
// breaks it; generated packets survive encode -> decode; random bytes and
// mutated packets never make the decoder throw.
//
// Reproduce a property failure with the seed fast-check prints:
//   XLB_BFD_SEED=<seed> npx vitest run test/bfd-codec.test.ts
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  BfdState,
  decodeControl,
  Diag,
  encodeControl,
  type ControlPacket,
  type DiscardReason,
} from '../control/bgp/bfd/codec.js';

const seed = process.env.XLB_BFD_SEED === undefined ? undefined : Number(process.env.XLB_BFD_SEED);
const params = (numRuns: number) => ({ numRuns, ...(seed === undefined ? {} : { seed }) });

// Captured from BIRD 2.0.12 (`protocol bfd`, min rx 300 ms) on a veth: its first packet, Down.
const BIRD_DOWN = Buffer.from('2040031870f0201f00000000000f4240000493e000000000', 'hex');

const UP: Omit<ControlPacket, 'version' | 'authentication'> = {
  diag: Diag.None,
  state: BfdState.Up,
  poll: false,
  final: false,
  controlPlaneIndependent: false,
  demand: false,
  multipoint: false,
  detectMult: 3,
  myDiscriminator: 0x11223344,
  yourDiscriminator: 0x55667788,
  desiredMinTxInterval: 300_000,
  requiredMinRxInterval: 300_000,
  requiredMinEchoRxInterval: 0,
};

function reason(bytes: Uint8Array): DiscardReason | 'accepted' {
  const d = decodeControl(bytes);
  return d.ok ? 'accepted' : d.reason;
}

function patched(base: Buffer, at: number, value: number): Buffer {
  const b = Buffer.from(base);
  b[at] = value;
  return b;
}

describe('BFD Control packet vectors', () => {
  it('decodes a packet BIRD sent and re-encodes it to the same bytes', () => {
    const d = decodeControl(BIRD_DOWN);
    expect(d).toEqual({
      ok: true,
      packet: {
        version: 1,
        diag: Diag.None,
        state: BfdState.Down,
        poll: false,
        final: false,
        controlPlaneIndependent: false,
        authentication: false,
        demand: false,
        multipoint: false,
        detectMult: 3,
        myDiscriminator: 0x70f0201f,
        yourDiscriminator: 0,
        desiredMinTxInterval: 1_000_000,
        requiredMinRxInterval: 300_000,
        requiredMinEchoRxInterval: 0,
      },
    });
    expect(d.ok && encodeControl(d.packet)).toEqual(BIRD_DOWN);
  });

  it('lays out every field and flag where section 4.1 puts it', () => {
    const bytes = encodeControl({
      ...UP,
      diag: Diag.ReverseConcatenatedPathDown,
      state: BfdState.Init,
      poll: true,
      controlPlaneIndependent: true,
      demand: true,
      detectMult: 255,
      myDiscriminator: 0xffffffff,
      yourDiscriminator: 1,
      desiredMinTxInterval: 0xfffffffe,
      requiredMinRxInterval: 7,
      requiredMinEchoRxInterval: 9,
    });
    expect(bytes.toString('hex')).toBe(
      '28' + // version 1 << 5 | diag 8
        'aa' + // Init (2) << 6 | P 0x20 | C 0x08 | D 0x02
        'ff' +
        '18' +
        'ffffffff' +
        '00000001' +
        'fffffffe' +
        '00000007' +
        '00000009',
    );
    expect(encodeControl({ ...UP, final: true })[1]).toBe(0xd0);
  });

  it('accepts longer datagrams than the Length field (trailing bytes are ignored)', () => {
    expect(reason(Buffer.concat([encodeControl(UP), Buffer.alloc(8)]))).toBe('accepted');
  });

  const up = encodeControl(UP);
  const down = encodeControl({ ...UP, state: BfdState.Down, yourDiscriminator: 0 });
  const withAuth = (b: Buffer) => {
    const x = Buffer.concat([b, Buffer.from([1, 2])]);
    x[1] = x[1]! | 0x04;
    x[3] = 26;
    return x;
  };
  const cases: { name: string; bytes: Buffer; expected: DiscardReason | 'accepted' }[] = [
    { name: 'a valid Up packet', bytes: up, expected: 'accepted' },
    { name: 'Down with Your Discriminator zero', bytes: down, expected: 'accepted' },
    {
      name: 'AdminDown with Your Discriminator zero',
      bytes: encodeControl({ ...UP, state: BfdState.AdminDown, yourDiscriminator: 0 }),
      expected: 'accepted',
    },
    { name: 'empty', bytes: Buffer.alloc(0), expected: 'truncated' },
    { name: 'one byte short', bytes: up.subarray(0, 23), expected: 'truncated' },
    { name: 'version 0', bytes: patched(up, 0, 0x00), expected: 'badVersion' },
    { name: 'version 2', bytes: patched(up, 0, 0x40), expected: 'badVersion' },
    { name: 'Length 23', bytes: patched(up, 3, 23), expected: 'badLength' },
    { name: 'Length 0', bytes: patched(up, 3, 0), expected: 'badLength' },
    {
      name: 'A bit with Length 25',
      bytes: patched(patched(up, 1, up[1]! | 0x04), 3, 25),
      expected: 'badLength',
    },
    {
      name: 'Length 25 in a 24-byte datagram',
      bytes: patched(up, 3, 25),
      expected: 'lengthExceedsPayload',
    },
    { name: 'Detect Mult zero', bytes: patched(up, 2, 0), expected: 'zeroDetectMult' },
    { name: 'M bit', bytes: patched(up, 1, up[1]! | 0x01), expected: 'multipoint' },
    {
      name: 'My Discriminator zero',
      bytes: encodeControl({ ...UP, myDiscriminator: 0 }),
      expected: 'zeroMyDiscriminator',
    },
    {
      name: 'Up with Your Discriminator zero',
      bytes: encodeControl({ ...UP, yourDiscriminator: 0 }),
      expected: 'zeroYourDiscriminatorNotDown',
    },
    {
      name: 'Init with Your Discriminator zero',
      bytes: encodeControl({ ...UP, state: BfdState.Init, yourDiscriminator: 0 }),
      expected: 'zeroYourDiscriminatorNotDown',
    },
    {
      name: 'authentication, which xlb never uses',
      bytes: withAuth(up),
      expected: 'authenticationNotInUse',
    },
  ];
  it.each(cases)('section 6.8.6: $name -> $expected', ({ bytes, expected }) => {
    const d = decodeControl(bytes);
    expect(d.ok ? 'accepted' : d.reason).toBe(expected);
    if (!d.ok) expect(d.detail.length).toBeGreaterThan(0);
  });
});

const packet: fc.Arbitrary<Omit<ControlPacket, 'version' | 'authentication'>> = fc.record({
  diag: fc.integer({ min: 0, max: 31 }),
  state: fc.constantFrom(BfdState.AdminDown, BfdState.Down, BfdState.Init, BfdState.Up),
  poll: fc.boolean(),
  final: fc.boolean(),
  controlPlaneIndependent: fc.boolean(),
  demand: fc.boolean(),
  multipoint: fc.constant(false),
  detectMult: fc.integer({ min: 1, max: 255 }),
  myDiscriminator: fc.integer({ min: 1, max: 0xffffffff }),
  yourDiscriminator: fc.integer({ min: 1, max: 0xffffffff }),
  desiredMinTxInterval: fc.integer({ min: 0, max: 0xffffffff }),
  requiredMinRxInterval: fc.integer({ min: 0, max: 0xffffffff }),
  requiredMinEchoRxInterval: fc.integer({ min: 0, max: 0xffffffff }),
});

describe('BFD codec properties', () => {
  it('valid packets survive encode -> decode unchanged', () => {
    fc.assert(
      fc.property(packet, (p) => {
        const d = decodeControl(encodeControl(p));
        expect(d).toEqual({ ok: true, packet: { ...p, version: 1, authentication: false } });
      }),
      params(2000),
    );
  });

  it('random bytes never throw, and whatever decodes re-encodes to its first 24 bytes', () => {
    // Half of them get version 1 and a Length within the datagram, so that
    // some random packets pass every rule.
    const bytes = fc
      .oneof(
        fc.tuple(fc.constant(false), fc.uint8Array({ minLength: 0, maxLength: 64 })),
        fc.tuple(fc.constant(true), fc.uint8Array({ minLength: 24, maxLength: 64 })),
      )
      .map(([plausible, b]) => {
        if (!plausible || b.length < 24) return b;
        const x = patched(Buffer.from(b), 0, 0x20 | (b[0]! & 0x1f));
        return patched(x, 3, 24 + (b[3]! % (b.length - 23)));
      });
    let accepted = 0;
    const reasons: Record<string, number> = {};
    fc.assert(
      fc.property(bytes, (b) => {
        const d = decodeControl(b);
        if (d.ok) {
          accepted++;
          // The Length field may exceed 24 without authentication; we always write 24.
          const again = patched(encodeControl(d.packet), 3, b[3]!);
          expect(again).toEqual(Buffer.from(b.subarray(0, 24)));
        } else {
          expect(d.detail).not.toBe('');
          reasons[d.reason] = (reasons[d.reason] ?? 0) + 1;
        }
      }),
      params(5000),
    );
    // About 1 in 100 passes every rule: the accepting path was exercised too.
    expect(accepted, `refusals: ${JSON.stringify(reasons)}`).toBeGreaterThan(0);
  });

  it('valid packets with bytes changed, cut or added never throw', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(23), value: fc.nat(255) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat(24) }),
      fc.record({
        kind: fc.constant('append' as const),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }),
      }),
    );
    fc.assert(
      fc.property(packet, fc.array(mutation, { minLength: 1, maxLength: 4 }), (p, ms) => {
        let b = encodeControl(p);
        for (const m of ms) {
          if (m.kind === 'set') b = patched(b, m.at, m.value);
          else if (m.kind === 'cut') b = b.subarray(0, m.at);
          else b = Buffer.concat([b, m.bytes]);
        }
        const d = decodeControl(b);
        // Accepted packets obey every rule of section 6.8.6.
        if (d.ok) {
          expect(d.packet.version).toBe(1);
          expect(d.packet.detectMult).toBeGreaterThan(0);
          expect(d.packet.myDiscriminator).not.toBe(0);
          expect(d.packet.multipoint || d.packet.authentication).toBe(false);
        }
      }),
      params(5000),
    );
  });
});
