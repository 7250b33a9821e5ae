// The verbs with kube-apiserver's semantics, on stored objects: create
// (generateName, uid, timestamps, AlreadyExists), update with optimistic
// concurrency, the status subresource split, patches, finalizer-aware
// delete, list with selectors and paging. Every write goes through the
// kind's hooks (defaults, schema, validation, allocation) and is followed
// by the controllers that finish namespace and CRD deletions.
import { randomUUID } from 'node:crypto';

import {
  ApiError,
  STALE,
  alreadyExists,
  badRequest,
  conflict,
  forbidden,
  forbiddenField,
  invalid,
  invalidValue,
  notFound,
  required,
  type Cause,
} from './errors.js';
import { clone, deepEqual, getPath, isObj, str, type Obj } from './json.js';
import { labelValue, qualifiedName, randomSuffix } from './names.js';
import { jsonPatch } from './patch/json-patch.js';
import { mergePatch } from './patch/merge.js';
import { strategicMergePatch } from './patch/strategic.js';
import { prune, validate } from './schema.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import type { Store } from './store.js';
import { now, seconds } from './time.js';
import { apiVersionOf, type ClusterView, type KubeObject, type ResourceType } from './types.js';

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

export interface WriteContext {
  dryRun: boolean;
  fieldValidation: FieldValidation;
  /** Warnings for the response's Warning headers. */
  warnings: string[];
}

export function writeContext(partial: Partial<WriteContext> = {}): WriteContext {
  return { dryRun: false, fieldValidation: 'Warn', warnings: [], ...partial };
}

/** Programmatic writes (ApiServer.apply): status kept, no precondition. */
interface Internal {
  keepStatus?: boolean;
  unconditional?: boolean;
}

export interface ListOptions {
  labelSelector?: string | null;
  fieldSelector?: string | null;
  limit?: number;
  continue?: string | null;
}

export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

export interface DeleteOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
}

export type PatchType = 'json' | 'merge' | 'strategic';

export const PATCH_TYPES: Record<string, PatchType> = {
  'application/json-patch+json': 'json',
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'strategic',
};

const SERVER_META = [
  'uid',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'generation',
];

/** Built-in conditions carry metav1.Time (seconds); custom resources keep their strings. */
function conditionTimes(o: KubeObject): void {
  const conditions = isObj(o.status) ? o.status.conditions : undefined;
  if (!Array.isArray(conditions)) return;
  for (const c of conditions) {
    if (!isObj(c)) continue;
    for (const k of [
      'lastTransitionTime',
      'lastHeartbeatTime',
      'lastProbeTime',
      'lastUpdateTime',
    ]) {
      if (c[k] !== undefined && c[k] !== null) c[k] = seconds(c[k]);
    }
  }
}

function dropNulls(o: Obj): void {
  for (const [k, v] of Object.entries(o)) {
    if (v === null) delete o[k];
    else if (isObj(v)) dropNulls(v);
    else if (Array.isArray(v)) for (const item of v) if (isObj(item)) dropNulls(item);
  }
}

function nsKey(t: ResourceType, namespace: string | undefined): string {
  return t.namespaced ? (namespace ?? '') : '';
}

/** Finalizers (and a namespace's spec.finalizers) that hold back a deletion. */
export function blocksDeletion(t: ResourceType, o: KubeObject): boolean {
  if ((o.metadata.finalizers ?? []).length > 0) return true;
  return (
    t.kind === 'Namespace' &&
    t.group === '' &&
    isObj(o.spec) &&
    Array.isArray(o.spec.finalizers) &&
    o.spec.finalizers.length > 0
  );
}

function sameContent(a: KubeObject, b: KubeObject): boolean {
  const strip = (o: KubeObject): KubeObject => {
    const c = clone(o);
    delete c.metadata.resourceVersion;
    delete c.metadata.managedFields;
    return c;
  };
  return deepEqual(strip(a), strip(b));
}

function specChanged(a: KubeObject, b: KubeObject, statusSeparate: boolean): boolean {
  const strip = (o: KubeObject): Obj => {
    const { metadata: _m, status, ...rest } = o;
    return statusSeparate ? rest : { ...rest, status };
  };
  return !deepEqual(strip(a), strip(b));
}

export class Operations {
  private settling = false;
  /** Runs after each write until nothing changes (namespace and CRD cleanup). */
  controllers: (() => boolean)[] = [];

