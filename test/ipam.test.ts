// The LB IP allocator: pools, requests, sharing, dual stack, restore-before-
// allocate stability, pool edits, MetalLB annotations, and cost that does not
// grow with the size of a pool.
import type { V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';

import {
  AddressSpace,
  allocate,
  allocationReasonNames,
  Allocator,
  toIPPoolStatus,
  type AllocationInput,
  type AllocationResult,
  type PoolStatus,
} from '../control/ipam/index.js';
import type { LabelSelector } from '../control/resources/label-selector.js';

import { shuffled } from './support/shuffle.js';

const XLB = 'xlb.dev/xlb';

interface PoolOpts {
  autoAssign?: boolean;
  avoidBuggyIPs?: boolean;
  disabled?: boolean;
  serviceSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  created?: string;
}

function pool(name: string, addresses: string[], o: PoolOpts = {}): unknown {
  return {
    apiVersion: 'xlb.dev/v1alpha1',
    kind: 'IPPool',
    metadata: { name, ...(o.created !== undefined ? { creationTimestamp: o.created } : {}) },
    spec: {
      addresses,
      ...(o.autoAssign !== undefined ? { autoAssign: o.autoAssign } : {}),
      ...(o.avoidBuggyIPs !== undefined ? { avoidBuggyIPs: o.avoidBuggyIPs } : {}),
      ...(o.disabled !== undefined ? { disabled: o.disabled } : {}),
      ...(o.serviceSelector !== undefined ? { serviceSelector: o.serviceSelector } : {}),
      ...(o.namespaceSelector !== undefined ? { namespaceSelector: o.namespaceSelector } : {}),
    },
  };
}

interface SvcOpts {
  ns?: string;
  /** status.loadBalancer.ingress */
  ips?: string[];
  /** Seconds after a fixed epoch; services without one sort first. */
  created?: number;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  loadBalancerIP?: string;
  families?: string[];
  policy?: string;
  /** `80/TCP` style; default 80/TCP. */
  ports?: string[];
  etp?: string;
  selector?: Record<string, string>;
  /** Default xlb's class; null leaves it out. */
  cls?: string | null;
  type?: string;
  deleting?: boolean;
}

const EPOCH = Date.UTC(2024, 0, 1);

function svc(name: string, o: SvcOpts = {}): V1Service {
  const cls = o.cls === undefined ? XLB : o.cls;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: o.ns ?? 'default',
      ...(o.created !== undefined ? { creationTimestamp: new Date(EPOCH + o.created * 1000) } : {}),
      ...(o.annotations !== undefined ? { annotations: o.annotations } : {}),
      ...(o.labels !== undefined ? { labels: o.labels } : {}),
      ...(o.deleting === true ? { deletionTimestamp: new Date(EPOCH) } : {}),
    },
    spec: {
      type: o.type ?? 'LoadBalancer',
      ...(cls !== null ? { loadBalancerClass: cls } : {}),
      ports: (o.ports ?? ['80/TCP']).map((p, i) => {
        const [port, protocol] = p.split('/');
        return { name: `p${i}`, port: Number(port), protocol: protocol ?? 'TCP' };
      }),
      ...(o.loadBalancerIP !== undefined ? { loadBalancerIP: o.loadBalancerIP } : {}),
      ...(o.families !== undefined ? { ipFamilies: o.families } : {}),
      ...(o.policy !== undefined ? { ipFamilyPolicy: o.policy } : {}),
      externalTrafficPolicy: o.etp ?? 'Cluster',
      ...(o.selector !== undefined ? { selector: o.selector } : {}),
    },
    status: { loadBalancer: { ingress: (o.ips ?? []).map((ip) => ({ ip, ipMode: 'VIP' })) } },
  };
}

const short = (key: string): string => key.replace(/^default\//, '');

/** `name -> "addr,addr"` or `name -> "pending reason"` (or `"reason: addr"` for non-default reasons). */
function view(result: AllocationResult): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of result.services) {
    const addrs = s.addresses.map((a) => a.address).join(',');
    out[short(s.service)] = s.pending
      ? `pending ${s.reason}${addrs === '' ? '' : `: ${addrs}`}`
      : s.reason === 'allocated' || s.reason === 'restored'
        ? addrs
        : `${s.reason}: ${addrs}`;
  }
  return out;
}

/** `service Reason detail address` per event. */
function eventView(result: AllocationResult): string[] {
  return result.events.map((e) =>
    [short(e.service), e.reason, e.detail, e.address].filter((x) => x !== undefined).join(' '),
  );
}

function message(result: AllocationResult, name: string): string {
  const s = result.services.find((x) => short(x.service) === name);
  if (s === undefined) throw new Error(`no result for ${name}`);
  return s.message;
}

function poolOf(result: AllocationResult, name: string): PoolStatus {
  const p = result.pools.find((x) => x.name === name);
  if (p === undefined) throw new Error(`no pool ${name}`);
  return p;
}

/** Writes the result into the Services' status, as the Kubernetes layer would. */
function withStatus(services: V1Service[], result: AllocationResult): V1Service[] {
  const byKey = new Map(result.services.map((s) => [s.service, s]));
  return services.map((s) => {
    const r = byKey.get(`${s.metadata?.namespace ?? 'default'}/${s.metadata?.name}`);
    if (r === undefined) return s;
    return {
      ...s,
      status: {
        loadBalancer: { ingress: r.addresses.map((a) => ({ ip: a.address, ipMode: 'VIP' })) },
      },
    };
  });
}

interface Case {
  name: string;
  pools: unknown[];
  services: V1Service[];
  namespaces?: AllocationInput['namespaces'];
  options?: AllocationInput['options'];
  /** Exactly these Services (default namespace left out), as view() writes them. */
  expect: Record<string, string>;
  /** Exactly these events, in order, as eventView() writes them. */
  events?: string[];
  /** Substrings of a Service's message. */
  messages?: Record<string, string | RegExp>;
}

const v4 = pool('v4', ['192.0.2.0/28']);
const v6 = pool('v6', ['2001:db8::/124']);

