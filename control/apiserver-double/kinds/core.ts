// v1 Namespace, Node, Secret and a minimal Pod: their defaults, the validation
// a test can trip, and kubectl's columns.
// Approximated: Pods are never scheduled or run (phase stays Pending unless
// a test writes status) and are deleted at once, without a grace period.
// Secrets are stored as sent (no encryption at rest, no per-type key rules).
import { ageColumn, column, nameColumn } from '../columns.js';
import { required, invalidValue, type Cause } from '../errors.js';
import { asArray, asString, child, isObj, type Obj } from '../json.js';
import { dns1123Label } from '../names.js';
import type { KubeObject } from '../types.js';
import { builtin, builtinPatchMeta } from './base.js';

export const namespaceType = builtin({
  group: '',
  version: 'v1',
  kind: 'Namespace',
  model: 'V1Namespace',
  plural: 'namespaces',
  namespaced: false,
  shortNames: ['ns'],
  status: true,
  nameRule: dns1123Label,
  fieldLabels: { 'status.phase': 'status.phase' },
  patchMeta: builtinPatchMeta({ 'status.conditions': { strategy: 'merge', mergeKey: 'type' } }),
  hooks: {
    defaults(o) {
      o.metadata.labels = {
        ...o.metadata.labels,
        'kubernetes.io/metadata.name': o.metadata.name ?? '',
      };
      const spec = child(o, 'spec');
      spec.finalizers ??= ['kubernetes'];
    },
    initialStatus: () => ({ phase: 'Active' }),
  },
  columns: [
    nameColumn,
    column('Status', (o) => (isObj(o.status) ? (o.status.phase ?? '') : ''), {
      description: 'The current lifecycle phase of the namespace.',
    }),
    ageColumn,
  ],
});

function nodeStatus(o: KubeObject): string {
  const conds = isObj(o.status) ? asArray(o.status.conditions).filter(isObj) : [];
  const ready = conds.find((c) => c.type === 'Ready');
  let s = ready === undefined ? 'Unknown' : ready.status === 'True' ? 'Ready' : 'NotReady';
  if (isObj(o.spec) && o.spec.unschedulable === true) s += ',SchedulingDisabled';
  return s;
}

function nodeAddress(o: KubeObject, type: string): string {
  const addrs = isObj(o.status) ? asArray(o.status.addresses).filter(isObj) : [];
  return asString(addrs.find((a) => a.type === type)?.address) ?? '<none>';
}

function nodeInfo(o: KubeObject, field: string): string {
  const info = isObj(o.status) && isObj(o.status.nodeInfo) ? o.status.nodeInfo : {};
  return asString(info[field]) ?? '';
}

export const nodeType = builtin({
  group: '',
  version: 'v1',
  kind: 'Node',
  model: 'V1Node',
  plural: 'nodes',
  namespaced: false,
  shortNames: ['no'],
  status: true,
  keepStatusOnCreate: true,
  fieldLabels: { 'spec.unschedulable': 'spec.unschedulable' },
  patchMeta: builtinPatchMeta({
    'spec.podCIDRs': { strategy: 'merge' },
    'status.conditions': { strategy: 'merge', mergeKey: 'type' },
    'status.addresses': { strategy: 'merge', mergeKey: 'type' },
  }),
  columns: [
    nameColumn,
    column('Status', nodeStatus, { description: 'The status of the node' }),
    column(
      'Roles',
      (o) => {
        const roles = Object.keys(o.metadata.labels ?? {})
          .filter((k) => k.startsWith('node-role.kubernetes.io/'))
          .map((k) => k.slice('node-role.kubernetes.io/'.length))
          .sort();
        return roles.length > 0 ? roles.join(',') : '<none>';
      },
      { description: 'The roles of the node' },
    ),
    ageColumn,
    column('Version', (o) => nodeInfo(o, 'kubeletVersion'), {
      description: 'Kubelet Version reported by the node.',
    }),
    column('Internal-IP', (o) => nodeAddress(o, 'InternalIP'), { priority: 1 }),
    column('External-IP', (o) => nodeAddress(o, 'ExternalIP'), { priority: 1 }),
    column('OS-Image', (o) => nodeInfo(o, 'osImage') || '<unknown>', { priority: 1 }),
    column('Kernel-Version', (o) => nodeInfo(o, 'kernelVersion') || '<unknown>', { priority: 1 }),
    column('Container-Runtime', (o) => nodeInfo(o, 'containerRuntimeVersion') || '<unknown>', {
      priority: 1,
    }),
  ],
});

function containers(o: KubeObject): Obj[] {
  return isObj(o.spec) ? asArray(o.spec.containers).filter(isObj) : [];
}