  constructor(
    private readonly store: Store,
    private readonly cluster: ClusterView,
  ) {}

  served(t: ResourceType, stored: KubeObject): KubeObject {
    const o = t.toServed ? t.toServed(clone(stored)) : clone(stored);
    const { apiVersion: _a, kind: _k, metadata, ...rest } = o;
    return { apiVersion: apiVersionOf(t), kind: t.kind, metadata, ...rest };
  }

  private toStorage(t: ResourceType, body: Obj): KubeObject {
    const o = clone(body) as KubeObject;
    if (!isObj(o.metadata)) o.metadata = {};
    const stored = t.toStorage ? t.toStorage(o) : o;
    return { ...stored, apiVersion: stored.apiVersion ?? apiVersionOf(t), kind: t.kind };
  }

  private checkTypeMeta(t: ResourceType, body: unknown): asserts body is Obj {
    if (!isObj(body)) throw badRequest('the body of the request must be a JSON object');
    if (body.apiVersion !== undefined && body.apiVersion !== apiVersionOf(t)) {
      throw badRequest(
        `the API version in the data (${str(body.apiVersion)}) does not match the expected API version (${apiVersionOf(t)})`,
      );
    }
    if (body.kind !== undefined && body.kind !== t.kind) {
      throw badRequest(
        `the kind in the data (${str(body.kind)}) does not match the expected kind (${t.kind})`,
      );
    }
    if (body.metadata !== undefined && !isObj(body.metadata))
      throw badRequest('metadata must be an object');
  }

  private settle(): void {
    if (this.settling) return;
    this.settling = true;
    try {
      for (let i = 0; i < 100 && this.controllers.some((c) => c()); i++);
    } finally {
      this.settling = false;
    }
  }

  private checkNamespace(t: ResourceType, namespace: string | undefined, name: string): void {
    if (!t.namespaced) return;
    const ns = this.store.get('core/namespaces', '', namespace ?? '');
    if (ns === undefined) throw notFound('namespaces', '', namespace ?? '');
    if (ns.metadata.deletionTimestamp !== undefined) {
      throw forbidden(
        `${t.plural} "${name}" is forbidden: unable to create new content in namespace ${namespace ?? ''} because it is being terminated`,
      );
    }
  }

  private metaCauses(t: ResourceType, o: KubeObject): Cause[] {
    const causes: Cause[] = [];
    const name = o.metadata.name ?? '';
    if (name === '') causes.push(required('metadata.name', 'name or generateName is required'));
    else for (const e of t.nameRule(name)) causes.push(invalidValue('metadata.name', name, e));
    for (const [k, v] of Object.entries(o.metadata.labels ?? {})) {
      for (const e of qualifiedName(k)) causes.push(invalidValue('metadata.labels', k, e));
      for (const e of labelValue(str(v))) causes.push(invalidValue('metadata.labels', v, e));
    }
    for (const k of Object.keys(o.metadata.annotations ?? {})) {
      for (const e of qualifiedName(k.toLowerCase()))
        causes.push(invalidValue('metadata.annotations', k, e));
    }
    (o.metadata.finalizers ?? []).forEach((f, i) => {
      for (const e of qualifiedName(str(f)))
        causes.push(invalidValue(`metadata.finalizers[${i}]`, f, e));
    });
    return causes;
  }

  /**
   * What decoding a request body does: fields the schema does not declare are
   * dropped (refused under fieldValidation=Strict, warned under Warn, the
   * default); built-in objects also lose nulls and must have the JSON types
   * their Go types decode (otherwise 400, as a decode error is).
   */
  private decode(t: ResourceType, body: Obj, ctx: WriteContext): Obj {
    const o = clone(body);
    const builtin = t.crd === undefined;
    if (builtin) dropNulls(o);
    const unknown = prune(o, t.schema).map((u) => `unknown field "${u}"`);
    const prefix = `${t.kind} in version "${t.version}" cannot be handled as a ${t.kind}`;
    if (unknown.length > 0 && ctx.fieldValidation === 'Strict') {
      throw badRequest(`${prefix}: strict decoding error: ${unknown.join(', ')}`);
    }
    if (ctx.fieldValidation === 'Warn') ctx.warnings.push(...unknown);
    const wrong = builtin ? validate(o, t.schema, '')[0] : undefined;
    if (wrong !== undefined) throw badRequest(`${prefix}: ${wrong.field}: ${wrong.message}`);
    return o;
  }