const cases: Case[] = [
  // Basics and order.
  {
    name: 'new Services get the lowest free addresses, oldest first',
    pools: [v4],
    services: [svc('b', { created: 1 }), svc('a', { created: 2 }), svc('c', { created: 1 })],
    expect: { b: '192.0.2.0', c: '192.0.2.1', a: '192.0.2.2' },
    events: [
      'a IPAllocated allocated 192.0.2.2',
      'b IPAllocated allocated 192.0.2.0',
      'c IPAllocated allocated 192.0.2.1',
    ],
  },
  {
    name: 'held addresses are restored before anything new is allocated',
    pools: [v4],
    services: [
      svc('old-new', { created: 1 }),
      svc('young-holder', { created: 9, ips: ['192.0.2.0'] }),
    ],
    expect: { 'old-new': '192.0.2.1', 'young-holder': '192.0.2.0' },
    events: ['old-new IPAllocated allocated 192.0.2.1'],
  },
  {
    name: 'a held address outside every pool is released and replaced',
    pools: [v4],
    services: [svc('moved', { ips: ['198.51.100.7'] })],
    expect: { moved: '192.0.2.0' },
    events: ['moved IPReleased notInPool 198.51.100.7', 'moved IPAllocated allocated 192.0.2.0'],
  },
  {
    name: 'exhausted pools leave the youngest pending',
    pools: [pool('tiny', ['192.0.2.1-192.0.2.2'])],
    services: [svc('a', { created: 1 }), svc('b', { created: 2 }), svc('c', { created: 3 })],
    expect: { a: '192.0.2.1', b: '192.0.2.2', c: 'pending poolExhausted' },
    messages: {
      c: "no free IPv4 address in the IPPools that take this Service: 'tiny' (2 of 2 in use)",
    },
  },
  {
    name: 'no pool at all',
    pools: [],
    services: [svc('a')],
    expect: { a: 'pending noPoolForService' },
    events: ['a AllocationFailed noPoolForService'],
    messages: { a: 'no IPPool has IPv4 addresses' },
  },

  // loadBalancerClass.
  {
    name: 'only our class; other classes keep their status and it stays reserved',
    pools: [v4],
    services: [
      svc('theirs', { cls: 'example.com/lb', ips: ['192.0.2.0'] }),
      svc('classless', { cls: null, ips: ['192.0.2.1'] }),
      svc('cluster-ip', { type: 'ClusterIP', ips: ['192.0.2.2'] }),
      svc('ours'),
    ],
    expect: { ours: '192.0.2.2' },
  },
  {
    name: 'class-less Services are ours when xlb is the default implementation',
    pools: [v4],
    options: { defaultClass: true },
    services: [svc('classless', { cls: null, ips: ['192.0.2.5'] }), svc('named')],
    expect: { classless: '192.0.2.5', named: '192.0.2.0' },
  },
  {
    name: 'a requested address held by another implementation is in use',
    pools: [v4],
    services: [
      svc('theirs', { cls: 'example.com/lb', ips: ['192.0.2.3'] }),
      svc('ours', { loadBalancerIP: '192.0.2.3' }),
    ],
    expect: { ours: 'pending requestedIPInUse' },
    messages: { ours: /example.com|not served by xlb/ },
  },

  // autoAssign, selectors, disabled.
  {
    name: 'autoAssign false: only explicit requests, by address or by pool',
    pools: [
      pool('manual', ['192.0.2.0/29'], { autoAssign: false }),
      pool('auto', ['198.51.100.0/29']),
    ],
    services: [
      svc('plain'),
      svc('by-ip', { loadBalancerIP: '192.0.2.4' }),
      svc('by-pool', { annotations: { 'xlb.dev/address-pool': 'manual' } }),
    ],
    expect: { plain: '198.51.100.0', 'by-ip': '192.0.2.4', 'by-pool': '192.0.2.0' },
  },
  {
    name: 'autoAssign false and nothing else: pending, and the message says why',
    pools: [pool('manual', ['192.0.2.0/29'], { autoAssign: false })],
    services: [svc('plain')],
    expect: { plain: 'pending noPoolForService' },
    messages: { plain: "IPPool 'manual' has autoAssign: false" },
  },
  {
    name: 'a pool selecting Services is preferred by the ones it selects',
    pools: [
      pool('a-open', ['192.0.2.0/29']),
      pool('b-team', ['198.51.100.0/29'], { serviceSelector: { matchLabels: { team: 'b' } } }),
      pool('c-ns', ['203.0.113.0/29'], {
        namespaceSelector: {
          matchExpressions: [{ key: 'tier', operator: 'In', values: ['edge'] }],
        },
      }),
    ],
    namespaces: { edge: { tier: 'edge' } },
    services: [svc('plain'), svc('team-b', { labels: { team: 'b' } }), svc('edge', { ns: 'edge' })],
    expect: { plain: '192.0.2.0', 'team-b': '198.51.100.0', 'edge/edge': '203.0.113.0' },
  },
  {
    name: 'namespaceSelector can use the implied kubernetes.io/metadata.name label',
    pools: [
      pool('prod-only', ['192.0.2.0/29'], {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'prod' } },
      }),
    ],
    services: [svc('web', { ns: 'prod' }), svc('web', { ns: 'dev' })],
    expect: { 'prod/web': '192.0.2.0', 'dev/web': 'pending noPoolForService' },
    messages: {
      'dev/web': "IPPool 'prod-only': its namespaceSelector does not select namespace dev",
    },
  },
  {
    name: 'a selector that stops matching releases the address',
    pools: [pool('team-a', ['192.0.2.0/29'], { serviceSelector: { matchLabels: { team: 'a' } } })],
    services: [svc('moved-team', { labels: { team: 'b' }, ips: ['192.0.2.3'] })],
    expect: { 'moved-team': 'pending noPoolForService' },
    events: [
      'moved-team IPReleased notAdmitted 192.0.2.3',
      'moved-team AllocationFailed noPoolForService',
    ],
  },
  {
    name: 'a disabled pool releases what it gave and refuses requests',
    pools: [pool('off', ['192.0.2.0/29'], { disabled: true }), pool('on', ['198.51.100.0/29'])],
    services: [
      svc('held', { ips: ['192.0.2.2'] }),
      svc('asks', { loadBalancerIP: '192.0.2.5' }),
      svc('names', { annotations: { 'xlb.dev/address-pool': 'off' } }),
    ],
    expect: {
      held: '198.51.100.0',
      asks: 'pending poolUnavailable',
      names: 'pending poolUnavailable',
    },
    events: [
      'asks AllocationFailed poolUnavailable',
      'held IPReleased poolDisabled 192.0.2.2',
      'held IPAllocated allocated 198.51.100.0',
      'names AllocationFailed poolUnavailable',
    ],
    messages: { asks: "IPPool 'off' is disabled", names: "IPPool 'off' is disabled" },
  },

  // avoidBuggyIPs.
  {
    name: 'avoidBuggyIPs skips .0 and .255, for allocation, requests and restore',
    pools: [pool('edge', ['192.0.2.254-192.0.3.2'], { avoidBuggyIPs: true })],
    services: [
      svc('a', { created: 1 }),
      svc('b', { created: 2 }),
      svc('c', { created: 3 }),
      svc('asks-255', { loadBalancerIP: '192.0.2.255' }),
      svc('holds-0', { created: 0, ips: ['192.0.3.0'] }),
    ],
    expect: {
      'holds-0': '192.0.2.254',
      a: '192.0.3.1',
      b: '192.0.3.2',
      c: 'pending poolExhausted',
      'asks-255': 'pending requestedIPNotInPool',
    },
    messages: { 'asks-255': 'avoids .0 and .255' },
  },
  {
    name: 'avoidBuggyIPs does not touch IPv6',
    pools: [pool('six', ['2001:db8::ff-2001:db8::100'], { avoidBuggyIPs: true })],
    services: [
      svc('a', { families: ['IPv6'], created: 1 }),
      svc('b', { families: ['IPv6'], created: 2 }),
    ],
    expect: { a: '2001:db8::ff', b: '2001:db8::100' },
  },

  // Requests.
  {
    name: 'spec.loadBalancerIP, our annotation and MetalLB annotations are honoured',
    pools: [v4, v6],
    services: [
      svc('spec', { loadBalancerIP: '192.0.2.9' }),
      svc('ours', { annotations: { 'xlb.dev/load-balancer-ips': '192.0.2.10' } }),
      svc('metallb', { annotations: { 'metallb.io/loadBalancerIPs': '192.0.2.11' } }),
      svc('universe', { annotations: { 'metallb.universe.tf/loadBalancerIPs': '192.0.2.12' } }),
      svc('dual', {
        policy: 'RequireDualStack',
        families: ['IPv6', 'IPv4'],
        annotations: { 'metallb.io/loadBalancerIPs': '192.0.2.13, 2001:db8::000d' },
      }),
      svc('agree', {
        loadBalancerIP: '192.0.2.14',
        annotations: { 'xlb.dev/load-balancer-ips': '192.0.2.14' },
      }),
    ],
    expect: {
      spec: '192.0.2.9',
      ours: '192.0.2.10',
      metallb: '192.0.2.11',
      universe: '192.0.2.12',
      dual: '2001:db8::d,192.0.2.13',
      agree: '192.0.2.14',
    },
  },
  {
    name: 'explicit requests are served before automatic allocations of the same round',
    pools: [pool('tiny', ['192.0.2.1-192.0.2.2'])],
    services: [
      svc('auto', { created: 1 }),
      svc('asks', { created: 5, loadBalancerIP: '192.0.2.1' }),
    ],
    expect: { auto: '192.0.2.2', asks: '192.0.2.1' },
  },
  {
    name: 'requests outside the pools, in use, or malformed',
    pools: [v4],
    services: [
      svc('holder', { created: 1, ips: ['192.0.2.3'] }),
      svc('outside', { loadBalancerIP: '203.0.113.1' }),
      svc('taken', { loadBalancerIP: '192.0.2.3' }),
      svc('garbage', { annotations: { 'xlb.dev/load-balancer-ips': '192.0.2.300' } }),
      svc('two-v4', { annotations: { 'xlb.dev/load-balancer-ips': '192.0.2.5,192.0.2.6' } }),
      svc('disagree', {
        loadBalancerIP: '192.0.2.7',
        annotations: { 'metallb.io/loadBalancerIPs': '192.0.2.8' },
      }),
      svc('wrong-family', {
        annotations: { 'xlb.dev/load-balancer-ips': '2001:db8::1' },
        families: ['IPv4'],
      }),
      svc('bad-policy', { policy: 'Sometimes' }),
    ],
    expect: {
      holder: '192.0.2.3',
      outside: 'pending requestedIPNotInPool',
      taken: 'pending requestedIPInUse',
      garbage: 'pending invalidRequest',
      'two-v4': 'pending invalidRequest',
      disagree: 'pending invalidRequest',
      'wrong-family': 'pending invalidRequest',
      'bad-policy': 'pending invalidRequest',
    },
    messages: {
      outside: 'spec.loadBalancerIP asks for 203.0.113.1: no IPPool holds it',
      taken: 'default/holder holds it: this Service has no sharing key',
      garbage: "annotation xlb.dev/load-balancer-ips: '192.0.2.300' is not an IP address",
      'two-v4': 'names more than one IPv4 address',
      disagree:
        "annotation metallb.io/loadBalancerIPs ('192.0.2.8') and spec.loadBalancerIP ('192.0.2.7') disagree",
      'wrong-family': "asks for IPv6 address 2001:db8::1, but the Service's IP families are IPv4",
      'bad-policy': 'spec.ipFamilyPolicy "Sometimes" is not',
    },
  },
  {
    name: 'an invalid request keeps what the Service holds (a typo takes nothing away)',
    pools: [v4, v6],
    services: [
      svc('typo', { ips: ['192.0.2.4'], annotations: { 'xlb.dev/load-balancer-ips': 'nope' } }),
      svc('garbled-policy', {
        families: ['IPv6', 'IPv4'],
        policy: 'Dual',
        ips: ['2001:db8::4', '192.0.2.5'],
      }),
    ],
    expect: {
      typo: 'invalidRequest: 192.0.2.4',
      'garbled-policy': 'invalidRequest: 2001:db8::4,192.0.2.5',
    },
    events: [
      'garbled-policy AllocationFailed invalidRequest',
      'typo AllocationFailed invalidRequest',
    ],
    messages: { typo: 'keeps 192.0.2.4' },
  },
  {
    name: 'a changed request releases the old address and takes the new one',
    pools: [v4],
    services: [
      svc('moves', { ips: ['192.0.2.1'], loadBalancerIP: '192.0.2.9' }),
      svc('repools', {
        ips: ['192.0.2.2'],
        annotations: { 'metallb.io/address-pool': 'other' },
      }),
    ],
    expect: { moves: '192.0.2.9', repools: 'pending poolNotFound' },
    events: [
      'moves IPReleased requestChanged 192.0.2.1',
      'moves IPAllocated allocated 192.0.2.9',
      'repools IPReleased requestChanged 192.0.2.2',
      'repools AllocationFailed poolNotFound',
    ],
  },
  {
    name: 'address-pool annotations: ours, MetalLB, unknown, wrong pool for the address',
    pools: [pool('a', ['192.0.2.0/29']), pool('b', ['198.51.100.0/29'])],
    services: [
      svc('ours', { annotations: { 'xlb.dev/address-pool': 'b' } }),
      svc('metallb', { annotations: { 'metallb.io/address-pool': 'b' } }),
      svc('unknown', { annotations: { 'metallb.io/address-pool': 'c' } }),
      svc('mismatch', {
        loadBalancerIP: '192.0.2.3',
        annotations: { 'xlb.dev/address-pool': 'b' },
      }),
      svc('pools-disagree', {
        annotations: { 'xlb.dev/address-pool': 'a', 'metallb.io/address-pool': 'b' },
      }),
    ],
    expect: {
      ours: '198.51.100.1',
      metallb: '198.51.100.0',
      unknown: 'pending poolNotFound',
      mismatch: 'pending requestedIPNotInPool',
      'pools-disagree': 'pending invalidRequest',
    },
    messages: {
      unknown: "annotation metallb.io/address-pool asks for IPPool 'c', which does not exist",
      mismatch: "it is in IPPool 'a', but annotation xlb.dev/address-pool asks for 'b'",
    },
  },

  // Sharing.
  {
    name: 'same sharing key, different ports: one address (automatic and requested)',
    pools: [v4],
    services: [
      svc('http', {
        created: 1,
        ports: ['80/TCP'],
        annotations: { 'xlb.dev/allow-shared-ip': 'k' },
      }),
      svc('dns', {
        created: 2,
        ports: ['53/UDP'],
        annotations: { 'metallb.io/allow-shared-ip': 'k' },
      }),
      svc('tls', {
        created: 3,
        ports: ['443/TCP'],
        loadBalancerIP: '192.0.2.0',
        annotations: { 'metallb.universe.tf/allow-shared-ip': 'k' },
      }),
      svc('alone', { created: 4 }),
    ],
    expect: { http: '192.0.2.0', dns: '192.0.2.0', tls: '192.0.2.0', alone: '192.0.2.1' },
    messages: { dns: 'shared with default/http, default/tls' },
  },
  {
    name: 'a port clash puts an automatic Service on another address',
    pools: [v4],
    services: [
      svc('a', { created: 1, annotations: { 'xlb.dev/allow-shared-ip': 'k' } }),
      svc('b', { created: 2, annotations: { 'xlb.dev/allow-shared-ip': 'k' } }),
      svc('c', { created: 3, ports: ['81/TCP'], annotations: { 'xlb.dev/allow-shared-ip': 'k' } }),
    ],
    expect: { a: '192.0.2.0', b: '192.0.2.1', c: '192.0.2.0' },
  },
  {
    name: 'sharing conflicts on requested addresses',
    pools: [v4],
    services: [
      svc('owner', {
        created: 1,
        ips: ['192.0.2.5'],
        etp: 'Local',
        selector: { app: 'a' },
        annotations: { 'xlb.dev/allow-shared-ip': 'k' },
      }),
      svc('same-port', {
        loadBalancerIP: '192.0.2.5',
        etp: 'Local',
        selector: { app: 'a' },
        annotations: { 'xlb.dev/allow-shared-ip': 'k' },
      }),
      svc('cluster-policy', {
        loadBalancerIP: '192.0.2.5',
        ports: ['81/TCP'],
        annotations: { 'xlb.dev/allow-shared-ip': 'k' },
      }),
      svc('other-pods', {
        loadBalancerIP: '192.0.2.5',
        ports: ['82/TCP'],
        etp: 'Local',
        selector: { app: 'b' },
        annotations: { 'xlb.dev/allow-shared-ip': 'k' },
      }),
      svc('other-key', {
        loadBalancerIP: '192.0.2.5',
        ports: ['83/TCP'],
        etp: 'Local',
        selector: { app: 'a' },
        annotations: { 'xlb.dev/allow-shared-ip': 'j' },
      }),
      svc('same-pods', {
        loadBalancerIP: '192.0.2.5',
        ports: ['84/TCP'],
        etp: 'Local',
        selector: { app: 'a' },
        annotations: { 'xlb.dev/allow-shared-ip': 'k' },
      }),
    ],
    expect: {
      owner: '192.0.2.5',
      'same-port': 'pending sharingConflict',
      'cluster-policy': 'pending sharingConflict',
      'other-pods': 'pending sharingConflict',
      'other-key': 'pending requestedIPInUse',
      'same-pods': '192.0.2.5',
    },
    messages: {
      'same-port': 'both use port 80/TCP',
      'cluster-policy': 'externalTrafficPolicy differs',
      'other-pods': 'both must select the same pods',
      'other-key': "sharing key 'k', this Service 'j'",
    },
  },
  {
    name: 'two holders of one address that may not share: the older keeps it',
    pools: [v4],
    services: [
      svc('younger', { created: 2, ips: ['192.0.2.4'] }),
      svc('older', { created: 1, ips: ['192.0.2.4'] }),
    ],
    expect: { older: '192.0.2.4', younger: '192.0.2.0' },
    events: [
      'younger IPReleased sharingConflict 192.0.2.4',
      'younger IPAllocated allocated 192.0.2.0',
    ],
  },

  // Dual stack.
  {
    name: 'dual stack per ipFamilyPolicy and ipFamilies order',
    pools: [v4, v6],
    services: [
      svc('single4', { created: 1, families: ['IPv4'], policy: 'SingleStack' }),
      svc('single6', { created: 2, families: ['IPv6'], policy: 'SingleStack' }),
      svc('prefer', { created: 3, families: ['IPv4', 'IPv6'], policy: 'PreferDualStack' }),
      svc('require6first', { created: 4, families: ['IPv6', 'IPv4'], policy: 'RequireDualStack' }),
      svc('prefer-single-cluster', { created: 5, families: ['IPv4'], policy: 'PreferDualStack' }),
    ],
    expect: {
      single4: '192.0.2.0',
      single6: '2001:db8::',
      prefer: '192.0.2.1,2001:db8::1',
      require6first: '2001:db8::2,192.0.2.2',
      'prefer-single-cluster': '192.0.2.3',
    },
  },
  {
    name: 'PreferDualStack takes what there is; RequireDualStack all or nothing',
    pools: [v4],
    services: [
      svc('prefer', { created: 1, families: ['IPv4', 'IPv6'], policy: 'PreferDualStack' }),
      svc('require', { created: 2, families: ['IPv4', 'IPv6'], policy: 'RequireDualStack' }),
      svc('require-held', {
        created: 3,
        families: ['IPv4', 'IPv6'],
        policy: 'RequireDualStack',
        ips: ['192.0.2.9'],
      }),
      svc('prefer6', { created: 4, families: ['IPv6', 'IPv4'], policy: 'PreferDualStack' }),
    ],
    expect: {
      prefer: '192.0.2.0',
      require: 'pending dualStackUnavailable',
      'require-held': 'pending dualStackUnavailable',
      prefer6: '192.0.2.1',
    },
    events: [
      'prefer IPAllocated allocated 192.0.2.0',
      'prefer6 IPAllocated allocated 192.0.2.1',
      'require AllocationFailed dualStackUnavailable',
      'require-held IPReleased dualStackUnavailable 192.0.2.9',
      'require-held AllocationFailed dualStackUnavailable',
    ],
    messages: {
      prefer: 'no IPv6 address: no IPPool has IPv6 addresses',
      require: 'RequireDualStack, but no IPv6 address: no IPPool has IPv6 addresses',
    },
  },
  {
    name: 'requests and dual stack: a request names exactly what is wanted',
    pools: [v4, v6],
    services: [
      svc('holder6', { created: 1, families: ['IPv6'], ips: ['2001:db8::9'] }),
      svc('prefer-asks4', {
        families: ['IPv4', 'IPv6'],
        policy: 'PreferDualStack',
        loadBalancerIP: '192.0.2.5',
      }),
      svc('require-one-taken', {
        families: ['IPv4', 'IPv6'],
        policy: 'RequireDualStack',
        annotations: { 'xlb.dev/load-balancer-ips': '192.0.2.6,2001:db8::9' },
      }),
      svc('require-asks-one', {
        families: ['IPv4', 'IPv6'],
        policy: 'RequireDualStack',
        loadBalancerIP: '192.0.2.7',
      }),
      svc('single-asks-two', {
        families: ['IPv4'],
        annotations: { 'xlb.dev/load-balancer-ips': '192.0.2.8,2001:db8::8' },
      }),
      svc('auto', { created: 2 }),
    ],
    expect: {
      holder6: '2001:db8::9',
      'prefer-asks4': '192.0.2.5',
      // Its IPv6 address is taken, so it gets neither (next case: the IPv4 one stays free).
      'require-one-taken': 'pending requestedIPInUse',
      'require-asks-one': 'pending invalidRequest',
      'single-asks-two': 'pending invalidRequest',
      auto: '192.0.2.0',
    },
    messages: {
      'require-asks-one': 'names one address, but RequireDualStack needs one of each family',
      'single-asks-two':
        "asks for IPv6 address 2001:db8::8, but the Service's IP families are IPv4",
    },
  },
  {
    name: 'RequireDualStack does not keep half of a request',
    pools: [pool('one', ['192.0.2.6/32']), v6],
    services: [
      svc('holder6', { created: 1, families: ['IPv6'], ips: ['2001:db8::9'] }),
      svc('require-one-taken', {
        created: 2,
        families: ['IPv4', 'IPv6'],
        policy: 'RequireDualStack',
        annotations: { 'xlb.dev/load-balancer-ips': '192.0.2.6,2001:db8::9' },
      }),
      svc('auto', { created: 3 }),
    ],
    expect: {
      holder6: '2001:db8::9',
      'require-one-taken': 'pending requestedIPInUse',
      auto: '192.0.2.6',
    },
  },
  {
    name: 'a PreferDualStack Service that holds one family gains the other when it appears',
    pools: [v4, v6],
    services: [
      svc('grows', { families: ['IPv4', 'IPv6'], policy: 'PreferDualStack', ips: ['192.0.2.7'] }),
    ],
    expect: { grows: '192.0.2.7,2001:db8::' },
    events: ['grows IPAllocated allocated 2001:db8::'],
  },
  {
    name: 'a family the Service no longer asks for is released',
    pools: [v4, v6],
    services: [
      svc('shrinks', {
        families: ['IPv4'],
        policy: 'SingleStack',
        ips: ['192.0.2.7', '2001:db8::7'],
      }),
    ],
    expect: { shrinks: '192.0.2.7' },
    events: ['shrinks IPReleased familyNotRequested 2001:db8::7'],
  },
  {
    name: 'Services without ipFamilies (YAML directory): the requested family, else IPv4',
    pools: [v4, v6],
    services: [
      svc('plain'),
      svc('asks6', { loadBalancerIP: '2001:db8::5' }),
      svc('dual', { policy: 'RequireDualStack' }),
    ],
    // No creation times: by name, so dual goes first.
    expect: { plain: '192.0.2.1', asks6: '2001:db8::5', dual: '192.0.2.0,2001:db8::' },
  },

  // Overlap and invalid pools.
  {
    name: 'overlapping pools: the older keeps serving, the later is rejected',
    pools: [
      pool('young', ['192.0.2.8/29', '203.0.113.0/30'], { created: '2024-02-01T00:00:00Z' }),
      pool('old', ['192.0.2.0/28'], { created: '2024-01-01T00:00:00Z' }),
    ],
    services: [
      svc('a', { created: 1 }),
      svc('in-young-only', { loadBalancerIP: '203.0.113.1' }),
      svc('held-in-young', { created: 2, ips: ['203.0.113.2'] }),
    ],
    expect: {
      a: '192.0.2.0',
      'in-young-only': 'pending poolUnavailable',
      'held-in-young': '192.0.2.1',
    },
    events: [
      'a IPAllocated allocated 192.0.2.0',
      'held-in-young IPReleased poolRejected 203.0.113.2',
      'held-in-young IPAllocated allocated 192.0.2.1',
      'in-young-only AllocationFailed poolUnavailable',
    ],
    messages: {
      'in-young-only':
        "IPPool 'young' is rejected: '192.0.2.8/29' overlaps '192.0.2.0/28' of IPPool 'old'",
    },
  },
  {
    name: 'an invalid pool allocates nothing, the others keep working',
    pools: [pool('broken', ['192.0.2.0/28', 'banana']), pool('fine', ['198.51.100.0/29'])],
    services: [svc('a')],
    expect: { a: '198.51.100.0' },
  },

  // Pool edits.
  {
    name: 'a shrunk pool: covered addresses stay, the others move',
    pools: [pool('p', ['192.0.2.0/29'])],
    services: [
      svc('stays', { created: 1, ips: ['192.0.2.3'] }),
      svc('moves', { created: 2, ips: ['192.0.2.200'] }),
    ],
    expect: { stays: '192.0.2.3', moves: '192.0.2.0' },
    events: ['moves IPReleased notInPool 192.0.2.200', 'moves IPAllocated allocated 192.0.2.0'],
  },
  {
    name: 'an address whose pool was replaced by another covering it stays',
    pools: [pool('successor', ['192.0.2.0/24'])],
    services: [svc('kept', { ips: ['192.0.2.77'] })],
    expect: { kept: '192.0.2.77' },
    events: [],
  },

  // Deletion.
  {
    name: 'a Service being deleted keeps its address until it is gone, and gets nothing new',
    pools: [pool('tiny', ['192.0.2.1/32'])],
    services: [
      svc('leaving', { created: 5, deleting: true, ips: ['192.0.2.1'] }),
      svc('leaving-empty', { deleting: true }),
      svc('waiting', { created: 1 }),
    ],
    expect: {
      leaving: 'deleting: 192.0.2.1',
      'leaving-empty': 'deleting: ',
      waiting: 'pending poolExhausted',
    },
  },
];

