// One kind's list-then-watch loop. The whole state after every (re)list goes
// to `replace`, each watch event to `upsert` or `remove`.
//
// Why not client-node's ListWatch: it has no hook for "this list is complete"
// (so a relist cannot replace the store's state in one step and deletions
// missed while disconnected would need its own cache diffed against ours),
// keeps a second full copy of every object with managedFields, stops for good
// after a list or watch error with no back-off of its own, re-watches at once
// after a closed watch (a server or proxy that closes watches immediately
// makes it spin), does not paginate, and can still open a watch after stop()
// when stop() lands during a list. This loop uses client-node's Watch (raw
// JSON events) and JsonClient for paginated lists.
//
// Semantics follow client-go's reflector: a watch resumes from the last
// resourceVersion it saw after a clean close; a 410 Gone (history compacted)
// or any error means a relist. Every attempt after the first waits for the
// back-off, which resets only once a watch proves healthy (an event, or open
// for `healthyAfterMs`): resetting after a successful list would relist every
// 100 ms against a server whose lists work but whose watches fail.
import { Watch, type KubeConfig } from '@kubernetes/client-node';

import type { Logger } from '../observe/log.js';

import { Backoff, pause, type BackoffOptions } from './backoff.js';
import { KubeApiError, type JsonClient } from './json-client.js';
import { stripObject } from './strip.js';
import type { WatchedKind } from './watched-kinds.js';

export type KubeObjectJson = Record<string, unknown>;

export interface InformerHandlers {
  /** The kind's whole state, after every (re)list. */
  replace(objects: KubeObjectJson[]): void;
  upsert(obj: KubeObjectJson): void;
  remove(obj: KubeObjectJson): void;
}

export interface InformerTimings {
  backoff?: BackoffOptions;
  /** Objects per list page; default 500 (client-go's). */
  pageSize?: number;
  /**
   * The server ends each watch after a random time between this and twice
   * this (client-go: 5-10 minutes), so no watch outlives a silently dropped
   * connection by long; default 300.
   */
  watchTimeoutSeconds?: number;
  /** A watch open this long counts as healthy and resets the back-off; default 10 s. */
  healthyAfterMs?: number;
  /** One list page; default 60 s. */
  requestTimeoutMs?: number;
}

export interface InformerStatus {
  /** A watch is open. */
  connected: boolean;
  /** Listed at least once. */
  synced: boolean;
  /** Lists after the first. */
  relists: number;
  /** Failed lists and watches that ended in an error. */
  errors: number;
  lastError?: string;
  lastErrorAt?: Date;
  /** The last resourceVersion seen. */
  resourceVersion?: string;
}

export interface InformerObserver {
  listed?(objects: number, relist: boolean): void;
  failed?(error: string): void;
  connected?(connected: boolean): void;
}

/** What an informer reads: a watched kind, or another collection (one namespace's Secrets). */
export type InformerResource = Pick<WatchedKind, 'apiVersion' | 'path' | 'whenMissing'> & {
  kind: string;
  /** What to do when the agent may not read it (403). */
  whenForbidden?: string;
};

export interface InformerOptions extends InformerTimings {
  kubeConfig: KubeConfig;
  client: JsonClient;
  resource: InformerResource;
  handlers: InformerHandlers;
  log: Logger;
  observer?: InformerObserver;
}

type WatchEnd =
  | { outcome: 'closed'; resourceVersion: string; healthy: boolean }
  | { outcome: 'relist' }
  | { outcome: 'expired'; healthy: boolean }
  | { outcome: 'error'; error: string; healthy: boolean }
  | { outcome: 'stopped' };

interface ListPage {
  items?: unknown;
  metadata?: { resourceVersion?: unknown; continue?: unknown };
}

function record(value: unknown): KubeObjectJson | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as KubeObjectJson)
    : undefined;
}

