// store -> node model -> the datapath's reconcile loop: what every source
// feeds (a manifest directory now, the Kubernetes API later). Each burst of
// store changes derives again only the Services it touched (NodeModelCache)
// and hands the whole desired state on, so the reconciler stays level-
// triggered: a pass that fails is repaired by the loop's retry or the next
// change, never by replaying what was missed.
import {
  NodeModelCache,
  type ModelOptions,
  type ModelUpdate,
  type NodeModel,
} from '../model/index.js';
import type { ClusterStore, StoreChanges } from '../store/cluster-store.js';

import type { ReconcileSink } from './ports.js';

export type PipelineStep = 'derive' | 'observe' | 'submit';

export interface PipelineOptions {
  store: ClusterStore;
  /** The node whose datapath this programs. */
  nodeName: string;
  model?: Partial<ModelOptions>;
  sink: Pick<ReconcileSink, 'submit'>;
  /** After each derivation, before the units are submitted: logs, metrics. */
  onModel?: (update: ModelUpdate, timing: { deriveMs: number }) => void;
  /** A step threw; the pipeline goes on (the next change runs it again). */
  onFailure?: (step: PipelineStep, error: unknown) => void;
}

export class Pipeline {
  private readonly cache: NodeModelCache;
  private unsubscribe: (() => void) | undefined;
  /** The last derivation failed half-way: the next one starts over. */
  private broken = false;
  private stopped = false;

  constructor(private readonly options: PipelineOptions) {
    this.cache = new NodeModelCache(options.nodeName, options.model);
  }

  /** The model last derived. */
  get model(): NodeModel | undefined {
    return this.cache.model;
  }

  /** Follows the store from now on, starting with everything it holds. */
  start(): void {
    // Subscribed before the first derivation: a change in between causes
    // one more (harmless) derivation, never a missed one.
    this.unsubscribe = this.options.store.subscribe((changes) => this.refresh(changes));
    this.refresh();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /**
   * Derives what `changes` touched (everything when undefined) and submits
   * the desired state. Never throws.
   */
  refresh(changes?: StoreChanges): void {
    if (this.stopped) return;
    const { store, sink, onModel, onFailure } = this.options;
    const source = {
      service: (k: string) => store.get('Service', k),
      endpointSlice: (k: string) => store.get('EndpointSlice', k),
      services: () => store.services(),
      endpointSlices: () => store.list('EndpointSlice'),
      nodes: () => store.nodes(),
    };
    const started = performance.now();
    let update: ModelUpdate;
    try {
      update =
        changes === undefined || this.broken
          ? this.cache.rebuild(source)
          : this.cache.update(source, changes);
      this.broken = false;
    } catch (e) {
      this.broken = true;
      onFailure?.('derive', e);
      return;
    }
    const deriveMs = performance.now() - started;
    try {
      onModel?.(update, { deriveMs });
    } catch (e) {
      onFailure?.('observe', e);
    }
    try {
      sink.submit(update.model.units);
    } catch (e) {
      onFailure?.('submit', e);
    }
  }
}
