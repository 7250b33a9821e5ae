// One HTTP request: routing, the request log and injected faults, then the
// non-resource endpoints (version, discovery, OpenAPI, health) or a verb on
// a resource, with content negotiation for Tables and metadata-only lists.
import type { IncomingMessage, ServerResponse } from 'node:http';

import {
  aggregatedDiscovery,
  apiGroupDoc,
  apiGroupList,
  apiResourceList,
  apiVersions,
  versionInfo,
} from './discovery.js';
import {
  ApiError,
  badRequest,
  invalid,
  methodNotAllowed,
  pathNotFound,
  unsupportedMediaType,
} from './errors.js';
import type { Faults, RequestRecord } from './faults.js';
import { parseBody, readBody, send, sendError } from './http.js';
import { asString, isObj, type Obj } from './json.js';
import type { Kinds } from './kinds.js';
import { openAPIDocument, openAPIIndex } from './openapi.js';
import {
  PATCH_TYPES,
  writeContext,
  type FieldValidation,
  type ListOptions,
  type Operations,
} from './operations.js';
import { requestInfo, type RequestInfo } from './router.js';
import type { Store } from './store.js';
import { contentType, partial, partialList, rendering, table, type Rendering } from './table.js';
import { apiVersionOf, type KubeObject, type ResourceType } from './types.js';
import type { Watches } from './watch.js';

export interface ServerParts {
  kinds: Kinds;
  ops: Operations;
  store: Store;
  watches: Watches;
  faults: Faults;
  log: RequestRecord[];
  address(): string;
}

type ResourceInfo = Extract<RequestInfo, { isResource: true }>;

/** The aggregated discovery version the Accept header prefers, if any. */
function aggregatedVersion(accept: string | undefined): string | undefined {
  for (const entry of (accept ?? '').split(',')) {
    const params = entry.split(';').map((s) => s.trim());
    if (params[0] !== 'application/json') continue;
    if (!params.includes('as=APIGroupDiscoveryList')) return undefined;
    if (!params.includes('g=apidiscovery.k8s.io')) continue;
    if (params.includes('v=v2')) return 'v2';
    if (params.includes('v=v2beta1')) return 'v2beta1';
  }
  return undefined;
}

function nonResource(
  parts: ServerParts,
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
  record: RequestRecord,
): void {
  if (req.method !== 'GET') throw methodNotAllowed();
  const clean = path.replace(/\/+$/, '') || '/';
  if (clean === '/healthz' || clean === '/livez' || clean === '/readyz') {
    send(res, record, 200, 'ok', 'text/plain; charset=utf-8');
    return;
  }
  if (clean === '/version') return send(res, record, 200, versionInfo());
  if (clean === '/api' || clean === '/apis') {
    const v = aggregatedVersion(req.headers.accept);
    const core = clean === '/api';
    if (v !== undefined) {
      const body = aggregatedDiscovery(parts.kinds, core, `apidiscovery.k8s.io/${v}`);
      res.setHeader('Vary', 'Accept');
      return send(
        res,
        record,
        200,
        body,
        `application/json;g=apidiscovery.k8s.io;v=${v};as=APIGroupDiscoveryList`,
      );
    }
    return send(res, record, 200, core ? apiVersions(parts.address()) : apiGroupList(parts.kinds));
  }
  const segs = clean.split('/').filter((s) => s !== '');
  let doc: Obj | undefined;
  if (segs[0] === 'api' && segs.length === 2) doc = apiResourceList(parts.kinds, '', segs[1] ?? '');
  else if (segs[0] === 'apis' && segs.length === 2) doc = apiGroupDoc(parts.kinds, segs[1] ?? '');
  else if (segs[0] === 'apis' && segs.length === 3)
    doc = apiResourceList(parts.kinds, segs[1] ?? '', segs[2] ?? '');
  else if (clean === '/openapi/v3') doc = openAPIIndex(parts.kinds);
  else if (segs[0] === 'openapi' && segs[1] === 'v3')
    doc = openAPIDocument(parts.kinds, segs.slice(2).join('/'));
  if (doc === undefined) throw pathNotFound();
  send(res, record, 200, doc);
}

function fieldValidation(v: string | null): FieldValidation {
  if (v === null || v === '') return 'Warn';
  if (v === 'Strict' || v === 'Warn' || v === 'Ignore') return v;
  throw badRequest(`fieldValidation parameter unsupported: ${v}`);
}

function listOptions(q: URLSearchParams): ListOptions {
  const limit = q.get('limit');
  return {
    labelSelector: q.get('labelSelector'),
    fieldSelector: q.get('fieldSelector'),
    limit: limit === null ? 0 : Number(limit),
    continue: q.get('continue'),
  };
}