export const podType = builtin({
  group: '',
  version: 'v1',
  kind: 'Pod',
  model: 'V1Pod',
  plural: 'pods',
  namespaced: true,
  shortNames: ['po'],
  categories: ['all'],
  status: true,
  returnDeletedObject: true,
  fieldLabels: {
    'spec.nodeName': 'spec.nodeName',
    'spec.restartPolicy': 'spec.restartPolicy',
    'spec.schedulerName': 'spec.schedulerName',
    'spec.serviceAccountName': 'spec.serviceAccountName',
    'status.phase': 'status.phase',
    'status.podIP': 'status.podIP',
    'status.nominatedNodeName': 'status.nominatedNodeName',
  },
  patchMeta: builtinPatchMeta({
    'spec.containers': { strategy: 'merge', mergeKey: 'name' },
    'spec.containers[].ports': { strategy: 'merge', mergeKey: 'containerPort' },
    'spec.containers[].env': { strategy: 'merge', mergeKey: 'name' },
    'spec.containers[].volumeMounts': { strategy: 'merge', mergeKey: 'mountPath' },
    'spec.initContainers': { strategy: 'merge', mergeKey: 'name' },
    'spec.volumes': { strategy: 'merge,retainKeys', mergeKey: 'name' },
    'spec.imagePullSecrets': { strategy: 'merge', mergeKey: 'name' },
    'spec.hostAliases': { strategy: 'merge', mergeKey: 'ip' },
    'status.conditions': { strategy: 'merge', mergeKey: 'type' },
    'status.podIPs': { strategy: 'merge', mergeKey: 'ip' },
  }),
  hooks: {
    defaults(o) {
      const spec = child(o, 'spec');
      spec.restartPolicy ??= 'Always';
      spec.dnsPolicy ??= 'ClusterFirst';
      spec.schedulerName ??= 'default-scheduler';
      spec.terminationGracePeriodSeconds ??= 30;
      spec.enableServiceLinks ??= true;
      for (const c of containers(o)) {
        const image = asString(c.image) ?? '';
        const tagged = /:[^/]+$/.test(image) && !image.endsWith(':latest');
        c.imagePullPolicy ??= tagged ? 'IfNotPresent' : 'Always';
        c.terminationMessagePath ??= '/dev/termination-log';
        c.terminationMessagePolicy ??= 'File';
        for (const p of asArray(c.ports).filter(isObj)) p.protocol ??= 'TCP';
      }
    },
    validate(o) {
      const causes: Cause[] = [];
      const list = containers(o);
      if (list.length === 0) causes.push(required('spec.containers'));
      list.forEach((c, i) => {
        const name = asString(c.name) ?? '';
        if (name === '') causes.push(required(`spec.containers[${i}].name`));
        else
          for (const e of dns1123Label(name))
            causes.push(invalidValue(`spec.containers[${i}].name`, name, e));
        if (!asString(c.image)) causes.push(required(`spec.containers[${i}].image`));
      });
      return causes;
    },
    initialStatus: () => ({ phase: 'Pending', qosClass: 'BestEffort' }),
  },
  columns: [
    nameColumn,
    column('Ready', (o) => {
      const statuses = isObj(o.status) ? asArray(o.status.containerStatuses).filter(isObj) : [];
      return `${statuses.filter((s) => s.ready === true).length}/${containers(o).length}`;
    }),
    column('Status', (o) => (isObj(o.status) ? (o.status.phase ?? '') : '')),
    column('Restarts', () => '0'),
    ageColumn,
    column('IP', (o) => (isObj(o.status) ? (o.status.podIP ?? '<none>') : '<none>'), {
      priority: 1,
    }),
    column('Node', (o) => (isObj(o.spec) ? (o.spec.nodeName ?? '<none>') : '<none>'), {
      priority: 1,
    }),
    column('Nominated Node', () => '<none>', { priority: 1 }),
    column('Readiness Gates', () => '<none>', { priority: 1 }),
  ],
});

const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export const secretType = builtin({
  group: '',
  version: 'v1',
  kind: 'Secret',
  model: 'V1Secret',
  plural: 'secrets',
  namespaced: true,
  hooks: {
    defaults(o) {
      o.type ??= 'Opaque';
      // As kube-apiserver: stringData is write-only, merged into data (its
      // values win) and never stored or returned.
      if (isObj(o.stringData)) {
        const data = child(o, 'data');
        for (const [k, v] of Object.entries(o.stringData))
          if (typeof v === 'string') data[k] = Buffer.from(v, 'utf8').toString('base64');
      }
      delete o.stringData;
    },
    validate(o) {
      const causes: Cause[] = [];
      const data = isObj(o.data) ? o.data : {};
      for (const [k, v] of Object.entries(data)) {
        if (!SECRET_KEY.test(k))
          causes.push(
            invalidValue(
              `data[${k}]`,
              k,
              "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            ),
          );
        if (typeof v !== 'string' || !BASE64.test(v))
          causes.push(invalidValue(`data[${k}]`, '<redacted>', 'illegal base64 data'));
      }
      return causes;
    },
  },
  columns: [
    nameColumn,
    column('Type', (o) => asString(o.type) ?? ''),
    column('Data', (o) => String(isObj(o.data) ? Object.keys(o.data).length : 0)),
    ageColumn,
  ],
});
