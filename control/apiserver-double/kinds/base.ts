// Defaults shared by the built-in kinds, so each kind states only what sets
// it apart.
import { ageColumn, nameColumn } from '../columns.js';
import { modelSchema } from '../model-schema.js';
import { dns1123Subdomain } from '../names.js';
import { patchMeta, type PatchMeta } from '../patch/strategic.js';
import type { ResourceType } from '../types.js';

/** ObjectMeta's strategic-merge fields, which every built-in kind has. */
export const OBJECT_META_PATCH = {
  'metadata.finalizers': { strategy: 'merge' },
  'metadata.ownerReferences': { strategy: 'merge', mergeKey: 'uid' },
} as const;

export function builtinPatchMeta(
  paths: Record<string, Omit<PatchMeta, 'fields' | 'items'>> = {},
): PatchMeta {
  return patchMeta({ ...OBJECT_META_PATCH, ...paths });
}

type Required = Pick<ResourceType, 'group' | 'version' | 'kind' | 'plural' | 'namespaced'> & {
  /** The client-node model the schema comes from, e.g. "V1Service". */
  model: string;
};

export function builtin({ model, ...t }: Required & Partial<ResourceType>): ResourceType {
  return {
    listKind: `${t.kind}List`,
    singular: t.kind.toLowerCase(),
    shortNames: [],
    categories: [],
    storage: `${t.group === '' ? 'core' : t.group}/${t.plural}`,
    status: false,
    keepStatusOnCreate: false,
    patchMeta: builtinPatchMeta(),
    generation: false,
    unconditionalUpdate: true,
    returnDeletedObject: false,
    fieldLabels: {},
    nameRule: dns1123Subdomain,
    hooks: {},
    columns: [nameColumn, ageColumn],
    schema: modelSchema(model),
    ...t,
  };
}