function listMeta(r: {
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}): Obj {
  return {
    resourceVersion: r.resourceVersion,
    ...(r.continue !== undefined
      ? { continue: r.continue, remainingItemCount: r.remainingItemCount }
      : {}),
  };
}

function respondObjects(
  parts: ServerParts,
  t: ResourceType,
  r: Rendering,
  q: URLSearchParams,
  stored: KubeObject[],
  meta: Obj,
  single: boolean,
): { body: Obj; type: string } {
  const serve = (o: KubeObject): KubeObject => parts.ops.served(t, o);
  if (r.as === 'Table') {
    return {
      body: table(t, r.version, stored, meta, q.get('includeObject') ?? 'Metadata', serve),
      type: contentType(r, !single),
    };
  }
  if (r.as === 'PartialObjectMetadata') {
    const body = single
      ? partial(r.version, serve(stored[0]!))
      : partialList(r.version, stored.map(serve), meta);
    return { body, type: contentType(r, !single) };
  }
  if (single) return { body: serve(stored[0]!), type: 'application/json' };
  return {
    body: {
      kind: t.listKind,
      apiVersion: apiVersionOf(t),
      metadata: meta,
      items: stored.map(serve),
    },
    type: 'application/json',
  };
}

function resourceRequest(
  parts: ServerParts,
  info: ResourceInfo,
  url: URL,
  body: Buffer,
  req: IncomingMessage,
  res: ServerResponse,
  record: RequestRecord,
): void {
  const t = parts.kinds.find(info.group, info.version, info.plural);
  if (t === undefined) throw pathNotFound();
  Object.assign(record, { kind: t.kind });
  const { verb, namespace, name, subresource } = info;
  const collectionWide = verb === 'list' || verb === 'watch';
  if (t.namespaced && namespace === undefined && !collectionWide) throw pathNotFound();
  if (!t.namespaced && namespace !== undefined) throw pathNotFound();
  if (subresource !== undefined) {
    if (subresource !== 'status' || !t.status) throw pathNotFound();
    if (!['get', 'update', 'patch'].includes(verb)) throw methodNotAllowed();
  }
  const fault = parts.faults.take({
    verb,
    resource: t.plural,
    kind: t.kind,
    ...(subresource !== undefined ? { subresource } : {}),
  });
  if (fault !== undefined) throw fault;

  const q = url.searchParams;
  const r = rendering(req.headers.accept);
  if (r === 'unacceptable') {
    throw new ApiError(
      406,
      'NotAcceptable',
      `only the following media types are accepted: application/json, application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io`,
    );
  }
  const dryRun = q.getAll('dryRun').includes('All');
  const ctx = writeContext({ dryRun, fieldValidation: fieldValidation(q.get('fieldValidation')) });
  const sub = subresource === 'status' ? 'status' : undefined;
  const reqType = req.headers['content-type'];

  switch (verb) {
    case 'get': {
      const stored = parts.ops.getStored(t, namespace, name ?? '');
      const out = respondObjects(
        parts,
        t,
        r,
        q,
        [stored],
        { resourceVersion: stored.metadata.resourceVersion },
        true,
      );
      return send(res, record, 200, out.body, out.type);
    }
    case 'list': {
      const result = parts.ops.listStored(t, namespace, listOptions(q));
      const out = respondObjects(parts, t, r, q, result.items, listMeta(result), false);
      return send(res, record, 200, out.body, out.type);
    }
    case 'watch': {
      const opts = listOptions(q);
      if (name !== undefined) {
        opts.fieldSelector = [opts.fieldSelector, `metadata.name=${name}`]
          .filter((x) => x)
          .join(',');
      }
      const rv = q.get('resourceVersion') ?? undefined;
      if (rv !== undefined && rv !== '' && !/^\d+$/.test(rv))
        throw badRequest(`invalid resource version: ${rv}`);
      const sendInitialEvents = q.get('sendInitialEvents') === 'true';
      const allowBookmarks =
        q.get('allowWatchBookmarks') === 'true' || q.get('allowWatchBookmarks') === '1';
      if (
        sendInitialEvents &&
        (q.get('resourceVersionMatch') !== 'NotOlderThan' || !allowBookmarks)
      ) {
        throw invalid(t.kind, t.group, '', [
          {
            reason: 'FieldValueForbidden',
            field: 'sendInitialEvents',
            message:
              'Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan and allowWatchBookmarks',
          },
        ]);
      }
      const match = parts.ops.matcher(t, namespace, opts);
      const timeout = q.get('timeoutSeconds');
      record.code = 200;
      const serve =
        r.as === 'Table'
          ? (o: KubeObject): KubeObject =>
              table(
                t,
                r.version,
                [o],
                { resourceVersion: o.metadata.resourceVersion },
                q.get('includeObject') ?? 'Metadata',
                (x) => parts.ops.served(t, x),
              ) as KubeObject
          : (o: KubeObject): KubeObject => parts.ops.served(t, o);
      parts.watches.start(
        {
          type: t,
          match,
          serve,
          resourceVersion: rv,
          allowBookmarks,
          sendInitialEvents,
          timeoutSeconds: timeout === null ? undefined : Number(timeout),
          initial: () =>
            parts.ops.listStored(t, namespace, { ...opts, limit: 0, continue: null }).items,
        },
        res,
      );
      return;
    }
    case 'create': {
      const o = parts.ops.create(t, namespace, parseBody(body, reqType), ctx);
      return send(res, record, 201, o, 'application/json', ctx.warnings);
    }
    case 'update': {
      const o = parts.ops.update(t, namespace, name ?? '', parseBody(body, reqType), sub, ctx);
      return send(res, record, 200, o, 'application/json', ctx.warnings);
    }
    case 'patch': {
      const mediaType = (reqType ?? '').split(';')[0]?.trim() ?? '';
      const patchType = PATCH_TYPES[mediaType];
      if (mediaType.startsWith('application/apply-patch')) {
        throw new ApiError(
          415,
          'UnsupportedMediaType',
          'server-side apply is not supported by the xlb test API server',
        );
      }
      if (patchType === undefined) throw unsupportedMediaType(mediaType);
      const o = parts.ops.patch(
        t,
        namespace,
        name ?? '',
        patchType,
        parseBody(body, 'application/json'),
        sub,
        ctx,
      );
      return send(res, record, 200, o, 'application/json', ctx.warnings);
    }
    case 'delete':
    case 'deletecollection': {
      const options = parseBody(body, reqType);
      const opts: Obj = isObj(options) ? options : {};
      const pre = isObj(opts.preconditions) ? opts.preconditions : {};
      const preconditions = {
        ...(asString(pre.uid) !== undefined ? { uid: asString(pre.uid) } : {}),
        ...(asString(pre.resourceVersion) !== undefined
          ? { resourceVersion: asString(pre.resourceVersion) }
          : {}),
      };
      if (Array.isArray(opts.dryRun) && opts.dryRun.includes('All')) ctx.dryRun = true;
      if (verb === 'deletecollection') {
        const items = parts.ops.deleteCollection(
          t,
          namespace,
          listOptions(q),
          { preconditions },
          ctx,
        );
        return send(res, record, 200, {
          kind: t.listKind,
          apiVersion: apiVersionOf(t),
          metadata: {},
          items,
        });
      }
      const { object, deleted } = parts.ops.delete(
        t,
        namespace,
        name ?? '',
        { preconditions },
        ctx,
      );
      if (deleted && !t.returnDeletedObject) {
        return send(res, record, 200, {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Success',
          details: {
            name: object.metadata.name,
            group: t.group,
            kind: t.plural,
            uid: object.metadata.uid,
          },
        });
      }
      return send(res, record, 200, object);
    }
  }
}

