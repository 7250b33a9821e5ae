// v1 Service: the defaults and allocations kube-apiserver makes (type,
// protocols, targetPort, session affinity, traffic policies, IP families,
// cluster IPs from the fake Service CIDRs, node ports) and kubectl's columns;
// validation is in service-validation.ts.
// Approximated: addresses and node ports are handed out lowest-free-first
// (the real allocators pick at random); externalIPs, topology and
// trafficDistribution are stored but not validated.
import { ageColumn, column, nameColumn } from '../columns.js';
import { ApiError, invalid, invalidValue, type Cause } from '../errors.js';
import { cidrFamily, familyOf, firstFree, inCIDR, type Family } from '../ip.js';
import { asArray, deepEqual, isObj, str, type Obj } from '../json.js';
import { dns1035Label } from '../names.js';
import type { ClusterView, KubeObject } from '../types.js';
import { builtin, builtinPatchMeta } from './base.js';
import { external, needsNodePorts, ports, spec } from './service-shape.js';
import { validateSpec, validateStatus } from './service-validation.js';

/**
 * The registry's dropTypeDependentFields: a Service that changes type loses
 * what only applied to the old type, where the update left it as it was
 * (a value the user changes in the same update stays, and fails validation).
 */
function dropTypeDependentFields(o: KubeObject, old: KubeObject): void {
  const s = spec(o);
  const was = spec(old);
  const same = (k: string): boolean => deepEqual(s[k], was[k]);
  const sameNodePorts = deepEqual(
    ports(s).map((p) => p.nodePort),
    ports(was).map((p) => p.nodePort),
  );
  if (was.type !== 'ExternalName' && s.type === 'ExternalName') {
    if (same('clusterIP') && same('clusterIPs')) {
      delete s.clusterIP;
      delete s.clusterIPs;
    }
    if (same('ipFamilies')) delete s.ipFamilies;
    if (same('ipFamilyPolicy')) delete s.ipFamilyPolicy;
  }
  if (needsNodePorts(was) && !needsNodePorts(s) && sameNodePorts) {
    for (const p of ports(s)) delete p.nodePort;
  }
  const needsHealthCheck = (x: Obj): boolean =>
    x.type === 'LoadBalancer' && x.externalTrafficPolicy === 'Local';
  if (needsHealthCheck(was) && !needsHealthCheck(s) && same('healthCheckNodePort'))
    delete s.healthCheckNodePort;
  if (was.type === 'LoadBalancer' && s.type !== 'LoadBalancer') {
    if (same('allocateLoadBalancerNodePorts')) delete s.allocateLoadBalancerNodePorts;
    if (same('loadBalancerClass')) delete s.loadBalancerClass;
  }
  if (external(was) && !external(s) && same('externalTrafficPolicy'))
    delete s.externalTrafficPolicy;
  // The load balancer's status goes with the type (its teardown is not shown).
  if (s.type !== 'LoadBalancer' && isObj(o.status)) o.status.loadBalancer = {};
}

function defaults(o: KubeObject, old: KubeObject | undefined): void {
  if (old !== undefined) dropTypeDependentFields(o, old);
  const s = spec(o);
  s.type ??= 'ClusterIP';
  if (s.type !== 'ExternalName') {
    s.sessionAffinity ??= 'None';
    if (s.sessionAffinity === 'ClientIP' && !isObj(s.sessionAffinityConfig)) {
      s.sessionAffinityConfig = { clientIP: { timeoutSeconds: 10800 } };
    }
    s.internalTrafficPolicy ??= 'Cluster';
  }
  for (const p of ports(s)) {
    p.protocol ??= 'TCP';
    if (p.targetPort === undefined || p.targetPort === 0 || p.targetPort === '')
      p.targetPort = p.port;
  }
  if (external(s)) s.externalTrafficPolicy ??= 'Cluster';
  if (s.type === 'LoadBalancer') s.allocateLoadBalancerNodePorts ??= true;
  if (old === undefined) return;
  // An update that leaves out what the server allocated keeps it (kubectl
  // apply and PUTs built from a manifest omit clusterIP and nodePort).
  const was = spec(old);
  if (s.type !== 'ExternalName' && was.type !== 'ExternalName') {
    if (s.clusterIP === undefined || s.clusterIP === '') {
      if (was.clusterIP !== undefined) s.clusterIP = was.clusterIP;
    }
    if (
      asArray(s.clusterIPs).length === 0 &&
      asArray(was.clusterIPs).length > 0 &&
      s.clusterIP === was.clusterIP
    ) {
      s.clusterIPs = was.clusterIPs;
    }
    s.ipFamilyPolicy ??= was.ipFamilyPolicy;
    if (asArray(s.ipFamilies).length === 0 && was.ipFamilies !== undefined)
      s.ipFamilies = was.ipFamilies;
  }
  if (needsNodePorts(s) && needsNodePorts(was)) {
    for (const p of ports(s)) {
      if (p.nodePort !== undefined && p.nodePort !== 0) continue;
      const prev = ports(was).find((q) => q.port === p.port && q.protocol === p.protocol);
      if (prev?.nodePort !== undefined) p.nodePort = prev.nodePort;
    }
  }
  if (s.healthCheckNodePort === undefined && was.healthCheckNodePort !== undefined) {
    s.healthCheckNodePort = was.healthCheckNodePort;
  }
}

