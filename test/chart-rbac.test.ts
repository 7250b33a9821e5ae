// The chart's RBAC, rendered by the real helm, grants exactly what
// control/k8s/permissions.ts lists (every permission, nothing more), binds it
// to the chart's ServiceAccount, and passes the API server double's schema
// checks and kube-apiserver's RBAC validation rules. uncoveredRequests() is
// checked on hand-written requests and on what the Kubernetes source and
// leader election really send to the double.
import { execFile } from 'node:child_process';
import { join } from 'node:path';

import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { readFileSync } from 'node:fs';

import { AGENT_OPTIONS, resolveAgentSettings, type SettingKey } from '../control/agent/config.js';
import { LeaderElector } from '../control/k8s/leader.js';
import {
  agentPermissions,
  DEFAULT_LEASE_NAME,
  isCovered,
  policyRules,
  uncoveredRequests,
  type Permission,
} from '../control/k8s/permissions.js';
import { requestAttributes } from '../control/k8s/request-attributes.js';
import { KubernetesSource } from '../control/k8s/source.js';
import { projectRoot } from '../control/paths.js';
import { ClusterStore } from '../control/store/cluster-store.js';
import { ApiServer, type KubeObject } from '../control/apiserver-double/index.js';
import { modelSchema } from '../control/apiserver-double/model-schema.js';
import { schemaProblems } from '../control/apiserver-double/schema.js';
import { helmPath } from './support/kubectl.js';

const CHART = join(projectRoot(), 'charts', 'xlb');
const RBAC_KINDS = ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

interface Rendered {
  all: KubeObject[];
  byKind: (kind: string) => KubeObject[];
}

/** `helm template` of the chart; rejects with helm's stderr when it fails. */
function helmTemplate(release: string, namespace: string, sets: string[] = []): Promise<Rendered> {
  const args = ['template', release, CHART, '--namespace', namespace];
  for (const s of sets) args.push('--set', s);
  return new Promise((resolve, reject) => {
    execFile(
      helmPath,
      args,
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent' }, timeout: 30_000 },
      (err, stdout, stderr) => {
        if (err !== null)
          return reject(new Error(`helm template failed: ${stderr || err.message}`));
        const all = parseAllDocuments(stdout)
          .map((d) => d.toJS() as KubeObject | null)
          .filter((o): o is KubeObject => o !== null);
        resolve({ all, byKind: (kind) => all.filter((o) => o.kind === kind) });
      },
    );
  });
}

/** One grant per (scope, group, resource, verb, name), '*' for any name. */
function grantsOf(permissions: readonly Permission[]): string[] {
  return permissions
    .flatMap((p) =>
      p.verbs.flatMap((verb) =>
        (p.resourceNames ?? ['*']).map((name) =>
          [p.scope, p.apiGroup, p.resource, verb, name].join(' '),
        ),
      ),
    )
    .sort();
}

function grantsOfRules(scope: Permission['scope'], rules: readonly Rule[]): string[] {
  return rules
    .flatMap((r) =>
      (r.apiGroups ?? []).flatMap((group) =>
        (r.resources ?? []).flatMap((resource) =>
          (r.verbs ?? []).flatMap((verb) =>
            (r.resourceNames ?? ['*']).map((name) =>
              [scope, group, resource, verb, name].join(' '),
            ),
          ),
        ),
      ),
    )
    .sort();
}

const rulesOf = (o: KubeObject | undefined) => (o?.rules ?? []) as Rule[];