export async function handle(
  parts: ServerParts,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://apiserver');
  const record: RequestRecord = {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    ...(req.headers['content-type'] !== undefined
      ? { contentType: req.headers['content-type'] }
      : {}),
    ...(req.headers.accept !== undefined ? { accept: req.headers.accept } : {}),
    ...(req.headers['user-agent'] !== undefined ? { userAgent: req.headers['user-agent'] } : {}),
    code: 0,
  };
  parts.log.push(record);
  try {
    const body = await readBody(req);
    const info = requestInfo(record.method, url);
    if (info === 'methodNotAllowed') throw methodNotAllowed();
    if (!info.isResource) return nonResource(parts, info.path, req, res, record);
    Object.assign(record, {
      verb: info.verb,
      group: info.group,
      version: info.version,
      resource: info.plural,
      ...(info.namespace !== undefined ? { namespace: info.namespace } : {}),
      ...(info.name !== undefined ? { name: info.name } : {}),
      ...(info.subresource !== undefined ? { subresource: info.subresource } : {}),
    });
    resourceRequest(parts, info, url, body, req, res, record);
  } catch (e) {
    const err =
      e instanceof ApiError
        ? e
        : new ApiError(
            500,
            'InternalError',
            `Internal error occurred: ${e instanceof Error ? e.message : String(e)}`,
          );
    sendError(res, record, err);
  }
}
