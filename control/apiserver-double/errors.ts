// Errors as the API server reports them: a metav1.Status body whose reason,
// code and causes clients (client-go, client-node) branch on.
import type { Obj } from './json.js';

export interface Cause {
  /** Machine reason, e.g. FieldValueRequired, FieldValueInvalid. */
  reason: string;
  message: string;
  /** JSON path of the field, e.g. "spec.ports[0].port". */
  field: string;
}

export interface ErrorDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: Cause[];
  retryAfterSeconds?: number;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details: ErrorDetails = {},
  ) {
    super(message);
  }

  status(): Obj {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      details: this.details,
      code: this.code,
    };
  }
}

/** "services", "leases.coordination.k8s.io": how messages name a resource. */
export function qualified(resource: string, group: string): string {
  return group === '' ? resource : `${resource}.${group}`;
}

export function notFound(resource: string, group: string, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${qualified(resource, group)} "${name}" not found`, {
    name,
    group,
    kind: resource,
  });
}

export function pathNotFound(): ApiError {
  return new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});
}

export function alreadyExists(resource: string, group: string, name: string): ApiError {
  return new ApiError(
    409,
    'AlreadyExists',
    `${qualified(resource, group)} "${name}" already exists`,
    { name, group, kind: resource },
  );
}

export function conflict(resource: string, group: string, name: string, why: string): ApiError {
  return new ApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(resource, group)} "${name}": ${why}`,
    { name, group, kind: resource },
  );
}

export const STALE =
  'the object has been modified; please apply your changes to the latest version and try again';

export function invalid(kind: string, group: string, name: string, causes: Cause[]): ApiError {
  const list = causes.map((c) => `${c.field}: ${c.message}`);
  const text = list.length === 1 ? list[0] : `[${list.join(', ')}]`;
  return new ApiError(
    422,
    'Invalid',
    `${group === '' ? kind : `${kind}.${group}`} "${name}" is invalid: ${text}`,
    { name, group, kind, causes },
  );
}

export function badRequest(message: string): ApiError {
  return new ApiError(400, 'BadRequest', message);
}

export function forbidden(message: string): ApiError {
  return new ApiError(403, 'Forbidden', message);
}

export function methodNotAllowed(): ApiError {
  return new ApiError(
    405,
    'MethodNotAllowed',
    'the server does not allow this method on the requested resource',
  );
}

export function unsupportedMediaType(contentType: string): ApiError {
  return new ApiError(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: application/json, application/merge-patch+json, application/strategic-merge-patch+json, application/json-patch+json; got ${JSON.stringify(contentType)}`,
  );
}

export function gone(message: string): ApiError {
  return new ApiError(410, 'Expired', message);
}

export function unprocessable(message: string): ApiError {
  return new ApiError(422, 'Invalid', message);
}

// Causes in the wording of k8s.io/apimachinery's field errors.
export function required(field: string, detail = ''): Cause {
  return {
    reason: 'FieldValueRequired',
    field,
    message: `Required value${detail ? `: ${detail}` : ''}`,
  };
}

export function invalidValue(field: string, value: unknown, detail: string): Cause {
  return {
    reason: 'FieldValueInvalid',
    field,
    message: `Invalid value: ${JSON.stringify(value)}: ${detail}`,
  };
}

export function notSupported(field: string, value: unknown, allowed: string[]): Cause {
  return {
    reason: 'FieldValueNotSupported',
    field,
    message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${allowed.map((a) => `"${a}"`).join(', ')}`,
  };
}

export function duplicate(field: string, value: unknown): Cause {
  return {
    reason: 'FieldValueDuplicate',
    field,
    message: `Duplicate value: ${JSON.stringify(value)}`,
  };
}

export function forbiddenField(field: string, detail: string): Cause {
  return { reason: 'FieldValueForbidden', field, message: `Forbidden: ${detail}` };
}