/** What kube-apiserver's RBAC validation and the double's schema check say about an object. */
function problems(o: KubeObject): string[] {
  const out: string[] = [];
  out.push(...schemaProblems(o, modelSchema(`V1${String(o.kind)}`)));
  if (o.apiVersion !== 'rbac.authorization.k8s.io/v1') out.push(`apiVersion ${o.apiVersion}`);
  if (!o.metadata.name) out.push('metadata.name missing');
  const namespaced = o.kind === 'Role' || o.kind === 'RoleBinding';
  if (namespaced !== (o.metadata.namespace !== undefined))
    out.push(`metadata.namespace ${namespaced ? 'missing' : 'set on a cluster-scoped object'}`);
  for (const [i, r] of rulesOf(o).entries()) {
    if ((r.verbs ?? []).length === 0) out.push(`rules[${i}]: verbs: Required value`);
    if ((r.resources ?? []).length > 0 && (r.apiGroups ?? []).length === 0)
      out.push(`rules[${i}]: apiGroups: resource rules must supply at least one api group`);
    if (namespaced && (r.nonResourceURLs ?? []).length > 0)
      out.push(`rules[${i}]: nonResourceURLs: namespaced rules cannot apply to non-resource URLs`);
    for (const v of [...(r.verbs ?? []), ...(r.resources ?? []), ...(r.apiGroups ?? [])])
      if (v === '*') out.push(`rules[${i}]: a wildcard grants more than the agent needs`);
  }
  if (o.kind?.endsWith('Binding') === true) {
    const ref = o.roleRef as { apiGroup?: string; kind?: string; name?: string } | undefined;
    if (ref?.apiGroup !== 'rbac.authorization.k8s.io') out.push('roleRef.apiGroup');
    const kinds = o.kind === 'RoleBinding' ? ['Role', 'ClusterRole'] : ['ClusterRole'];
    if (!kinds.includes(ref?.kind ?? '')) out.push(`roleRef.kind ${ref?.kind}`);
    if (!ref?.name) out.push('roleRef.name missing');
    const subjects = (o.subjects ?? []) as { kind?: string; name?: string; namespace?: string }[];
    for (const [i, s] of subjects.entries())
      if (s.kind !== 'ServiceAccount' || !s.name || !s.namespace)
        out.push(`subjects[${i}]: a ServiceAccount needs a name and a namespace`);
  }
  return out;
}

describe('the chart grants exactly permissions.ts', () => {
  it('renders a ClusterRole and a Role whose rules are the list, bound to the ServiceAccount', async () => {
    const r = await helmTemplate('xlb', 'xlb-system');
    const [clusterRole] = r.byKind('ClusterRole');
    const [role] = r.byKind('Role');
    const [sa] = r.byKind('ServiceAccount');
    expect(r.all.filter((o) => RBAC_KINDS.includes(o.kind ?? ''))).toHaveLength(4);
    expect(sa?.metadata).toMatchObject({ name: 'xlb', namespace: 'xlb-system' });

    const permissions = agentPermissions();
    expect(grantsOfRules('cluster', rulesOf(clusterRole))).toEqual(
      grantsOf(permissions.filter((p) => p.scope === 'cluster')),
    );
    expect(grantsOfRules('releaseNamespace', rulesOf(role))).toEqual(
      grantsOf(permissions.filter((p) => p.scope === 'releaseNamespace')),
    );
    // Rule by rule, in the same order, too (the file reads like the list).
    expect(rulesOf(clusterRole)).toEqual(policyRules('cluster'));
    expect(rulesOf(role)).toEqual(policyRules('releaseNamespace'));
    expect(role?.metadata.namespace).toBe('xlb-system');

    const subject = { kind: 'ServiceAccount', name: sa?.metadata.name, namespace: 'xlb-system' };
    const [crb] = r.byKind('ClusterRoleBinding');
    expect(crb?.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: clusterRole?.metadata.name,
    });
    expect(crb?.subjects).toEqual([subject]);
    const [rb] = r.byKind('RoleBinding');
    expect(rb?.metadata.namespace).toBe('xlb-system');
    expect(rb?.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: role?.metadata.name,
    });
    expect(rb?.subjects).toEqual([subject]);
    // The DaemonSet runs as that ServiceAccount.
    const [ds] = r.byKind('DaemonSet');
    expect(
      (ds?.spec as { template: { spec: { serviceAccountName: string } } }).template.spec
        .serviceAccountName,
    ).toBe(sa?.metadata.name);
  });

  it('grants Secrets through the Role in the release namespace only: list and watch, no ClusterRole rule', async () => {
    const r = await helmTemplate('edge', 'bgp-system');
    const mentions = (role: KubeObject | undefined) =>
      rulesOf(role).filter((rule) => rule.resources?.some((res) => res.startsWith('secrets')));
    expect(mentions(r.byKind('ClusterRole')[0])).toEqual([]);
    const [role] = r.byKind('Role');
    expect(role?.metadata.namespace).toBe('bgp-system');
    expect(mentions(role)).toEqual([
      { apiGroups: [''], resources: ['secrets'], verbs: ['list', 'watch'] },
    ]);
    const secrets = agentPermissions().filter((p) => p.resource === 'secrets');
    expect(secrets).toEqual([
      expect.objectContaining({ scope: 'releaseNamespace', verbs: ['list', 'watch'] }),
    ]);
    expect(secrets[0]!.resourceNames).toBeUndefined();
  });

  it('renders objects kube-apiserver would accept', async () => {
    const r = await helmTemplate('xlb', 'kube-system');
    const rbac = r.all.filter((o) => RBAC_KINDS.includes(o.kind ?? ''));
    expect(rbac.map((o) => o.kind).sort()).toEqual([...RBAC_KINDS].sort());
    for (const o of rbac)
      expect({ kind: o.kind, problems: problems(o) }).toEqual({ kind: o.kind, problems: [] });
    // The checks do catch what a real server refuses.
    const bad = structuredClone(rbac.find((o) => o.kind === 'ClusterRole')!);
    (bad.rules as Rule[])[0] = { apiGroups: [''], resources: ['services'], verbs: [] };
    (bad as Record<string, unknown>).extra = 1;
    bad.metadata.namespace = 'x';
    expect(problems(bad)).toEqual([
      'unknown field extra',
      'metadata.namespace set on a cluster-scoped object',
      'rules[0]: verbs: Required value',
    ]);
    const badBinding = structuredClone(rbac.find((o) => o.kind === 'ClusterRoleBinding')!);
    badBinding.roleRef = { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'x' };
    badBinding.subjects = [{ kind: 'ServiceAccount', name: 'xlb' }];
    expect(problems(badBinding)).toEqual([
      'roleRef.kind Role',
      'subjects[0]: a ServiceAccount needs a name and a namespace',
    ]);
  });

  it('follows the release name, the namespace and the Lease name, and can leave RBAC out', async () => {
    const r = await helmTemplate('edge', 'lb', ['leaderElection.leaseName=edge-lease']);
    const [role] = r.byKind('Role');
    expect(role?.metadata).toMatchObject({ name: 'edge', namespace: 'lb' });
    expect(grantsOfRules('releaseNamespace', rulesOf(role))).toEqual(
      grantsOf(
        agentPermissions({ leaseName: 'edge-lease' }).filter((p) => p.scope === 'releaseNamespace'),
      ),
    );
    for (const kind of ['ClusterRoleBinding', 'RoleBinding'])
      expect(r.byKind(kind)[0]?.subjects).toEqual([
        { kind: 'ServiceAccount', name: 'edge', namespace: 'lb' },
      ]);

    const none = await helmTemplate('xlb', 'xlb-system', ['rbac.create=false']);
    expect(none.all.filter((o) => RBAC_KINDS.includes(o.kind ?? ''))).toEqual([]);
    expect(none.byKind('ServiceAccount')).toHaveLength(1);

    const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as {
      leaderElection: { leaseName: string };
    };
    expect(values.leaderElection.leaseName).toBe(DEFAULT_LEASE_NAME);
  });
});

