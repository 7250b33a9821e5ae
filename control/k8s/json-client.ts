// Requests to the API server that hand back its JSON untouched. They go
// through @kubernetes/client-node's own HTTP stack (the KubeConfig applies
// credentials, CAs, proxies, exec plugins), but skip the typed API classes:
// those drop every field the client's models do not know and turn times into
// Dates, so a listed object would differ from the same object arriving on a
// watch (raw JSON) and from what the server holds.
import {
  ServerConfiguration,
  createConfiguration,
  type Configuration,
  HttpMethod,
  type KubeConfig,
} from '@kubernetes/client-node';

export type FailureKind = 'http' | 'network' | 'timeout' | 'aborted' | 'decode';

export class KubeApiError extends Error {
  constructor(
    message: string,
    /** http: the server answered with an error status; the others: no usable answer. */
    readonly kind: FailureKind,
    readonly method: string,
    readonly path: string,
    /** HTTP status, for kind 'http'. */
    readonly status?: number,
    /** The Status object's reason ("NotFound", "Conflict", "Expired"...), when the server sent one. */
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

export interface JsonRequest {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path from the server's root, e.g. /api/v1/services. */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Default application/json; patches name their type. */
  contentType?: string;
  signal?: AbortSignal;
  /** Default 30 s. */
  timeoutMs?: number;
}

const METHODS: Record<NonNullable<JsonRequest['method']>, HttpMethod> = {
  GET: HttpMethod.GET,
  POST: HttpMethod.POST,
  PUT: HttpMethod.PUT,
  PATCH: HttpMethod.PATCH,
  DELETE: HttpMethod.DELETE,
};

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function describeStatus(text: string): { reason?: string; message?: string } {
  try {
    const status = record(JSON.parse(text));
    const reason = typeof status?.reason === 'string' ? status.reason : undefined;
    const message = typeof status?.message === 'string' ? status.message : undefined;
    return { reason, message };
  } catch {
    return { message: text.trim().slice(0, 200) || undefined };
  }
}

export class JsonClient {
  private readonly config: Configuration;
  /** The server URL, for error messages. */
  readonly server: string;

  constructor(kubeConfig: KubeConfig) {
    const cluster = kubeConfig.getCurrentCluster();
    if (cluster === null)
      throw new Error(
        'the kubeconfig has no current cluster: set current-context, or run in a pod (in-cluster config)',
      );
    this.server = cluster.server;
    this.config = createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: kubeConfig },
    });
  }

  /** The parsed JSON body of a successful answer; throws KubeApiError otherwise. */
  async request<T = unknown>(req: JsonRequest): Promise<T> {
    const method = req.method ?? 'GET';
    const ctx = this.config.baseServer.makeRequestContext(req.path, METHODS[method]);
    for (const [k, v] of Object.entries(req.query ?? {}))
      if (v !== undefined) ctx.setQueryParam(k, String(v));
    ctx.setHeaderParam('Accept', 'application/json');
    if (req.body !== undefined) {
      ctx.setHeaderParam('Content-Type', req.contentType ?? 'application/json');
      ctx.setBody(JSON.stringify(req.body));
    }
    // A timer cleared when the answer is in, so no request leaves one behind.
    const timeoutMs = req.timeoutMs ?? 30_000;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeoutMs);
    const timeout = deadline.signal;
    ctx.setSignal(req.signal === undefined ? timeout : AbortSignal.any([req.signal, timeout]));
    const fail = (kind: FailureKind, why: string, status?: number, reason?: string) =>
      new KubeApiError(`${method} ${req.path}: ${why}`, kind, method, req.path, status, reason);

    let status: number;
    let text: string;
    try {
      await this.config.authMethods.default?.applySecurityAuthentication(ctx);
      const response = await this.config.httpApi.send(ctx).toPromise();
      status = response.httpStatusCode;
      text = await response.body.text();
    } catch (err) {
      if (req.signal?.aborted === true) throw fail('aborted', 'cancelled');
      if (timeout.aborted)
        throw fail('timeout', `no answer from ${this.server} within ${timeoutMs} ms`);
      const code = (err as { code?: unknown }).code;
      const detail = typeof code === 'string' ? `${code}: ` : '';
      throw fail(
        'network',
        `cannot reach the API server at ${this.server}: ${detail}${(err as Error).message}`,
      );
    } finally {
      clearTimeout(timer);
    }
    if (status < 200 || status > 299) {
      const { reason, message } = describeStatus(text);
      throw fail(
        'http',
        `${status}${reason === undefined ? '' : ` ${reason}`}${message === undefined ? '' : `: ${message}`}`,
        status,
        reason,
      );
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw fail('decode', `the answer (status ${status}) is not JSON`);
    }
  }
}
