// Server-side printing: kubectl get asks for meta.k8s.io Tables and prints
// the columns the server chose, so `kubectl get svc -o wide` shows TYPE,
// CLUSTER-IP, EXTERNAL-IP... only if the server builds them. Also the
// metadata-only forms (PartialObjectMetadata[List]) some clients ask for.
import type { Obj } from './json.js';
import type { KubeObject, ResourceType } from './types.js';

export type Rendering =
  | { as: 'json' }
  | { as: 'Table'; version: 'v1' | 'v1beta1' }
  | { as: 'PartialObjectMetadata'; version: 'v1' | 'v1beta1' };

/** What the Accept header asks for, first acceptable entry first. */
export function rendering(accept: string | undefined): Rendering | 'unacceptable' {
  if (accept === undefined || accept.trim() === '') return { as: 'json' };
  for (const entry of accept.split(',')) {
    const [type = '', ...params] = entry.split(';').map((s) => s.trim());
    const p = Object.fromEntries(
      params.map((x) => x.split('=').map((s) => s.trim()) as [string, string]),
    );
    if (type !== 'application/json' && type !== '*/*' && type !== 'application/*') continue;
    if (p.as === undefined) return { as: 'json' };
    if (p.g !== 'meta.k8s.io' || (p.v !== 'v1' && p.v !== 'v1beta1')) continue;
    if (p.as === 'Table') return { as: 'Table', version: p.v };
    if (p.as === 'PartialObjectMetadata' || p.as === 'PartialObjectMetadataList') {
      return { as: 'PartialObjectMetadata', version: p.v };
    }
  }
  return 'unacceptable';
}

export function contentType(r: Rendering, list: boolean): string {
  if (r.as === 'json') return 'application/json';
  const as =
    r.as === 'Table' ? 'Table' : list ? 'PartialObjectMetadataList' : 'PartialObjectMetadata';
  return `application/json;as=${as};g=meta.k8s.io;v=${r.version}`;
}

export function partial(version: string, o: KubeObject): Obj {
  return {
    kind: 'PartialObjectMetadata',
    apiVersion: `meta.k8s.io/${version}`,
    metadata: o.metadata,
  };
}

export function table(
  t: ResourceType,
  version: string,
  stored: KubeObject[],
  listMeta: Obj,
  includeObject: string,
  serve: (o: KubeObject) => KubeObject,
): Obj {
  const now = Date.now();
  return {
    kind: 'Table',
    apiVersion: `meta.k8s.io/${version}`,
    metadata: listMeta,
    columnDefinitions: t.columns.map((c) => ({
      name: c.name,
      type: c.type === 'date' ? 'string' : c.type,
      format: c.format ?? '',
      description: c.description,
      priority: c.priority,
    })),
    rows: stored.map((o) => ({
      cells: t.columns.map((c) => c.cell(o, now)),
      ...(includeObject === 'None'
        ? {}
        : { object: includeObject === 'Object' ? serve(o) : partial(version, serve(o)) }),
    })),
  };
}

export function partialList(version: string, items: KubeObject[], listMeta: Obj): Obj {
  return {
    kind: 'PartialObjectMetadataList',
    apiVersion: `meta.k8s.io/${version}`,
    metadata: listMeta,
    items: items.map((o) => partial(version, o)),
  };
}
