// What RBAC sees of an HTTP request to the API server: kube-apiserver's
// RequestInfo rules (verb from method and query, group, resource,
// subresource, namespace, name), so a recorded request can be checked
// against a list of rules.

export type RbacVerb =
  'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';

export type RequestAttributes =
  | {
      resourceRequest: true;
      verb: RbacVerb;
      /** '' for the core group. */
      apiGroup: string;
      version: string;
      resource: string;
      subresource: string | undefined;
      /**
       * '' for cluster-scoped requests and lists across all namespaces. A
       * namespace's own path (/api/v1/namespaces/x) has namespace and name x,
       * as kube-apiserver sees it.
       */
      namespace: string;
      name: string | undefined;
    }
  | { resourceRequest: false; path: string; verb: string };

const METHOD_VERBS: Record<string, RbacVerb> = {
  GET: 'get',
  HEAD: 'get',
  POST: 'create',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

// /namespaces/{name}/status and /finalize are subresources of the namespace,
// not resources inside it.
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

function truthy(value: string | null): boolean {
  return value === 'true' || value === '1';
}

/**
 * The attributes of `method url` (url: path and query, as sent); undefined
 * for a method RBAC knows no verb for.
 */
export function requestAttributes(method: string, url: string): RequestAttributes | undefined {
  const parsed = new URL(url, 'http://api.invalid');
  const path = parsed.pathname;
  const parts = path.split('/').filter((p) => p !== '');
  const methodVerb = METHOD_VERBS[method.toUpperCase()];
  const nonResource = (): RequestAttributes => ({
    resourceRequest: false,
    path,
    verb: method.toLowerCase(),
  });
  const prefix = parts[0];
  if (prefix !== 'api' && prefix !== 'apis') return nonResource();
  // /api/v1 and /apis/{group}/{version} (and shorter) are discovery, not resources.
  const minParts = prefix === 'api' ? 3 : 4;
  if (parts.length < minParts) return nonResource();
  if (methodVerb === undefined) return undefined;
  const apiGroup = prefix === 'api' ? '' : parts[1]!;
  const version = prefix === 'api' ? parts[1]! : parts[2]!;
  let rest = parts.slice(minParts - 1);
  let verb: RbacVerb = methodVerb;
  // The deprecated /watch/ path prefix.
  if (rest[0] === 'watch' && verb === 'get') {
    verb = 'watch';
    rest = rest.slice(1);
  }
  let namespace = '';
  if (rest[0] === 'namespaces' && rest.length > 1) {
    namespace = rest[1]!;
    if (rest.length > 2 && !NAMESPACE_SUBRESOURCES.has(rest[2]!)) rest = rest.slice(2);
  }
  const resource = rest[0] ?? '';
  const name = rest[1];
  const subresource = rest[2];
  if (name === undefined && verb === 'get')
    verb = truthy(parsed.searchParams.get('watch')) ? 'watch' : 'list';
  else if (name !== undefined && verb === 'get' && truthy(parsed.searchParams.get('watch')))
    verb = 'watch';
  if (name === undefined && verb === 'delete') verb = 'deletecollection';
  return { resourceRequest: true, verb, apiGroup, version, resource, subresource, namespace, name };
}
