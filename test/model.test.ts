import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';

import {
  deriveNode,
  deriveService,
  indexNodes,
  reasonNames,
  type ModelOptions,
  type NodeModel,
  type Unit,
} from '../control/model/index.js';
import { endpoint, node, port, service, shuffled, slice } from './support/k8s-objects.js';

// The cluster most cases run in. node-c has no IPv6 address; node-d reports
// only an ExternalIP.
const nodes: V1Node[] = [
  node({ name: 'node-a', internal: ['198.51.100.1', '2001:db8:100::1'] }),
  node({ name: 'node-b', internal: ['198.51.100.2', '2001:db8:100::2'] }),
  node({ name: 'node-c', internal: ['198.51.100.3'] }),
  node({ name: 'node-d', external: ['203.0.113.200'] }),
];

/** A unit as the tables below write it: short strings, one line per fact. */
interface UnitView {
  frontends: string[];
  /** `identity state local|remote nodeAddress` */
  backends: string[];
  /** `address:port reason` */
  excluded: string[];
  affinity: number | 'none';
  ranges: string;
  tableSize: number;
}

function view(unit: Unit): UnitView {
  return {
    frontends: unit.frontends.map((f) => `${f.address}:${f.port}/${f.protocol}`),
    backends: unit.backends.map(
      (b) => `${b.identity} ${b.state} ${b.local ? 'local' : 'remote'} ${b.nodeAddress ?? '-'}`,
    ),
    excluded: unit.excluded.map((e) => `${e.address}:${e.port} ${e.reason}`),
    affinity: unit.affinityTimeoutSeconds ?? 'none',
    ranges: unit.sourceRanges.enforced ? `only ${unit.sourceRanges.cidrs.join(',')}` : 'all',
    tableSize: unit.tableSize,
  };
}