describe('allocate', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const input: AllocationInput = {
      pools: c.pools,
      services: c.services,
      ...(c.namespaces !== undefined ? { namespaces: c.namespaces } : {}),
      ...(c.options !== undefined ? { options: c.options } : {}),
    };
    const result = allocate(input);
    expect(view(result)).toEqual(c.expect);
    if (c.events !== undefined) expect(eventView(result)).toEqual(c.events);
    for (const [name, m] of Object.entries(c.messages ?? {})) {
      if (typeof m === 'string') expect(message(result, name)).toContain(m);
      else expect(message(result, name)).toMatch(m);
    }
    // The same input in any order gives the same result.
    for (const seed of [1, 2, 3]) {
      const again = allocate({
        ...input,
        pools: shuffled(c.pools, seed),
        services: shuffled(c.services, seed),
      });
      expect(again).toEqual(result);
    }
    // Writing the result to status and allocating again changes nothing.
    const settled = allocate({ ...input, services: withStatus(c.services, result) });
    expect(view(settled)).toEqual(c.expect);
    expect(settled.services.filter((s) => s.changed)).toEqual([]);
    expect(settled.events.filter((e) => e.reason !== 'AllocationFailed')).toEqual([]);
  });

  it('gives only reasons from its table', () => {
    const seen = new Set<string>();
    for (const c of cases) {
      const r = allocate({ pools: c.pools, services: c.services, options: c.options ?? {} });
      for (const s of r.services) seen.add(s.reason);
      for (const e of r.events) seen.add(e.detail);
    }
    for (const reason of seen) expect(allocationReasonNames).toContain(reason);
    // Every reason in the table is reachable from the cases above.
    for (const reason of allocationReasonNames) expect([...seen], reason).toContain(reason);
  });

  it('marks changed exactly when status must be written', () => {
    const services = [
      svc('same', { ips: ['192.0.2.1'] }),
      svc('new'),
      svc('uncanonical', { families: ['IPv6'], ips: ['2001:DB8:0::1'] }),
      svc('pending-empty', { loadBalancerIP: '203.0.113.1' }),
    ];
    const r = allocate({ pools: [v4, v6], services });
    expect(Object.fromEntries(r.services.map((s) => [short(s.service), s.changed]))).toEqual({
      same: false,
      new: true,
      uncanonical: true,
      'pending-empty': false,
    });
    expect(view(r).uncanonical).toBe('2001:db8::1');
  });

  it('never throws on malformed Services or pools', () => {
    const weird = [
      { metadata: { name: 'no-spec' } },
      { spec: { type: 'LoadBalancer', loadBalancerClass: XLB } },
      {
        metadata: { name: 'odd', annotations: { 'xlb.dev/load-balancer-ips': 7 } },
        spec: {
          type: 'LoadBalancer',
          loadBalancerClass: XLB,
          ipFamilies: 'IPv4',
          ports: 'x',
          selector: [1],
        },
        status: { loadBalancer: { ingress: [{ hostname: 'lb.example.com' }, { ip: 'junk' }, 5] } },
      },
    ] as unknown as V1Service[];
    const r = allocate({
      pools: [null, 7, { metadata: { name: 'nospec' } }, pool('ok', ['192.0.2.0/30'])],
      services: weird,
    });
    expect(view(r)).toEqual({ odd: '192.0.2.0' });
    expect(poolOf(r, 'nospec').state).toBe('invalid');
  });
});

