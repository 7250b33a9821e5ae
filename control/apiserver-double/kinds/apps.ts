// apps/v1 Deployment, stored and served only: no controller makes its pods
// (tests write EndpointSlices themselves). It is here so `kubectl expose
// deployment` works as against a cluster: kubectl reads the Deployment's
// selector and ports to build the Service.
import { ageColumn, column, nameColumn } from '../columns.js';
import { required, type Cause } from '../errors.js';
import { child, isObj } from '../json.js';
import { builtin, builtinPatchMeta } from './base.js';

export const deploymentType = builtin({
  group: 'apps',
  version: 'v1',
  kind: 'Deployment',
  model: 'V1Deployment',
  plural: 'deployments',
  namespaced: true,
  shortNames: ['deploy'],
  categories: ['all'],
  status: true,
  patchMeta: builtinPatchMeta({
    'spec.template.spec.containers': { strategy: 'merge', mergeKey: 'name' },
    'spec.template.spec.containers[].ports': { strategy: 'merge', mergeKey: 'containerPort' },
    'status.conditions': { strategy: 'merge', mergeKey: 'type' },
  }),
  hooks: {
    defaults(o) {
      const spec = child(o, 'spec');
      spec.replicas ??= 1;
    },
    validate(o) {
      const causes: Cause[] = [];
      const spec = isObj(o.spec) ? o.spec : {};
      if (!isObj(spec.selector)) causes.push(required('spec.selector'));
      if (!isObj(spec.template)) causes.push(required('spec.template'));
      return causes;
    },
  },
  columns: [
    nameColumn,
    column('Ready', (o) => {
      const status = isObj(o.status) ? o.status : {};
      const spec = isObj(o.spec) ? o.spec : {};
      return `${Number(status.readyReplicas ?? 0)}/${Number(spec.replicas ?? 0)}`;
    }),
    ageColumn,
  ],
});