function fail(o: KubeObject, causes: Cause[]): ApiError {
  return invalid('Service', '', o.metadata.name ?? '', causes);
}

function allocateIPs(o: KubeObject, old: KubeObject | undefined, cluster: ClusterView): void {
  const s = spec(o);
  if (s.type === 'ExternalName') {
    for (const k of ['clusterIP', 'clusterIPs', 'ipFamilies', 'ipFamilyPolicy']) delete s[k];
    return;
  }
  const configured = cluster.serviceCIDRs.map(cidrFamily);
  const policy = str(s.ipFamilyPolicy ?? 'SingleStack');
  const given =
    asArray(s.clusterIPs).length > 0
      ? asArray(s.clusterIPs).map(String)
      : s.clusterIP
        ? [str(s.clusterIP)]
        : [];
  let families = asArray(s.ipFamilies).map(String) as Family[];
  if (families.length === 0) {
    families = given
      .filter((ip) => ip !== 'None')
      .map((ip) => familyOf(ip))
      .filter((f): f is Family => f !== undefined);
  }
  if (families.length === 0) families = [configured[0] ?? 'IPv4'];
  for (const [i, f] of families.entries()) {
    if (!configured.includes(f))
      throw fail(o, [invalidValue(`spec.ipFamilies[${i}]`, f, 'not configured on this cluster')]);
  }
  if (policy === 'RequireDualStack' && configured.length < 2) {
    throw fail(o, [
      invalidValue(
        'spec.ipFamilyPolicy',
        policy,
        'this cluster is not configured for dual-stack services',
      ),
    ]);
  }
  if (policy === 'SingleStack' && families.length > 1) {
    throw fail(o, [
      invalidValue(
        'spec.ipFamilies',
        families,
        'when spec.ipFamilyPolicy is SingleStack, only one IP family may be specified',
      ),
    ]);
  }
  if (policy !== 'SingleStack' && families.length === 1 && configured.length > 1) {
    families.push(configured.find((f) => f !== families[0]) ?? 'IPv6');
  }
  s.ipFamilyPolicy = policy;
  s.ipFamilies = families;
  if (given[0] === 'None') {
    s.clusterIP = 'None';
    s.clusterIPs = ['None'];
    return;
  }
  const used = new Set<string>();
  for (const other of cluster.list('core/services')) {
    if (
      other.metadata.uid === o.metadata.uid ||
      (other.metadata.name === o.metadata.name && other.metadata.namespace === o.metadata.namespace)
    )
      continue;
    for (const ip of asArray(spec(other).clusterIPs)) used.add(str(ip));
  }
  const wasIPs = old === undefined ? [] : asArray(spec(old).clusterIPs).map(String);
  const ips: string[] = [];
  for (const [i, family] of families.entries()) {
    const cidr = cluster.serviceCIDRs.find((c) => cidrFamily(c) === family) ?? '';
    const want = given[i] ?? wasIPs.find((ip) => familyOf(ip) === family);
    if (want !== undefined && want !== '') {
      if (familyOf(want) !== family) {
        throw fail(o, [
          invalidValue(`spec.clusterIPs[${i}]`, want, `expected an IP of family ${family}`),
        ]);
      }
      if (!inCIDR(want, cidr)) {
        throw fail(o, [
          invalidValue(
            `spec.clusterIPs[${i}]`,
            want,
            `failed to allocate IP ${want}: the provided IP (${want}) is not in the valid range. The range of valid IPs is ${cidr}`,
          ),
        ]);
      }
      if (used.has(want)) {
        throw fail(o, [
          invalidValue(
            `spec.clusterIPs[${i}]`,
            want,
            `failed to allocate IP ${want}: provided IP is already allocated`,
          ),
        ]);
      }
      ips.push(want);
    } else {
      const ip = firstFree(cidr, used);
      if (ip === undefined)
        throw new ApiError(500, 'InternalError', `failed to allocate a serviceIP: range is full`);
      ips.push(ip);
    }
  }
  s.clusterIP = ips[0];
  s.clusterIPs = ips;
}

