// Watch streams: newline-delimited JSON events over a chunked response, as
// kube-apiserver sends them. A watch starts from a resourceVersion (replaying
// the retained history after it), from "now" with synthetic ADDED events for
// the current objects ("" or "0"), or as a streaming list
// (sendInitialEvents=true, ending with the initial-events-end bookmark).
// Objects that start or stop matching a selector arrive as ADDED or DELETED.
// A resourceVersion older than the retained history gets an ERROR event
// with a 410 Expired Status, and the stream ends.
import type { ServerResponse } from 'node:http';

import type { Change, Store } from './store.js';
import { apiVersionOf, type KubeObject, type ResourceType, type WatchEventType } from './types.js';

export interface WatchSpec {
  type: ResourceType;
  match: (o: KubeObject) => boolean;
  serve: (o: KubeObject) => KubeObject;
  /** undefined, "" or "0": start now with the current objects. */
  resourceVersion: string | undefined;
  allowBookmarks: boolean;
  sendInitialEvents: boolean;
  timeoutSeconds: number | undefined;
  /** Current objects, for a watch that starts with them. */
  initial: () => KubeObject[];
}

interface Active {
  spec: WatchSpec;
  res: ServerResponse;
  end: () => void;
}

function translate(
  c: Change,
  match: (o: KubeObject) => boolean,
): { type: WatchEventType; object: KubeObject } | undefined {
  const now = c.type !== 'DELETED' && match(c.object);
  const before =
    c.type === 'DELETED' ? match(c.object) : c.previous !== undefined && match(c.previous);
  if (c.type === 'ADDED') return now ? { type: 'ADDED', object: c.object } : undefined;
  if (c.type === 'DELETED') return before ? { type: 'DELETED', object: c.object } : undefined;
  if (now && before) return { type: 'MODIFIED', object: c.object };
  if (now) return { type: 'ADDED', object: c.object };
  if (before) return { type: 'DELETED', object: c.object };
  return undefined;
}

export class Watches {
  private readonly active = new Set<Active>();

  constructor(private readonly store: Store) {}

  get count(): number {
    return this.active.size;
  }

  start(spec: WatchSpec, res: ServerResponse): void {
    const write = (type: string, object: unknown): void => {
      if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify({ type, object })}\n`);
    };
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-cache, private',
      'Transfer-Encoding': 'chunked',
    });
    res.flushHeaders();

    let backlog: Change[] = [];
    const rv = spec.resourceVersion;
    const fromNow = rv === undefined || rv === '' || rv === '0' || spec.sendInitialEvents;
    if (fromNow) {
      for (const o of spec.initial()) write('ADDED', spec.serve(o));
      if (spec.sendInitialEvents && spec.allowBookmarks) {
        write('BOOKMARK', this.bookmarkObject(spec.type, { 'k8s.io/initial-events-end': 'true' }));
      }
    } else {
      const since = this.store.changesSince(Number(rv), spec.type.storage);
      if (since === undefined) {
        write('ERROR', {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: `too old resource version: ${rv} (${this.store.oldestResumable})`,
          reason: 'Expired',
          code: 410,
        });
        res.end();
        return;
      }
      backlog = since;
    }
    for (const c of backlog) {
      const e = translate(c, spec.match);
      if (e !== undefined) write(e.type, spec.serve(e.object));
    }

    const unsubscribe = this.store.subscribe((c) => {
      if (c.storage !== spec.type.storage) return;
      const e = translate(c, spec.match);
      if (e !== undefined) write(e.type, spec.serve(e.object));
    });
    let timer: NodeJS.Timeout | undefined;
    const entry: Active = {
      spec,
      res,
      end: () => {
        unsubscribe();
        if (timer !== undefined) clearTimeout(timer);
        this.active.delete(entry);
        if (!res.writableEnded) res.end();
      },
    };
    this.active.add(entry);
    res.on('close', entry.end);
    if (spec.timeoutSeconds !== undefined && spec.timeoutSeconds > 0) {
      timer = setTimeout(entry.end, spec.timeoutSeconds * 1000);
    }
  }

  private bookmarkObject(t: ResourceType, annotations?: Record<string, string>): KubeObject {
    return {
      kind: t.kind,
      apiVersion: apiVersionOf(t),
      metadata: {
        resourceVersion: String(this.store.revision),
        ...(annotations !== undefined ? { annotations } : {}),
      },
    };
  }

  /** Sends a BOOKMARK at the current revision to every watch that allows them. */
  bookmark(): void {
    for (const a of this.active) {
      if (!a.spec.allowBookmarks || a.res.writableEnded) continue;
      a.res.write(
        `${JSON.stringify({ type: 'BOOKMARK', object: this.bookmarkObject(a.spec.type) })}\n`,
      );
    }
  }

  /** Ends the watches on one storage key (a deleted CRD's resource). */
  closeStorage(storage: string): void {
    for (const a of [...this.active]) if (a.spec.type.storage === storage) a.end();
  }

  /** Ends every watch, as an API server does at its timeout or restart; clients re-watch. */
  closeAll(): void {
    for (const a of [...this.active]) a.end();
  }
}
