// The "etcd" of the double: objects by storage key and namespace/name, one
// global revision counter (every write gets the next resourceVersion), and the
// change history watches resume from. History is bounded; compact() drops it
// so a watch from an older resourceVersion gets 410 Gone and must relist.
import { clone } from './json.js';
import type { KubeObject, WatchEventType } from './types.js';

export interface Change {
  revision: number;
  type: WatchEventType;
  storage: string;
  /** The object after the write; for DELETED, its last state at the deletion's revision. */
  object: KubeObject;
  /** The object before the write (undefined for ADDED). */
  previous: KubeObject | undefined;
}

function keyOf(o: KubeObject): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;
}

export class Store {
  private rev = 0;
  private readonly tables = new Map<string, Map<string, KubeObject>>();
  private history: Change[] = [];
  /** A watch may resume from any revision >= floor. */
  private floor = 0;
  private readonly listeners = new Set<(c: Change) => void>();

  constructor(private readonly historyLimit: number) {}

  get revision(): number {
    return this.rev;
  }

  get oldestResumable(): number {
    return this.floor;
  }

  private table(storage: string): Map<string, KubeObject> {
    let t = this.tables.get(storage);
    if (t === undefined) this.tables.set(storage, (t = new Map<string, KubeObject>()));
    return t;
  }

  /** A copy of the stored object, or undefined. */
  get(storage: string, namespace: string, name: string): KubeObject | undefined {
    return clone(this.tables.get(storage)?.get(`${namespace}/${name}`));
  }

  /** Copies, in key order (namespace, then name) like etcd's range reads. */
  list(storage: string, namespace?: string): KubeObject[] {
    const t = this.tables.get(storage);
    if (t === undefined) return [];
    const keys = [...t.keys()].sort();
    const out: KubeObject[] = [];
    for (const k of keys) {
      const o = t.get(k);
      if (
        o !== undefined &&
        (namespace === undefined || (o.metadata.namespace ?? '') === namespace)
      ) {
        out.push(clone(o));
      }
    }
    return out;
  }

  /** Records a write at the next revision and tells the watchers; returns the stored copy. */
  write(
    type: WatchEventType,
    storage: string,
    object: KubeObject,
    previous?: KubeObject,
  ): KubeObject {
    const revision = ++this.rev;
    const stored = clone(object);
    stored.metadata.resourceVersion = String(revision);
    const t = this.table(storage);
    if (type === 'DELETED') t.delete(keyOf(stored));
    else t.set(keyOf(stored), stored);
    const change: Change = { revision, type, storage, object: stored, previous: clone(previous) };
    this.history.push(change);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.floor = dropped[dropped.length - 1]?.revision ?? this.floor;
    }
    for (const l of this.listeners) l(change);
    return clone(stored);
  }

  /** Changes after `revision` for a storage key; undefined when that history is gone. */
  changesSince(revision: number, storage: string): Change[] | undefined {
    if (revision < this.floor) return undefined;
    return this.history.filter((c) => c.revision > revision && c.storage === storage);
  }

  /**
   * Forgets all history: every resourceVersion handed out so far becomes too
   * old to watch from (410 Gone). The revision moves on by one so a list
   * made right after is new enough to watch from.
   */
  compact(): void {
    this.history = [];
    this.floor = ++this.rev;
  }

  subscribe(listener: (c: Change) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