function allocateNodePorts(o: KubeObject, cluster: ClusterView): void {
  const s = spec(o);
  const [lo, hi] = cluster.nodePortRange;
  const used = new Set<number>();
  for (const other of cluster.list('core/services')) {
    if (
      other.metadata.name === o.metadata.name &&
      other.metadata.namespace === o.metadata.namespace
    ) {
      continue;
    }
    for (const p of ports(spec(other))) if (typeof p.nodePort === 'number') used.add(p.nodePort);
    const hc = spec(other).healthCheckNodePort;
    if (typeof hc === 'number') used.add(hc);
  }
  const wants = (p: Obj): boolean =>
    needsNodePorts(s) ||
    (s.type === 'LoadBalancer' && typeof p.nodePort === 'number' && p.nodePort !== 0);
  // Ports the Service names are reserved first, then the missing ones are
  // handed out; one node port may serve the same port number over two protocols.
  const mine = new Map<number, Set<unknown>>();
  ports(s).forEach((p, i) => {
    if (!wants(p) || typeof p.nodePort !== 'number' || p.nodePort === 0) return;
    const field = `spec.ports[${i}].nodePort`;
    if (p.nodePort < lo || p.nodePort > hi) {
      throw fail(o, [
        invalidValue(
          field,
          p.nodePort,
          `provided port is not in the valid range. The range of valid ports is ${lo}-${hi}`,
        ),
      ]);
    }
    const protocols = mine.get(p.nodePort) ?? new Set();
    if (used.has(p.nodePort) || protocols.has(p.protocol)) {
      throw fail(o, [invalidValue(field, p.nodePort, 'provided port is already allocated')]);
    }
    mine.set(p.nodePort, protocols.add(p.protocol));
  });
  for (const p of mine.keys()) used.add(p);
  const take = (field: string): number => {
    for (let p = lo; p <= hi; p++) {
      if (!used.has(p)) {
        used.add(p);
        return p;
      }
    }
    throw fail(o, [invalidValue(field, 0, 'range is full')]);
  };
  ports(s).forEach((p, i) => {
    if (!wants(p)) delete p.nodePort;
    else if (typeof p.nodePort !== 'number' || p.nodePort === 0)
      p.nodePort = take(`spec.ports[${i}].nodePort`);
  });
  if (s.type === 'LoadBalancer' && s.externalTrafficPolicy === 'Local') {
    const hc = s.healthCheckNodePort;
    if (typeof hc === 'number' && hc !== 0) {
      if (used.has(hc))
        throw fail(o, [
          invalidValue('spec.healthCheckNodePort', hc, 'provided port is already allocated'),
        ]);
    } else s.healthCheckNodePort = take('spec.healthCheckNodePort');
  } else delete s.healthCheckNodePort;
}

// The server prints wide (kubectl hides priority-1 columns itself), so the
// ingress list is never cut to 16 characters here.
function externalIP(o: KubeObject, wide: boolean): string {
  const s = spec(o);
  const extra = asArray(s.externalIPs).map(String);
  switch (s.type) {
    case 'ClusterIP':
    case 'NodePort':
      return extra.length > 0 ? extra.join(',') : '<none>';
    case 'LoadBalancer': {
      const status = isObj(o.status) && isObj(o.status.loadBalancer) ? o.status.loadBalancer : {};
      let lb = asArray(status.ingress)
        .filter(isObj)
        .map((i) => str(i.ip ?? i.hostname ?? ''))
        .filter((x) => x !== '')
        .join(',');
      if (!wide && lb.length > 16) lb = `${lb.slice(0, 13)}...`;
      const all = [lb, ...extra].filter((x) => x !== '');
      return all.length > 0 ? all.join(',') : '<pending>';
    }
    case 'ExternalName':
      return str(s.externalName ?? '');
    default:
      return '<unknown>';
  }
}

function portString(o: KubeObject): string {
  const list = ports(spec(o));
  if (list.length === 0) return '<none>';
  return list
    .map((p) =>
      typeof p.nodePort === 'number'
        ? `${str(p.port)}:${p.nodePort}/${str(p.protocol)}`
        : `${str(p.port)}/${str(p.protocol)}`,
    )
    .join(',');
}

function selectorString(o: KubeObject): string {
  const sel = spec(o).selector;
  if (!isObj(sel) || Object.keys(sel).length === 0) return '<none>';
  return Object.keys(sel)
    .sort()
    .map((k) => `${k}=${str(sel[k])}`)
    .join(',');
}

export const serviceType = builtin({
  group: '',
  version: 'v1',
  kind: 'Service',
  model: 'V1Service',
  plural: 'services',
  namespaced: true,
  shortNames: ['svc'],
  categories: ['all'],
  status: true,
  returnDeletedObject: true,
  nameRule: dns1035Label,
  patchMeta: builtinPatchMeta({
    'spec.ports': { strategy: 'merge', mergeKey: 'port' },
    'status.conditions': { strategy: 'merge', mergeKey: 'type' },
  }),
  hooks: {
    defaults,
    validate: validateSpec,
    validateStatus,
    initialStatus: () => ({ loadBalancer: {} }),
    allocate(o, old, cluster) {
      allocateIPs(o, old, cluster);
      allocateNodePorts(o, cluster);
    },
  },
  columns: [
    nameColumn,
    column('Type', (o) => spec(o).type ?? '', {
      description: 'type determines how the Service is exposed.',
    }),
    column('Cluster-IP', (o) => spec(o).clusterIP ?? '<none>', {
      description: 'clusterIP is the IP address of the service.',
    }),
    column('External-IP', (o) => externalIP(o, true), {
      description:
        'List of IP addresses for which nodes in the cluster will also accept traffic for this service.',
    }),
    column('Port(s)', portString, {
      description: 'The list of ports that are exposed by this service.',
    }),
    ageColumn,
    column('Selector', selectorString, {
      priority: 1,
      description:
        'Route service traffic to pods with label keys and values matching this selector.',
    }),
  ],
});