describe('the DaemonSet', () => {
  it('runs the agent in Kubernetes mode with arguments its own parser accepts, holding the Lease the Role grants', async () => {
    const r = await helmTemplate('edge', 'lb', [
      'leaderElection.leaseName=edge-lease',
      'defaultClass=true',
      'interface=bond0',
      'bgp.stop=withdraw',
    ]);
    const [ds] = r.byKind('DaemonSet');
    const container = (
      ds?.spec as { template: { spec: { containers: Array<{ args: string[] }> } } }
    ).template.spec.containers[0]!;
    const [command, ...args] = container.args;
    expect(command).toBe('agent');
    // What the kubelet does: $(NODE_NAME) from the env, then the flags as parsed.
    const flags: Partial<Record<SettingKey, unknown>> = {};
    for (const arg of args) {
      const [flag, value] = arg.replace('$(NODE_NAME)', 'node-7').split('=', 2) as [
        string,
        string | undefined,
      ];
      const spec = AGENT_OPTIONS.find((o) => o.flags.split(' ')[0] === flag);
      expect(spec, `${flag} is a flag of xlb agent`).toBeDefined();
      flags[spec!.key] = value ?? true;
    }
    const settings = resolveAgentSettings({
      flags,
      env: { POD_NAME: 'edge-x2k9f', POD_NAMESPACE: 'lb' },
    });
    expect(settings).toMatchObject({
      manifests: '',
      uplink: 'bond0',
      nodeName: 'node-7',
      leaseNamespace: 'lb',
      leaseName: 'edge-lease',
      identity: 'edge-x2k9f',
      defaultClass: true,
      metricsAddress: { host: '0.0.0.0', port: 9597 },
      bgpStop: 'withdraw',
    });
    const [role] = r.byKind('Role');
    expect(rulesOf(role).flatMap((rule) => rule.resourceNames ?? [])).toContain(settings.leaseName);
  });
});

