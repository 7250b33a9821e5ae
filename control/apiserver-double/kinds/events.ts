// Events, served twice from one store like kube-apiserver does: core v1
// Event (what kubectl describe lists) and events.k8s.io/v1 Event (what
// newer recorders write), converted field by field as in
// k8s.io/kubernetes/pkg/apis/events/v1/conversion.go.
import { age, column } from '../columns.js';
import { invalidValue, notSupported, required, type Cause } from '../errors.js';
import { asString, isObj, str, type Obj } from '../json.js';
import { microTime, seconds } from '../time.js';
import type { KubeObject } from '../types.js';
import { builtin, builtinPatchMeta } from './base.js';

// events.k8s.io/v1 field -> core v1 field.
const RENAMES: [string, string][] = [
  ['regarding', 'involvedObject'],
  ['note', 'message'],
  ['deprecatedSource', 'source'],
  ['deprecatedFirstTimestamp', 'firstTimestamp'],
  ['deprecatedLastTimestamp', 'lastTimestamp'],
  ['deprecatedCount', 'count'],
  ['reportingController', 'reportingComponent'],
];

function rename(o: KubeObject, pairs: [string, string][], apiVersion: string): KubeObject {
  const out: KubeObject = { apiVersion, kind: 'Event', metadata: o.metadata };
  const map = new Map(pairs);
  for (const [k, v] of Object.entries(o)) {
    if (k === 'apiVersion' || k === 'kind' || k === 'metadata') continue;
    out[map.get(k) ?? k] = v;
  }
  return out;
}

function toCore(o: KubeObject): KubeObject {
  return rename(o, RENAMES, 'v1');
}

function toEventsV1(o: KubeObject): KubeObject {
  return rename(
    o,
    RENAMES.map(([a, b]) => [b, a]),
    'events.k8s.io/v1',
  );
}

function normalizeTimes(o: KubeObject): void {
  if (o.eventTime !== undefined && o.eventTime !== null) o.eventTime = microTime(o.eventTime);
  if (isObj(o.series)) o.series.lastObservedTime = microTime(o.series.lastObservedTime);
  for (const k of ['firstTimestamp', 'lastTimestamp'])
    if (o[k] !== undefined && o[k] !== null) o[k] = seconds(o[k]);
}

const TYPES = ['Normal', 'Warning'];

function validateCore(o: KubeObject): Cause[] {
  const causes: Cause[] = [];
  const inv = isObj(o.involvedObject) ? o.involvedObject : {};
  const ns = asString(inv.namespace) ?? '';
  if (ns !== '' && ns !== o.metadata.namespace) {
    causes.push(invalidValue('involvedObject.namespace', ns, 'does not match event.namespace'));
  }
  if (o.type !== undefined && !TYPES.includes(str(o.type)))
    causes.push(notSupported('type', o.type, TYPES));
  return causes;
}

// The stricter rules for events written through events.k8s.io/v1 (seen here
// in their stored core form).
function validateEventsV1(o: KubeObject): Cause[] {
  const causes = validateCore(o);
  if (o.eventTime === undefined || o.eventTime === null) causes.push(required('eventTime'));
  if (!asString(o.reportingComponent)) causes.push(required('reportingController'));
  if (!asString(o.reportingInstance)) causes.push(required('reportingInstance'));
  if (!asString(o.action)) causes.push(required('action'));
  if (!asString(o.reason)) causes.push(required('reason'));
  if (!TYPES.includes(str(o.type))) causes.push(notSupported('type', o.type, TYPES));
  return causes;
}

const FIELD_LABELS = {
  'involvedObject.kind': 'involvedObject.kind',
  'involvedObject.namespace': 'involvedObject.namespace',
  'involvedObject.name': 'involvedObject.name',
  'involvedObject.uid': 'involvedObject.uid',
  'involvedObject.apiVersion': 'involvedObject.apiVersion',
  'involvedObject.resourceVersion': 'involvedObject.resourceVersion',
  'involvedObject.fieldPath': 'involvedObject.fieldPath',
  reason: 'reason',
  reportingComponent: 'reportingComponent',
  source: 'source.component',
  type: 'type',
  // events.k8s.io/v1 names for the same fields.
  'regarding.kind': 'involvedObject.kind',
  'regarding.namespace': 'involvedObject.namespace',
  'regarding.name': 'involvedObject.name',
  'regarding.uid': 'involvedObject.uid',
  reportingController: 'reportingComponent',
};

function lastSeen(o: KubeObject, now: number): string {
  const series = isObj(o.series) ? o.series : undefined;
  return age(
    series?.lastObservedTime ?? o.lastTimestamp ?? o.eventTime ?? o.metadata.creationTimestamp,
    now,
  );
}

function objectRef(o: KubeObject): string {
  const inv: Obj = isObj(o.involvedObject) ? o.involvedObject : {};
  return `${str(inv.kind ?? '').toLowerCase()}/${str(inv.name ?? '')}`;
}

const columns = [
  column('Last Seen', lastSeen),
  column('Type', (o) => o.type ?? ''),
  column('Reason', (o) => o.reason ?? ''),
  column('Object', objectRef),
  column('Subobject', (o) => (isObj(o.involvedObject) ? (o.involvedObject.fieldPath ?? '') : ''), {
    priority: 1,
  }),
  column(
    'Source',
    (o) => (isObj(o.source) ? (o.source.component ?? '') : (o.reportingComponent ?? '')),
    { priority: 1 },
  ),
  column('Message', (o) => o.message ?? ''),
  column('First Seen', (o, now) => age(o.firstTimestamp ?? o.eventTime, now), { priority: 1 }),
  column('Count', (o) => str(o.count ?? (isObj(o.series) ? o.series.count : 1) ?? 1), {
    priority: 1,
  }),
  column('Name', (o) => o.metadata.name ?? '', { priority: 1 }),
];

export const coreEventType = builtin({
  group: '',
  version: 'v1',
  kind: 'Event',
  model: 'CoreV1Event',
  plural: 'events',
  namespaced: true,
  shortNames: ['ev'],
  storage: 'core/events',
  fieldLabels: FIELD_LABELS,
  hooks: { defaults: normalizeTimes, validate: validateCore },
  columns,
});

export const eventsV1Type = builtin({
  group: 'events.k8s.io',
  version: 'v1',
  kind: 'Event',
  model: 'EventsV1Event',
  plural: 'events',
  namespaced: true,
  shortNames: ['ev'],
  storage: 'core/events',
  fieldLabels: FIELD_LABELS,
  patchMeta: builtinPatchMeta(),
  toServed: toEventsV1,
  toStorage: toCore,
  hooks: { defaults: normalizeTimes, validate: validateEventsV1 },
  columns,
});