describe('pool status', () => {
  it('counts addresses per family, shared addresses once, foreign reservations too', () => {
    const r = allocate({
      pools: [
        pool('dual', ['192.0.2.0/28', '2001:db8::/64']),
        pool('bug', ['192.0.2.16/28'], { avoidBuggyIPs: true }),
      ],
      services: [
        svc('a', { annotations: { 'xlb.dev/allow-shared-ip': 'k' }, ports: ['80/TCP'] }),
        svc('b', { annotations: { 'xlb.dev/allow-shared-ip': 'k' }, ports: ['81/TCP'] }),
        svc('c', { families: ['IPv6'] }),
        svc('theirs', { cls: 'other.example/lb', ips: ['192.0.2.9'] }),
      ],
    });
    expect(poolOf(r, 'dual')).toEqual({
      name: 'dual',
      state: 'serving',
      // Only the foreign reservation: a and b went to 'bug', which sorts first.
      ipv4: { total: 16n, used: 1n, free: 15n },
      ipv6: { total: 1n << 64n, used: 1n, free: (1n << 64n) - 1n },
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'Serving',
          message:
            'IPv4: 1 of 16 addresses in use; IPv6: 1 of 18446744073709551616 addresses in use',
        },
        {
          type: 'Overlap',
          status: 'False',
          reason: 'NoOverlap',
          message: 'no address of this pool is in an earlier pool',
        },
        { type: 'Invalid', status: 'False', reason: 'Valid', message: 'the spec is valid' },
      ],
    });
    // 192.0.2.16/28 has no .0 or .255: nothing is skipped. a and b share one address.
    expect(poolOf(r, 'bug').ipv4).toEqual({ total: 16n, used: 1n, free: 15n });
    expect(view(r)).toEqual({ a: '192.0.2.16', b: '192.0.2.16', c: '2001:db8::' });
    const big = allocate({
      pools: [pool('b', ['10.0.0.0/8'], { avoidBuggyIPs: true })],
      services: [],
    });
    expect(poolOf(big, 'b').ipv4?.total).toBe((1n << 24n) - 2n * 65536n);
  });

  it('reports overlap, invalid and disabled pools with clear conditions', () => {
    const r = allocate({
      pools: [
        pool('b-same-time', ['192.0.2.4/30'], { created: '2024-01-01T00:00:00Z' }),
        pool('a-same-time', ['192.0.2.0/29'], { created: '2024-01-01T00:00:00Z' }),
        pool('c-later', ['192.0.2.6-192.0.2.20'], { created: '2024-03-01T00:00:00Z' }),
        pool('d-invalid', ['192.0.2.0/33']),
        pool('e-off', ['198.51.100.0/30'], { disabled: true }),
      ],
      services: [],
    });
    const summary = Object.fromEntries(
      r.pools.map((p) => [
        p.name,
        [p.state, ...p.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`)],
      ]),
    );
    expect(summary).toEqual({
      'a-same-time': [
        'serving',
        'Ready=True/Serving',
        'Overlap=False/NoOverlap',
        'Invalid=False/Valid',
      ],
      'b-same-time': [
        'overlap',
        'Ready=False/Overlap',
        'Overlap=True/OverlapsEarlierPool',
        'Invalid=False/Valid',
      ],
      // Judged against every earlier pool, the rejected one included.
      'c-later': [
        'overlap',
        'Ready=False/Overlap',
        'Overlap=True/OverlapsEarlierPool',
        'Invalid=False/Valid',
      ],
      'd-invalid': [
        'invalid',
        'Ready=False/Invalid',
        'Overlap=False/NoOverlap',
        'Invalid=True/InvalidSpec',
      ],
      'e-off': [
        'disabled',
        'Ready=False/Disabled',
        'Overlap=False/NoOverlap',
        'Invalid=False/Valid',
      ],
    });
    const overlap = poolOf(r, 'b-same-time').conditions.find((c) => c.type === 'Overlap')!;
    expect(overlap.message).toBe(
      "'192.0.2.4/30' overlaps '192.0.2.0/29' of IPPool 'a-same-time', which takes precedence " +
        '(created at the same time, and its name sorts first); this pool hands out no address until the overlap is removed',
    );
    expect(poolOf(r, 'c-later').conditions[1]!.message).toContain(
      "of IPPool 'a-same-time', which takes precedence (created earlier)",
    );
    expect(poolOf(r, 'd-invalid').conditions[2]!.message).toBe(
      "spec.addresses[0]: '192.0.2.0/33' has prefix length '33': IPv4 allows 0 to 32",
    );
    expect(poolOf(r, 'b-same-time').ipv4).toEqual({ total: 4n, used: 0n, free: 0n });
    expect(poolOf(r, 'e-off').ipv4).toEqual({ total: 4n, used: 0n, free: 0n });
  });

  it('toIPPoolStatus keeps a condition time until its status changes', () => {
    const r = allocate({ pools: [pool('p', ['192.0.2.0/30'])], services: [svc('a')] });
    const t0 = new Date('2024-05-01T10:00:00.123Z');
    const first = toIPPoolStatus(poolOf(r, 'p'), t0, undefined, 3);
    expect(first).toEqual({
      ipv4: { total: '4', used: 1, free: '3' },
      conditions: [
        expect.objectContaining({
          type: 'Ready',
          status: 'True',
          lastTransitionTime: '2024-05-01T10:00:00Z',
          observedGeneration: 3,
        }),
        expect.objectContaining({
          type: 'Overlap',
          status: 'False',
          lastTransitionTime: '2024-05-01T10:00:00Z',
        }),
        expect.objectContaining({
          type: 'Invalid',
          status: 'False',
          lastTransitionTime: '2024-05-01T10:00:00Z',
        }),
      ],
    });
    const disabled = allocate({
      pools: [pool('p', ['192.0.2.0/30'], { disabled: true })],
      services: [],
    });
    const later = toIPPoolStatus(poolOf(disabled, 'p'), new Date('2024-05-02T00:00:00Z'), first);
    expect(later.conditions.map((c) => [c.type, c.status, c.lastTransitionTime])).toEqual([
      ['Ready', 'False', '2024-05-02T00:00:00Z'],
      ['Overlap', 'False', '2024-05-01T10:00:00Z'],
      ['Invalid', 'False', '2024-05-01T10:00:00Z'],
    ]);
  });
});

describe('restarts and pool edits', () => {
  // A cluster's worth of Services of every kind, created over time.
  const pools = [
    pool('general', ['192.0.2.0/26', '2001:db8::/120']),
    pool('team-a', ['198.51.100.0/28'], { serviceSelector: { matchLabels: { team: 'a' } } }),
    pool('manual', ['203.0.113.0/28'], { autoAssign: false }),
  ];
  const services = Array.from({ length: 40 }, (_, i) => {
    const kind = i % 5;
    return svc(`s${String(i).padStart(2, '0')}`, {
      created: (i * 7) % 13,
      ...(kind === 1 ? { labels: { team: 'a' } } : {}),
      ...(kind === 2 ? { families: ['IPv4', 'IPv6'], policy: 'PreferDualStack' } : {}),
      ...(kind === 3
        ? { annotations: { 'xlb.dev/allow-shared-ip': 'web' }, ports: [`${8000 + i}/TCP`] }
        : {}),
      ...(kind === 4 && i < 20 ? { loadBalancerIP: `203.0.113.${i % 16}` } : {}),
    });
  });

  it('a restarted allocator, fed the Services in any order, changes no assigned address', () => {
    const first = allocate({ pools, services });
    const written = withStatus(services, first);
    const assigned = first.services.filter((s) => s.addresses.length > 0);
    expect(assigned.length).toBeGreaterThan(30);
    // Newcomers arrive while it was down, older than everyone, wanting the same addresses.
    const newcomers = [
      svc('early-bird', { created: -100 }),
      svc('early-asker', { created: -100, loadBalancerIP: '192.0.2.0' }),
      svc('early-team', { created: -100, labels: { team: 'a' } }),
    ];
    for (const seed of [11, 12, 13, 14, 15]) {
      const again = allocate({
        pools: shuffled(pools, seed),
        services: shuffled([...written, ...newcomers], seed),
      });
      for (const before of assigned) {
        const after = again.services.find((s) => s.service === before.service)!;
        expect(after.addresses, before.service).toEqual(before.addresses);
        expect(after.changed).toBe(false);
      }
      expect(view(again)['early-asker']).toBe('pending requestedIPInUse');
      expect(again.events.filter((e) => e.reason === 'IPReleased')).toEqual([]);
    }
  });

  it('an edited pool: covered addresses stay, the others are re-allocated with events', () => {
    const before = allocate({ pools, services });
    const written = withStatus(services, before);
    // general keeps only its first 16 IPv4 addresses, and gains 16 elsewhere.
    const edited = [
      pool('general', ['192.0.2.0/28', '192.0.2.128/28', '2001:db8::/120']),
      ...pools.slice(1),
    ];
    const after = allocate({ pools: edited, services: written });
    const inside = (a: string) => a.startsWith('192.0.2.') && Number(a.split('.')[3]) < 16;
    for (const b of before.services) {
      const a = after.services.find((s) => s.service === b.service)!;
      for (const addr of b.addresses) {
        const stillThere = a.addresses.some((x) => x.address === addr.address);
        if (addr.pool !== 'general' || addr.family === 6 || inside(addr.address))
          expect(stillThere, `${b.service} ${addr.address}`).toBe(true);
        else {
          expect(stillThere).toBe(false);
          expect(eventView(after)).toContain(
            `${short(b.service)} IPReleased notInPool ${addr.address}`,
          );
        }
      }
    }
    // Each Service that lost an address got a new one, is pending with a reason,
    // or (PreferDualStack) kept its other family and says what it lacks.
    const released = after.events.filter((e) => e.reason === 'IPReleased');
    expect(released.length).toBeGreaterThan(3);
    for (const e of released) {
      const s = after.services.find((x) => x.service === e.service)!;
      const events = after.events.filter((x) => x.service === e.service).map((x) => x.reason);
      if (events.includes('IPAllocated')) continue;
      if (s.pending) expect(events).toContain('AllocationFailed');
      else expect(s.message).toContain('no IPv4 address');
    }
    expect(after.events.filter((e) => e.reason === 'IPAllocated').length).toBeGreaterThan(0);
  });

  it('restoring is independent of input order even when holders conflict', () => {
    const conflicting = [
      svc('x', { created: 4, ips: ['192.0.2.9'] }),
      svc('y', { created: 3, ips: ['192.0.2.9'], annotations: { 'xlb.dev/allow-shared-ip': 'k' } }),
      svc('z', {
        created: 3,
        ips: ['192.0.2.9'],
        ports: ['81/TCP'],
        annotations: { 'xlb.dev/allow-shared-ip': 'k' },
      }),
      svc('w', { created: 3, ips: ['192.0.2.1', '192.0.2.2'] }),
    ];
    const expected = allocate({ pools: [v4], services: conflicting });
    // y is older than x, so keeps the address; z may share it with y.
    expect(view(expected)).toEqual({
      w: '192.0.2.1',
      x: '192.0.2.0',
      y: '192.0.2.9',
      z: '192.0.2.9',
    });
    expect(eventView(expected)).toEqual([
      'w IPReleased familyNotRequested 192.0.2.2',
      'x IPReleased sharingConflict 192.0.2.9',
      'x IPAllocated allocated 192.0.2.0',
    ]);
    for (let seed = 0; seed < 10; seed++)
      expect(allocate({ pools: [v4], services: shuffled(conflicting, seed) })).toEqual(expected);
  });
});

describe('Allocator', () => {
  it('counts its own unconfirmed assignments as held, so a stale status never doubles an address', () => {
    const allocator = new Allocator();
    const a = svc('a', { created: 1 });
    const first = allocator.reconcile({ pools: [v4], services: [a] });
    expect(view(first)).toEqual({ a: '192.0.2.0' });
    // The status write has not reached us yet; a request for the same address arrives.
    const b = svc('b', { created: 2, loadBalancerIP: '192.0.2.0' });
    const second = allocator.reconcile({ pools: [v4], services: [a, b] });
    expect(view(second)).toEqual({ a: '192.0.2.0', b: 'pending requestedIPInUse' });
    // Without that memory (a plain allocate on the stale view), b would win it.
    expect(view(allocate({ pools: [v4], services: [a, b] })).b).toBe('192.0.2.0');
    expect(second.events.map((e) => e.reason)).toEqual(['AllocationFailed']);
  });

  it('reports a pending Service once until its reason changes', () => {
    const allocator = new Allocator();
    const services = [svc('a', { loadBalancerIP: '203.0.113.1' })];
    expect(eventView(allocator.reconcile({ pools: [v4], services }))).toEqual([
      'a AllocationFailed requestedIPNotInPool',
    ]);
    expect(eventView(allocator.reconcile({ pools: [v4], services }))).toEqual([]);
    // The same reason and message again (another pool set, same verdict): nothing new.
    expect(eventView(allocator.reconcile({ pools: [], services }))).toEqual([]);
    const off = pool('x', ['203.0.113.0/30'], { disabled: true });
    expect(eventView(allocator.reconcile({ pools: [off], services }))).toEqual([
      'a AllocationFailed poolUnavailable',
    ]);
    expect(
      eventView(allocator.reconcile({ pools: [pool('x', ['203.0.113.0/30'])], services })),
    ).toEqual(['a IPAllocated allocated 203.0.113.1']);
    allocator.reset();
    expect(view(allocator.reconcile({ pools: [v4], services: [svc('b')] }))).toEqual({
      b: '192.0.2.0',
    });
  });

  it('passes its options on', () => {
    const allocator = new Allocator({ defaultClass: true, loadBalancerClass: 'example.com/mine' });
    const r = allocator.reconcile({
      pools: [v4],
      services: [
        svc('classless', { cls: null }),
        svc('mine', { cls: 'example.com/mine' }),
        svc('xlb'),
      ],
    });
    expect(view(r)).toEqual({ classless: '192.0.2.0', mine: '192.0.2.1' });
  });
});

describe('AddressSpace', () => {
  it('takes, releases and finds the lowest free address across blocks', () => {
    const s = new AddressSpace(
      4,
      [
        { first: 10n, last: 12n },
        { first: 20n, last: 21n },
        { first: 13n, last: 13n },
      ],
      false,
    );
    expect(s.size).toBe(6n);
    const got: bigint[] = [];
    for (let v = s.lowestFree(); v !== undefined; v = s.lowestFree()) {
      expect(s.take(v)).toBe(true);
      got.push(v);
    }
    expect(got).toEqual([10n, 11n, 12n, 13n, 20n, 21n]);
    expect(s.take(11n)).toBe(false);
    expect(s.take(15n)).toBe(false);
    expect(s.release(12n)).toBe(true);
    expect(s.release(12n)).toBe(false);
    expect(s.lowestFree()).toBe(12n);
    expect(s.release(20n)).toBe(true);
    expect([s.isTaken(13n), s.isTaken(20n), s.isTaken(21n), s.used]).toEqual([
      true,
      false,
      true,
      4n,
    ]);
    expect(s.takeAll([20n, 12n, 99n])).toBe(2);
    expect(s.lowestFree()).toBeUndefined();
  });

  it('avoids .0 and .255 across /24 boundaries, taking and releasing', () => {
    const base = 0xc0000200n; // 192.0.2.0
    const s = new AddressSpace(4, [{ first: base + 250n, last: base + 260n }], true);
    expect(s.size).toBe(9n); // .250-.254 and 3.1-3.4
    const got: bigint[] = [];
    for (let v = s.lowestFree(); v !== undefined; v = s.lowestFree()) {
      s.take(v);
      got.push(v - base);
    }
    expect(got).toEqual([250n, 251n, 252n, 253n, 254n, 257n, 258n, 259n, 260n]);
    expect(s.take(base + 255n)).toBe(false);
    s.release(base + 254n);
    s.release(base + 257n);
    expect(s.lowestFree()! - base).toBe(254n);
    s.take(base + 254n);
    expect(s.lowestFree()! - base).toBe(257n);
    s.take(base + 257n);
    expect(s.lowestFree()).toBeUndefined();
  });

  it('agrees with a brute-force model on random operations', () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (const avoid of [false, true]) {
      const blocks = [
        { first: 250n, last: 300n },
        { first: 500n, last: 530n },
        { first: 767n, last: 770n },
      ];
      const s = new AddressSpace(4, blocks, avoid);
      const allowed = (a: bigint) =>
        blocks.some((b) => b.first <= a && a <= b.last) &&
        !(avoid && (a % 256n === 0n || a % 256n === 255n));
      const taken = new Set<bigint>();
      for (let i = 0; i < 3000; i++) {
        const a = BigInt(240 + rand(540));
        if (rand(3) === 0) expect(s.release(a)).toBe(taken.delete(a));
        else {
          const ok = allowed(a) && !taken.has(a);
          expect(s.take(a)).toBe(ok);
          if (ok) taken.add(a);
        }
        let lowest: bigint | undefined;
        for (let x = 240n; x < 800n; x++)
          if (allowed(x) && !taken.has(x)) {
            lowest = x;
            break;
          }
        expect(s.lowestFree()).toBe(lowest);
        expect(s.used).toBe(BigInt(taken.size));
      }
    }
  });
});

describe('allocation cost does not grow with pool size', () => {
  /** Takes every third address of the first `n*3`, then allocates `n` more; returns probes per allocation. */
  function fragmentedCost(family: 4 | 6, first: bigint, last: bigint, n: number): number {
    const s = new AddressSpace(family, [{ first, last }], family === 4);
    s.takeAll(Array.from({ length: n }, (_, i) => first + 1n + BigInt(i) * 3n));
    s.probes = 0;
    for (let i = 0; i < n; i++) s.take(s.lowestFree()!);
    return s.probes / n;
  }

  it('probes per allocation are the same for a /20, a /8 and an IPv6 /64', () => {
    const small = fragmentedCost(4, 0x0a000000n, 0x0a000fffn, 1000);
    const huge = fragmentedCost(4, 0x0a000000n, 0x0affffffn, 1000);
    const v6huge = fragmentedCost(
      6,
      0x20010db8n << 96n,
      (0x20010db8n << 96n) + (1n << 64n) - 1n,
      1000,
    );
    // About 2 x log2(1000) binary-search steps; a linear scan would be ~n.
    expect(small).toBeLessThan(40);
    expect(Math.abs(huge - small)).toBeLessThan(1);
    expect(Math.abs(v6huge - small)).toBeLessThan(1);
  });

  it('allocating 1,000 Services from a /8 or an IPv6 /64 takes well under a second', () => {
    const many = (family: 'IPv4' | 'IPv6') => [
      ...Array.from({ length: 1000 }, (_, i) =>
        svc(`held${i}`, { created: 0, families: [family], ips: [] }),
      ),
      ...Array.from({ length: 1000 }, (_, i) => svc(`new${i}`, { created: 1, families: [family] })),
    ];
    const timed = (pools: unknown[], services: V1Service[]) => {
      const t0 = performance.now();
      const r = allocate({ pools, services });
      return { ms: performance.now() - t0, r };
    };
    // Half the Services hold scattered addresses, so "next free" cannot just append.
    const scatter = (services: V1Service[], addr: (i: number) => string) =>
      services.map((s, i) =>
        i < 1000 ? { ...s, status: { loadBalancer: { ingress: [{ ip: addr(i) }] } } } : s,
      );
    const v4svc = scatter(
      many('IPv4'),
      (i) => `10.${i % 7}.${(i * 13) % 256}.${((i * 29) % 250) + 1}`,
    );
    const v6svc = scatter(many('IPv6'), (i) => `2001:db8::${(i * 7919).toString(16)}`);
    const slash20 = timed(
      [pool('p', ['10.0.0.0/20'], { avoidBuggyIPs: true })],
      scatter(many('IPv4'), (i) => `10.0.${(i * 13) % 16}.${((i * 29) % 250) + 1}`),
    );
    const slash8 = timed([pool('p', ['10.0.0.0/8'], { avoidBuggyIPs: true })], v4svc);
    const slash64 = timed([pool('p', ['2001:db8::/64'])], v6svc);
    for (const { r } of [slash20, slash8, slash64])
      expect(r.services.filter((s) => s.pending)).toEqual([]);
    // A linear scan of a /8 per allocation would take minutes; these take milliseconds.
    expect(slash8.ms).toBeLessThan(1500);
    expect(slash64.ms).toBeLessThan(1500);
    expect(slash8.ms).toBeLessThan(slash20.ms * 5 + 200);
  });
});
