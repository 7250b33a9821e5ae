import { parseKindLengthOptions } from './kind-length-options.js';

export const IPV4_OPTION_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'eol'],
  [1, 'nop'],
  [7, 'rr'],
  [68, 'ts'],
  [130, 'security'],
  [131, 'lsrr'],
  [137, 'ssrr'],
  [148, 'router-alert'],
]);

const LSRR = 131;
const SSRR = 137;
/** RFC 791: options with this bit set are repeated in every fragment, the rest only in the first. */
const COPIED = 0x80;

/** Zero (end-of-list) padding to the 4-byte multiple the IHL can express. */
export function padIPv4Options(options: Buffer): Buffer {
  const pad = (4 - (options.length % 4)) % 4;
  return Buffer.concat([options, Buffer.alloc(pad)]);
}

/** The options a non-first fragment carries (RFC 791 section 3.2, "copied flag"). */
export function copiedIPv4Options(options: Buffer): Buffer {
  const kept = parseKindLengthOptions(options)
    .options.filter((o) => (o.kind & COPIED) !== 0 && !o.malformed)
    .map((o) => options.subarray(o.offset, o.offset + o.length));
  return Buffer.concat(kept);
}

/**
 * With a source route, the header's destination is only the next hop, but the receiver checks
 * TCP and UDP checksums against the address it sees on arrival: the last one of the route.
 */
export function sourceRouteFinalDst(options: Buffer): Buffer | undefined {
  const route = parseKindLengthOptions(options).options.find(
    (o) => (o.kind === LSRR || o.kind === SSRR) && !o.malformed,
  );
  if (route === undefined) return undefined;
  const count = Math.floor((route.data.length - 1) / 4);
  return count > 0 ? route.data.subarray(1 + 4 * (count - 1), 1 + 4 * count) : undefined;
}
