// discovery.k8s.io/v1 EndpointSlice.
import { ageColumn, column, nameColumn } from '../columns.js';
import { invalidValue, notSupported, required, type Cause } from '../errors.js';
import { familyOf, isIP } from '../ip.js';
import { asArray, isObj, str } from '../json.js';
import { dns1123Subdomain } from '../names.js';
import type { KubeObject } from '../types.js';
import { builtin } from './base.js';

const ADDRESS_TYPES = ['IPv4', 'IPv6', 'FQDN'];

function validate(o: KubeObject, old: KubeObject | undefined): Cause[] {
  const causes: Cause[] = [];
  const type = o.addressType;
  if (type === undefined) causes.push(required('addressType'));
  else if (!ADDRESS_TYPES.includes(str(type)))
    causes.push(notSupported('addressType', type, ADDRESS_TYPES));
  if (old !== undefined && old.addressType !== type)
    causes.push(invalidValue('addressType', type, 'field is immutable'));
  asArray(o.endpoints).forEach((e, i) => {
    if (!isObj(e)) return;
    const addrs = asArray(e.addresses);
    if (addrs.length === 0 || addrs.length > 100) {
      causes.push(
        invalidValue(
          `endpoints[${i}].addresses`,
          addrs,
          'must have at least 1 and at most 100 addresses',
        ),
      );
    }
    addrs.forEach((a, j) => {
      const f = `endpoints[${i}].addresses[${j}]`;
      const ok =
        type === 'FQDN'
          ? dns1123Subdomain(str(a)).length === 0
          : isIP(str(a)) && familyOf(str(a)) === type;
      if (!ok) causes.push(invalidValue(f, a, `must be a valid ${str(type)} address`));
    });
  });
  asArray(o.ports).forEach((p, i) => {
    if (!isObj(p)) return;
    if (
      p.port !== undefined &&
      p.port !== null &&
      (typeof p.port !== 'number' || p.port < 1 || p.port > 65535)
    ) {
      causes.push(
        invalidValue(`ports[${i}].port`, p.port, 'must be between 1 and 65535, inclusive'),
      );
    }
    if (!['TCP', 'UDP', 'SCTP'].includes(str(p.protocol))) {
      causes.push(notSupported(`ports[${i}].protocol`, p.protocol, ['SCTP', 'TCP', 'UDP']));
    }
  });
  return causes;
}

function endpointsString(o: KubeObject): string {
  const addrs = asArray(o.endpoints)
    .filter(isObj)
    .flatMap((e) => asArray(e.addresses).map(String));
  if (addrs.length === 0) return '<unset>';
  const shown = addrs.slice(0, 3).join(',');
  return addrs.length > 3 ? `${shown} + ${addrs.length - 3} more...` : shown;
}

export const endpointSliceType = builtin({
  group: 'discovery.k8s.io',
  version: 'v1',
  kind: 'EndpointSlice',
  model: 'V1EndpointSlice',
  plural: 'endpointslices',
  namespaced: true,
  generation: true,
  hooks: {
    defaults(o) {
      for (const p of asArray(o.ports).filter(isObj)) p.protocol ??= 'TCP';
    },
    validate,
  },
  columns: [
    nameColumn,
    column('AddressType', (o) => o.addressType ?? ''),
    column('Ports', (o) => {
      const ports = asArray(o.ports).filter(isObj);
      if (ports.length === 0) return '<unset>';
      return ports.map((p) => (typeof p.port === 'number' ? str(p.port) : '<unset>')).join(',');
    }),
    column('Endpoints', endpointsString),
    ageColumn,
  ],
});
