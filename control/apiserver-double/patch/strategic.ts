// Strategic merge patch as k8s.io/apimachinery/pkg/util/strategicpatch
// applies it on the server: lists tagged patchStrategy=merge merge by their
// patchMergeKey (or as a set for lists of strings), every other list replaces,
// and the directives kubectl's three-way diff emits are honoured: $patch
// (replace/delete/merge), $retainKeys, $setElementOrder/<field> and
// $deleteFromPrimitiveList/<field>.
// Approximated: the interleaving of server-only list items with
// $setElementOrder follows the real mergeSortedSlice; errors use the real
// wording only for the common cases.
import { badRequest } from '../errors.js';
import { clone, deepEqual, isObj, type Obj } from '../json.js';

export interface PatchMeta {
  fields?: Record<string, PatchMeta>;
  /** Lists: merge by mergeKey (or as a set); retainKeys applies to maps. */
  strategy?: 'merge' | 'retainKeys' | 'merge,retainKeys';
  mergeKey?: string;
  /** Meta of each list item. */
  items?: PatchMeta;
}

/**
 * Builds a meta tree from paths, e.g. {"spec.ports": {strategy: 'merge',
 * mergeKey: 'port'}, "spec.containers[].env": {...}}.
 */
export function patchMeta(paths: Record<string, Omit<PatchMeta, 'fields' | 'items'>>): PatchMeta {
  const root: PatchMeta = {};
  for (const [path, leaf] of Object.entries(paths)) {
    let node = root;
    for (const part of path.split('.')) {
      const isList = part.endsWith('[]');
      const name = isList ? part.slice(0, -2) : part;
      node.fields ??= {};
      node = node.fields[name] ??= {};
      if (isList) node = node.items ??= {};
    }
    Object.assign(node, leaf);
  }
  return root;
}

const ORDER = '$setElementOrder/';
const DELETE_PRIMITIVE = '$deleteFromPrimitiveList/';

function merges(meta: PatchMeta | undefined): boolean {
  return meta?.strategy?.startsWith('merge') ?? false;
}

function keyOf(item: unknown, mergeKey: string | undefined): unknown {
  return mergeKey !== undefined && isObj(item) ? item[mergeKey] : item;
}

function indexIn(list: unknown[], item: unknown, mergeKey: string | undefined): number {
  const k = keyOf(item, mergeKey);
  return list.findIndex((x) => deepEqual(keyOf(x, mergeKey), k));
}

/** The real mergeSortedSlice: interleave server-only items with the ordered patch items. */
function mergeSorted(
  left: unknown[],
  right: unknown[],
  serverOrder: unknown[],
  mergeKey: string | undefined,
): unknown[] {
  const out: unknown[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    if (i >= left.length) out.push(right[j++]);
    else if (j >= right.length) out.push(left[i++]);
    else {
      const li = indexIn(serverOrder, left[i], mergeKey);
      const ri = indexIn(serverOrder, right[j], mergeKey);
      if (li >= 0 && ri >= 0 && li < ri) out.push(left[i++]);
      else out.push(right[j++]);
    }
  }
  return out;
}

function applyOrder(
  list: unknown[],
  order: unknown[],
  original: unknown[],
  mergeKey: string | undefined,
): unknown[] {
  const inOrder = list.filter((x) => indexIn(order, x, mergeKey) >= 0);
  inOrder.sort((a, b) => indexIn(order, a, mergeKey) - indexIn(order, b, mergeKey));
  const serverOnly = list.filter((x) => indexIn(order, x, mergeKey) < 0);
  return mergeSorted(serverOnly, inOrder, original, mergeKey);
}

function mergeList(
  original: unknown[],
  patch: unknown[],
  meta: PatchMeta | undefined,
  field: string,
): unknown[] {
  if (!merges(meta)) return patch.map((v) => (isObj(v) ? mergeMap({}, v, meta?.items) : clone(v)));
  const mergeKey = meta?.mergeKey;
  if (patch.some((x) => isObj(x) && x.$patch === 'replace')) {
    return patch
      .filter((x) => !(isObj(x) && x.$patch === 'replace'))
      .map((v) => (isObj(v) ? mergeMap({}, v, meta?.items) : clone(v)));
  }
  const out = clone(original);
  for (const item of patch) {
    if (!isObj(item)) {
      // A set of scalars (finalizers, podCIDRs): union, keeping the original order.
      if (!out.some((x) => deepEqual(x, item))) out.push(clone(item));
      continue;
    }
    if (mergeKey === undefined) throw badRequest(`no merge key for the list ${field}`);
    if (!Object.hasOwn(item, mergeKey)) {
      throw badRequest(
        `map: ${JSON.stringify(item)} does not contain declared merge key: ${mergeKey}`,
      );
    }
    if (item.$patch === 'delete') {
      for (let i = out.length - 1; i >= 0; i--) {
        if (deepEqual(keyOf(out[i], mergeKey), item[mergeKey])) out.splice(i, 1);
      }
      continue;
    }
    const at = indexIn(out, item, mergeKey);
    if (at >= 0) out[at] = mergeMap(isObj(out[at]) ? out[at] : {}, item, meta?.items);
    else out.push(mergeMap({}, item, meta?.items));
  }
  return out;
}

export function mergeMap(original: Obj, patch: Obj, meta: PatchMeta | undefined): Obj {
  const directive = patch.$patch;
  if (directive === 'replace') {
    const { $patch: _, ...rest } = patch;
    return mergeMap({}, rest, meta);
  }
  if (directive === 'delete') return {};
  if (directive !== undefined && directive !== 'merge') {
    throw badRequest(`Unknown patch directive: ${JSON.stringify(directive)}`);
  }
  const out = clone(original);
  const retain = patch.$retainKeys;
  if (retain !== undefined) {
    if (!Array.isArray(retain)) throw badRequest('$retainKeys must be a list of strings');
    for (const k of Object.keys(out)) if (!retain.includes(k)) delete out[k];
  }
  for (const [k, v] of Object.entries(patch)) {
    if (!k.startsWith(DELETE_PRIMITIVE)) continue;
    const field = k.slice(DELETE_PRIMITIVE.length);
    if (!Array.isArray(v)) throw badRequest('$deleteFromPrimitiveList must be a list');
    const cur = out[field];
    if (Array.isArray(cur)) out[field] = cur.filter((x) => !v.some((d) => deepEqual(d, x)));
  }
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) continue;
    const fm = meta?.fields?.[k];
    const cur = out[k];
    if (v === null) delete out[k];
    else if (isObj(v)) out[k] = mergeMap(isObj(cur) ? cur : {}, v, fm);
    else if (Array.isArray(v)) out[k] = mergeList(Array.isArray(cur) ? cur : [], v, fm, k);
    else out[k] = v;
  }
  for (const [k, v] of Object.entries(patch)) {
    if (!k.startsWith(ORDER)) continue;
    const field = k.slice(ORDER.length);
    if (!Array.isArray(v)) throw badRequest('$setElementOrder must be a list');
    const fm = meta?.fields?.[field];
    const cur = out[field];
    const before = original[field];
    if (Array.isArray(cur) && merges(fm)) {
      out[field] = applyOrder(cur, v, Array.isArray(before) ? before : [], fm?.mergeKey);
    }
  }
  return out;
}

export function strategicMergePatch(original: Obj, patch: unknown, meta: PatchMeta): Obj {
  if (!isObj(patch)) throw badRequest('strategic merge patch must be a JSON object');
  return mergeMap(original, patch, meta);
}
