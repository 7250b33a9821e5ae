// Everything the agent asks of the API server, in one list: the Kubernetes
// source (list and watch; Secrets only in the agent's own namespace, for BGP
// MD5 passwords), leader election (its Lease) and the leader-only
// Service controller (status, finalizer, events, pool status). The chart's
// templates/rbac.yaml grants exactly this (test/chart-rbac.test.ts), and
// uncoveredRequests() lets an end-to-end test prove the agent asked for
// nothing more.
import { requestAttributes, type RbacVerb, type RequestAttributes } from './request-attributes.js';
import { WATCHED_KINDS } from './watched-kinds.js';

export type { RbacVerb, RequestAttributes } from './request-attributes.js';

/** The chart's default Lease name (values.yaml leaderElection.leaseName). */
export const DEFAULT_LEASE_NAME = 'xlb-leader';

export interface Permission {
  /** '' for the core group. */
  apiGroup: string;
  /** Plural resource, with "/subresource" when it is one ("services/status"). */
  resource: string;
  verbs: readonly RbacVerb[];
  /** cluster: a ClusterRole; releaseNamespace: a Role in the namespace the chart installs to. */
  scope: 'cluster' | 'releaseNamespace';
  /** Only these objects, when set (RBAC cannot restrict create or list by name). */
  resourceNames?: readonly string[];
  /** Who needs it. */
  why: string;
}

export interface PermissionSettings {
  /** Default DEFAULT_LEASE_NAME. */
  leaseName?: string;
}

const READ = ['list', 'watch'] as const;

/** The agent's permissions, in the order the chart lists them. */
export function agentPermissions(settings: PermissionSettings = {}): Permission[] {
  const leaseName = settings.leaseName ?? DEFAULT_LEASE_NAME;
  const w = WATCHED_KINDS;
  return [
    {
      apiGroup: w.Service.group,
      resource: w.Service.resource,
      verbs: ['get', ...READ, 'update', 'patch'],
      scope: 'cluster',
      why: 'the source watches Services; the controller adds and removes its finalizer',
    },
    {
      apiGroup: '',
      resource: 'services/status',
      verbs: ['update', 'patch'],
      scope: 'cluster',
      why: 'the controller writes status.loadBalancer.ingress',
    },
    {
      apiGroup: w.EndpointSlice.group,
      resource: w.EndpointSlice.resource,
      verbs: READ,
      scope: 'cluster',
      why: 'the source watches endpoints (backends)',
    },
    {
      apiGroup: w.Node.group,
      resource: w.Node.resource,
      verbs: READ,
      scope: 'cluster',
      why: 'the source watches Nodes (addresses, exclusion labels)',
    },
    {
      apiGroup: w.Namespace.group,
      resource: w.Namespace.resource,
      verbs: READ,
      scope: 'cluster',
      why: "the source watches Namespace labels for pools' namespaceSelector",
    },
    {
      apiGroup: w.IPPool.group,
      resource: w.IPPool.resource,
      verbs: ['get', ...READ],
      scope: 'cluster',
      why: 'the source watches IPPools; the controller reads one before writing its status',
    },
    {
      apiGroup: w.IPPool.group,
      resource: `${w.IPPool.resource}/status`,
      verbs: ['update', 'patch'],
      scope: 'cluster',
      why: "the controller writes each pool's usage and conditions",
    },
    {
      apiGroup: w.BGPPeer.group,
      resource: w.BGPPeer.resource,
      verbs: READ,
      scope: 'cluster',
      why: 'the source watches BGPPeers (the routers the BGP speaker peers with)',
    },
    {
      apiGroup: w.BGPAdvertisement.group,
      resource: w.BGPAdvertisement.resource,
      verbs: READ,
      scope: 'cluster',
      why: 'the source watches BGPAdvertisements (what is announced, with which attributes)',
    },
    {
      apiGroup: '',
      resource: 'events',
      verbs: ['create', 'patch'],
      scope: 'cluster',
      why: 'the controller explains allocations on the Service (core/v1 Events)',
    },
    {
      apiGroup: 'events.k8s.io',
      resource: 'events',
      verbs: ['create', 'patch'],
      scope: 'cluster',
      why: 'the controller explains allocations on the Service (events.k8s.io/v1)',
    },
    {
      apiGroup: 'coordination.k8s.io',
      resource: 'leases',
      verbs: ['create'],
      scope: 'releaseNamespace',
      why: 'leader election creates its Lease the first time',
    },
    {
      apiGroup: 'coordination.k8s.io',
      resource: 'leases',
      verbs: ['get', 'update'],
      scope: 'releaseNamespace',
      resourceNames: [leaseName],
      why: "leader election reads and renews its Lease (and no other: in kube-system those are the control plane's)",
    },
    {
      apiGroup: '',
      resource: 'secrets',
      verbs: READ,
      scope: 'releaseNamespace',
      why:
        "the source watches the Secrets of the agent's own namespace for BGPPeers' MD5 " +
        "passwords (no other namespace's: a passwordSecretRef elsewhere is refused)",
    },
  ];
}

