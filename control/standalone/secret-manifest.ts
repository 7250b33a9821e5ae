// A v1 Secret in a manifest file: BGP MD5 passwords for standalone mode, the
// same object `kubectl apply` takes (data base64, or stringData in plain
// text, whose values win, as the API server merges them). Values never
// appear in a problem: a bad one is named by its key.
import { z } from 'zod';

import { fieldIssues, InvalidResourceError } from '../resources/errors.js';
import { isDns1123Label, isDns1123Subdomain } from '../resources/meta.js';
import type { SecretValues } from '../store/secrets.js';

const KEY = /^[-._a-zA-Z0-9]+$/;
// Standard base64 with padding, as the API server's decoder insists on.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Keys checked after the values, so each bad key gets its own message at its own path. */
function validKeys(map: Record<string, string>, ctx: z.RefinementCtx): void {
  for (const key of Object.keys(map))
    if (key.length > 253 || !KEY.test(key))
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: `${JSON.stringify(key)} is not a valid Secret key: letters, digits, '-', '_' and '.'`,
      });
}

// The value is left out of every message: it is a password.
const stringValue = (what: string) => z.string({ error: () => `expected ${what} (a string)` });

const secretSchema = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Secret'),
  metadata: z.looseObject({
    name: z.string({ error: 'every Secret needs a name (a string)' }).refine(isDns1123Subdomain, {
      error: (iss) =>
        `${JSON.stringify(iss.input)} is not a valid Secret name: lowercase letters, digits, - and ., ` +
        'starting and ending with a letter or digit',
    }),
    namespace: z
      .string({ error: 'a namespace is a string' })
      .refine(isDns1123Label, {
        error: (iss) =>
          `${JSON.stringify(iss.input)} is not a valid namespace: at most 63 lowercase letters, digits and -`,
      })
      .optional(),
  }),
  data: z
    .record(
      z.string(),
      stringValue('base64 text').refine((v) => BASE64.test(v), {
        error: () => 'is not valid base64 (put plain text under stringData instead)',
      }),
      { error: () => 'expected a map of keys to base64 values' },
    )
    .superRefine(validKeys)
    .optional(),
  stringData: z
    .record(z.string(), stringValue('plain text'), {
      error: () => 'expected a map of keys to plain-text values',
    })
    .superRefine(validKeys)
    .optional(),
});

/** Whether `obj` claims to be a v1 Secret (then parseSecretManifest decides if it is a valid one). */
export function isSecretManifest(obj: Record<string, unknown>): boolean {
  return obj.apiVersion === 'v1' && obj.kind === 'Secret';
}

/**
 * Validates a v1 Secret and decodes its values. A Secret without a
 * namespace is in `defaultNamespace` (the agent's own: the only one whose
 * Secrets xlb reads). Throws InvalidResourceError naming each bad field.
 */
export function parseSecretManifest(
  obj: unknown,
  defaultNamespace: string,
  pathPrefix: readonly PropertyKey[] = [],
): SecretValues {
  const r = secretSchema.safeParse(obj);
  if (!r.success) {
    const name = (obj as { metadata?: { name?: unknown } }).metadata?.name;
    throw new InvalidResourceError(
      'Secret',
      typeof name === 'string' ? name : undefined,
      fieldIssues(r.error, pathPrefix),
    );
  }
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(r.data.data ?? {}))
    values[key] = Buffer.from(value, 'base64').toString('utf8');
  for (const [key, value] of Object.entries(r.data.stringData ?? {})) values[key] = value;
  return {
    metadata: {
      namespace: r.data.metadata.namespace ?? defaultNamespace,
      name: r.data.metadata.name,
    },
    values,
  };
}
