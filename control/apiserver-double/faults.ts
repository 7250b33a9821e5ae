// Fault injection and the request log: tests make the next N requests of a
// verb and kind fail with a chosen status, and read back what clients sent.
import { ApiError } from './errors.js';

export type Verb =
  'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';

export interface Fault {
  /** Default: any verb. */
  verb?: Verb | Verb[];
  /** Kind or resource name ("Service", "services", "leases"); default: any. */
  resource?: string;
  subresource?: string;
  /** How many matching requests fail; default 1. */
  count?: number;
  /** HTTP status; default 500. */
  code?: number;
  reason?: string;
  message?: string;
  /** Sets Retry-After and details.retryAfterSeconds (429, 503). */
  retryAfterSeconds?: number;
}

export interface RequestRecord {
  method: string;
  /** Path and query as sent. */
  url: string;
  verb?: Verb;
  group?: string;
  version?: string;
  resource?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  subresource?: string;
  contentType?: string;
  accept?: string;
  userAgent?: string;
  /** Response status (for watches, the status the stream started with). */
  code: number;
}

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  410: 'Expired',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export class Faults {
  private pending: (Fault & { left: number })[] = [];

  add(f: Fault): void {
    this.pending.push({ ...f, left: f.count ?? 1 });
  }

  clear(): void {
    this.pending = [];
  }

  /** The error for this request, if a fault matches it (consuming one use). */
  take(r: {
    verb: Verb;
    resource: string;
    kind: string;
    subresource?: string;
  }): ApiError | undefined {
    const f = this.pending.find(
      (p) =>
        (p.verb === undefined ||
          (Array.isArray(p.verb) ? p.verb.includes(r.verb) : p.verb === r.verb)) &&
        (p.resource === undefined || p.resource === r.resource || p.resource === r.kind) &&
        (p.subresource === undefined || p.subresource === r.subresource),
    );
    if (f === undefined) return undefined;
    if (--f.left <= 0) this.pending = this.pending.filter((p) => p !== f);
    const code = f.code ?? 500;
    return new ApiError(
      code,
      f.reason ?? REASONS[code] ?? 'Unknown',
      f.message ?? `injected fault (${code})`,
      {
        ...(f.retryAfterSeconds !== undefined ? { retryAfterSeconds: f.retryAfterSeconds } : {}),
      },
    );
  }
}
