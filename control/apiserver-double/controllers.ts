// The controllers a deletion waits for, run synchronously after each write:
// the namespace controller (empties a terminating namespace, then drops its
// "kubernetes" finalizer) and the CRD cleanup controller (deletes a
// terminating CRD's objects, then drops its cleanup finalizer). Objects with
// finalizers of their own keep either waiting, as in a cluster.
import { clone, isObj, str } from './json.js';
import { CRD_CLEANUP, crdNames, crdSpec } from './kinds/crd.js';
import type { Kinds } from './kinds.js';
import { blocksDeletion, writeContext, type Operations } from './operations.js';
import type { Store } from './store.js';
import type { KubeObject, ResourceType } from './types.js';

const NAMESPACES = 'core/namespaces';
const CRDS = 'apiextensions.k8s.io/customresourcedefinitions';

/** Deletes every object not already being deleted; true when any write happened. */
function deleteAll(ops: Operations, t: ResourceType, objects: KubeObject[]): boolean {
  let wrote = false;
  for (const o of objects) {
    if (o.metadata.deletionTimestamp !== undefined) continue;
    ops.delete(t, o.metadata.namespace, o.metadata.name ?? '', {}, writeContext());
    wrote = true;
  }
  return wrote;
}

/** Removes a finalizer; the object goes when nothing else holds it. */
function finalize(
  store: Store,
  t: ResourceType,
  o: KubeObject,
  edit: (o: KubeObject) => void,
): void {
  const next = clone(o);
  edit(next);
  store.write('MODIFIED', t.storage, next, o);
  if (!blocksDeletion(t, next)) store.write('DELETED', t.storage, next, next);
}

export function namespaceController(store: Store, kinds: Kinds, ops: Operations): () => boolean {
  return () => {
    const nsType = kinds.storageType(NAMESPACES);
    if (nsType === undefined) return false;
    let progress = false;
    for (const ns of store.list(NAMESPACES)) {
      if (ns.metadata.deletionTimestamp === undefined) continue;
      const name = ns.metadata.name ?? '';
      for (const storage of kinds.namespacedStorages()) {
        const t = kinds.storageType(storage);
        if (t !== undefined && deleteAll(ops, t, store.list(storage, name))) progress = true;
      }
      const left = kinds.namespacedStorages().some((s) => store.list(s, name).length > 0);
      const specFinalizers =
        isObj(ns.spec) && Array.isArray(ns.spec.finalizers) ? ns.spec.finalizers : [];
      if (!left && specFinalizers.length > 0) {
        finalize(store, nsType, ns, (o) => {
          if (isObj(o.spec)) o.spec.finalizers = [];
        });
        progress = true;
      }
    }
    return progress;
  };
}

export function crdController(store: Store, kinds: Kinds, ops: Operations): () => boolean {
  return () => {
    const crdType = kinds.storageType(CRDS);
    if (crdType === undefined) return false;
    let progress = false;
    for (const crd of store.list(CRDS)) {
      if (
        crd.metadata.deletionTimestamp === undefined ||
        !(crd.metadata.finalizers ?? []).includes(CRD_CLEANUP)
      )
        continue;
      const storage = `${str(crdSpec(crd).group)}/${str(crdNames(crd).plural)}`;
      const t = kinds.storageType(storage);
      const objects = store.list(storage);
      if (t !== undefined && deleteAll(ops, t, objects)) progress = true;
      if (store.list(storage).length === 0) {
        finalize(store, crdType, crd, (o) => {
          o.metadata.finalizers = (o.metadata.finalizers ?? []).filter((f) => f !== CRD_CLEANUP);
        });
        progress = true;
      }
    }
    return progress;
  };
}

/**
 * Keeps the served custom resource types in step with the stored CRDs;
 * `removed` hears of a resource that is no longer served (its storage key).
 */
export function syncCustomTypes(
  store: Store,
  kinds: Kinds,
  removed: (storage: string) => void,
): void {
  for (const crd of store.list(CRDS)) kinds.setCRD(crd);
  store.subscribe((c) => {
    if (c.storage !== CRDS) return;
    if (c.type !== 'DELETED') kinds.setCRD(c.object);
    else {
      kinds.removeCRD(c.object.metadata.name ?? '');
      removed(`${str(crdSpec(c.object).group)}/${str(crdNames(c.object).plural)}`);
    }
  });
}
