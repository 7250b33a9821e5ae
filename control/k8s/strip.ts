// What the Kubernetes source keeps of an object: everything the API server
// sent except bookkeeping xlb never reads that costs memory at scale
// (managedFields often outweighs the rest of a Service; the last-applied
// annotation is a second copy of the object).

export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/**
 * Removes metadata.managedFields and the last-applied annotation from `obj`
 * (in place: it is freshly parsed JSON nobody else holds) and sets apiVersion
 * and kind, which a list leaves out of its items but a watch event carries:
 * the same object must look the same whichever way it arrived.
 */
export function stripObject<T extends object>(obj: T, apiVersion: string, kind: string): T {
  const o = obj as Record<string, unknown>;
  o.apiVersion = apiVersion;
  o.kind = kind;
  const metadata = record(o.metadata);
  if (metadata === undefined) return obj;
  delete metadata.managedFields;
  const annotations = record(metadata.annotations);
  if (annotations !== undefined && LAST_APPLIED_ANNOTATION in annotations) {
    delete annotations[LAST_APPLIED_ANNOTATION];
    if (Object.keys(annotations).length === 0) delete metadata.annotations;
  }
  return obj;
}