function resourceVersionOf(obj: unknown): string | undefined {
  const rv = record(record(obj)?.metadata)?.resourceVersion;
  return typeof rv === 'string' && rv !== '' ? rv : undefined;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The HTTP status of a failed watch request, as client-node's Watch reports it. */
function statusOf(err: unknown): number | undefined {
  const e = err as { statusCode?: unknown; code?: unknown } | null | undefined;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return typeof e?.code === 'number' ? e.code : undefined;
}

export class Informer {
  private readonly opts: InformerOptions;
  private readonly watch: Watch;
  private readonly backoff: Backoff;
  private readonly abort = new AbortController();
  private readonly state: InformerStatus = {
    connected: false,
    synced: false,
    relists: 0,
    errors: 0,
  };
  private loop: Promise<void> | undefined;
  /** A watch request whose answer has not arrived: stop() waits for it (bounded) to close it. */
  private starting: Promise<unknown> | undefined;
  /** relist() was asked for since the last list handed its objects over. */
  private relistWanted = false;
  /** Ends the open watch for a relist; set while one is open. */
  private endForRelist: (() => void) | undefined;

  constructor(options: InformerOptions) {
    this.opts = options;
    this.watch = new Watch(options.kubeConfig);
    this.backoff = new Backoff(options.backoff);
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Ends the watch, any request in flight and every timer. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    // The answer to a watch request cannot be cancelled before it arrives
    // (Watch hands out its AbortController only then); it is closed on arrival.
    if (this.starting !== undefined) {
      const bound = new AbortController();
      await Promise.race([this.starting, pause(this.requestTimeoutMs(), bound.signal)]);
      bound.abort();
    }
    this.setConnected(false);
  }

  status(): InformerStatus {
    return { ...this.state };
  }

  /**
   * Lists again now, ending the open watch: for a handler whose idea of what
   * to keep of each object grew (it cannot take back what it dropped). A list
   * in flight already serves, as its objects reach the handler only at its end.
   */
  relist(): void {
    this.relistWanted = true;
    this.endForRelist?.();
  }

  private requestTimeoutMs(): number {
    return this.opts.requestTimeoutMs ?? 60_000;
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  private async run(): Promise<void> {
    let resourceVersion: string | undefined;
    let delay = 0;
    while (!this.stopped) {
      if (delay > 0) await pause(delay, this.abort.signal);
      if (this.stopped) break;
      try {
        ({ resourceVersion, delay } = await this.step(resourceVersion));
      } catch (err) {
        // A bug here must not end the loop (nor crash the agent): log it and
        // start over from a list.
        resourceVersion = undefined;
        delay = this.backoff.next();
        this.failed(`unexpected error: ${errorText(err)}`, delay);
      }
    }
  }

  /** One list (when needed) and one watch; what to do next. */
  private async step(
    from: string | undefined,
  ): Promise<{ resourceVersion: string | undefined; delay: number }> {
    const { resource, log } = this.opts;
    let resourceVersion = from;
    if (resourceVersion === undefined) {
      try {
        resourceVersion = await this.list();
      } catch (err) {
        if (this.stopped) return { resourceVersion: undefined, delay: 0 };
        const delay = this.backoff.next();
        this.failed(`list failed: ${this.explain(err)}`, delay);
        return { resourceVersion: undefined, delay };
      }
    }
    const end = await this.watchOnce(resourceVersion);
    if (end.outcome === 'stopped' || this.stopped) return { resourceVersion, delay: 0 };
    if (end.outcome === 'relist') {
      log.debug({ kind: resource.kind }, `${resource.kind}: relisting on request`);
      return { resourceVersion: undefined, delay: 0 };
    }
    if (end.healthy) this.backoff.reset();
    const delay = this.backoff.next();
    if (end.outcome === 'closed') {
      log.debug(
        { kind: resource.kind, resourceVersion: end.resourceVersion, retryInMs: delay },
        `${resource.kind}: watch closed, resuming`,
      );
      return { resourceVersion: end.resourceVersion, delay };
    }
    if (end.outcome === 'expired') {
      log.info(
        { kind: resource.kind, retryInMs: delay },
        `${resource.kind}: watch history expired (410 Gone), relisting`,
      );
    } else {
      this.failed(`watch failed: ${end.error}`, delay);
    }
    return { resourceVersion: undefined, delay };
  }

  private explain(err: unknown): string {
    if (err instanceof KubeApiError && err.kind === 'http' && err.status === 404)
      return `${err.message}: ${this.opts.resource.whenMissing}`;
    const forbidden = this.opts.resource.whenForbidden;
    if (err instanceof KubeApiError && err.kind === 'http' && err.status === 403 && forbidden)
      return `${err.message}: ${forbidden}`;
    return errorText(err);
  }

  private failed(error: string, retryInMs: number): void {
    this.state.errors++;
    this.state.lastError = error;
    this.state.lastErrorAt = new Date();
    this.opts.observer?.failed?.(error);
    this.opts.log.warn(
      { kind: this.opts.resource.kind, err: error, retryInMs, errors: this.state.errors },
      `${this.opts.resource.kind}: ${error.slice(0, error.indexOf(':'))}, retrying; ` +
        'the objects read before stay in effect',
    );
  }

  private setConnected(connected: boolean): void {
    if (this.state.connected === connected) return;
    this.state.connected = connected;
    this.opts.observer?.connected?.(connected);
  }

  /** Lists every page; hands the whole state over; returns the list's resourceVersion. */
  private async list(): Promise<string> {
    const { client, resource, handlers } = this.opts;
    const objects: KubeObjectJson[] = [];
    let resourceVersion: string | undefined;
    let token: string | undefined;
    do {
      const page = await client.request<ListPage>({
        path: resource.path,
        query: { limit: this.opts.pageSize ?? 500, continue: token },
        signal: this.abort.signal,
        timeoutMs: this.requestTimeoutMs(),
      });
      const items = Array.isArray(page.items) ? (page.items as unknown[]) : [];
      for (const item of items) {
        const obj = record(item);
        if (obj !== undefined) objects.push(stripObject(obj, resource.apiVersion, resource.kind));
      }
      // Every page of a list is one snapshot; the first page's version is
      // where watching resumes (later pages only repeat or follow it).
      const rv = page.metadata?.resourceVersion;
      if (resourceVersion === undefined && typeof rv === 'string' && rv !== '')
        resourceVersion = rv;
      const next = page.metadata?.continue;
      token = typeof next === 'string' && next !== '' ? next : undefined;
    } while (token !== undefined && !this.stopped);
    if (this.stopped) throw new Error('stopped');
    if (resourceVersion === undefined)
      throw new Error('the list came without metadata.resourceVersion, so it cannot be watched');
    this.relistWanted = false;
    handlers.replace(objects);
    const relist = this.state.synced;
    if (relist) this.state.relists++;
    this.state.synced = true;
    this.state.resourceVersion = resourceVersion;
    this.opts.observer?.listed?.(objects.length, relist);
    this.opts.log.info(
      {
        kind: resource.kind,
        objects: objects.length,
        resourceVersion,
        relists: this.state.relists,
      },
      relist ? `${resource.kind}: relisted` : `${resource.kind}: listed`,
    );
    return resourceVersion;
  }

  private watchOnce(from: string): Promise<WatchEnd> {
    const { resource, handlers } = this.opts;
    const seconds = this.opts.watchTimeoutSeconds ?? 300;
    const startedAt = Date.now();
    let latest = from;
    let sawEvent = false;
    let settled = false;
    let controller: AbortController | undefined;
    let problem: { expired: boolean; error?: string } | undefined;

    return new Promise<WatchEnd>((resolve) => {
      const healthy = (): boolean =>
        sawEvent || Date.now() - startedAt >= (this.opts.healthyAfterMs ?? 10_000);
      const settle = (end: WatchEnd): void => {
        if (settled) return;
        settled = true;
        this.endForRelist = undefined;
        this.abort.signal.removeEventListener('abort', onStop);
        controller?.abort();
        this.setConnected(false);
        resolve(end);
      };
      const onStop = (): void => settle({ outcome: 'stopped' });
      const onDone = (err: unknown): void => {
        if (settled) return;
        if (problem?.expired === true || statusOf(err) === 410)
          return settle({ outcome: 'expired', healthy: healthy() });
        if (problem?.error !== undefined)
          return settle({ outcome: 'error', error: problem.error, healthy: healthy() });
        if (err !== null && err !== undefined) {
          const status = statusOf(err);
          const code = (err as { code?: unknown }).code;
          const error =
            status === 404
              ? `404 Not Found: ${resource.whenMissing}`
              : status === 403 && resource.whenForbidden !== undefined
                ? `403 Forbidden: ${resource.whenForbidden}`
                : status !== undefined
                  ? `${status} ${errorText(err)}`
                  : typeof code === 'string'
                    ? `cannot reach the API server at ${this.opts.client.server}: ${code}`
                    : errorText(err);
          return settle({ outcome: 'error', error, healthy: healthy() });
        }
        settle({ outcome: 'closed', resourceVersion: latest, healthy: healthy() });
      };
      const onEvent = (type: string, obj: unknown): void => {
        if (settled) return;
        const o = record(obj);
        if (type === 'ERROR') {
          const code = o?.code;
          problem =
            code === 410
              ? { expired: true }
              : {
                  expired: false,
                  error: `the server ended the watch: ${String(code)} ${String(o?.reason)}: ${String(o?.message)}`,
                };
          // The server ends the stream after an ERROR; do not wait for it.
          onDone(null);
          return;
        }
        if (o === undefined) return;
        const rv = resourceVersionOf(o);
        if (type === 'ADDED' || type === 'MODIFIED') {
          handlers.upsert(stripObject(o, resource.apiVersion, resource.kind));
        } else if (type === 'DELETED') {
          handlers.remove(stripObject(o, resource.apiVersion, resource.kind));
        } else if (type !== 'BOOKMARK') {
          return;
        }
        sawEvent = true;
        if (rv !== undefined) latest = rv;
        this.state.resourceVersion = latest;
      };

      this.abort.signal.addEventListener('abort', onStop, { once: true });
      if (this.stopped) return onStop();
      // Asked for between the list and now: no need to watch first.
      if (this.relistWanted) return settle({ outcome: 'relist' });
      this.endForRelist = () => settle({ outcome: 'relist' });
      const started = this.watch
        .watch(
          resource.path,
          {
            resourceVersion: from,
            allowWatchBookmarks: true,
            // Spread the timeouts, so the watches of many agents do not all
            // end (and resume) at the same moment.
            timeoutSeconds: seconds + Math.floor(Math.random() * seconds),
          },
          onEvent,
          onDone,
        )
        .then(
          (c) => {
            controller = c;
            if (settled) c.abort();
            else this.setConnected(true);
          },
          (err: unknown) => onDone(err ?? new Error('the watch request failed')),
        )
        .finally(() => {
          if (this.starting === started) this.starting = undefined;
        });
      this.starting = started;
    });
  }
}
