// The IPPool custom resource: where LoadBalancer addresses come from. This
// module only says what a valid pool looks like; allocation lives in ipam/.
import { z } from 'zod';

import {
  addressToBigInt,
  familyOf,
  networkOf,
  parseCIDR,
  parseIP,
  type IPFamily,
} from './addresses.js';
import { strictMap } from './common.js';
import { parseOrThrow } from './errors.js';
import { labelSelectorSchema } from './label-selector.js';
import { clusterMetaSchema } from './meta.js';

export const IPPOOL_API_VERSION = 'xlb.dev/v1alpha1';
export const IPPOOL_KIND = 'IPPool';

/** One entry of spec.addresses, as an inclusive range of addresses. */
export interface AddressBlock {
  family: IPFamily;
  first: bigint;
  last: bigint;
}

export class AddressBlockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AddressBlockError';
  }
}

const EXPECTED = 'a CIDR like 192.0.2.0/28 or a range like 198.51.100.10-198.51.100.20';

function checkAddressBlock(entry: string): AddressBlock | string {
  const text = entry.trim();
  if (text.includes('-')) {
    const [startText = '', endText = '', ...more] = text.split('-').map((s) => s.trim());
    if (more.length > 0) return `'${text}' is not ${EXPECTED}`;
    const start = parseIP(startText);
    const end = parseIP(endText);
    if (start === undefined)
      return `'${text}' starts with '${startText}', which is not an IP address`;
    if (end === undefined) return `'${text}' ends with '${endText}', which is not an IP address`;
    if (familyOf(start) !== familyOf(end))
      return `'${text}' mixes IPv4 and IPv6: both ends of a range must be the same family`;
    const first = addressToBigInt(start);
    const last = addressToBigInt(end);
    if (first > last) return `'${text}' starts after it ends: write the lower address first`;
    return { family: familyOf(start), first, last };
  }
  if (!text.includes('/')) return `'${text}' is not ${EXPECTED}`;
  const cidr = parseCIDR(text);
  if (typeof cidr === 'string') return cidr;
  const network = networkOf(cidr);
  const first = addressToBigInt(network);
  if (first !== addressToBigInt(cidr.address))
    return (
      `'${text}' has host bits set: the block that contains it is ` +
      `${network.toString()}/${cidr.prefix}`
    );
  const bits = cidr.family === 4 ? 32 : 128;
  const size = 1n << BigInt(bits - cidr.prefix);
  return { family: cidr.family, first, last: first + size - 1n };
}

/** Parses one spec.addresses entry (CIDR or start-end range); throws AddressBlockError. */
export function parseAddressBlock(text: string): AddressBlock {
  const r = checkAddressBlock(text);
  if (typeof r === 'string') throw new AddressBlockError(r);
  return r;
}

const addressesSchema = z
  .array(z.string({ error: `each address entry is a string: ${EXPECTED}` }), {
    error: `spec.addresses is a list, each entry ${EXPECTED}`,
  })
  .min(1, { error: 'a pool needs at least one address block' })
  .superRefine((texts, ctx) => {
    const blocks: { index: number; block: AddressBlock }[] = [];
    for (const [index, text] of texts.entries()) {
      const r = checkAddressBlock(text);
      if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r, path: [index] });
      else blocks.push({ index, block: r });
    }
    // Overlapping entries would hand out the same address twice in one pool's
    // accounting; almost always a copy-paste mistake.
    blocks.sort((a, b) =>
      a.block.family !== b.block.family
        ? a.block.family - b.block.family
        : a.block.first < b.block.first
          ? -1
          : a.block.first > b.block.first
            ? 1
            : 0,
    );
    for (let i = 1; i < blocks.length; i++) {
      const prev = blocks[i - 1]!;
      const cur = blocks[i]!;
      if (prev.block.family === cur.block.family && cur.block.first <= prev.block.last) {
        const [a, b] = prev.index < cur.index ? [prev, cur] : [cur, prev];
        ctx.addIssue({
          code: 'custom',
          message: `'${texts[b.index]}' overlaps spec.addresses[${a.index}] '${texts[a.index]}'`,
          path: [b.index],
        });
      }
    }
  });

const flag = (fallback: boolean) =>
  z.boolean({ error: 'expected true or false (unquoted)' }).default(fallback);

export const ipPoolSpecSchema = strictMap('an IPPool spec', {
  addresses: addressesSchema,
  /** false: the pool serves only Services that ask for it explicitly. */
  autoAssign: flag(true),
  /** Skip .0 and .255 addresses, which some old client stacks drop as broadcast. */
  avoidBuggyIPs: flag(false),
  serviceSelector: labelSelectorSchema.optional(),
  namespaceSelector: labelSelectorSchema.optional(),
  /** A disabled pool gives out no new addresses (what happens to given ones is ipam's call). */
  disabled: flag(false),
});

export const ipPoolSchema = z.looseObject({
  apiVersion: z.literal(IPPOOL_API_VERSION, {
    error: `an IPPool's apiVersion is ${IPPOOL_API_VERSION}`,
  }),
  kind: z.literal(IPPOOL_KIND, { error: `expected kind ${IPPOOL_KIND}` }),
  metadata: clusterMetaSchema(IPPOOL_KIND, 'dns1123Subdomain'),
  spec: ipPoolSpecSchema,
});

export type IPPool = z.output<typeof ipPoolSchema>;
export type IPPoolSpec = z.output<typeof ipPoolSpecSchema>;

/** Validates and defaults an IPPool object; throws InvalidResourceError naming each bad field. */
export function parseIPPool(obj: unknown): IPPool {
  return parseOrThrow(ipPoolSchema, IPPOOL_KIND, obj);
}
