// coordination.k8s.io/v1 Lease, the leader-election lock.
import { column, ageColumn, nameColumn } from '../columns.js';
import { invalidValue, type Cause } from '../errors.js';
import { child, isObj } from '../json.js';
import { microTime } from '../time.js';
import { builtin } from './base.js';

export const leaseType = builtin({
  group: 'coordination.k8s.io',
  version: 'v1',
  kind: 'Lease',
  model: 'V1Lease',
  plural: 'leases',
  namespaced: true,
  hooks: {
    defaults(o) {
      const spec = child(o, 'spec');
      for (const k of ['acquireTime', 'renewTime'])
        if (spec[k] !== undefined && spec[k] !== null) spec[k] = microTime(spec[k]);
    },
    validate(o) {
      const causes: Cause[] = [];
      const spec = isObj(o.spec) ? o.spec : {};
      const d = spec.leaseDurationSeconds;
      if (d !== undefined && d !== null && (typeof d !== 'number' || d <= 0)) {
        causes.push(invalidValue('spec.leaseDurationSeconds', d, 'must be greater than 0'));
      }
      const t = spec.leaseTransitions;
      if (t !== undefined && t !== null && (typeof t !== 'number' || t < 0)) {
        causes.push(invalidValue('spec.leaseTransitions', t, 'must be greater than or equal to 0'));
      }
      return causes;
    },
  },
  columns: [
    nameColumn,
    column('Holder', (o) => (isObj(o.spec) ? (o.spec.holderIdentity ?? '') : '')),
    ageColumn,
  ],
});
