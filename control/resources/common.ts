// Field schemas shared by the Kubernetes kinds xlb reads.
import { z } from 'zod';

import { parseCIDR, parseIP } from './addresses.js';

export const portNumberSchema = z
  .number({ error: 'a port is an integer from 1 to 65535' })
  .int()
  .min(1)
  .max(65535);

export const protocolSchema = z
  .enum(['TCP', 'UDP', 'SCTP'], { error: 'protocol is TCP, UDP or SCTP (upper case)' })
  .default('TCP');

export const ipSchema = z
  .string({ error: 'expected an IP address (a string)' })
  .refine((s) => parseIP(s) !== undefined, {
    error: (iss) => `${JSON.stringify(iss.input)} is not an IP address`,
  });

export const cidrSchema = z
  .string({ error: 'expected a CIDR like 192.0.2.0/24 (a string)' })
  .superRefine((s, ctx) => {
    const r = parseCIDR(s.trim());
    if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
  });

export const booleanSchema = z.boolean({ error: 'expected true or false (unquoted)' });

/**
 * An object schema for our own resources that rejects unknown fields, naming
 * the ones it knows: a misspelt field would otherwise be silently ignored.
 */
export function strictMap<S extends z.core.$ZodLooseShape>(what: string, shape: S) {
  const known = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys')
        return `unknown field ${iss.keys.map((k) => `'${k}'`).join(', ')}: ${what} takes ${known}`;
      if (iss.code === 'invalid_type') return `expected ${what} (a map)`;
      return undefined;
    },
  });
}
