// Request paths to request info, as k8s.io/apiserver's RequestInfoFactory
// reads them: /api/v1/..., /apis/<group>/<version>/..., namespaced paths,
// the deprecated /watch/ prefix, subresources, and the verb.
import type { Verb } from './faults.js';

export type RequestInfo =
  | { isResource: false; path: string }
  | {
      isResource: true;
      group: string;
      version: string;
      namespace?: string;
      plural: string;
      name?: string;
      subresource?: string;
      verb: Verb;
    };

const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

function verbOf(method: string, named: boolean, watch: boolean): Verb | undefined {
  switch (method) {
    case 'GET':
      return watch ? 'watch' : named ? 'get' : 'list';
    case 'POST':
      return named ? undefined : 'create';
    case 'PUT':
      return named ? 'update' : undefined;
    case 'PATCH':
      return named ? 'patch' : undefined;
    case 'DELETE':
      return named ? 'delete' : 'deletecollection';
    default:
      return undefined;
  }
}

export function requestInfo(method: string, url: URL): RequestInfo | 'methodNotAllowed' {
  const segs = url.pathname
    .split('/')
    .filter((s) => s !== '')
    .map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api' && segs.length >= 3) {
    group = '';
    version = segs[1] ?? '';
    rest = segs.slice(2);
  } else if (segs[0] === 'apis' && segs.length >= 4) {
    group = segs[1] ?? '';
    version = segs[2] ?? '';
    rest = segs.slice(3);
  } else return { isResource: false, path: url.pathname };

  let legacyWatch = false;
  if (rest[0] === 'watch') {
    legacyWatch = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 2) {
    namespace = rest[1];
    if (rest.length > 2 && !NAMESPACE_SUBRESOURCES.has(rest[2] ?? '')) rest = rest.slice(2);
  }
  if (rest.length === 0 || rest.length > 3) return { isResource: false, path: url.pathname };
  const [plural = '', name, subresource] = rest;
  const watchParam = url.searchParams.get('watch');
  const watch = legacyWatch || watchParam === 'true' || watchParam === '1';
  const verb = verbOf(method, name !== undefined, watch);
  if (verb === undefined) return 'methodNotAllowed';
  return {
    isResource: true,
    group,
    version,
    ...(namespace !== undefined && plural !== 'namespaces' ? { namespace } : {}),
    plural,
    ...(name !== undefined ? { name } : {}),
    ...(subresource !== undefined ? { subresource } : {}),
    verb,
  };
}
