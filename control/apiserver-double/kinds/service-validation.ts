// v1 Service validation: the rules of k8s.io/kubernetes/pkg/apis/core/validation
// that a load balancer meets (types, ports, traffic policies, source ranges,
// class, IP families, immutable cluster IPs) and the status a load balancer
// writes (ingress addresses, ipMode, conditions), with the real wording.
import {
  duplicate,
  forbiddenField,
  invalidValue,
  notSupported,
  required,
  type Cause,
} from '../errors.js';
import { isCIDR, isIP } from '../ip.js';
import { asArray, asString, isObj, str, type Obj } from '../json.js';
import { dns1123Label, ianaServiceName, qualifiedName } from '../names.js';
import type { KubeObject } from '../types.js';
import { external, ports, spec } from './service-shape.js';

const TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];
const PROTOCOLS = ['TCP', 'UDP', 'SCTP'];
const POLICIES = ['SingleStack', 'PreferDualStack', 'RequireDualStack'];

function validatePorts(s: Obj, causes: Cause[]): void {
  const list = ports(s);
  if (list.length === 0 && s.type !== 'ExternalName' && s.clusterIP !== 'None') {
    causes.push(required('spec.ports'));
  }
  const names = new Set<string>();
  const seen = new Set<string>();
  list.forEach((p, i) => {
    const f = `spec.ports[${i}]`;
    const name = asString(p.name) ?? '';
    if (list.length > 1 && name === '') causes.push(required(`${f}.name`));
    if (name !== '') {
      for (const e of dns1123Label(name)) causes.push(invalidValue(`${f}.name`, name, e));
      if (names.has(name)) causes.push(duplicate(`${f}.name`, name));
      names.add(name);
    }
    const port = p.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      causes.push(
        port === undefined
          ? required(`${f}.port`)
          : invalidValue(`${f}.port`, port, 'must be between 1 and 65535, inclusive'),
      );
    }
    if (!PROTOCOLS.includes(str(p.protocol)))
      causes.push(notSupported(`${f}.protocol`, p.protocol, PROTOCOLS));
    const key = `${str(port)}/${str(p.protocol)}`;
    if (seen.has(key)) causes.push(duplicate(f, { port, protocol: p.protocol }));
    seen.add(key);
    const tp = p.targetPort;
    if (typeof tp === 'number') {
      if (!Number.isInteger(tp) || tp < 1 || tp > 65535) {
        causes.push(invalidValue(`${f}.targetPort`, tp, 'must be between 1 and 65535, inclusive'));
      }
    } else if (typeof tp === 'string') {
      for (const e of ianaServiceName(tp)) causes.push(invalidValue(`${f}.targetPort`, tp, e));
    }
    if (p.nodePort !== undefined && p.nodePort !== 0 && !external(s)) {
      causes.push(
        forbiddenField(`${f}.nodePort`, `may not be used when \`type\` is '${str(s.type)}'`),
      );
    }
  });
}

