// Kubernetes label selectors (metav1.LabelSelector) as our custom resources
// accept them. Unknown fields are errors here: a misspelt "matchLabel" would
// otherwise select everything.
import { z } from 'zod';

import { strictMap } from './common.js';
import { labelKeyProblem, labelsSchema, labelValueProblem } from './meta.js';

const requirementSchema = strictMap('a match expression', {
  key: z.string({ error: 'a match expression needs a key (a label name)' }),
  operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist'], {
    error: 'operator is one of In, NotIn, Exists, DoesNotExist',
  }),
  values: z.array(z.string({ error: 'values are strings: quote numbers and booleans' })).optional(),
}).superRefine((r, ctx) => {
  const keyProblem = labelKeyProblem(r.key);
  if (keyProblem !== undefined)
    ctx.addIssue({ code: 'custom', message: keyProblem, path: ['key'] });
  const values = r.values ?? [];
  if ((r.operator === 'In' || r.operator === 'NotIn') && values.length === 0)
    ctx.addIssue({
      code: 'custom',
      message: `operator ${r.operator} needs at least one value`,
      path: ['values'],
    });
  if ((r.operator === 'Exists' || r.operator === 'DoesNotExist') && values.length > 0)
    ctx.addIssue({
      code: 'custom',
      message: `operator ${r.operator} takes no values`,
      path: ['values'],
    });
  for (const [i, v] of values.entries()) {
    const problem = labelValueProblem(v);
    if (problem !== undefined)
      ctx.addIssue({ code: 'custom', message: problem, path: ['values', i] });
  }
});

export const labelSelectorSchema = strictMap('a label selector', {
  matchLabels: labelsSchema.optional(),
  matchExpressions: z.array(requirementSchema).optional(),
});

export type LabelSelector = z.output<typeof labelSelectorSchema>;

/**
 * Whether `labels` satisfy `selector`, with the API server's semantics: every
 * matchLabels entry and every expression must hold; NotIn and DoesNotExist
 * also hold when the label is absent. An empty selector matches everything,
 * and so does an absent one: a pool without a selector is open to all.
 */
export function matchesSelector(
  selector: LabelSelector | undefined,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  if (selector === undefined) return true;
  // Own properties only: a label named "constructor" must not find Object's.
  const get = (key: string): string | undefined =>
    labels !== undefined && Object.hasOwn(labels, key) ? labels[key] : undefined;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (get(key) !== value) return false;
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const value = get(key);
    switch (operator) {
      case 'In':
        if (value === undefined || !values.includes(value)) return false;
        break;
      case 'NotIn':
        if (value !== undefined && values.includes(value)) return false;
        break;
      case 'Exists':
        if (value === undefined) return false;
        break;
      case 'DoesNotExist':
        if (value !== undefined) return false;
        break;
    }
  }
  return true;
}

/** A selector that restricts anything: one with at least one label or expression. */
export function isRestrictive(selector: LabelSelector | undefined): boolean {
  return (
    Object.keys(selector?.matchLabels ?? {}).length > 0 ||
    (selector?.matchExpressions ?? []).length > 0
  );
}
