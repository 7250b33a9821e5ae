// Namespace labels, the only part of a Namespace xlb reads (IPPools select
// the namespaces they serve by label). Kept outside the ClusterStore: the
// model never reads namespaces, the allocator reads them whole.
import { sameContent } from '../store/equal.js';

export type NamespaceLabelMap = Readonly<Record<string, Readonly<Record<string, string>>>>;

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function nameOf(obj: unknown): string | undefined {
  const name = record(record(obj)?.metadata)?.name;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/** String labels only: the API server allows no other, so anything else is dropped. */
function labelsOf(obj: unknown): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(record(record(record(obj)?.metadata)?.labels) ?? {}))
    if (typeof v === 'string') labels[k] = v;
  return labels;
}

export class NamespaceLabels {
  private readonly labels = new Map<string, Readonly<Record<string, string>>>();
  private readonly listeners = new Set<() => void>();
  private snapshot: NamespaceLabelMap | undefined;
  private notifying = false;

  /** Labels per namespace name, frozen; the same object until something changes. */
  all(): NamespaceLabelMap {
    if (this.snapshot === undefined) {
      const out: Record<string, Readonly<Record<string, string>>> = {};
      for (const name of [...this.labels.keys()].sort()) out[name] = this.labels.get(name)!;
      this.snapshot = Object.freeze(out);
    }
    return this.snapshot;
  }

  /** `listener` runs once per burst of changes, after it. Returns the unsubscribe. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  replace(objects: readonly unknown[]): void {
    const next = new Map<string, Record<string, string>>();
    for (const obj of objects) {
      const name = nameOf(obj);
      if (name !== undefined) next.set(name, labelsOf(obj));
    }
    let changed = false;
    for (const name of [...this.labels.keys()])
      if (!next.has(name)) changed = this.labels.delete(name) || changed;
    for (const [name, labels] of next) changed = this.set(name, labels) || changed;
    if (changed) this.changed();
  }

  upsert(obj: unknown): void {
    const name = nameOf(obj);
    if (name !== undefined && this.set(name, labelsOf(obj))) this.changed();
  }

  remove(obj: unknown): void {
    const name = nameOf(obj);
    if (name !== undefined && this.labels.delete(name)) this.changed();
  }

  private set(name: string, labels: Record<string, string>): boolean {
    const old = this.labels.get(name);
    if (old !== undefined && sameContent(old, labels)) return false;
    this.labels.set(name, Object.freeze(labels));
    return true;
  }

  private changed(): void {
    this.snapshot = undefined;
    if (this.notifying) return;
    this.notifying = true;
    // Like the store: one notification per burst (a relist changes many).
    queueMicrotask(() => {
      this.notifying = false;
      const errors: unknown[] = [];
      for (const listener of [...this.listeners]) {
        try {
          listener();
        } catch (err) {
          errors.push(err);
        }
      }
      // One listener's bug must not starve the others, nor vanish.
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, 'namespace label listeners failed');
    });
  }
}