  /** Defaults, schema, validation and allocation: what admission and the registry do. */
  private admit(
    t: ResourceType,
    o: KubeObject,
    old: KubeObject | undefined,
    sub: 'status' | undefined,
  ): void {
    t.hooks.defaults?.(o, old);
    if (t.crd === undefined) conditionTimes(o);
    const causes = this.metaCauses(t, o);
    causes.push(...(t.hooks.structural?.(o, sub) ?? []));
    causes.push(...(t.hooks.validate?.(o, old) ?? []));
    causes.push(...(t.hooks.validateStatus?.(o) ?? []));
    if (causes.length > 0) throw invalid(t.kind, t.group, o.metadata.name ?? '', causes);
    t.hooks.allocate?.(o, old, this.cluster);
  }

  getStored(t: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const o = this.store.get(t.storage, nsKey(t, namespace), name);
    if (o === undefined) throw notFound(t.plural, t.group, name);
    return o;
  }

  get(t: ResourceType, namespace: string | undefined, name: string): KubeObject {
    return this.served(t, this.getStored(t, namespace, name));
  }

  /** Matching stored objects (not converted), for lists, watches and tables. */
  matcher(
    t: ResourceType,
    namespace: string | undefined,
    opts: ListOptions,
  ): (o: KubeObject) => boolean {
    const labels = parseLabelSelector(opts.labelSelector ?? null);
    const fields = parseFieldSelector(opts.fieldSelector ?? null).map((r) => {
      const path =
        r.field === 'metadata.name' || r.field === 'metadata.namespace'
          ? r.field
          : t.fieldLabels[r.field];
      if (path === undefined) throw badRequest(`field label not supported: ${r.field}`);
      return { ...r, path };
    });
    return (o) => {
      if (namespace !== undefined && t.namespaced && o.metadata.namespace !== namespace)
        return false;
      if (!labels(o.metadata.labels ?? {})) return false;
      return fields.every((f) => {
        const v = getPath(o, f.path);
        const s = v === undefined || v === null ? '' : str(v);
        return (s === f.value) !== f.negate;
      });
    };
  }

