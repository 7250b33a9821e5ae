// Structural schemas of custom resources (apiextensions.k8s.io/v1
// openAPIV3Schema): unknown fields are pruned, defaults applied, then the
// value validated, in the order kube-apiserver does (default, prune,
// validate).
// Approximated: CEL rules (x-kubernetes-validations) are not evaluated;
// formats other than the common string ones are accepted as they come.
import { invalidValue, notSupported, required, type Cause } from './errors.js';
import { isCIDR, isIP } from './ip.js';
import { clone, deepEqual, isObj, str, type Obj } from './json.js';

export type Schema = Obj;

function props(s: Schema): Record<string, Schema> {
  return isObj(s.properties) ? (s.properties as Record<string, Schema>) : {};
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** Sets defaults of missing properties, depth first, like the server's structural defaulting. */
export function applyDefaults(v: unknown, s: Schema): void {
  if (isObj(v)) {
    for (const [k, ps] of Object.entries(props(s))) {
      if (v[k] === undefined && ps.default !== undefined) v[k] = clone(ps.default);
      if (v[k] !== undefined) applyDefaults(v[k], ps);
    }
    if (isObj(s.additionalProperties)) {
      for (const k of Object.keys(v))
        if (!(k in props(s))) applyDefaults(v[k], s.additionalProperties);
    }
  } else if (Array.isArray(v) && isObj(s.items)) {
    for (const item of v) applyDefaults(item, s.items);
  }
}

/** Removes fields the schema does not declare; returns their paths. */
export function prune(v: unknown, s: Schema, path = '', root = true): string[] {
  const unknown: string[] = [];
  if (s['x-kubernetes-preserve-unknown-fields'] === true && !isObj(s.properties)) return unknown;
  if (isObj(v)) {
    const declared = props(s);
    for (const k of Object.keys(v)) {
      // apiVersion, kind and metadata are always kept at a resource's root.
      const resource = root || s['x-kubernetes-embedded-resource'] === true;
      if (resource && ['apiVersion', 'kind', 'metadata'].includes(k)) continue;
      const ps =
        declared[k] ?? (isObj(s.additionalProperties) ? s.additionalProperties : undefined);
      if (ps === undefined) {
        if (s.additionalProperties === true || s['x-kubernetes-preserve-unknown-fields'] === true)
          continue;
        unknown.push(join(path, k));
        delete v[k];
      } else unknown.push(...prune(v[k], ps, join(path, k), false));
    }
  } else if (Array.isArray(v) && isObj(s.items)) {
    v.forEach((item, i) => unknown.push(...prune(item, s.items as Schema, `${path}[${i}]`, false)));
  }
  return unknown;
}

const TYPE_NAMES: Record<string, (v: unknown) => boolean> = {
  object: isObj,
  array: Array.isArray,
  string: (v) => typeof v === 'string',
  integer: (v) => typeof v === 'number' && Number.isInteger(v),
  number: (v) => typeof v === 'number',
  boolean: (v) => typeof v === 'boolean',
};

function formatOk(format: string, v: string): boolean {
  switch (format) {
    case 'ipv4':
      return isIP(v) && !v.includes(':');
    case 'ipv6':
      return isIP(v) && v.includes(':');
    case 'ip':
      return isIP(v);
    case 'cidr':
      return isCIDR(v);
    case 'date-time':
      return !Number.isNaN(Date.parse(v));
    default:
      return true;
  }
}

/** Field causes for a value against its schema (path like "spec.cidrs[0]"). */
export function validate(v: unknown, s: Schema, path: string): Cause[] {
  const causes: Cause[] = [];
  const here = path === '' ? '<root>' : path;
  if (v === null) {
    if (s.nullable !== true)
      causes.push(
        invalidValue(
          here,
          'null',
          `${here} in body must be of type ${str(s.type ?? 'object')}: "null"`,
        ),
      );
    return causes;
  }
  if (s['x-kubernetes-int-or-string'] === true) {
    if (typeof v !== 'string' && !(typeof v === 'number' && Number.isInteger(v))) {
      causes.push(invalidValue(here, v, `${here} in body must be of type integer or string`));
    }
  } else if (
    typeof s.type === 'string' &&
    TYPE_NAMES[s.type] !== undefined &&
    !TYPE_NAMES[s.type]!(v)
  ) {
    causes.push(invalidValue(here, v, `${here} in body must be of type ${s.type}: "${typeof v}"`));
    return causes;
  }
  if (Array.isArray(s.enum) && !s.enum.some((e) => deepEqual(e, v))) {
    causes.push(notSupported(here, v, s.enum.map(String)));
  }
  if (typeof v === 'string') {
    if (typeof s.maxLength === 'number' && v.length > s.maxLength) {
      causes.push({
        reason: 'FieldValueTooLong',
        field: here,
        message: `Too long: may not be more than ${s.maxLength} bytes`,
      });
    }
    if (typeof s.minLength === 'number' && v.length < s.minLength) {
      causes.push(
        invalidValue(here, v, `${here} in body should be at least ${s.minLength} chars long`),
      );
    }
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v)) {
      causes.push(invalidValue(here, v, `${here} in body should match '${s.pattern}'`));
    }
    if (typeof s.format === 'string' && !formatOk(s.format, v)) {
      causes.push(invalidValue(here, v, `${here} in body must be of type ${s.format}: "${v}"`));
    }
  }
  if (typeof v === 'number') {
    if (
      typeof s.minimum === 'number' &&
      (s.exclusiveMinimum === true ? v <= s.minimum : v < s.minimum)
    ) {
      causes.push(
        invalidValue(here, v, `${here} in body should be greater than or equal to ${s.minimum}`),
      );
    }
    if (
      typeof s.maximum === 'number' &&
      (s.exclusiveMaximum === true ? v >= s.maximum : v > s.maximum)
    ) {
      causes.push(
        invalidValue(here, v, `${here} in body should be less than or equal to ${s.maximum}`),
      );
    }
  }
  if (Array.isArray(v)) {
    if (typeof s.maxItems === 'number' && v.length > s.maxItems) {
      causes.push({
        reason: 'FieldValueTooMany',
        field: here,
        message: `Too many: ${v.length}: must have at most ${s.maxItems} items`,
      });
    }
    if (typeof s.minItems === 'number' && v.length < s.minItems) {
      causes.push(
        invalidValue(here, v, `${here} in body should have at least ${s.minItems} items`),
      );
    }
    if (isObj(s.items))
      v.forEach((item, i) => causes.push(...validate(item, s.items as Schema, `${path}[${i}]`)));
  }
  if (isObj(v)) {
    for (const r of Array.isArray(s.required) ? s.required : []) {
      if (v[str(r)] === undefined) causes.push(required(join(path, str(r))));
    }
    for (const [k, ps] of Object.entries(props(s))) {
      if (v[k] !== undefined && !(path === '' && ['apiVersion', 'kind', 'metadata'].includes(k))) {
        causes.push(...validate(v[k], ps, join(path, k)));
      }
    }
    if (isObj(s.additionalProperties)) {
      for (const k of Object.keys(v)) {
        if (!(k in props(s))) causes.push(...validate(v[k], s.additionalProperties, join(path, k)));
      }
    }
    if (typeof s.maxProperties === 'number' && Object.keys(v).length > s.maxProperties) {
      causes.push(
        invalidValue(here, v, `${here} in body should have at most ${s.maxProperties} properties`),
      );
    }
  }
  for (const sub of Array.isArray(s.allOf) ? s.allOf.filter(isObj) : [])
    causes.push(...validate(v, sub, path));
  if (Array.isArray(s.anyOf)) {
    const options = s.anyOf.filter(isObj);
    if (options.length > 0 && !options.some((o) => validate(v, o, path).length === 0)) {
      causes.push(invalidValue(here, v, `${here} in body must match at least one schema in anyOf`));
    }
  }
  if (Array.isArray(s.oneOf)) {
    const matched = s.oneOf.filter(isObj).filter((o) => validate(v, o, path).length === 0).length;
    if (matched !== 1)
      causes.push(
        invalidValue(here, v, `${here} in body must validate one and only one schema (oneOf)`),
      );
  }
  if (isObj(s.not) && validate(v, s.not, path).length === 0) {
    causes.push(invalidValue(here, v, `${here} in body must not validate the schema (not)`));
  }
  return causes;
}

/**
 * What the API server says of `v` against a structural schema with strict
 * field validation: unknown fields, then every validation failure. `v` is
 * left as it was.
 */
export function schemaProblems(v: unknown, s: Schema): string[] {
  const copy = structuredClone(v);
  return [
    ...prune(copy, s).map((f) => `unknown field ${f}`),
    ...validate(copy, s, '').map((c) => `${c.field}: ${c.message}`),
  ];
}
