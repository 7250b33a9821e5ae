// The resource types a CRD serves: one per served version, all on one store
// in the storage version (conversion strategy None: only apiVersion changes).
// Custom resources get structural pruning, schema defaults and validation,
// generation tracking, printer columns and selectable fields; strategic
// merge patch is refused with 415 as on a real server.
import { age, ageColumn, nameColumn } from '../columns.js';
import { asArray, asString, isObj, str, type Obj } from '../json.js';
import { dns1123Subdomain } from '../names.js';
import { applyDefaults, validate, type Schema } from '../schema.js';
import type { Column, KubeObject, ResourceType } from '../types.js';
import { crdNames, crdSpec, crdVersions } from './crd.js';

/** The JSONPath subset printer columns use: .a.b, [n], [*] and [?(@.k=="v")]. */
export function jsonPath(o: unknown, path: string): unknown[] {
  let cur: unknown[] = [o];
  const re =
    /\.([A-Za-z0-9_-]+)|\[(\d+)\]|\[\*\]|\[\?\(@\.([A-Za-z0-9_.-]+)\s*==\s*["']([^"']*)["']\)\]/g;
  for (const m of path.matchAll(re)) {
    const next: unknown[] = [];
    for (const v of cur) {
      if (m[1] !== undefined) {
        if (isObj(v) && v[m[1]] !== undefined) next.push(v[m[1]]);
      } else if (m[2] !== undefined) {
        if (Array.isArray(v) && v[Number(m[2])] !== undefined) next.push(v[Number(m[2])]);
      } else if (m[3] !== undefined) {
        const [field, want] = [m[3], m[4]];
        for (const item of asArray(v)) {
          if (isObj(item) && str(item[field]) === want) next.push(item);
        }
      } else next.push(...asArray(v));
    }
    cur = next;
  }
  return cur;
}

function printerColumn(c: Obj): Column {
  const type = (asString(c.type) ?? 'string') as Column['type'];
  const path = asString(c.jsonPath) ?? '';
  return {
    name: asString(c.name) ?? '',
    type,
    ...(c.format !== undefined ? { format: str(c.format) } : {}),
    description: asString(c.description) ?? '',
    priority: typeof c.priority === 'number' ? c.priority : 0,
    cell(o, now) {
      const values = jsonPath(o, path);
      if (values.length === 0) return type === 'date' ? '<unknown>' : null;
      if (type === 'date') return age(values[0], now);
      if (type === 'string')
        return values.map((v) => (typeof v === 'object' ? JSON.stringify(v) : str(v))).join(',');
      return values[0];
    },
  };
}

export function customTypes(crd: KubeObject): ResourceType[] {
  const spec = crdSpec(crd);
  const names = crdNames(crd);
  const group = asString(spec.group) ?? '';
  const plural = asString(names.plural) ?? '';
  const kind = asString(names.kind) ?? '';
  const storageVersion = asString(crdVersions(crd).find((v) => v.storage === true)?.name) ?? '';
  return crdVersions(crd)
    .filter((v) => v.served === true)
    .map((v) => {
      const version = asString(v.name) ?? '';
      const schema: Schema =
        isObj(v.schema) && isObj(v.schema.openAPIV3Schema)
          ? v.schema.openAPIV3Schema
          : { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
      const subresources = isObj(v.subresources) ? v.subresources : {};
      const printer = asArray(v.additionalPrinterColumns).filter(isObj);
      const fieldLabels: Record<string, string> = {};
      for (const f of asArray(v.selectableFields).filter(isObj)) {
        const p = (asString(f.jsonPath) ?? '').replace(/^\./, '');
        if (p !== '') fieldLabels[p] = p;
      }
      const t: ResourceType = {
        group,
        version,
        kind,
        listKind: asString(names.listKind) ?? `${kind}List`,
        plural,
        singular: asString(names.singular) ?? kind.toLowerCase(),
        namespaced: spec.scope === 'Namespaced',
        shortNames: asArray(names.shortNames).map(String),
        categories: asArray(names.categories).map(String),
        storage: `${group}/${plural}`,
        status: isObj(subresources.status),
        keepStatusOnCreate: false,
        patchMeta: undefined,
        generation: true,
        unconditionalUpdate: false,
        returnDeletedObject: true,
        fieldLabels,
        nameRule: dns1123Subdomain,
        toServed: (o) => ({ ...o, apiVersion: `${group}/${version}` }),
        toStorage: (o) => ({ ...o, apiVersion: `${group}/${storageVersion}` }),
        hooks: {
          structural(o, subresource) {
            // Validate against this version's schema; status writes check only status.
            applyDefaults(o, schema);
            const causes = validate(o, schema, '');
            return subresource === 'status'
              ? causes.filter((c) => c.field.startsWith('status'))
              : causes;
          },
        },
        columns: [nameColumn, ...(printer.length > 0 ? printer.map(printerColumn) : [ageColumn])],
        schema,
        crd: crd.metadata.name ?? '',
      };
      return t;
    });
}
