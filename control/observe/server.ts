// The agent's HTTP endpoints: /metrics (the prom-client registry), /healthz
// (the process answers), /readyz (200 once ready, 503 with the reason
// before) and, when the agent hands in a callback, /status (JSON, what
// `xlb status` shows). Plain node:http: four read-only routes need no framework.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Registry } from 'prom-client';

import { logger, type Logger } from './log.js';
import { registry as defaultRegistry } from './metrics.js';

export type Readiness = { ready: true } | { ready: false; reason: string };

export interface ObserveServerOptions {
  host: string;
  /** 0 picks a free port; `address` tells which. */
  port: number;
  readiness: () => Readiness;
  /** What GET /status answers, as JSON; without it /status is 404. */
  status?: () => unknown;
  registry?: Registry;
  log?: Logger;
}

export interface ObserveServer {
  /** Where it listens, with the real port. */
  readonly address: { host: string; port: number };
  /** e.g. http://127.0.0.1:9597 (IPv6 hosts in brackets). */
  readonly url: string;
  /** Stops listening and drops idle keep-alive connections; resolves when closed. */
  close(): Promise<void>;
}

export class ObserveServerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ObserveServerError';
  }
}

function send(
  res: ServerResponse,
  status: number,
  body: string,
  type = 'text/plain; charset=utf-8',
): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

export async function startObserveServer(options: ObserveServerOptions): Promise<ObserveServer> {
  const registry = options.registry ?? defaultRegistry;
  const log = options.log ?? logger('observe');

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'only GET and HEAD\n');
      return;
    }
    switch (path) {
      case '/metrics':
        send(res, 200, await registry.metrics(), registry.contentType);
        return;
      case '/healthz':
        send(res, 200, 'ok\n');
        return;
      case '/readyz': {
        const r = options.readiness();
        if (r.ready) send(res, 200, 'ready\n');
        else send(res, 503, `not ready: ${r.reason}\n`);
        return;
      }
      case '/status':
        if (options.status === undefined) {
          send(res, 404, 'not found: this server has no /status\n');
          return;
        }
        send(res, 200, `${JSON.stringify(await options.status(), null, 2)}\n`, 'application/json');
        return;
      default:
        send(
          res,
          404,
          `not found: try /metrics, /healthz${options.status ? ', /readyz or /status' : ' or /readyz'}\n`,
        );
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err, url: req.url }, 'observe endpoint failed');
      if (!res.headersSent) send(res, 500, `error: ${(err as Error).message}\n`);
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const hint =
        err.code === 'EADDRINUSE'
          ? 'the address is in use: choose another with --metrics-address'
          : err.code === 'EADDRNOTAVAIL'
            ? 'no interface has this address: choose another with --metrics-address'
            : err.message;
      reject(new ObserveServerError(`cannot listen on ${options.host}:${options.port}: ${hint}`));
    };
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'observe server error'));

  const bound = server.address() as AddressInfo;
  const address = { host: bound.address, port: bound.port };
  const url = `http://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
  let closing: Promise<void> | undefined;
  return {
    address,
    url,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Scrapers keep connections alive; without this close() waits for them.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