  listStored(
    t: ResourceType,
    namespace: string | undefined,
    opts: ListOptions,
  ): {
    items: KubeObject[];
    resourceVersion: string;
    continue?: string;
    remainingItemCount?: number;
  } {
    const match = this.matcher(t, namespace, opts);
    const revision = str(this.store.revision);
    let items = this.store.list(t.storage, t.namespaced ? namespace : undefined).filter(match);
    if (opts.continue) {
      let after: string;
      try {
        after = (
          JSON.parse(Buffer.from(opts.continue, 'base64url').toString()) as { start: string }
        ).start;
      } catch {
        throw badRequest('continue key is not valid: illegal base64 data');
      }
      items = items.filter((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}` > after);
    }
    const limit = opts.limit ?? 0;
    if (limit > 0 && items.length > limit) {
      const page = items.slice(0, limit);
      const last = page[page.length - 1]!;
      const token = Buffer.from(
        JSON.stringify({
          rv: revision,
          start: `${last.metadata.namespace ?? ''}/${last.metadata.name ?? ''}`,
        }),
      ).toString('base64url');
      return {
        items: page,
        resourceVersion: revision,
        continue: token,
        remainingItemCount: items.length - limit,
      };
    }
    return { items, resourceVersion: revision };
  }

  list(t: ResourceType, namespace: string | undefined, opts: ListOptions): ListResult {
    const r = this.listStored(t, namespace, opts);
    return { ...r, items: r.items.map((o) => this.served(t, o)) };
  }

  create(
    t: ResourceType,
    namespace: string | undefined,
    body: unknown,
    ctx: WriteContext,
    internal: Internal = {},
  ): KubeObject {
    this.checkTypeMeta(t, body);
    const o = this.toStorage(t, this.decode(t, body, ctx));
    const m = o.metadata;
    if (t.namespaced) {
      if (m.namespace !== undefined && m.namespace !== '' && m.namespace !== namespace) {
        throw badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      m.namespace = namespace ?? '';
    } else delete m.namespace;
    if (m.resourceVersion !== undefined && m.resourceVersion !== '' && !internal.unconditional) {
      throw new ApiError(
        500,
        'InternalError',
        'Internal error occurred: resourceVersion should not be set on objects to be created',
      );
    }
    delete m.resourceVersion;
    if ((m.name === undefined || m.name === '') && m.generateName)
      m.name = `${m.generateName.slice(0, 58)}${randomSuffix()}`;
    if (m.name === undefined || m.name === '') {
      throw invalid(t.kind, t.group, '', [
        required('metadata.name', 'name or generateName is required'),
      ]);
    }
    this.checkNamespace(t, m.namespace, m.name);
    for (const k of SERVER_META) delete m[k];
    delete m.managedFields;
    delete m.selfLink;
    m.uid = randomUUID();
    m.creationTimestamp = now();
    if (t.generation) m.generation = 1;
    if (t.status && !t.keepStatusOnCreate && !(internal.keepStatus && o.status !== undefined)) {
      const s = t.hooks.initialStatus?.(o);
      if (s !== undefined) o.status = s;
      else delete o.status;
    }
    if (this.store.get(t.storage, nsKey(t, namespace), m.name) !== undefined)
      throw alreadyExists(t.plural, t.group, m.name);
    this.admit(t, o, undefined, undefined);
    if (ctx.dryRun) return this.served(t, o);
    const stored = this.store.write('ADDED', t.storage, o);
    this.settle();
    return this.served(t, stored);
  }

  update(
    t: ResourceType,
    namespace: string | undefined,
    name: string,
    body: unknown,
    sub: 'status' | undefined,
    ctx: WriteContext,
    internal: Internal = {},
  ): KubeObject {
    const old = this.store.get(t.storage, nsKey(t, namespace), name);
    if (old === undefined) throw notFound(t.plural, t.group, name);
    this.checkTypeMeta(t, body);
    const incoming = this.toStorage(t, this.decode(t, body, ctx));
    const m = incoming.metadata;
    if (m.name !== undefined && m.name !== name) {
      throw badRequest(
        `the name of the object (${m.name}) does not match the name on the URL (${name})`,
      );
    }
    if (
      t.namespaced &&
      m.namespace !== undefined &&
      m.namespace !== '' &&
      m.namespace !== namespace
    ) {
      throw badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    if (m.resourceVersion !== undefined && m.resourceVersion !== '' && !internal.unconditional) {
      if (m.resourceVersion !== old.metadata.resourceVersion)
        throw conflict(t.plural, t.group, name, STALE);
    } else if (!t.unconditionalUpdate && !internal.unconditional) {
      throw invalid(t.kind, t.group, name, [
        {
          reason: 'FieldValueInvalid',
          field: 'metadata.resourceVersion',
          message: 'Invalid value: 0x0: must be specified for an update',
        },
      ]);
    }
    if (m.uid !== undefined && m.uid !== '' && m.uid !== old.metadata.uid) {
      throw conflict(
        t.plural,
        t.group,
        name,
        `Precondition failed: UID in precondition: ${m.uid}, UID in object meta: ${old.metadata.uid ?? ''}`,
      );
    }
    let next: KubeObject;
    if (sub === 'status') {
      // Status writes change status only (metav1.ResetObjectMetaForStatus).
      next = clone(old);
      if (incoming.status !== undefined) next.status = incoming.status;
      else delete next.status;
    } else {
      next = incoming;
      next.metadata.name = name;
      if (t.namespaced) next.metadata.namespace = old.metadata.namespace;
      else delete next.metadata.namespace;
      for (const k of SERVER_META) {
        if (old.metadata[k] !== undefined) next.metadata[k] = old.metadata[k];
        else delete next.metadata[k];
      }
      if (t.status && !(internal.keepStatus && incoming.status !== undefined)) {
        if (old.status !== undefined) next.status = old.status;
        else delete next.status;
      }
      if (old.metadata.deletionTimestamp !== undefined) {
        const before = new Set(old.metadata.finalizers ?? []);
        if ((next.metadata.finalizers ?? []).some((f) => !before.has(f))) {
          throw invalid(t.kind, t.group, name, [
            forbiddenField(
              'metadata.finalizers',
              'no new finalizers can be added if the object is being deleted',
            ),
          ]);
        }
      }
    }
    this.admit(t, next, old, sub);
    if (t.generation) {
      const gen = old.metadata.generation ?? 1;
      next.metadata.generation = specChanged(old, next, t.status) ? gen + 1 : gen;
    }
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    if (sameContent(old, next)) return this.served(t, old);
    if (ctx.dryRun) return this.served(t, next);
    let stored: KubeObject;
    if (next.metadata.deletionTimestamp !== undefined && !blocksDeletion(t, next)) {
      stored = this.store.write('DELETED', t.storage, next, old);
    } else stored = this.store.write('MODIFIED', t.storage, next, old);
    this.settle();
    return this.served(t, stored);
  }

  patch(
    t: ResourceType,
    namespace: string | undefined,
    name: string,
    type: PatchType,
    patch: unknown,
    sub: 'status' | undefined,
    ctx: WriteContext,
  ): KubeObject {
    const current = this.get(t, namespace, name);
    let patched: unknown;
    switch (type) {
      case 'json':
        patched = jsonPatch(current, patch);
        break;
      case 'merge':
        patched = mergePatch(current, patch);
        break;
      case 'strategic':
        if (t.patchMeta === undefined) {
          throw new ApiError(
            415,
            'UnsupportedMediaType',
            'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/apply-patch+cbor',
          );
        }
        patched = strategicMergePatch(current, patch, t.patchMeta);
        break;
    }
    if (!isObj(patched) || !isObj(patched.metadata))
      throw badRequest('the patch removed the object or its metadata');
    // A resourceVersion the patch itself sets is a precondition; otherwise the
    // current one carries through and the write is unconditional.
    return this.update(t, namespace, name, patched, sub, ctx, {
      unconditional: patched.metadata.resourceVersion === undefined,
    });
  }

  delete(
    t: ResourceType,
    namespace: string | undefined,
    name: string,
    opts: DeleteOptions,
    ctx: WriteContext,
  ): { object: KubeObject; deleted: boolean } {
    const old = this.store.get(t.storage, nsKey(t, namespace), name);
    if (old === undefined) throw notFound(t.plural, t.group, name);
    const pre = opts.preconditions ?? {};
    if (pre.uid !== undefined && pre.uid !== old.metadata.uid) {
      throw conflict(
        t.plural,
        t.group,
        name,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid ?? ''}`,
      );
    }
    if (pre.resourceVersion !== undefined && pre.resourceVersion !== old.metadata.resourceVersion) {
      throw conflict(
        t.plural,
        t.group,
        name,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion ?? ''}`,
      );
    }
    if (blocksDeletion(t, old)) {
      if (old.metadata.deletionTimestamp !== undefined)
        return { object: this.served(t, old), deleted: false };
      const next = clone(old);
      next.metadata.deletionTimestamp = now();
      next.metadata.deletionGracePeriodSeconds = 0;
      if (t.kind === 'Namespace' && t.group === '')
        next.status = { ...(isObj(next.status) ? next.status : {}), phase: 'Terminating' };
      if (ctx.dryRun) return { object: this.served(t, next), deleted: false };
      const stored = this.store.write('MODIFIED', t.storage, next, old);
      this.settle();
      return { object: this.served(t, stored), deleted: false };
    }
    if (ctx.dryRun) return { object: this.served(t, old), deleted: true };
    const stored = this.store.write('DELETED', t.storage, old, old);
    this.settle();
    return { object: this.served(t, stored), deleted: true };
  }

  deleteCollection(
    t: ResourceType,
    namespace: string | undefined,
    list: ListOptions,
    opts: DeleteOptions,
    ctx: WriteContext,
  ): KubeObject[] {
    const { items } = this.listStored(t, namespace, { ...list, limit: 0, continue: null });
    return items.map(
      (o) => this.delete(t, o.metadata.namespace, o.metadata.name ?? '', opts, ctx).object,
    );
  }

  /** Create or replace without HTTP: status is taken from the object, resourceVersion ignored. */
  apply(t: ResourceType, obj: KubeObject): KubeObject {
    const namespace = t.namespaced ? (obj.metadata.namespace ?? 'default') : undefined;
    const body = clone(obj);
    delete body.metadata.resourceVersion;
    const existing = this.store.get(t.storage, nsKey(t, namespace), obj.metadata.name ?? '');
    if (existing === undefined)
      return this.create(t, namespace, body, writeContext(), {
        keepStatus: true,
        unconditional: true,
      });
    const ctx = writeContext();
    const updated = this.update(t, namespace, obj.metadata.name ?? '', body, undefined, ctx, {
      keepStatus: true,
      unconditional: true,
    });
    return updated;
  }
}
