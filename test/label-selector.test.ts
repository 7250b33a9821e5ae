// Label selector matching, with the API server's semantics.
import { describe, expect, it } from 'vitest';

import {
  isRestrictive,
  labelSelectorSchema,
  matchesSelector,
  type LabelSelector,
} from '../control/resources/label-selector.js';

const labels = { app: 'web', env: 'prod', tier: '' };

const cases: [string, LabelSelector | undefined, Record<string, string> | undefined, boolean][] = [
  ['absent selector matches everything', undefined, labels, true],
  ['absent selector matches no labels too', undefined, undefined, true],
  ['empty selector matches everything', {}, labels, true],
  ['empty lists match everything', { matchLabels: {}, matchExpressions: [] }, {}, true],
  ['matchLabels equal', { matchLabels: { app: 'web' } }, labels, true],
  ['matchLabels all must hold', { matchLabels: { app: 'web', env: 'dev' } }, labels, false],
  ['matchLabels missing label', { matchLabels: { team: 'a' } }, labels, false],
  ['matchLabels empty value', { matchLabels: { tier: '' } }, labels, true],
  ['matchLabels against no labels', { matchLabels: { app: 'web' } }, undefined, false],
  [
    'In: value listed',
    { matchExpressions: [{ key: 'env', operator: 'In', values: ['dev', 'prod'] }] },
    labels,
    true,
  ],
  [
    'In: value not listed',
    { matchExpressions: [{ key: 'env', operator: 'In', values: ['dev'] }] },
    labels,
    false,
  ],
  [
    'In: label absent',
    { matchExpressions: [{ key: 'team', operator: 'In', values: ['a'] }] },
    labels,
    false,
  ],
  [
    'NotIn: value listed',
    { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] },
    labels,
    false,
  ],
  [
    'NotIn: value not listed',
    { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] },
    labels,
    true,
  ],
  [
    'NotIn: label absent matches',
    { matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['a'] }] },
    labels,
    true,
  ],
  ['Exists: present', { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, labels, true],
  ['Exists: absent', { matchExpressions: [{ key: 'team', operator: 'Exists' }] }, labels, false],
  [
    'DoesNotExist: absent',
    { matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] },
    labels,
    true,
  ],
  [
    'DoesNotExist: present',
    { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] },
    labels,
    false,
  ],
  [
    'labels and expressions together: all hold',
    {
      matchLabels: { app: 'web' },
      matchExpressions: [
        { key: 'env', operator: 'In', values: ['prod'] },
        { key: 'legacy', operator: 'DoesNotExist' },
      ],
    },
    labels,
    true,
  ],
  [
    'labels and expressions together: one fails',
    {
      matchLabels: { app: 'web' },
      matchExpressions: [
        { key: 'env', operator: 'In', values: ['prod'] },
        { key: 'app', operator: 'DoesNotExist' },
      ],
    },
    labels,
    false,
  ],
  [
    'inherited object properties are not labels',
    { matchExpressions: [{ key: 'constructor', operator: 'Exists' }] },
    {},
    false,
  ],
  [
    'inherited properties do not match NotIn values',
    { matchExpressions: [{ key: 'toString', operator: 'NotIn', values: ['x'] }] },
    {},
    true,
  ],
];

describe('matchesSelector', () => {
  it.each(cases)('%s', (_name, selector, given, expected) => {
    expect(matchesSelector(selector, given)).toBe(expected);
  });

  it('accepts what the schema produces', () => {
    const selector = labelSelectorSchema.parse({
      matchLabels: { 'example.com/team': 'a' },
      matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }],
    });
    expect(matchesSelector(selector, { 'example.com/team': 'a', env: 'prod' })).toBe(true);
    expect(matchesSelector(selector, { 'example.com/team': 'a', env: 'dev' })).toBe(false);
  });
});

describe('isRestrictive', () => {
  it.each([
    [undefined, false],
    [{}, false],
    [{ matchLabels: {}, matchExpressions: [] }, false],
    [{ matchLabels: { a: 'b' } }, true],
    [{ matchExpressions: [{ key: 'a', operator: 'Exists' as const }] }, true],
  ])('%j -> %s', (selector, expected) => {
    expect(isRestrictive(selector)).toBe(expected);
  });
});
