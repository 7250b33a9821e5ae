// The client's types promise shapes that objects from a YAML directory or a
// half-written status do not keep. Every field the model reads goes through
// these, so a wrong shape becomes "absent" instead of an exception.

export function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? (value as unknown[]) : [];
}

export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

export function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function asBoolean(value: unknown): boolean | undefined {
  return typeof value === 'boolean' ? value : undefined;
}

/** A string-to-string map such as labels or annotations; other entries dropped. */
export function asStringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(asRecord(value) ?? {})) if (typeof v === 'string') out[k] = v;
  return out;
}

export function isPortNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}

/** Code-unit order: unlike localeCompare, the same on every node whatever its locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `namespace/name`; objects from a YAML directory may leave the namespace out. */
export function objectKey(metadata: unknown): { namespace: string; name: string | undefined } {
  const m = asRecord(metadata);
  const namespace = asString(m?.['namespace']);
  return {
    namespace: namespace === undefined || namespace === '' ? 'default' : namespace,
    name: asString(m?.['name']) || undefined,
  };
}