const short = (service: string): string => service.replace(/^default\//, '');

interface Case {
  name: string;
  services: V1Service[];
  slices?: V1EndpointSlice[];
  nodes?: V1Node[];
  /** Default node-a. */
  nodeName?: string;
  options?: Partial<ModelOptions>;
  /** Exactly these unit keys (default namespace left out); only the listed fields are checked. */
  units?: Record<string, Partial<UnitView>>;
  /** Exactly these decisions, as `service reason`, in any order. */
  decisions?: string[];
  /** Exactly these announce decisions, as `service address yes|no reason weight`. */
  announce?: string[];
}

const cases: Case[] = [
  {
    name: 'unmanaged services, one per reason',
    services: [
      service({ name: 'cluster-ip', type: 'ClusterIP', ips: ['192.0.2.1'] }),
      service({ name: 'no-type', type: '', ips: ['192.0.2.1'] }),
      service({ name: 'other', class: 'example.com/lb', ips: ['192.0.2.2'] }),
      service({ name: 'classless', class: null, ips: ['192.0.2.3'] }),
      { metadata: { name: 'no-spec', namespace: 'default' } },
      { spec: { type: 'LoadBalancer' } },
    ],
    units: {},
    decisions: [
      ' malformedService',
      'classless noClassNotDefault',
      'cluster-ip notLoadBalancer',
      'no-spec malformedService',
      'no-type notLoadBalancer',
      'other otherClass',
    ],
    announce: [],
  },
  {
    name: 'a class-less Service is ours when xlb is the default class',
    services: [service({ name: 'classless', class: null, ips: ['192.0.2.3'] })],
    options: { defaultClass: true },
    units: { 'classless:80/TCP/v4': { frontends: ['192.0.2.3:80/TCP'], backends: [] } },
    decisions: [],
    announce: ['classless 192.0.2.3 no noEndpoints 0'],
  },
  {
    name: 'a configured class name replaces the default one',
    services: [
      service({ name: 'ours', class: 'example.com/lb', ips: ['192.0.2.4'] }),
      service({ name: 'theirs', ips: ['192.0.2.5'] }),
    ],
    options: { loadBalancerClass: 'example.com/lb' },
    units: { 'ours:80/TCP/v4': {} },
    decisions: ['theirs otherClass'],
  },
  {
    name: 'single port: local and remote backends, tunnel to the InternalIP',
    services: [
      service({ name: 'web', ips: ['192.0.2.10'], ports: [port(80, { targetPort: 8080 })] }),
    ],
    slices: [
      slice({
        service: 'web',
        ports: [{ port: 8080 }],
        endpoints: [
          { ip: '203.0.113.1', node: 'node-a' },
          { ip: '203.0.113.2', node: 'node-b' },
        ],
      }),
    ],
    units: {
      'web:80/TCP/v4': {
        frontends: ['192.0.2.10:80/TCP'],
        backends: [
          '203.0.113.1:8080 active local 198.51.100.1',
          '203.0.113.2:8080 active remote 198.51.100.2',
        ],
        excluded: [],
        affinity: 'none',
        ranges: 'all',
        tableSize: 16381,
      },
    },
    decisions: [],
    announce: ['web 192.0.2.10 yes hasEndpoints 1'],
  },
  {
    name: 'multiple ports: one unit per port and protocol, each port resolved by name',
    services: [
      service({
        name: 'multi',
        ips: ['192.0.2.11'],
        ports: [
          port(80, { name: 'http', targetPort: 'web' }),
          port(53, { name: 'dns', protocol: 'UDP', targetPort: 5353 }),
          port(53, { name: 'dns-tcp', protocol: 'TCP', targetPort: 5353 }),
        ],
      }),
    ],
    slices: [
      slice({
        service: 'multi',
        ports: [
          { name: 'http', port: 8080 },
          { name: 'dns', port: 5353, protocol: 'UDP' },
          { name: 'dns-tcp', port: 5353 },
        ],
        endpoints: [{ ip: '203.0.113.1', node: 'node-a' }],
      }),
    ],
    units: {
      'multi:dns-tcp/TCP/v4': {
        frontends: ['192.0.2.11:53/TCP'],
        backends: ['203.0.113.1:5353 active local 198.51.100.1'],
      },
      'multi:dns/UDP/v4': {
        frontends: ['192.0.2.11:53/UDP'],
        backends: ['203.0.113.1:5353 active local 198.51.100.1'],
      },
      'multi:http/TCP/v4': {
        frontends: ['192.0.2.11:80/TCP'],
        backends: ['203.0.113.1:8080 active local 198.51.100.1'],
      },
    },
    decisions: [],
    // One pod, three ports: one endpoint.
    announce: ['multi 192.0.2.11 yes hasEndpoints 1'],
  },
  {
    name: 'a slice port of the right name but another protocol does not match',
    services: [
      service({ name: 'udp', ips: ['192.0.2.12'], ports: [port(53, { protocol: 'UDP' })] }),
    ],
    slices: [
      slice({
        service: 'udp',
        ports: [{ port: 53, protocol: 'TCP' }],
        endpoints: [{ ip: '203.0.113.1', node: 'node-a' }],
      }),
    ],
    units: { 'udp:53/UDP/v4': { backends: [] } },
    announce: ['udp 192.0.2.12 no noEndpoints 0'],
  },
  {
    name: 'named target port resolved differently by two slices; a slice without the port adds nothing',
    services: [
      service({ name: 'named', ips: ['192.0.2.13'], ports: [port(80, { name: 'http' })] }),
    ],
    slices: [
      slice({
        service: 'named',
        name: 'named-old',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [{ ip: '203.0.113.1', node: 'node-a' }],
      }),
      slice({
        service: 'named',
        name: 'named-new',
        ports: [{ name: 'http', port: 9090 }],
        endpoints: [{ ip: '203.0.113.2', node: 'node-b' }],
      }),
      slice({
        service: 'named',
        name: 'named-other',
        ports: [{ name: 'metrics', port: 9100 }],
        endpoints: [{ ip: '203.0.113.3', node: 'node-b' }],
      }),
      slice({
        service: 'named',
        name: 'named-unnamed',
        ports: [{ port: 8080 }],
        endpoints: [{ ip: '203.0.113.4', node: 'node-b' }],
      }),
    ],
    units: {
      'named:http/TCP/v4': {
        backends: [
          '203.0.113.1:8080 active local 198.51.100.1',
          '203.0.113.2:9090 active remote 198.51.100.2',
        ],
      },
    },
    decisions: [],
  },
  {
    name: 'slices of another Service or namespace are not ours',
    services: [service({ name: 'web', ips: ['192.0.2.14'] })],
    slices: [
      slice({ service: 'web', namespace: 'other', endpoints: [{ ip: '203.0.113.1' }] }),
      slice({ service: 'webber', endpoints: [{ ip: '203.0.113.2', node: 'node-a' }] }),
    ],
    units: { 'web:80/TCP/v4': { backends: [] } },
  },
  {
    name: 'dual stack: a v4 and a v6 unit, each with its own family of backends; FQDN ignored',
    services: [
      service({
        name: 'dual',
        ips: ['2001:DB8:192:0::20', '192.0.2.20'],
        ports: [port(443, { name: 'https' })],
      }),
    ],
    slices: [
      slice({
        service: 'dual',
        ports: [{ name: 'https', port: 8443 }],
        endpoints: [
          { ip: '203.0.113.1', node: 'node-a' },
          { ip: '203.0.113.2', node: 'node-b' },
        ],
      }),
      slice({
        service: 'dual',
        addressType: 'IPv6',
        ports: [{ name: 'https', port: 8443 }],
        endpoints: [
          { ip: '2001:db8:203::1', node: 'node-a' },
          { ip: '2001:db8:203::2', node: 'node-b' },
        ],
      }),
      slice({
        service: 'dual',
        addressType: 'FQDN',
        ports: [{ name: 'https', port: 8443 }],
        endpoints: [{ ip: 'pod.example.com', node: 'node-a' }],
      }),
    ],
    units: {
      'dual:https/TCP/v4': {
        frontends: ['192.0.2.20:443/TCP'],
        backends: [
          '203.0.113.1:8443 active local 198.51.100.1',
          '203.0.113.2:8443 active remote 198.51.100.2',
        ],
      },
      'dual:https/TCP/v6': {
        frontends: ['2001:db8:192::20:443/TCP'],
        backends: [
          '[2001:db8:203::1]:8443 active local 2001:db8:100::1',
          '[2001:db8:203::2]:8443 active remote 2001:db8:100::2',
        ],
      },
    },
    decisions: [],
    announce: ['dual 192.0.2.20 yes hasEndpoints 1', 'dual 2001:db8:192::20 yes hasEndpoints 1'],
  },
  {
    name: 'dual-stack endpoints but only a v4 LB IP: a v4 unit only',
    services: [service({ name: 'half', ips: ['192.0.2.21'] })],
    slices: [
      slice({ service: 'half', endpoints: [{ ip: '203.0.113.1', node: 'node-a' }] }),
      slice({
        service: 'half',
        addressType: 'IPv6',
        endpoints: [{ ip: '2001:db8:203::1', node: 'node-a' }],
      }),
    ],
    units: { 'half:80/TCP/v4': {} },
  },
  {
    name: 'externalTrafficPolicy Local on a node with local endpoints: local backends only, weighted',
    services: [service({ name: 'local', ips: ['192.0.2.30'], externalTrafficPolicy: 'Local' })],
    slices: [
      slice({
        service: 'local',
        endpoints: [
          { ip: '203.0.113.1', node: 'node-a' },
          { ip: '203.0.113.2', node: 'node-a' },
          { ip: '203.0.113.3', node: 'node-b' },
          { ip: '203.0.113.4', node: 'node-a', ready: false },
        ],
      }),
    ],
    units: {
      'local:80/TCP/v4': {
        backends: [
          '203.0.113.1:80 active local 198.51.100.1',
          '203.0.113.2:80 active local 198.51.100.1',
        ],
        excluded: ['203.0.113.3:80 notLocal', '203.0.113.4:80 endpointNotReady'],
      },
    },
    decisions: [],
    announce: ['local 192.0.2.30 yes localEndpoints 2'],
  },
  {
    name: 'externalTrafficPolicy Local on a node without local endpoints: empty unit, no announce',
    services: [service({ name: 'local', ips: ['192.0.2.30'], externalTrafficPolicy: 'Local' })],
    slices: [slice({ service: 'local', endpoints: [{ ip: '203.0.113.3', node: 'node-b' }] })],
    nodeName: 'node-c',
    units: { 'local:80/TCP/v4': { backends: [], excluded: ['203.0.113.3:80 notLocal'] } },
    decisions: [],
    announce: ['local 192.0.2.30 no noLocalEndpoints 0'],
  },
  {
    name: 'externalTrafficPolicy Cluster on a node without local endpoints: all remote, announced',
    services: [service({ name: 'cluster', ips: ['192.0.2.31'], externalTrafficPolicy: 'Cluster' })],
    slices: [
      slice({
        service: 'cluster',
        endpoints: [
          { ip: '203.0.113.1', node: 'node-a' },
          { ip: '203.0.113.3', node: 'node-b' },
        ],
      }),
    ],
    nodeName: 'node-c',
    units: {
      'cluster:80/TCP/v4': {
        backends: [
          '203.0.113.1:80 active remote 198.51.100.1',
          '203.0.113.3:80 active remote 198.51.100.2',
        ],
      },
    },
    announce: ['cluster 192.0.2.31 yes hasEndpoints 1'],
  },
  {
    name: 'endpoint conditions: ready, unset, terminating and serving, not serving, not ready',
    services: [service({ name: 'states', ips: ['192.0.2.40'] })],
    slices: [
      slice({
        service: 'states',
        endpoints: [
          { ip: '203.0.113.1', node: 'node-a' },
          { addresses: ['203.0.113.2'], nodeName: 'node-a' },
          { addresses: ['203.0.113.3'], nodeName: 'node-a', conditions: {} },
          { ip: '203.0.113.4', node: 'node-a', terminating: true, serving: true },
          { ip: '203.0.113.5', node: 'node-a', terminating: true, serving: false },
          { ip: '203.0.113.6', node: 'node-a', ready: false },
          endpoint({ ip: '203.0.113.7', node: 'node-a', ready: false, serving: true }),
          // ready false, serving unset, terminating: serving defaults to true.
          {
            addresses: ['203.0.113.8'],
            nodeName: 'node-a',
            conditions: { ready: false, terminating: true },
          },
        ],
      }),
    ],
    units: {
      'states:80/TCP/v4': {
        backends: [
          '203.0.113.1:80 active local 198.51.100.1',
          '203.0.113.2:80 active local 198.51.100.1',
          '203.0.113.3:80 active local 198.51.100.1',
          '203.0.113.4:80 terminating local 198.51.100.1',
          '203.0.113.8:80 terminating local 198.51.100.1',
        ],
        excluded: [
          '203.0.113.5:80 endpointNotReady',
          '203.0.113.6:80 endpointNotReady',
          '203.0.113.7:80 endpointNotReady',
        ],
      },
    },
    decisions: [],
  },
  {
    name: 'only terminating-but-serving endpoints: still announced (they drain)',
    services: [service({ name: 'draining', ips: ['192.0.2.41'], externalTrafficPolicy: 'Local' })],
    slices: [
      slice({
        service: 'draining',
        endpoints: [{ ip: '203.0.113.1', node: 'node-a', terminating: true, serving: true }],
      }),
    ],
    units: {
      'draining:80/TCP/v4': { backends: ['203.0.113.1:80 terminating local 198.51.100.1'] },
    },
    announce: ['draining 192.0.2.41 yes localEndpoints 1'],
  },
  {
    name: 'only not-ready endpoints: nothing to announce',
    services: [service({ name: 'down', ips: ['192.0.2.42'] })],
    slices: [
      slice({ service: 'down', endpoints: [{ ip: '203.0.113.1', node: 'node-a', ready: false }] }),
    ],
    units: { 'down:80/TCP/v4': { backends: [] } },
    announce: ['down 192.0.2.42 no noEndpoints 0'],
  },
  {
    name: 'an address in two slices is one backend, in its best state',
    services: [service({ name: 'dup', ips: ['192.0.2.50'] })],
    slices: [
      slice({
        service: 'dup',
        name: 'dup-1',
        endpoints: [
          { ip: '203.0.113.1', node: 'node-a', ready: false },
          { ip: '203.0.113.2', node: 'node-b', terminating: true, serving: true },
          { ip: '203.0.113.3', node: 'node-b' },
        ],
      }),
      slice({
        service: 'dup',
        name: 'dup-2',
        endpoints: [
          { ip: '203.0.113.1', node: 'node-a' },
          { ip: '203.0.113.2', node: 'node-b' },
          { ip: '203.0.113.3', node: 'node-b' },
        ],
      }),
    ],
    units: {
      'dup:80/TCP/v4': {
        backends: [
          '203.0.113.1:80 active local 198.51.100.1',
          '203.0.113.2:80 active remote 198.51.100.2',
          '203.0.113.3:80 active remote 198.51.100.2',
        ],
        excluded: [],
      },
    },
  },
  {
    name: 'node labelled exclude-from-external-load-balancers: serves, does not announce',
    services: [service({ name: 'web', ips: ['192.0.2.60'], externalTrafficPolicy: 'Local' })],
    slices: [slice({ service: 'web', endpoints: [{ ip: '203.0.113.1', node: 'node-a' }] })],
    nodes: [
      node({
        name: 'node-a',
        internal: ['198.51.100.1'],
        labels: { 'node.kubernetes.io/exclude-from-external-load-balancers': '' },
      }),
    ],
    units: { 'web:80/TCP/v4': { backends: ['203.0.113.1:80 active local 198.51.100.1'] } },
    decisions: [],
    announce: ['web 192.0.2.60 no nodeExcluded 0'],
  },
  {
    name: 'remote endpoints whose node or node address is unknown are left out; ExternalIP as fallback',
    services: [
      service({ name: 'nodes', ips: ['192.0.2.70', '2001:db8:192::70'], ports: [port(80)] }),
    ],
    slices: [
      slice({
        service: 'nodes',
        endpoints: [
          { ip: '203.0.113.1', node: 'node-z' },
          { ip: '203.0.113.2' },
          { ip: '203.0.113.3', node: 'node-d' },
        ],
      }),
      slice({
        service: 'nodes',
        addressType: 'IPv6',
        endpoints: [
          { ip: '2001:db8:203::3', node: 'node-c' },
          { ip: '2001:db8:203::4', node: 'node-b' },
        ],
      }),
    ],
    units: {
      'nodes:80/TCP/v4': {
        backends: ['203.0.113.3:80 active remote 203.0.113.200'],
        excluded: ['203.0.113.1:80 nodeUnknown', '203.0.113.2:80 nodeUnknown'],
      },
      'nodes:80/TCP/v6': {
        backends: ['[2001:db8:203::4]:80 active remote 2001:db8:100::2'],
        excluded: ['2001:db8:203::3:80 nodeAddressUnknown'],
      },
    },
    decisions: ['nodes nodeUnknown', 'nodes nodeUnknown', 'nodes nodeAddressUnknown'],
  },
  {
    name: 'a local endpoint needs no node address',
    services: [service({ name: 'web', ips: ['2001:db8:192::71'] })],
    slices: [
      slice({
        service: 'web',
        addressType: 'IPv6',
        endpoints: [{ ip: '2001:db8:203::1', node: 'node-c' }],
      }),
    ],
    nodeName: 'node-c',
    units: { 'web:80/TCP/v6': { backends: ['[2001:db8:203::1]:80 active local -'] } },
    decisions: [],
  },
  {
    name: 'session affinity: default timeout, explicit timeout, invalid timeout, None, unknown mode',
    services: [
      service({ name: 'aff-default', ips: ['192.0.2.80'], sessionAffinity: 'ClientIP' }),
      service({
        name: 'aff-explicit',
        ips: ['192.0.2.81'],
        sessionAffinity: 'ClientIP',
        affinityTimeoutSeconds: 600,
      }),
      service({
        name: 'aff-invalid',
        ips: ['192.0.2.82'],
        sessionAffinity: 'ClientIP',
        affinityTimeoutSeconds: 86401,
      }),
      service({
        name: 'aff-none',
        ips: ['192.0.2.83'],
        sessionAffinity: 'None',
        affinityTimeoutSeconds: 600,
      }),
      service({ name: 'aff-cookie', ips: ['192.0.2.84'], sessionAffinity: 'Cookie' }),
    ],
    units: {
      'aff-cookie:80/TCP/v4': { affinity: 'none' },
      'aff-default:80/TCP/v4': { affinity: 10800 },
      'aff-explicit:80/TCP/v4': { affinity: 600 },
      'aff-invalid:80/TCP/v4': { affinity: 10800 },
      'aff-none:80/TCP/v4': { affinity: 'none' },
    },
    decisions: ['aff-cookie unsupportedSessionAffinity', 'aff-invalid invalidAffinityTimeout'],
  },
  {
    name: 'source ranges from the field: normalised, per family; v6 unit with v4-only ranges admits nobody',
    services: [
      service({
        name: 'ranges',
        ips: ['192.0.2.90', '2001:db8:192::90'],
        sourceRanges: ['192.168.1.7/24', '10.0.0.0/8', '10.0.0.0/8'],
        annotations: { 'service.beta.kubernetes.io/load-balancer-source-ranges': '172.16.0.0/12' },
      }),
      service({
        name: 'ranges6',
        ips: ['2001:db8:192::91'],
        sourceRanges: ['2001:DB8:0:0:1::/64'],
      }),
    ],
    units: {
      'ranges:80/TCP/v4': { ranges: 'only 10.0.0.0/8,192.168.1.0/24' },
      'ranges:80/TCP/v6': { ranges: 'only ' },
      'ranges6:80/TCP/v6': { ranges: 'only 2001:db8::/64' },
    },
    decisions: [],
  },
  {
    name: 'source ranges from the annotation when the field is empty; invalid entries reported and skipped',
    services: [
      service({
        name: 'annotated',
        ips: ['192.0.2.92'],
        sourceRanges: [],
        annotations: {
          'service.beta.kubernetes.io/load-balancer-source-ranges':
            ' 10.1.0.0/16, banana,10.0.0.0/33 ,,2001:db8::/32',
        },
      }),
      service({
        name: 'all-invalid',
        ips: ['192.0.2.93'],
        sourceRanges: ['10.0.0.1', '010.0.0.0/8'],
      }),
    ],
    units: {
      'all-invalid:80/TCP/v4': { ranges: 'all' },
      'annotated:80/TCP/v4': { ranges: 'only 10.1.0.0/16' },
    },
    decisions: [
      'all-invalid invalidSourceRange',
      'all-invalid invalidSourceRange',
      'annotated invalidSourceRange',
      'annotated invalidSourceRange',
    ],
  },
  {
    name: 'Maglev table size: valid annotation, invalid ones fall back to the default',
    services: [
      service({
        name: 'm-valid',
        ips: ['192.0.2.100'],
        annotations: { 'xlb.dev/maglev-table-size': '65537' },
      }),
      service({
        name: 'm-not-prime',
        ips: ['192.0.2.101'],
        annotations: { 'xlb.dev/maglev-table-size': '1000' },
      }),
      service({
        name: 'm-too-big',
        ips: ['192.0.2.102'],
        annotations: { 'xlb.dev/maglev-table-size': '262139' },
      }),
      service({
        name: 'm-text',
        ips: ['192.0.2.103'],
        annotations: { 'xlb.dev/maglev-table-size': 'large' },
      }),
    ],
    units: {
      'm-not-prime:80/TCP/v4': { tableSize: 16381 },
      'm-text:80/TCP/v4': { tableSize: 16381 },
      'm-too-big:80/TCP/v4': { tableSize: 16381 },
      'm-valid:80/TCP/v4': { tableSize: 65537 },
    },
    decisions: [
      'm-not-prime invalidMaglevTableSize',
      'm-text invalidMaglevTableSize',
      'm-too-big invalidMaglevTableSize',
    ],
  },
  {
    name: 'Maglev table smaller than 100 slots per backend: a warning, the size is kept',
    services: [
      service({
        name: 'small',
        ips: ['192.0.2.104'],
        annotations: { 'xlb.dev/maglev-table-size': '251' },
      }),
    ],
    slices: [
      slice({
        service: 'small',
        endpoints: [
          { ip: '203.0.113.1', node: 'node-a' },
          { ip: '203.0.113.2', node: 'node-a' },
          { ip: '203.0.113.3', node: 'node-b' },
        ],
      }),
    ],
    units: { 'small:80/TCP/v4': { tableSize: 251 } },
    decisions: ['small maglevTableSmall'],
  },
  {
    name: 'no LB IP yet: no units, no announce decisions, one noAddress',
    services: [service({ name: 'pending' })],
    slices: [slice({ service: 'pending', endpoints: [{ ip: '203.0.113.1', node: 'node-a' }] })],
    units: {},
    decisions: ['pending noAddress'],
    announce: [],
  },
  {
    name: 'SCTP and other protocols are skipped with a reason; TCP and UDP kept',
    services: [
      service({
        name: 'mixed',
        ips: ['192.0.2.110'],
        ports: [
          port(80, { name: 'http' }),
          port(9000, { name: 'sctp', protocol: 'SCTP' }),
          port(53, { name: 'dns', protocol: 'UDP' }),
        ],
      }),
      service({
        name: 'sctp-only',
        ips: ['192.0.2.111'],
        ports: [port(9000, { protocol: 'SCTP' })],
      }),
    ],
    units: { 'mixed:dns/UDP/v4': {}, 'mixed:http/TCP/v4': {} },
    decisions: ['mixed unsupportedProtocol', 'sctp-only unsupportedProtocol'],
    announce: ['mixed 192.0.2.110 no noEndpoints 0', 'sctp-only 192.0.2.111 no noEndpoints 0'],
  },
  {
    name: 'ingress entries: hostname only, invalid ip, duplicate ip',
    services: [
      {
        ...service({ name: 'ingress' }),
        status: {
          loadBalancer: {
            ingress: [
              { hostname: 'lb.example.com' },
              { ip: '192.0.2.300' },
              { ip: '192.0.2.120' },
              { ip: '192.0.2.120' },
              { ip: 'fe80::1%eth0' },
            ],
          },
        },
      },
    ],
    units: { 'ingress:80/TCP/v4': { frontends: ['192.0.2.120:80/TCP'] } },
    decisions: [
      'ingress ingressWithoutIp',
      'ingress invalidIngressAddress',
      'ingress invalidIngressAddress',
    ],
    announce: ['ingress 192.0.2.120 no noEndpoints 0'],
  },
  {
    name: 'ports: invalid number, duplicate name, none at all; unknown traffic policy',
    services: [
      service({
        name: 'ports',
        ips: ['192.0.2.130'],
        externalTrafficPolicy: 'Global',
        ports: [
          port(80, { name: 'http' }),
          port(8080, { name: 'http' }),
          port(0, { name: 'zero' }),
          port(70000, { name: 'big' }),
        ],
      }),
      service({ name: 'portless', ips: ['192.0.2.131'], ports: [] }),
    ],
    units: { 'ports:http/TCP/v4': { frontends: ['192.0.2.130:80/TCP'] } },
    decisions: [
      'portless noPorts',
      'ports duplicatePort',
      'ports invalidPort',
      'ports invalidPort',
      'ports unknownTrafficPolicy',
    ],
  },
  {
    name: 'two Services on one VIP: different ports share it, the same port goes to the older',
    services: [
      service({ name: 'b-old', ips: ['192.0.2.140'], created: '2024-01-01T00:00:00Z' }),
      service({ name: 'a-new', ips: ['192.0.2.140'], created: '2025-01-01T00:00:00Z' }),
      service({ name: 'c-other-port', ips: ['192.0.2.140'], ports: [port(443)] }),
    ],
    units: {
      'a-new:80/TCP/v4': { frontends: [] },
      'b-old:80/TCP/v4': { frontends: ['192.0.2.140:80/TCP'] },
      'c-other-port:443/TCP/v4': { frontends: ['192.0.2.140:443/TCP'] },
    },
    decisions: ['a-new frontendConflict'],
  },
  {
    name: 'slice ports without a number and endpoints with bad addresses are reported',
    services: [
      service({
        name: 'bad-slices',
        ips: ['192.0.2.150'],
        ports: [port(80, { name: 'http' })],
      }),
    ],
    slices: [
      slice({
        service: 'bad-slices',
        name: 'bad-1',
        ports: [{ name: 'http' }],
        endpoints: [{ ip: '203.0.113.1', node: 'node-a' }],
      }),
      slice({
        service: 'bad-slices',
        name: 'bad-2',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [
          { ip: '2001:db8:203::1', node: 'node-a' },
          { ip: '203.0.113.256', node: 'node-a' },
          { addresses: [], nodeName: 'node-a' },
          { ip: '203.0.113.2', node: 'node-a' },
        ],
      }),
    ],
    units: {
      'bad-slices:http/TCP/v4': {
        backends: ['203.0.113.2:8080 active local 198.51.100.1'],
        excluded: [
          ':8080 invalidEndpointAddress',
          '2001:db8:203::1:8080 invalidEndpointAddress',
          '203.0.113.256:8080 invalidEndpointAddress',
        ],
      },
    },
    decisions: [
      'bad-slices invalidEndpointAddress',
      'bad-slices invalidEndpointAddress',
      'bad-slices invalidEndpointAddress',
      'bad-slices invalidSlicePort',
    ],
  },
];

function run(c: Case, order?: number): NodeModel {
  const pick = <T>(items: readonly T[], salt: number): T[] =>
    order === undefined ? [...items] : shuffled(items, order * 31 + salt);
  return deriveNode({
    services: pick(c.services, 1),
    endpointSlices: pick(c.slices ?? [], 2),
    nodes: pick(c.nodes ?? nodes, 3),
    nodeName: c.nodeName ?? 'node-a',
    ...(c.options !== undefined ? { options: c.options } : {}),
  });
}

describe('model: deriveNode', () => {
  it.each(cases)('$name', (c) => {
    const model = run(c);
    if (c.units !== undefined) {
      const got = new Map(model.units.map((u) => [short(u.key), view(u)]));
      expect([...got.keys()].sort()).toEqual(Object.keys(c.units).sort());
      for (const [key, want] of Object.entries(c.units)) expect(got.get(key)).toMatchObject(want);
    }
    if (c.decisions !== undefined) {
      expect(model.decisions.map((d) => `${short(d.service)} ${d.reason}`).sort()).toEqual(
        [...c.decisions].sort(),
      );
    }
    if (c.announce !== undefined) {
      expect(
        model.announcements.map(
          (a) =>
            `${short(a.service)} ${a.address} ${a.announce ? 'yes' : 'no'} ${a.reason} ${a.weight}`,
        ),
      ).toEqual(c.announce);
    }
    // Every decision is explained, and every reason is a known one.
    for (const d of model.decisions) {
      expect(reasonNames).toContain(d.reason);
      expect(d.message.length).toBeGreaterThan(0);
    }
    for (const u of model.units)
      for (const e of u.excluded) expect(reasonNames).toContain(e.reason);
  });

  it.each(cases)('gives the same model whatever the input order: $name', (c) => {
    const reference = run(c);
    for (let seed = 1; seed <= 8; seed++) expect(run(c, seed)).toEqual(reference);
  });

  it('gives the same model for all cases together, shuffled, as for each alone', () => {
    // Cases reuse names, so give every case its own namespace.
    const all = cases
      .filter((c) => c.nodes === undefined && c.nodeName === undefined && c.options === undefined)
      .flatMap((c, i) => {
        const ns = (o: { metadata?: { namespace?: string } }): void => {
          if (o.metadata !== undefined) o.metadata.namespace = `case-${i}`;
        };
        const services = structuredClone(c.services);
        const slices = structuredClone(c.slices ?? []);
        services.forEach(ns);
        slices.forEach(ns);
        return [{ services, slices }];
      });
    const services = all.flatMap((a) => a.services);
    const slices = all.flatMap((a) => a.slices);
    const input = { services, endpointSlices: slices, nodes, nodeName: 'node-a' };
    const reference = deriveNode(input);
    expect(reference.units.length).toBeGreaterThan(20);
    for (let seed = 1; seed <= 5; seed++) {
      expect(
        deriveNode({
          ...input,
          services: shuffled(services, seed),
          endpointSlices: shuffled(slices, seed + 100),
          nodes: shuffled(nodes, seed + 200),
        }),
      ).toEqual(reference);
    }
    // Units and decisions come in key order.
    const keys = reference.units.map((u) => u.key);
    expect(keys).toEqual([...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  });

  it('reports a node that has no Node object, and still derives its units', () => {
    const model = deriveNode({
      services: [service({ name: 'web', ips: ['192.0.2.160'] })],
      endpointSlices: [
        slice({ service: 'web', endpoints: [{ ip: '203.0.113.1', node: 'node-b' }] }),
      ],
      nodes,
      nodeName: 'ghost',
    });
    expect(model.nodeDecisions.map((d) => d.reason)).toEqual(['thisNodeUnknown']);
    expect(model.units.map((u) => u.backends.length)).toEqual([1]);
    expect(model.announcements.map((a) => a.reason)).toEqual(['hasEndpoints']);
  });

  it('keeps one of two Service objects with the same name, whatever their order', () => {
    const a = service({ name: 'twin', ips: ['192.0.2.170'] });
    const b = service({ name: 'twin', ips: ['192.0.2.171'] });
    const ab = deriveNode({ services: [a, b], endpointSlices: [], nodes, nodeName: 'node-a' });
    const ba = deriveNode({ services: [b, a], endpointSlices: [], nodes, nodeName: 'node-a' });
    expect(ab).toEqual(ba);
    expect(ab.units).toHaveLength(1);
    expect(ab.decisions.map((d) => d.reason)).toContain('duplicateService');
  });
});

describe('model: deriveService', () => {
  it('matches deriveNode for a Service on its own', () => {
    for (const c of cases) {
      const node = run(c);
      const index = indexNodes(c.nodes ?? nodes);
      const units = c.services.flatMap(
        (s) =>
          deriveService({
            service: s,
            endpointSlices: c.slices ?? [],
            nodes: index,
            nodeName: c.nodeName ?? 'node-a',
            ...(c.options !== undefined ? { options: c.options } : {}),
          }).units,
      );
      // Frontend conflicts are the only cross-Service decision.
      if (!c.decisions?.some((d) => d.endsWith('frontendConflict'))) {
        expect(units.sort((x, y) => (x.key < y.key ? -1 : 1))).toEqual(node.units);
      }
    }
  });

  it('says why a Service is not ours', () => {
    const m = deriveService({
      service: service({ name: 'x', class: 'example.com/lb' }),
      endpointSlices: [],
      nodes: new Map(),
      nodeName: 'node-a',
    });
    expect(m.ownership).toMatchObject({ owned: false, reason: 'otherClass' });
    expect(m.units).toEqual([]);
    expect(m.decisions[0]?.message).toContain('example.com/lb');
  });

  it('gives the unit key, family, protocol and Maglev identity the reconciler relies on', () => {
    const m = deriveService({
      service: service({
        name: 'web',
        namespace: 'shop',
        ips: ['2001:db8:192::1'],
        ports: [port(53, { protocol: 'UDP' })],
      }),
      endpointSlices: [
        slice({
          service: 'web',
          namespace: 'shop',
          addressType: 'IPv6',
          ports: [{ port: 5353, protocol: 'UDP' }],
          endpoints: [{ ip: '2001:db8:203::a', node: 'node-b' }],
        }),
      ],
      nodes: indexNodes(nodes),
      nodeName: 'node-a',
    });
    expect(m.units).toEqual([
      {
        key: 'shop/web:53/UDP/v6',
        service: 'shop/web',
        portName: '',
        servicePort: 53,
        protocol: 'UDP',
        family: 6,
        trafficPolicy: 'Cluster',
        frontends: [{ address: '2001:db8:192::1', port: 53, protocol: 'UDP' }],
        backends: [
          {
            address: '2001:db8:203::a',
            port: 5353,
            nodeName: 'node-b',
            nodeAddress: '2001:db8:100::2',
            state: 'active',
            local: false,
            identity: '[2001:db8:203::a]:5353',
            weight: 1,
          },
        ],
        excluded: [],
        sourceRanges: { enforced: false, cidrs: [] },
        tableSize: 16381,
      },
    ]);
  });
});

describe('model: malformed objects', () => {
  const broken: unknown[] = [
    null,
    42,
    'service',
    [],
    {},
    { metadata: null, spec: null },
    { metadata: { name: 'x' }, spec: { type: 'LoadBalancer', loadBalancerClass: 'xlb.dev/xlb' } },
    {
      metadata: { name: 'y', annotations: { 'xlb.dev/maglev-table-size': 7 } },
      spec: {
        type: 'LoadBalancer',
        loadBalancerClass: 'xlb.dev/xlb',
        ports: 'http',
        loadBalancerSourceRanges: [null, 7, '10.0.0.0/8'],
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: '60' } },
      },
      status: { loadBalancer: { ingress: [null, { ip: 42 }, { ip: '192.0.2.180' }] } },
    },
    {
      metadata: { name: 'z', namespace: 'default' },
      spec: {
        type: 'LoadBalancer',
        loadBalancerClass: 'xlb.dev/xlb',
        ports: [null, { port: '80' }, { port: 80, protocol: 7, name: 3 }],
        externalTrafficPolicy: 5,
      },
      status: { loadBalancer: { ingress: { ip: '192.0.2.181' } } },
    },
  ];
  const brokenSlices: unknown[] = [
    null,
    { metadata: { labels: { 'kubernetes.io/service-name': 'y' } } },
    {
      metadata: { namespace: 'default', labels: { 'kubernetes.io/service-name': 'z' } },
      addressType: 'IPv4',
      ports: [null, { port: 80 }],
      endpoints: [
        null,
        { addresses: null },
        { addresses: ['203.0.113.1'], conditions: 'ready', nodeName: 7 },
        { addresses: [7], nodeName: 'node-a' },
      ],
    },
  ];
  const brokenNodes: unknown[] = [
    null,
    {
      metadata: { name: 'node-a', labels: null },
      status: { addresses: [null, { type: 'InternalIP' }] },
    },
    { metadata: {}, status: null },
  ];

  it('never throws, and says what it could not read', () => {
    const model = deriveNode({
      services: broken as V1Service[],
      endpointSlices: brokenSlices as V1EndpointSlice[],
      nodes: brokenNodes as V1Node[],
      nodeName: 'node-a',
    });
    const reasons = model.decisions.map((d) => `${d.service} ${d.reason}`);
    expect(reasons).toContain('default/ malformedService');
    expect(reasons).toContain('default/x noPorts');
    expect(reasons).toContain('default/x noAddress');
    expect(reasons).toContain('default/y noPorts');
    expect(reasons).toContain('default/y invalidSourceRange');
    expect(reasons).toContain('default/y invalidAffinityTimeout');
    expect(reasons).toContain('default/y invalidIngressAddress');
    expect(reasons).toContain('default/z invalidPort');
    expect(reasons).toContain('default/z unsupportedProtocol');
    expect(reasons).toContain('default/z noAddress');
    expect(model.units).toEqual([]);
  });

  it('never throws on objects with any field replaced by junk', () => {
    const junk: unknown[] = [null, undefined, 0, -1, 1.5, '', 'x', true, [], {}, [null], { a: 1 }];
    const base = {
      services: [
        service({
          name: 'web',
          ips: ['192.0.2.190', '2001:db8:192::190'],
          sessionAffinity: 'ClientIP',
          affinityTimeoutSeconds: 60,
          sourceRanges: ['10.0.0.0/8'],
          externalTrafficPolicy: 'Local',
          annotations: { 'xlb.dev/maglev-table-size': '251' },
          ports: [port(80, { name: 'http' }), port(53, { name: 'dns', protocol: 'UDP' })],
        }),
      ],
      endpointSlices: [
        slice({
          service: 'web',
          ports: [
            { name: 'http', port: 8080 },
            { name: 'dns', port: 53, protocol: 'UDP' },
          ],
          endpoints: [
            { ip: '203.0.113.1', node: 'node-a' },
            { ip: '203.0.113.2', node: 'node-b', terminating: true, serving: true },
          ],
        }),
      ],
      nodes,
    };
    // Every path to a leaf or branch, each replaced by each kind of junk.
    const paths: (string | number)[][] = [];
    const walk = (v: unknown, path: (string | number)[]): void => {
      if (path.length > 0) paths.push(path);
      if (v instanceof Date) return;
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
      else if (typeof v === 'object' && v !== null)
        for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    };
    walk(base, []);
    expect(paths.length).toBeGreaterThan(100);
    let runs = 0;
    for (const path of paths) {
      for (const value of junk) {
        const input = structuredClone(base) as unknown as Record<string, unknown>;
        let at: Record<string | number, unknown> = input;
        for (const step of path.slice(0, -1)) at = at[step] as Record<string | number, unknown>;
        at[path[path.length - 1]!] = value;
        expect(() =>
          deriveNode({ ...(input as unknown as typeof base), nodeName: 'node-a' }),
        ).not.toThrow();
        runs++;
      }
    }
    expect(runs).toBe(paths.length * junk.length);
  });
});
