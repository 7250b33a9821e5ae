// apiextensions.k8s.io/v1 CustomResourceDefinition. What the apiextensions
// controllers do after a write (accepting names, establishing, recording
// stored versions) happens within the write here, so a CRD is served the
// moment its create returns; the cleanup finalizer works as in a cluster.
import { column, nameColumn } from '../columns.js';
import { duplicate, invalidValue, notSupported, required, type Cause } from '../errors.js';
import { asArray, asString, child, isObj, type Obj } from '../json.js';
import { dns1123Label } from '../names.js';
import { now } from '../time.js';
import type { KubeObject } from '../types.js';
import { builtin } from './base.js';

export const CRD_CLEANUP = 'customresourcecleanup.apiextensions.k8s.io';

export function crdSpec(o: KubeObject): Obj {
  return isObj(o.spec) ? o.spec : {};
}

export function crdNames(o: KubeObject): Obj {
  const names = crdSpec(o).names;
  return isObj(names) ? names : {};
}

export function crdVersions(o: KubeObject): Obj[] {
  return asArray(crdSpec(o).versions).filter(isObj);
}

function defaults(o: KubeObject, old: KubeObject | undefined): void {
  const spec = child(o, 'spec');
  const names = child(spec, 'names');
  const kind = asString(names.kind) ?? '';
  names.singular ??= kind.toLowerCase();
  names.listKind ??= `${kind}List`;
  spec.conversion ??= { strategy: 'None' };
  if (old === undefined) {
    const f = o.metadata.finalizers ?? [];
    if (!f.includes(CRD_CLEANUP)) o.metadata.finalizers = [...f, CRD_CLEANUP];
  }
}

function validate(o: KubeObject, old: KubeObject | undefined): Cause[] {
  const causes: Cause[] = [];
  const spec = crdSpec(o);
  const names = crdNames(o);
  const group = asString(spec.group) ?? '';
  const plural = asString(names.plural) ?? '';
  if (group === '') causes.push(required('spec.group'));
  else if (!group.includes('.'))
    causes.push(invalidValue('spec.group', group, 'should be a domain with at least one dot'));
  if (plural === '') causes.push(required('spec.names.plural'));
  else
    for (const e of dns1123Label(plural)) causes.push(invalidValue('spec.names.plural', plural, e));
  if (!asString(names.kind)) causes.push(required('spec.names.kind'));
  if (o.metadata.name !== `${plural}.${group}`) {
    causes.push(
      invalidValue('metadata.name', o.metadata.name, 'must be spec.names.plural+"."+spec.group'),
    );
  }
  if (!['Namespaced', 'Cluster'].includes(String(spec.scope))) {
    causes.push(notSupported('spec.scope', spec.scope, ['Cluster', 'Namespaced']));
  }
  const versions = crdVersions(o);
  if (versions.length === 0)
    causes.push(
      required('spec.versions', 'must have exactly one version marked as storage version'),
    );
  const seen = new Set<string>();
  versions.forEach((v, i) => {
    const name = asString(v.name) ?? '';
    if (name === '') causes.push(required(`spec.versions[${i}].name`));
    if (seen.has(name)) causes.push(duplicate(`spec.versions[${i}].name`, name));
    seen.add(name);
    const schema = isObj(v.schema) ? v.schema.openAPIV3Schema : undefined;
    if (!isObj(schema))
      causes.push(required(`spec.versions[${i}].schema.openAPIV3Schema`, 'schemas are required'));
  });
  if (versions.length > 0 && versions.filter((v) => v.storage === true).length !== 1) {
    causes.push(
      invalidValue(
        'spec.versions',
        versions.map((v) => v.name),
        'must have exactly one version marked as storage version',
      ),
    );
  }
  if (versions.length > 0 && !versions.some((v) => v.served === true)) {
    causes.push(
      invalidValue(
        'spec.versions',
        versions.map((v) => v.name),
        'must have at least one version marked as served',
      ),
    );
  }
  if (old !== undefined && crdSpec(old).group !== group)
    causes.push(invalidValue('spec.group', group, 'field is immutable'));
  return causes;
}

function condition(type: string, reason: string, message: string, prev: Obj[]): Obj {
  const was = prev.find((c) => c.type === type && c.status === 'True');
  return {
    type,
    status: 'True',
    lastTransitionTime: was?.lastTransitionTime ?? now(),
    reason,
    message,
  };
}

/** The status the apiextensions controllers converge to for an accepted CRD. */
function establish(o: KubeObject): void {
  const status = child(o, 'status');
  const prev = asArray(status.conditions).filter(isObj);
  status.acceptedNames = { ...crdNames(o) };
  const conditions = [
    condition('NamesAccepted', 'NoConflicts', 'no conflicts found', prev),
    condition('Established', 'InitialNamesAccepted', 'the initial names have been accepted', prev),
  ];
  if (o.metadata.deletionTimestamp !== undefined) {
    conditions.push(
      condition(
        'Terminating',
        'InstanceDeletionInProgress',
        'CustomResource deletion is in progress',
        prev,
      ),
    );
  }
  status.conditions = conditions;
  const stored = asArray(status.storedVersions).map(String);
  const storage = asString(crdVersions(o).find((v) => v.storage === true)?.name);
  if (storage !== undefined && !stored.includes(storage)) stored.push(storage);
  status.storedVersions = stored;
}

export const crdType = builtin({
  group: 'apiextensions.k8s.io',
  version: 'v1',
  kind: 'CustomResourceDefinition',
  model: 'V1CustomResourceDefinition',
  plural: 'customresourcedefinitions',
  namespaced: false,
  shortNames: ['crd', 'crds'],
  categories: ['api-extensions'],
  status: true,
  hooks: {
    defaults,
    validate,
    allocate: (o) => establish(o),
  },
  columns: [
    nameColumn,
    column('Created At', (o) => o.metadata.creationTimestamp ?? '', { type: 'date' }),
  ],
});