describe('uncoveredRequests', () => {
  const ns = 'xlb-system';
  const req = (method: string, url: string) => ({ method, url });

  it('reads requests as kube-apiserver does', () => {
    expect(requestAttributes('GET', '/api/v1/services?limit=500')).toMatchObject({
      verb: 'list',
      apiGroup: '',
      resource: 'services',
      namespace: '',
      name: undefined,
    });
    expect(
      requestAttributes('GET', '/apis/xlb.dev/v1alpha1/ippools?watch=1&resourceVersion=5'),
    ).toMatchObject({ verb: 'watch', apiGroup: 'xlb.dev', resource: 'ippools' });
    expect(requestAttributes('GET', '/api/v1/watch/namespaces/a/services')).toMatchObject({
      verb: 'watch',
      namespace: 'a',
      resource: 'services',
    });
    expect(requestAttributes('PUT', '/api/v1/namespaces/a/services/web/status')).toMatchObject({
      verb: 'update',
      namespace: 'a',
      resource: 'services',
      name: 'web',
      subresource: 'status',
    });
    expect(requestAttributes('PUT', '/api/v1/namespaces/a/status')).toMatchObject({
      verb: 'update',
      resource: 'namespaces',
      name: 'a',
      subresource: 'status',
    });
    expect(requestAttributes('DELETE', '/api/v1/namespaces/a/services')).toMatchObject({
      verb: 'deletecollection',
    });
    expect(requestAttributes('GET', '/apis/discovery.k8s.io/v1')).toEqual({
      resourceRequest: false,
      path: '/apis/discovery.k8s.io/v1',
      verb: 'get',
    });
    expect(requestAttributes('TRACE', '/api/v1/services')).toBeUndefined();
  });

  it('lets through exactly what the list grants', () => {
    const covered = [
      req('GET', '/api/v1/services?limit=500'),
      req('GET', '/api/v1/services?watch=true&resourceVersion=10&allowWatchBookmarks=true'),
      req('GET', '/api/v1/namespaces/default/services/web'),
      req('PATCH', '/api/v1/namespaces/default/services/web'),
      req('PUT', '/api/v1/namespaces/default/services/web/status'),
      req('PATCH', '/api/v1/namespaces/default/services/web/status'),
      req('GET', '/apis/discovery.k8s.io/v1/endpointslices?limit=500'),
      req('GET', '/api/v1/nodes?watch=true'),
      req('GET', '/api/v1/namespaces'),
      req('GET', '/apis/xlb.dev/v1alpha1/ippools'),
      req('GET', '/apis/xlb.dev/v1alpha1/ippools/default'),
      req('PUT', '/apis/xlb.dev/v1alpha1/ippools/default/status'),
      req('POST', '/api/v1/namespaces/team-a/events'),
      req('PATCH', '/api/v1/namespaces/team-a/events/web.1'),
      req('POST', '/apis/events.k8s.io/v1/namespaces/team-a/events'),
      req('POST', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`),
      req('GET', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${DEFAULT_LEASE_NAME}`),
      req('PUT', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${DEFAULT_LEASE_NAME}`),
      req('GET', `/api/v1/namespaces/${ns}/secrets?limit=500`),
      req('GET', `/api/v1/namespaces/${ns}/secrets?watch=true&resourceVersion=7`),
      req('GET', '/api'),
      req('GET', '/apis/xlb.dev/v1alpha1'),
      req('GET', '/version'),
      req('GET', '/openapi/v3/api/v1'),
    ];
    const refused = [
      req('DELETE', '/api/v1/namespaces/default/services/web'),
      req('POST', '/api/v1/namespaces/default/services'),
      req('GET', '/api/v1/nodes/node-a'), // get is not granted on nodes, only list/watch
      req('PATCH', '/api/v1/nodes/node-a/status'),
      req('GET', '/api/v1/namespaces/default/pods'),
      req('GET', '/api/v1/namespaces/default/secrets/token'),
      // Secrets: list and watch in the release namespace only; never all namespaces, never write.
      req('GET', '/api/v1/secrets?limit=500'),
      req('GET', '/api/v1/secrets?watch=true'),
      req('GET', '/api/v1/namespaces/default/secrets'),
      req('GET', `/api/v1/namespaces/${ns}/secrets/bgp-auth`),
      req('PUT', `/api/v1/namespaces/${ns}/secrets/bgp-auth`),
      req('POST', `/api/v1/namespaces/${ns}/secrets`),
      req('PUT', '/api/v1/namespaces/default/status'),
      req('PUT', '/apis/xlb.dev/v1alpha1/ippools/default'), // spec is the user's
      req('DELETE', '/apis/xlb.dev/v1alpha1/ippools/default'),
      req('GET', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-1'),
      req('DELETE', '/api/v1/namespaces/team-a/events/web.1'),
      // Another namespace's Leases, or another Lease in ours (kube-system's are the control plane's).
      req('GET', '/apis/coordination.k8s.io/v1/namespaces/default/leases/xlb-leader'),
      req('POST', '/apis/coordination.k8s.io/v1/namespaces/default/leases'),
      req('PUT', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/kube-scheduler`),
      req('GET', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`),
      req('DELETE', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${DEFAULT_LEASE_NAME}`),
      req('GET', '/metrics'),
      req('POST', '/api'),
      req('TRACE', '/api/v1/services'),
    ];
    expect(uncoveredRequests([...covered, ...refused], { namespace: ns })).toEqual(refused);
    // Another Lease name moves the grant with it.
    expect(
      isCovered(
        'GET',
        `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/other`,
        ns,
        agentPermissions({ leaseName: 'other' }),
      ),
    ).toBe(true);
    expect(
      uncoveredRequests(
        [req('PUT', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/other`)],
        {
          namespace: ns,
          leaseName: 'other',
        },
      ),
    ).toEqual([]);
  });

  describe('on what the source and leader election send', () => {
    let server: ApiServer;

    beforeEach(async () => {
      server = await ApiServer.start();
    });

    afterEach(async () => {
      await server.close();
    });

    it('finds nothing the chart does not grant, and flags what it does not', async () => {
      server.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
      server.apply(parse(readFileSync(join(CHART, 'crds', 'ippool.yaml'), 'utf8')) as KubeObject);
      const log = pino({ level: 'silent' });
      const source = new KubernetesSource({
        kubeConfig: server.kubeConfig(),
        store: new ClusterStore(),
        secretNamespace: ns,
        backoff: { initialMs: 10, maxMs: 50, jitter: 0 },
        log,
      });
      const elector = new LeaderElector({
        kubeConfig: server.kubeConfig(),
        namespace: ns,
        name: DEFAULT_LEASE_NAME,
        identity: 'node-a',
        leaseDurationMs: 1000,
        renewDeadlineMs: 600,
        retryPeriodMs: 50,
        log,
      });
      try {
        source.start();
        elector.start();
        await source.whenSynced();
        await new Promise<void>((resolve, reject) => {
          const t = setInterval(() => {
            if (elector.isLeader()) {
              clearInterval(t);
              resolve();
            } else if (server.requests().length > 1000) {
              clearInterval(t);
              reject(new Error('no leader'));
            }
          }, 5);
        });
        // A relist and a release, so every path has run once.
        server.compact();
        server.closeWatches();
        await new Promise((r) => setTimeout(r, 200));
      } finally {
        await elector.stop({ release: true });
        await source.stop();
      }
      const sent = server.requests();
      // The source listed and watched five kinds; the elector created, read and renewed its Lease.
      const verbs = new Set(sent.map((r) => `${r.verb} ${r.resource}`));
      for (const v of [
        'list services',
        'watch services',
        'list endpointslices',
        'list nodes',
        'list namespaces',
        'list ippools',
        'watch ippools',
        'create leases',
        'update leases',
        'list secrets',
        'watch secrets',
      ])
        expect(verbs).toContain(v);
      expect(uncoveredRequests(sent, { namespace: ns })).toEqual([]);
      // In another release namespace, the Lease requests would be refused.
      const elsewhere = uncoveredRequests(sent, { namespace: 'other' });
      expect(elsewhere.length).toBeGreaterThan(0);
      expect(new Set(elsewhere.map((r) => r.resource))).toEqual(new Set(['leases', 'secrets']));
    });
  });
});
