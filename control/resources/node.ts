// The parts of a v1 Node that xlb reads: its addresses (tunnel endpoints and
// BGP next hops), labels (announcement selectors) and conditions.
import { z } from 'zod';

import { parseIP } from './addresses.js';
import { booleanSchema } from './common.js';
import { clusterMetaSchema } from './meta.js';

// Address types whose value must be an IP (Hostname and InternalDNS are names).
const IP_ADDRESS_TYPES = new Set(['InternalIP', 'ExternalIP']);

export const nodeSchema = z.looseObject({
  apiVersion: z.literal('v1', { error: "a Node's apiVersion is v1" }),
  kind: z.literal('Node', { error: 'expected kind Node' }),
  metadata: clusterMetaSchema('Node', 'dns1123Subdomain'),
  spec: z
    .looseObject({
      unschedulable: booleanSchema.optional(),
      podCIDRs: z.array(z.string({ error: 'a pod CIDR is a string' })).optional(),
    })
    .optional(),
  status: z
    .looseObject({
      addresses: z
        .array(
          z
            .looseObject({
              type: z.string({ error: 'an address needs a type, e.g. InternalIP' }),
              address: z.string({ error: 'an address needs an address (a string)' }),
            })
            .superRefine((a, ctx) => {
              if (IP_ADDRESS_TYPES.has(a.type) && parseIP(a.address) === undefined)
                ctx.addIssue({
                  code: 'custom',
                  message: `${JSON.stringify(a.address)} is not an IP address (type ${a.type})`,
                  path: ['address'],
                });
            }),
          { error: 'addresses is a list' },
        )
        .optional(),
      conditions: z
        .array(
          z.looseObject({
            type: z.string({ error: 'a condition needs a type' }),
            status: z.enum(['True', 'False', 'Unknown'], {
              error: "a condition's status is True, False or Unknown (quoted)",
            }),
          }),
          { error: 'conditions is a list' },
        )
        .optional(),
    })
    .optional(),
});
