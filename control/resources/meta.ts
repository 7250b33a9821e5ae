// Names, labels and metadata with the apiserver's rules, so a manifest that
// works in standalone mode also applies to a cluster unchanged.
import { z } from 'zod';

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1035Label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const qualifiedName = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && dns1123Label.test(s);
}

export function isDns1123Subdomain(s: string): boolean {
  return s.length <= 253 && s.split('.').every((part) => dns1123Label.test(part));
}

export function isDns1035Label(s: string): boolean {
  return s.length <= 63 && dns1035Label.test(s);
}

/** A label key: optional DNS subdomain prefix and '/', then a name of at most 63 characters. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && !isDns1123Subdomain(prefix))
    return `label key '${key}' has an invalid prefix: it must be a DNS subdomain like 'example.com'`;
  if (name.length > 63 || !qualifiedName.test(name))
    return (
      `label key '${key}' is invalid: at most 63 letters, digits, '-', '_' or '.', ` +
      `starting and ending with a letter or digit`
    );
  return undefined;
}

export function labelValueProblem(value: string): string | undefined {
  if (value === '' || (value.length <= 63 && qualifiedName.test(value))) return undefined;
  return (
    `label value '${value}' is invalid: at most 63 letters, digits, '-', '_' or '.', ` +
    `starting and ending with a letter or digit`
  );
}

export const labelValueSchema = z
  .string({ error: 'label values are strings: quote numbers and booleans' })
  .superRefine((v, ctx) => {
    const problem = labelValueProblem(v);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });

export const labelsSchema = z
  .record(z.string(), labelValueSchema, { error: 'expected a map of label names to values' })
  .superRefine((labels, ctx) => {
    for (const key of Object.keys(labels)) {
      const problem = labelKeyProblem(key);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, path: [key] });
    }
  });

export type NameRule = 'dns1123Subdomain' | 'dns1035Label';

function nameSchema(kind: string, rule: NameRule) {
  const [valid, explain] =
    rule === 'dns1035Label'
      ? [isDns1035Label, 'at most 63 lowercase letters, digits and -, starting with a letter']
      : [
          isDns1123Subdomain,
          'lowercase letters, digits, - and ., starting and ending with a letter or digit',
        ];
  return z.string({ error: `every ${kind} needs a name (a string)` }).refine(valid, {
    error: (iss) => `${JSON.stringify(iss.input)} is not a valid ${kind} name: ${explain}`,
  });
}

// YAML and JSON carry timestamps as text; the client library's types (and the
// objects a Kubernetes source hands over) carry Dates.
const timestampSchema = z
  .union([z.date(), z.string()], { error: 'expected an RFC 3339 time like 2024-05-01T12:00:00Z' })
  .transform((v, ctx) => {
    const d = typeof v === 'string' ? new Date(v) : v;
    if (Number.isNaN(d.getTime()))
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not an RFC 3339 time` });
    return d;
  });

const commonMeta = {
  creationTimestamp: timestampSchema.optional(),
  deletionTimestamp: timestampSchema.optional(),
  labels: labelsSchema.optional(),
  annotations: z
    .record(z.string(), z.string({ error: 'annotation values are strings: quote them' }))
    .optional(),
};

function metadataError(kind: string) {
  return { error: `every ${kind} needs metadata (a map) with a name` };
}

/** Metadata of a namespaced kind: the namespace defaults to "default", as kubectl does. */
export function namespacedMetaSchema(kind: string, rule: NameRule) {
  return z.looseObject(
    {
      name: nameSchema(kind, rule),
      namespace: z
        .string({ error: 'a namespace is a string' })
        .refine(isDns1123Label, {
          error: (iss) =>
            `${JSON.stringify(iss.input)} is not a valid namespace: at most 63 lowercase letters, digits and -`,
        })
        .default('default'),
      ...commonMeta,
    },
    metadataError(kind),
  );
}

/**
 * Metadata of a cluster-scoped kind. A namespace written there is dropped,
 * as the apiserver does, so keys never depend on it.
 */
export function clusterMetaSchema(kind: string, rule: NameRule) {
  return z
    .looseObject(
      { name: nameSchema(kind, rule), namespace: z.unknown().optional(), ...commonMeta },
      metadataError(kind),
    )
    .transform(({ namespace: _namespace, ...rest }) => rest);
}
