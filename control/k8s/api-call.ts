// Calling the API server from a controller: per-call options (cancellation,
// a deadline, the patch content type) and what a failed call means, so every
// writer retries, counts and logs failures the same way.
import {
  ApiException,
  Observable,
  type ConfigurationOptions,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';

import type { Logger } from '../observe/log.js';

export const MERGE_PATCH = 'application/merge-patch+json';

export interface CallOptions {
  /** Aborts the request (the controller stopped). */
  signal: AbortSignal;
  /** The request's deadline: an API server that accepts but never answers must not hang a writer. */
  timeoutMs: number;
  /** Content-Type of the body, for patches (client-node defaults to JSON patch). */
  contentType?: string;
}

/** Per-call client-node options: abort with `signal` or after `timeoutMs`, and the content type. */
export function callOptions(o: CallOptions): ConfigurationOptions {
  const middleware: ObservableMiddleware = {
    pre: (ctx: RequestContext) => {
      ctx.setSignal(AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)]));
      if (o.contentType !== undefined) ctx.setHeaderParam('Content-Type', o.contentType);
      return new Observable(Promise.resolve(ctx));
    },
    post: (res: ResponseContext) => new Observable(Promise.resolve(res)),
  };
  // 'append' keeps the configuration's own middleware.
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

/**
 * What a failed call means to a writer:
 * - conflict: 409, the object changed since it was read: re-read, recompute, retry;
 * - gone: 404, nothing left to write;
 * - unreachable: no HTTP answer (refused, reset, timed out): retry quietly;
 * - aborted: the controller stopped: give up silently;
 * - rejected: any other HTTP answer (422 Invalid, 403, 500, ...): log, count, retry later.
 */
export type CallFailure =
  | { kind: 'conflict'; code: 409; reason: 'Conflict'; message: string }
  | { kind: 'gone'; code: 404; reason: 'NotFound'; message: string }
  | { kind: 'unreachable'; reason: 'Unreachable'; message: string }
  | { kind: 'aborted'; reason: 'Aborted'; message: string }
  | { kind: 'rejected'; code: number; reason: string; message: string };

/** A Status's reason as the API server names it, from its body or the code. */
const CODE_REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Gone',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

function statusBody(body: unknown): { reason?: string; message?: string } {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return { message: body };
    }
  }
  if (typeof parsed !== 'object' || parsed === null) return {};
  const r = parsed as Record<string, unknown>;
  return {
    ...(typeof r['reason'] === 'string' ? { reason: r['reason'] } : {}),
    ...(typeof r['message'] === 'string' ? { message: r['message'] } : {}),
  };
}

export function classifyFailure(err: unknown, signal?: AbortSignal): CallFailure {
  if (signal?.aborted === true)
    return { kind: 'aborted', reason: 'Aborted', message: 'the controller stopped' };
  if (err instanceof ApiException) {
    const code = Number(err.code);
    const body = statusBody(err.body);
    const message = body.message ?? `HTTP ${code}`;
    if (code === 409) return { kind: 'conflict', code, reason: 'Conflict', message };
    if (code === 404) return { kind: 'gone', code, reason: 'NotFound', message };
    // Only known reasons become metric labels: a body can say anything.
    const reason = CODE_REASONS[code] ?? (code >= 500 ? 'ServerError' : 'ClientError');
    return { kind: 'rejected', code, reason, message };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { kind: 'unreachable', reason: 'Unreachable', message };
}

/**
 * Whether the API server answers, logged once per change: a controller that
 * cannot reach it keeps retrying quietly instead of logging every attempt.
 */
export class Reachability {
  private reachable = true;

  constructor(private readonly log: Logger) {}

  get ok(): boolean {
    return this.reachable;
  }

  answered(): void {
    if (this.reachable) return;
    this.reachable = true;
    this.log.info('the API server answers again');
  }

  unreachable(message: string): void {
    if (!this.reachable) return;
    this.reachable = false;
    this.log.warn({ error: message }, 'the API server is unreachable; retrying quietly');
  }

  /** Notes what a call's outcome says about reachability; returns the failure. */
  note(failure: CallFailure): CallFailure {
    if (failure.kind === 'unreachable') this.unreachable(failure.message);
    else if (failure.kind !== 'aborted') this.answered();
    return failure;
  }
}
