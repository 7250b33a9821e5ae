// The shapes shared by the store, the verbs and the kinds.
import type { Cause } from './errors.js';
import type { Obj } from './json.js';
import type { PatchMeta } from './patch/strategic.js';

export interface ObjectMeta extends Obj {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
}

export interface KubeObject extends Obj {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** What the hooks of a kind may read: the rest of the cluster. */
export interface ClusterView {
  /** Every stored object of a storage key, e.g. "core/services". */
  list(storage: string): KubeObject[];
  /** Service CIDRs, primary family first. */
  serviceCIDRs: string[];
  nodePortRange: [number, number];
}

export interface Column {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  format?: string;
  description: string;
  /** 0: always shown; 1: only with -o wide. */
  priority: number;
  cell(o: KubeObject, now: number): unknown;
}

export interface KindHooks {
  /** Fills the defaults the API server sets (before validation). */
  defaults?(o: KubeObject, old: KubeObject | undefined): void;
  /** Field causes; old is the stored object on update. */
  validate?(o: KubeObject, old: KubeObject | undefined): Cause[];
  /** Causes for a write through /status. */
  validateStatus?(o: KubeObject): Cause[];
  /** Allocates what the server owns (cluster IPs, node ports); throws ApiError. */
  allocate?(o: KubeObject, old: KubeObject | undefined, cluster: ClusterView): void;
  /** Status a new object gets when create must not set it. */
  initialStatus?(o: KubeObject): Obj | undefined;
  /** Custom resources: applies the schema's defaults, then validates against it. */
  structural?(o: KubeObject, subresource: 'status' | undefined): Cause[];
}

export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  listKind: string;
  /** The resource name in URLs: "services". */
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** Key shared by every version (and aliased group) served from one store. */
  storage: string;
  /** Has a /status subresource: the main resource then ignores status. */
  status: boolean;
  /** Create keeps a given status (Nodes) instead of resetting it. */
  keepStatusOnCreate: boolean;
  /** Strategic merge patch metadata; undefined for custom resources (415). */
  patchMeta: PatchMeta | undefined;
  /** metadata.generation is kept and bumped on spec changes. */
  generation: boolean;
  /** PUT without metadata.resourceVersion is allowed (false for custom resources). */
  unconditionalUpdate: boolean;
  /** DELETE answers with the deleted object rather than a Status (Services, Pods, CRs). */
  returnDeletedObject: boolean;
  /** Field selector labels besides metadata.name/namespace, mapped to paths in the stored form. */
  fieldLabels: Record<string, string>;
  /** Problems with a metadata.name; empty when valid. */
  nameRule(name: string): string[];
  /** Stored form -> this version's form (shared storage across groups/versions). */
  toServed?(stored: KubeObject): KubeObject;
  toStorage?(served: KubeObject): KubeObject;
  hooks: KindHooks;
  columns: Column[];
  /**
   * Structural schema: request bodies lose the fields it does not declare
   * (refused under strict field validation); published in the OpenAPI documents.
   */
  schema: Obj;
  /** The CRD that serves it, for custom resources. */
  crd?: string;
}

export function apiVersionOf(t: { group: string; version: string }): string {
  return t.group === '' ? t.version : `${t.group}/${t.version}`;
}

export function groupVersionPath(t: { group: string; version: string }): string {
  return t.group === '' ? `api/${t.version}` : `apis/${t.group}/${t.version}`;
}
