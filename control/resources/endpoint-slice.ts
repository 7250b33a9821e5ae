// The parts of a discovery.k8s.io/v1 EndpointSlice that the model reads.
// Endpoint conditions are kept exactly as given: an absent `ready` means
// ready in Kubernetes, and the model interprets that, not the validator.
import { z } from 'zod';

import { familyOf, parseIP } from './addresses.js';
import { portNumberSchema, protocolSchema } from './common.js';
import { isDns1123Subdomain, namespacedMetaSchema } from './meta.js';

/** The label that ties a slice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

const condition = z.boolean({ error: 'expected true or false (unquoted)' }).nullable().optional();

const endpointSchema = z.looseObject({
  addresses: z
    .array(z.string({ error: 'an address is a string' }), {
      error: 'each endpoint needs addresses (a list)',
    })
    .min(1, { error: 'each endpoint needs at least one address' })
    .max(100, { error: 'an endpoint has at most 100 addresses' }),
  conditions: z
    .looseObject({ ready: condition, serving: condition, terminating: condition })
    // An explicit null means the same as an absent condition; drop it so the
    // object has the client library's type (boolean or absent).
    .transform(({ ready, serving, terminating, ...rest }) => ({
      ...rest,
      ...(ready === null || ready === undefined ? {} : { ready }),
      ...(serving === null || serving === undefined ? {} : { serving }),
      ...(terminating === null || terminating === undefined ? {} : { terminating }),
    }))
    .optional(),
  nodeName: z
    .string({ error: 'nodeName is a string' })
    .refine(isDns1123Subdomain, {
      error: (iss) => `${JSON.stringify(iss.input)} is not a valid node name`,
    })
    .optional(),
  zone: z.string({ error: 'zone is a string' }).optional(),
  hostname: z.string({ error: 'hostname is a string' }).optional(),
});

const endpointPortSchema = z.looseObject({
  // May be empty: a slice's single unnamed port matches the Service's unnamed one.
  name: z.string({ error: 'a port name is a string' }).optional(),
  port: portNumberSchema.optional(),
  protocol: protocolSchema,
  appProtocol: z.string({ error: 'appProtocol is a string' }).optional(),
});

export const endpointSliceSchema = z
  .looseObject({
    apiVersion: z.literal('discovery.k8s.io/v1', {
      error: "an EndpointSlice's apiVersion is discovery.k8s.io/v1",
    }),
    kind: z.literal('EndpointSlice', { error: 'expected kind EndpointSlice' }),
    metadata: namespacedMetaSchema('EndpointSlice', 'dns1123Subdomain'),
    addressType: z.enum(['IPv4', 'IPv6', 'FQDN'], { error: 'addressType is IPv4, IPv6 or FQDN' }),
    endpoints: z.array(endpointSchema, { error: 'endpoints is a list' }).default(() => []),
    ports: z.array(endpointPortSchema, { error: 'ports is a list' }).optional(),
  })
  .superRefine((slice, ctx) => {
    if (slice.metadata.labels?.[SERVICE_NAME_LABEL] === undefined)
      ctx.addIssue({
        code: 'custom',
        message: `required: it names the Service this slice belongs to`,
        path: ['metadata', 'labels', SERVICE_NAME_LABEL],
      });
    if (slice.addressType !== 'FQDN') {
      const family = slice.addressType === 'IPv4' ? 4 : 6;
      for (const [i, e] of slice.endpoints.entries()) {
        for (const [j, text] of e.addresses.entries()) {
          const a = parseIP(text);
          if (a === undefined || familyOf(a) !== family)
            ctx.addIssue({
              code: 'custom',
              message: `${JSON.stringify(text)} is not an ${slice.addressType} address (addressType is ${slice.addressType})`,
              path: ['endpoints', i, 'addresses', j],
            });
        }
      }
    }
    const names = new Map<string, number>();
    for (const [i, p] of (slice.ports ?? []).entries()) {
      const name = p.name ?? '';
      const first = names.get(name);
      if (first !== undefined)
        ctx.addIssue({
          code: 'custom',
          message: `port name '${name}' is already used by ports[${first}]`,
          path: ['ports', i, 'name'],
        });
      else names.set(name, i);
    }
  });
