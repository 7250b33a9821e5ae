// Structural schemas of the built-in kinds, derived from the models that
// @kubernetes/client-node generates from the Kubernetes OpenAPI document:
// what the real server's Go types would decode. They drive the dropping (or
// strict rejection) of unknown fields, type checks, and the schemas
// published for kubectl explain.
import * as k8s from '@kubernetes/client-node';

import type { Obj } from './json.js';

interface Attribute {
  baseName: string;
  type: string;
  format: string;
}

const models = k8s as unknown as Record<
  string,
  { getAttributeTypeMap?: () => Attribute[] } | undefined
>;
const cache = new Map<string, Obj>();
const building = new Set<string>();

function schemaOfType(type: string, format: string): Obj {
  const array = /^Array<(.+)>$/.exec(type);
  if (array) return { type: 'array', items: schemaOfType(array[1] ?? 'any', '') };
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) return { type: 'object', additionalProperties: schemaOfType(map[1] ?? 'any', '') };
  switch (type) {
    case 'string':
      return { type: 'string', ...(format === 'byte' ? { format } : {}) };
    case 'number':
      return { type: format === 'double' ? 'number' : 'integer' };
    case 'boolean':
      return { type: 'boolean' };
    case 'Date':
    case 'V1MicroTime':
      return { type: 'string', format: 'date-time' };
    case 'IntOrString':
      return { 'x-kubernetes-int-or-string': true };
    case 'any':
    case 'object':
      return { 'x-kubernetes-preserve-unknown-fields': true };
    default:
      return modelSchema(type);
  }
}

/** The schema of a client-node model ("V1Service", "CoreV1Event"); recursive types end in preserve-unknown-fields. */
export function modelSchema(model: string): Obj {
  const hit = cache.get(model);
  if (hit !== undefined) return hit;
  const attributes = models[model]?.getAttributeTypeMap?.();
  if (attributes === undefined || building.has(model)) {
    return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  }
  building.add(model);
  const properties: Record<string, Obj> = {};
  for (const a of attributes) properties[a.baseName] = schemaOfType(a.type, a.format);
  building.delete(model);
  const schema = { type: 'object', properties };
  cache.set(model, schema);
  return schema;
}
