// Typed errors for objects that fail validation. Every issue names the field
// path the way kubectl users read it ("spec.ports[1].port"), so the message
// points at the line to fix.
import type { z } from 'zod';

export interface FieldIssue {
  /** Dotted path into the object, e.g. `spec.addresses[0]`; empty for the object itself. */
  path: string;
  message: string;
}

export class InvalidResourceError extends Error {
  constructor(
    readonly kind: string,
    readonly resourceName: string | undefined,
    readonly issues: readonly FieldIssue[],
  ) {
    const what = resourceName === undefined ? kind : `${kind} '${resourceName}'`;
    const list = issues.map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`));
    super(`${what} is invalid: ${list.join('; ')}`);
    this.name = 'InvalidResourceError';
  }
}

export class UnknownKindError extends Error {
  constructor(
    readonly apiVersion: unknown,
    readonly kind: unknown,
    message: string,
  ) {
    super(message);
    this.name = 'UnknownKindError';
  }
}

const identifier = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `['spec', 'ports', 1, 'port']` -> `spec.ports[1].port`; odd keys (label names) in brackets. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (typeof p === 'string' && identifier.test(p)) out += out === '' ? p : `.${p}`;
    else out += `[${JSON.stringify(String(p))}]`;
  }
  return out;
}

export function fieldIssues(error: z.ZodError, prefix: readonly PropertyKey[] = []): FieldIssue[] {
  return error.issues.map((i) => ({
    path: formatPath([...prefix, ...i.path]),
    message: i.message,
  }));
}

/** The object's metadata.name if it has a readable one, to say which object failed. */
export function nameOf(obj: unknown): string | undefined {
  if (typeof obj !== 'object' || obj === null) return undefined;
  const meta = (obj as { metadata?: unknown }).metadata;
  if (typeof meta !== 'object' || meta === null) return undefined;
  const name = (meta as { name?: unknown }).name;
  return typeof name === 'string' ? name : undefined;
}

/** Parses `obj` with `schema`, or throws an InvalidResourceError listing every issue. */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  kind: string,
  obj: unknown,
): z.output<S> {
  const r = schema.safeParse(obj);
  if (!r.success) throw new InvalidResourceError(kind, nameOf(obj), fieldIssues(r.error));
  return r.data;
}