/** A Kubernetes RBAC PolicyRule. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** The rules of the ClusterRole (scope 'cluster') or of the Role (scope 'releaseNamespace'). */
export function policyRules(
  scope: Permission['scope'],
  permissions: readonly Permission[] = agentPermissions(),
): PolicyRule[] {
  return permissions
    .filter((p) => p.scope === scope)
    .map((p) => ({
      apiGroups: [p.apiGroup],
      resources: [p.resource],
      verbs: [...p.verbs],
      ...(p.resourceNames !== undefined ? { resourceNames: [...p.resourceNames] } : {}),
    }));
}

/**
 * Paths every authenticated client may read through the default
 * system:discovery and system:public-info-viewer ClusterRoles.
 */
function defaultNonResource(path: string, verb: string): boolean {
  if (verb !== 'get' && verb !== 'head') return false;
  const p = path.replace(/\/+$/, '') || '/';
  return (
    ['/api', '/apis', '/healthz', '/livez', '/readyz', '/version', '/openapi'].includes(p) ||
    /^\/(api|apis|openapi)\//.test(p)
  );
}

function covers(
  p: Permission,
  a: Extract<RequestAttributes, { resourceRequest: true }>,
  namespace: string,
): boolean {
  const resource = a.subresource === undefined ? a.resource : `${a.resource}/${a.subresource}`;
  if (p.apiGroup !== a.apiGroup || p.resource !== resource || !p.verbs.includes(a.verb))
    return false;
  if (p.scope === 'releaseNamespace' && a.namespace !== namespace) return false;
  if (p.resourceNames !== undefined && (a.name === undefined || !p.resourceNames.includes(a.name)))
    return false;
  return true;
}

/** Whether `permissions` allow `method url` for an agent installed in `namespace`. */
export function isCovered(
  method: string,
  url: string,
  namespace: string,
  permissions: readonly Permission[] = agentPermissions(),
): boolean {
  const a = requestAttributes(method, url);
  if (a === undefined) return false;
  if (!a.resourceRequest) return defaultNonResource(a.path, a.verb);
  return permissions.some((p) => covers(p, a, namespace));
}

export interface CoverageOptions {
  /** The release namespace (where the Lease lives). */
  namespace: string;
  /** Default agentPermissions({ leaseName }). */
  permissions?: readonly Permission[];
  leaseName?: string;
}

/**
 * The requests (method and url as sent, e.g. the API server double's
 * request log) that the agent's permissions do not allow: what a real
 * cluster would refuse with 403.
 */
export function uncoveredRequests<R extends { method: string; url: string }>(
  requests: readonly R[],
  options: CoverageOptions,
): R[] {
  const permissions = options.permissions ?? agentPermissions({ leaseName: options.leaseName });
  return requests.filter((r) => !isCovered(r.method, r.url, options.namespace, permissions));
}