export function validateSpec(o: KubeObject, old: KubeObject | undefined): Cause[] {
  const causes: Cause[] = [];
  const s = spec(o);
  if (!TYPES.includes(str(s.type))) causes.push(notSupported('spec.type', s.type, TYPES));
  if (s.type === 'ExternalName' && !asString(s.externalName))
    causes.push(required('spec.externalName'));
  validatePorts(s, causes);
  if (s.type !== 'ExternalName' && !['None', 'ClientIP'].includes(str(s.sessionAffinity))) {
    causes.push(notSupported('spec.sessionAffinity', s.sessionAffinity, ['ClientIP', 'None']));
  }
  const timeout = (
    s.sessionAffinityConfig as { clientIP?: { timeoutSeconds?: unknown } } | undefined
  )?.clientIP?.timeoutSeconds;
  if (
    s.sessionAffinity === 'ClientIP' &&
    (typeof timeout !== 'number' || timeout < 1 || timeout > 86400)
  ) {
    causes.push(
      invalidValue(
        'spec.sessionAffinityConfig.clientIP.timeoutSeconds',
        timeout,
        'must be greater than 0 and less than 86400',
      ),
    );
  }
  if (s.externalTrafficPolicy !== undefined) {
    if (!external(s)) {
      causes.push(
        invalidValue(
          'spec.externalTrafficPolicy',
          s.externalTrafficPolicy,
          'may only be set for externally-accessible services',
        ),
      );
    } else if (!['Cluster', 'Local'].includes(str(s.externalTrafficPolicy))) {
      causes.push(
        notSupported('spec.externalTrafficPolicy', s.externalTrafficPolicy, ['Cluster', 'Local']),
      );
    }
  }
  if (
    s.internalTrafficPolicy !== undefined &&
    !['Cluster', 'Local'].includes(str(s.internalTrafficPolicy))
  ) {
    causes.push(
      notSupported('spec.internalTrafficPolicy', s.internalTrafficPolicy, ['Cluster', 'Local']),
    );
  }
  if (s.loadBalancerIP !== undefined && s.loadBalancerIP !== '' && !isIP(str(s.loadBalancerIP))) {
    causes.push(
      invalidValue('spec.loadBalancerIP', s.loadBalancerIP, 'must be a valid IP address'),
    );
  }
  const ranges = asArray(s.loadBalancerSourceRanges);
  if (ranges.length > 0 && s.type !== 'LoadBalancer') {
    causes.push(
      forbiddenField(
        'spec.loadBalancerSourceRanges',
        "may only be used when `type` is 'LoadBalancer'",
      ),
    );
  }
  ranges.forEach((r, i) => {
    if (typeof r !== 'string' || !isCIDR(r.trim())) {
      causes.push(
        invalidValue(
          `spec.loadBalancerSourceRanges[${i}]`,
          r,
          'must be a valid IP address range (CIDR)',
        ),
      );
    }
  });
  if (s.loadBalancerClass !== undefined) {
    if (s.type !== 'LoadBalancer') {
      causes.push(
        forbiddenField('spec.loadBalancerClass', "may only be used when `type` is 'LoadBalancer'"),
      );
    } else {
      for (const e of qualifiedName(str(s.loadBalancerClass))) {
        causes.push(invalidValue('spec.loadBalancerClass', s.loadBalancerClass, e));
      }
    }
  }
  if (old !== undefined) {
    const was = spec(old);
    if (
      was.type === 'LoadBalancer' &&
      s.type === 'LoadBalancer' &&
      was.loadBalancerClass !== s.loadBalancerClass
    ) {
      causes.push(
        invalidValue(
          'spec.loadBalancerClass',
          s.loadBalancerClass ?? null,
          'may not change once set',
        ),
      );
    }
    const wasIPs = asArray(was.clusterIPs);
    const nowIPs = asArray(s.clusterIPs);
    if (
      was.type !== 'ExternalName' &&
      s.type !== 'ExternalName' &&
      wasIPs.length > 0 &&
      nowIPs.length > 0 &&
      wasIPs[0] !== nowIPs[0]
    ) {
      causes.push(invalidValue('spec.clusterIPs[0]', nowIPs, 'may not change once set'));
    }
    if (
      was.clusterIP !== undefined &&
      s.clusterIP !== undefined &&
      was.clusterIP !== s.clusterIP &&
      was.type !== 'ExternalName' &&
      s.type !== 'ExternalName'
    ) {
      causes.push(invalidValue('spec.clusterIP', s.clusterIP, 'field is immutable'));
    }
  }
  if (s.allocateLoadBalancerNodePorts !== undefined && s.type !== 'LoadBalancer') {
    causes.push(
      forbiddenField(
        'spec.allocateLoadBalancerNodePorts',
        "may only be used when `type` is 'LoadBalancer'",
      ),
    );
  }
  if (s.ipFamilyPolicy !== undefined && !POLICIES.includes(str(s.ipFamilyPolicy))) {
    causes.push(notSupported('spec.ipFamilyPolicy', s.ipFamilyPolicy, POLICIES));
  }
  const families = asArray(s.ipFamilies);
  families.forEach((f, i) => {
    if (f !== 'IPv4' && f !== 'IPv6')
      causes.push(notSupported(`spec.ipFamilies[${i}]`, f, ['IPv4', 'IPv6']));
    if (families.indexOf(f) !== i) causes.push(duplicate(`spec.ipFamilies[${i}]`, f));
  });
  if (families.length > 2)
    causes.push(
      invalidValue(
        'spec.ipFamilies',
        families,
        'may specify no more than one IP for each IP family',
      ),
    );
  const ips = asArray(s.clusterIPs);
  if (ips.length > 0 && s.clusterIP !== undefined && ips[0] !== s.clusterIP) {
    causes.push(invalidValue('spec.clusterIPs', ips, 'must match `clusterIP` when specified'));
  }
  for (const [i, ip] of (ips.length > 0
    ? ips
    : s.clusterIP !== undefined
      ? [s.clusterIP]
      : []
  ).entries()) {
    if (ip !== 'None' && ip !== '' && !isIP(str(ip))) {
      causes.push(
        invalidValue(`spec.clusterIPs[${i}]`, ip, "must be empty, 'None', or a valid IP address"),
      );
    }
  }
  return causes;
}

export function validateStatus(o: KubeObject): Cause[] {
  const causes: Cause[] = [];
  const status = isObj(o.status) ? o.status : {};
  const lb = isObj(status.loadBalancer) ? status.loadBalancer : {};
  asArray(lb.ingress).forEach((ing, i) => {
    const f = `status.loadBalancer.ingress[${i}]`;
    if (!isObj(ing)) return;
    if (ing.ip !== undefined && !isIP(str(ing.ip)))
      causes.push(invalidValue(`${f}.ip`, ing.ip, 'must be a valid IP address'));
    if (ing.hostname !== undefined && isIP(str(ing.hostname))) {
      causes.push(
        invalidValue(`${f}.hostname`, ing.hostname, 'must be a DNS name, not an IP address'),
      );
    }
    if (ing.ipMode !== undefined) {
      if (ing.ip === undefined)
        causes.push(forbiddenField(`${f}.ipMode`, 'may not be specified when `ip` is not'));
      if (!['VIP', 'Proxy'].includes(str(ing.ipMode)))
        causes.push(notSupported(`${f}.ipMode`, ing.ipMode, ['Proxy', 'VIP']));
    }
  });
  asArray(status.conditions).forEach((c, i) => {
    const f = `status.conditions[${i}]`;
    if (!isObj(c)) return;
    if (!asString(c.type)) causes.push(required(`${f}.type`));
    if (!['True', 'False', 'Unknown'].includes(str(c.status))) {
      causes.push(notSupported(`${f}.status`, c.status, ['False', 'True', 'Unknown']));
    }
    if (!asString(c.reason)) causes.push(required(`${f}.reason`));
    else if (!/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/.test(str(c.reason))) {
      causes.push(
        invalidValue(
          `${f}.reason`,
          c.reason,
          "a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'",
        ),
      );
    }
    if (c.lastTransitionTime === undefined)
      causes.push(required(`${f}.lastTransitionTime`, 'must be set'));
  });
  return causes;
}
