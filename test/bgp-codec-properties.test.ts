// Properties of the BGP codec over generated input: well-formed messages
// survive encode -> decode unchanged; random bytes, and valid messages with
// bits flipped, bytes cut or added and length fields rewritten, never make
// the decoder or the framer throw, and every refusal carries a NOTIFICATION
// code/subcode that an RFC defines. Whatever decodes re-encodes and decodes
// to the same thing.
//
// Reproduce a failure with the seed fast-check prints:
//   XLB_BGP_SEED=<seed> npx vitest run test/bgp-codec-properties.test.ts
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { isKnownNotification } from '../control/bgp/codec/errors.js';
import { decodeMessage, encodeMessage, type BgpMessage } from '../control/bgp/codec/message.js';
import { MessageFramer } from '../control/bgp/framer.js';
import { message, update } from './support/bgp/arbitraries.js';

const seed = process.env.XLB_BGP_SEED === undefined ? undefined : Number(process.env.XLB_BGP_SEED);
const params = (numRuns: number) => ({ numRuns, ...(seed === undefined ? {} : { seed }) });

/** The decoder's verdict, held to the contract: a message, or a known NOTIFICATION. */
function verdict(bytes: Buffer): BgpMessage | undefined {
  const d = decodeMessage(bytes);
  if (d.ok) return d.value;
  const { code, subcode } = d.error.notification;
  expect(isKnownNotification(code, subcode), `${code}/${subcode}: ${d.error.message}`).toBe(true);
  return undefined;
}

/** Whatever decodes must come back the same after one more round. */
function stable(m: BgpMessage): void {
  const again = decodeMessage(encodeMessage(m));
  expect(again.ok && again.value).toEqual(m);
}

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'cut'; at: number; fixLength: boolean }
  | { kind: 'append'; bytes: Uint8Array; fixLength: boolean }
  | { kind: 'length16'; at: number; value: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), fixLength: fc.boolean() }),
  fc.record({
    kind: fc.constant('append' as const),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }),
    fixLength: fc.boolean(),
  }),
  // Any 16-bit field (the header length, withdrawn / attribute / parameter lengths, ...).
  fc.record({ kind: fc.constant('length16' as const), at: fc.nat(), value: fc.nat(0xffff) }),
);

function fixHeaderLength(b: Buffer): void {
  if (b.length >= 18) b.writeUInt16BE(Math.min(b.length, 0xffff), 16);
}

function mutate(original: Buffer, mutations: Mutation[]): Buffer {
  let b = Buffer.from(original);
  for (const m of mutations) {
    if (b.length === 0) break;
    switch (m.kind) {
      case 'flip':
        b[m.at % b.length]! ^= 1 << m.bit;
        break;
      case 'set':
        b[m.at % b.length] = m.value;
        break;
      case 'cut':
        b = b.subarray(0, m.at % b.length);
        if (m.fixLength) fixHeaderLength(b);
        break;
      case 'append':
        b = Buffer.concat([b, m.bytes]);
        if (m.fixLength) fixHeaderLength(b);
        break;
      case 'length16':
        if (b.length >= 2) b.writeUInt16BE(m.value, m.at % (b.length - 1));
        break;
    }
  }
  return b;
}

describe('BGP codec properties', () => {
  it('encode -> decode gives every well-formed message back', () => {
    fc.assert(
      fc.property(message, (m) => {
        const d = decodeMessage(encodeMessage(m));
        expect(d.ok ? d.value : d.error.message).toEqual(m);
      }),
      params(3000),
    );
  });

  it('the same with 2-octet ASNs (a peer without the 4-octet AS capability)', () => {
    const ctx = { fourOctetAs: false };
    fc.assert(
      fc.property(update(fc.integer({ min: 0, max: 0xffff })), (m) => {
        const d = decodeMessage(encodeMessage(m, ctx), ctx);
        expect(d.ok ? d.value : d.error.message).toEqual(m);
      }),
      params(1000),
    );
  });

  it('random bytes never throw, and are refused with a known NOTIFICATION', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (raw) => {
        expect(verdict(Buffer.from(raw))).toBeUndefined();
      }),
      params(3000),
    );
  });

  it('random bodies behind a valid header never throw', () => {
    const seen = { decoded: 0, refused: 0 };
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.uint8Array({ maxLength: 300 }),
        (type, body) => {
          const head = Buffer.alloc(19, 0xff);
          head.writeUInt16BE(19 + body.length, 16);
          head[18] = type;
          const m = verdict(Buffer.concat([head, body]));
          seen[m === undefined ? 'refused' : 'decoded']++;
          if (m !== undefined) stable(m);
        },
      ),
      params(5000),
    );
    // Both branches must have been exercised, or the property proves little.
    expect(seen.decoded).toBeGreaterThan(100);
    expect(seen.refused).toBeGreaterThan(100);
  });

  it('mutated valid messages never throw; what decodes is stable', () => {
    const refusals = new Map<string, number>();
    let decoded = 0;
    fc.assert(
      fc.property(message, fc.array(mutation, { minLength: 1, maxLength: 4 }), (m, muts) => {
        const bytes = mutate(encodeMessage(m), muts);
        const d = verdict(bytes);
        if (d !== undefined) {
          decoded++;
          stable(d);
        } else {
          const e = decodeMessage(bytes);
          const key = e.ok ? '' : `${e.error.notification.code}/${e.error.notification.subcode}`;
          refusals.set(key, (refusals.get(key) ?? 0) + 1);
        }
      }),
      params(5000),
    );
    expect(decoded).toBeGreaterThan(100);
    // The mutations reach deep into the messages, not only the header.
    for (const code of ['1/1', '1/2', '2/0', '3/1', '3/4', '3/5', '3/10']) {
      expect(refusals.get(code) ?? 0, `refusals: ${JSON.stringify([...refusals])}`).toBeGreaterThan(
        0,
      );
    }
  });

  it('the framer cuts any slicing of a stream into the same messages', () => {
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 30 }),
        (messages, sizes) => {
          const stream = Buffer.concat(messages.map((m) => encodeMessage(m)));
          const framer = new MessageFramer();
          const got: Buffer[] = [];
          let off = 0;
          for (let i = 0; off < stream.length; i++) {
            const n = sizes[i % sizes.length]!;
            for (const f of framer.push(stream.subarray(off, off + n))) {
              if (!f.ok) throw new Error(f.error.message);
              got.push(f.bytes);
            }
            off += n;
          }
          expect(framer.buffered).toBe(0);
          expect(got.map((b) => decodeMessage(b))).toEqual(
            messages.map((m) => ({ ok: true, value: m })),
          );
        },
      ),
      params(500),
    );
  });

  it('the framer survives mutated streams: whole messages, then at most one error, then nothing', () => {
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 4 }),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 300 }),
        (messages, muts, chunk) => {
          const stream = mutate(Buffer.concat(messages.map((m) => encodeMessage(m))), muts);
          const framer = new MessageFramer();
          const frames = [];
          for (let off = 0; off < stream.length; off += chunk) {
            frames.push(...framer.push(stream.subarray(off, off + chunk)));
          }
          const errors = frames.filter((f) => !f.ok);
          expect(errors.length).toBeLessThanOrEqual(1);
          if (errors.length === 1) expect(frames.at(-1)!.ok).toBe(false);
          for (const f of frames) {
            if (f.ok) verdict(f.bytes);
            else expect(f.error.notification.code).toBe(1);
          }
        },
      ),
      params(2000),
    );
  });
});
