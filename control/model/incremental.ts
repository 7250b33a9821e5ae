// deriveNode, kept up to date as objects change instead of derived whole
// for every change: a Service is derived again only when it, one of its
// EndpointSlices, or a Node its endpoints run on changed (this node: all of
// them). Frontend conflicts between Services are settled again for the
// frontends the changed Services claimed or claim.
//
// What did not change is handed out again as the very same frozen objects
// (also when a Service was derived again and came out equal), so consumers
// can tell what changed by identity: the reconciler skips a unit it already
// applied. The result equals deriveNode over the same objects (a property
// test holds it to that).
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';

import { sameContent } from '../store/equal.js';
import { asArray, asRecord, asString, compareStrings } from './guards.js';
import { indexNodes, type NodeIndex } from './nodes.js';
import {
  deriveServiceCopies,
  frontendId,
  groupServices,
  keepOwnFrontends,
  sliceOwner,
  sortCopies,
} from './node.js';
import { resolveOptions } from './options.js';
import { severityOf } from './reasons.js';
import { serviceKey } from './service.js';
import type { ModelOptions, NodeDecision, NodeModel, ServiceModel, Unit } from './types.js';

/** The objects the model reads, by the keys changes are reported under (a ClusterStore's). */
export interface ModelSource {
  service(key: string): V1Service | undefined;
  endpointSlice(key: string): V1EndpointSlice | undefined;
  services(): readonly V1Service[];
  endpointSlices(): readonly V1EndpointSlice[];
  nodes(): readonly V1Node[];
}

/** Keys of the objects that changed (added, changed or deleted), per kind; other kinds are ignored. */
export interface ModelChanges {
  readonly Service?: ReadonlySet<string>;
  readonly EndpointSlice?: ReadonlySet<string>;
  readonly Node?: ReadonlySet<string>;
}

/** A Service whose model is another object than before: added, changed or gone. */
export interface ServiceModelChange {
  service: string;
  before: ServiceModel | undefined;
  after: ServiceModel | undefined;
}

export interface ModelUpdate {
  model: NodeModel;
  /** Services whose model changed, in key order. */
  changed: ServiceModelChange[];
  nodeDecisionsBefore: readonly NodeDecision[];
  /** Services derived again (changed or not). */
  derived: number;
  /** Everything was derived again (rebuild). */
  full: boolean;
}

interface Entry {
  /** Before frontend conflicts are settled. */
  raw: ServiceModel;
  created: number;
  /** Frontend ids its units claim, each once. */
  claims: string[];
  /** Nodes its endpoints name, each once. */
  nodes: string[];
  /** After frontend conflicts are settled: what the node model holds. */
  resolved: ServiceModel;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** `namespace/name`, as a ClusterStore keys an object. */
function storeKey(obj: unknown): string {
  const metadata = asRecord(asRecord(obj)?.['metadata']);
  return `${asString(metadata?.['namespace']) ?? ''}/${asString(metadata?.['name']) ?? ''}`;
}

function endpointNodes(slices: readonly V1EndpointSlice[]): Set<string> {
  const out = new Set<string>();
  for (const slice of slices) {
    for (const e of asArray(asRecord(slice)?.['endpoints'])) {
      const name = asString(asRecord(e)?.['nodeName']);
      if (name !== undefined && name !== '') out.add(name);
    }
  }
  return out;
}

/** Where `key` goes in the sorted `keys`. */
function insertionPoint(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareStrings(keys[mid]!, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class NodeModelCache {
  private readonly options: ModelOptions;
  private nodes: NodeIndex = new Map();
  private nodeDecisions: readonly NodeDecision[] = [];
  /** Service key -> its objects (one, unless a source handed over duplicates). */
  private readonly copies = new Map<string, V1Service[]>();
  /** EndpointSlice key -> the object and the Service key it belongs to. */
  private readonly slices = new Map<string, { slice: V1EndpointSlice; owner?: string }>();
  /** Service key -> the keys of its slices. */
  private readonly slicesOf = new Map<string, string[]>();
  private readonly entries = new Map<string, Entry>();
  /** Frontend id -> Service keys whose units claim it. */
  private readonly claimants = new Map<string, string[]>();
  /** Node name -> Service keys with an endpoint on it. */
  private readonly byNode = new Map<string, Set<string>>();
  /** Service keys with an entry, sorted. */
  private readonly order: string[] = [];
  private current: NodeModel | undefined;

  constructor(
    readonly nodeName: string,
    options?: Partial<ModelOptions>,
  ) {
    this.options = resolveOptions(options);
  }

  /** The model last derived. */
  get model(): NodeModel | undefined {
    return this.current;
  }

  /** Derives everything from the source (the first time, or to start over). */
  rebuild(source: ModelSource): ModelUpdate {
    const before = new Map([...this.entries].map(([k, e]) => [k, e.resolved]));
    const nodeDecisionsBefore = this.nodeDecisions;
    this.copies.clear();
    this.slices.clear();
    this.slicesOf.clear();
    this.entries.clear();
    this.claimants.clear();
    this.byNode.clear();
    this.order.length = 0;
    this.setNodes(source.nodes());
    for (const [key, copies] of groupServices(source.services())) this.copies.set(key, copies);
    let i = 0;
    for (const slice of asArray(source.endpointSlices()) as V1EndpointSlice[]) {
      // The store's key, under which later changes are reported; a list
      // that holds two objects of one name keeps the second by position.
      let key = storeKey(slice);
      if (this.slices.has(key)) key = `\0${i++}`;
      this.indexSlice(key, slice);
    }
    const dirty = new Set([...this.copies.keys(), ...before.keys()]);
    const affected = new Set<string>();
    for (const key of dirty) this.derive(key, affected);
    return { ...this.finish(dirty, affected, before, nodeDecisionsBefore), full: true };
  }

  /** Derives again what `changes` may have changed. */
  update(source: ModelSource, changes: ModelChanges): ModelUpdate {
    if (this.current === undefined) return this.rebuild(source);
    const before = new Map<string, ServiceModel>();
    const nodeDecisionsBefore = this.nodeDecisions;
    const dirty = new Set<string>();
    if ((changes.Node?.size ?? 0) > 0) {
      for (const node of this.setNodes(source.nodes())) {
        if (node === this.nodeName) {
          // This node's facts reach every Service (exclusion, announcements).
          for (const key of this.entries.keys()) dirty.add(key);
          for (const key of this.copies.keys()) dirty.add(key);
        } else for (const key of this.byNode.get(node) ?? []) dirty.add(key);
      }
    }
    for (const key of changes.Service ?? []) {
      const obj = source.service(key);
      this.copies.delete(key);
      dirty.add(key);
      if (obj !== undefined) {
        const own = serviceKey(obj);
        this.copies.set(
          own,
          sortCopies([...(own === key ? [] : (this.copies.get(own) ?? [])), obj]),
        );
        dirty.add(own);
      }
    }
    for (const key of changes.EndpointSlice ?? []) {
      const old = this.slices.get(key);
      if (old?.owner !== undefined) dirty.add(old.owner);
      this.unindexSlice(key);
      const slice = source.endpointSlice(key);
      if (slice === undefined) continue;
      const owner = this.indexSlice(key, slice);
      if (owner !== undefined) dirty.add(owner);
    }
    const affected = new Set<string>();
    for (const key of dirty) {
      const e = this.entries.get(key);
      if (e !== undefined) before.set(key, e.resolved);
      this.derive(key, affected);
    }
    return { ...this.finish(dirty, affected, before, nodeDecisionsBefore), full: false };
  }

  /** Indexes the Nodes; returns the names whose facts changed (added, changed, gone). */
  private setNodes(nodes: readonly V1Node[]): string[] {
    const next = indexNodes(nodes);
    const changed: string[] = [];
    for (const [name, facts] of next) {
      const old = this.nodes.get(name);
      if (old === undefined || !sameContent(old, facts)) changed.push(name);
    }
    for (const name of this.nodes.keys()) if (!next.has(name)) changed.push(name);
    this.nodes = next;
    this.nodeDecisions = deepFreeze(
      next.has(this.nodeName)
        ? []
        : [
            {
              node: this.nodeName,
              reason: 'thisNodeUnknown',
              severity: severityOf('thisNodeUnknown'),
              message: `no Node object named ${this.nodeName}: its exclusion label cannot be checked`,
            },
          ],
    );
    return changed;
  }

  private indexSlice(key: string, slice: V1EndpointSlice): string | undefined {
    const owner = sliceOwner(slice);
    this.slices.set(key, { slice, ...(owner !== undefined ? { owner } : {}) });
    if (owner === undefined) return undefined;
    // Arrays, not Sets: most Services have one slice, and a small Set costs more.
    const keys = this.slicesOf.get(owner);
    if (keys === undefined) this.slicesOf.set(owner, [key]);
    else if (!keys.includes(key)) keys.push(key);
    return owner;
  }

  private unindexSlice(key: string): void {
    const old = this.slices.get(key);
    if (old === undefined) return;
    this.slices.delete(key);
    if (old.owner === undefined) return;
    const keys = this.slicesOf.get(old.owner)?.filter((k) => k !== key);
    if (keys === undefined || keys.length === 0) this.slicesOf.delete(old.owner);
    else this.slicesOf.set(old.owner, keys);
  }

  /**
   * Derives one Service again (or drops it); the frontends it claimed or
   * claims go into `affected`. Reuses the previous objects where the result
   * is equal to them.
   */
  private derive(key: string, affected: Set<string>): void {
    const old = this.entries.get(key);
    if (old !== undefined) {
      for (const id of old.claims) {
        affected.add(id);
        const c = this.claimants.get(id)?.filter((k) => k !== key);
        if (c === undefined || c.length === 0) this.claimants.delete(id);
        else this.claimants.set(id, c);
      }
      for (const n of old.nodes) {
        const s = this.byNode.get(n);
        s?.delete(key);
        if (s?.size === 0) this.byNode.delete(n);
      }
    }
    const copies = this.copies.get(key) ?? [];
    const slices = [...(this.slicesOf.get(key) ?? [])].map((k) => this.slices.get(k)!.slice);
    const derived = deriveServiceCopies(key, copies, {
      endpointSlices: slices,
      nodes: this.nodes,
      nodeName: this.nodeName,
      options: this.options,
    });
    if (derived === undefined) {
      if (old !== undefined) {
        this.entries.delete(key);
        this.order.splice(insertionPoint(this.order, key), 1);
      }
      return;
    }
    const raw = deepFreeze(old === undefined ? derived.model : share(old.raw, derived.model));
    const claims = [...new Set(raw.units.flatMap((u) => u.frontends.map((f) => frontendId(f))))];
    for (const id of claims) {
      affected.add(id);
      const c = this.claimants.get(id);
      if (c === undefined) this.claimants.set(id, [key]);
      else c.push(key);
    }
    const nodes = [...endpointNodes(slices)];
    for (const n of nodes) {
      let s = this.byNode.get(n);
      if (s === undefined) this.byNode.set(n, (s = new Set()));
      s.add(key);
    }
    if (old === undefined) this.order.splice(insertionPoint(this.order, key), 0, key);
    this.entries.set(key, {
      raw,
      created: derived.created,
      claims,
      nodes,
      // Settled in finish().
      resolved: old?.resolved ?? raw,
    });
  }

  /** The unit that gets a frontend: the oldest Service's (then by key) first unit that claims it. */
  private ownerOf(id: string): string | undefined {
    let best: Entry | undefined;
    let bestKey = '';
    for (const key of this.claimants.get(id) ?? []) {
      const e = this.entries.get(key)!;
      if (
        best === undefined ||
        e.created < best.created ||
        (e.created === best.created && compareStrings(key, bestKey) < 0)
      ) {
        best = e;
        bestKey = key;
      }
    }
    return best?.raw.units.find((u) => u.frontends.some((f) => frontendId(f) === id))?.key;
  }

  private finish(
    dirty: ReadonlySet<string>,
    affected: ReadonlySet<string>,
    before: Map<string, ServiceModel>,
    nodeDecisionsBefore: readonly NodeDecision[],
  ): Omit<ModelUpdate, 'full'> {
    // Every claimant of a frontend whose claimants changed may win or lose it.
    const resolve = new Set<string>();
    for (const key of dirty) if (this.entries.has(key)) resolve.add(key);
    for (const id of affected) for (const key of this.claimants.get(id) ?? []) resolve.add(key);
    const owners = new Map<string, string | undefined>();
    const ownerOf = (id: string): string | undefined => {
      if (!owners.has(id)) owners.set(id, this.ownerOf(id));
      return owners.get(id);
    };
    for (const key of resolve) {
      const e = this.entries.get(key)!;
      if (!before.has(key) && !dirty.has(key)) before.set(key, e.resolved);
      const resolved = keepOwnFrontends(e.raw, ownerOf);
      e.resolved = resolved === e.raw ? e.raw : deepFreeze(share(e.resolved, resolved));
    }

    const changed: ServiceModelChange[] = [];
    const keys = new Set([...before.keys(), ...resolve]);
    for (const key of [...keys].sort(compareStrings)) {
      const was = before.get(key);
      const now = this.entries.get(key)?.resolved;
      if (was !== now) changed.push({ service: key, before: was, after: now });
    }
    if (this.current === undefined || dirty.size > this.entries.size / 4)
      this.current = this.assemble();
    else if (changed.length > 0 || !sameContent(nodeDecisionsBefore, this.nodeDecisions))
      this.current = patch(this.current, changed, this.nodeDecisions);
    return {
      model: this.current,
      changed,
      nodeDecisionsBefore,
      derived: dirty.size,
    };
  }

  private assemble(): NodeModel {
    const units: Unit[] = [];
    const announcements: NodeModel['announcements'] = [];
    const decisions: NodeModel['decisions'] = [];
    for (const key of this.order) {
      const m = this.entries.get(key)!.resolved;
      units.push(...m.units);
      announcements.push(...m.announcements);
      decisions.push(...m.decisions);
    }
    // Nearly sorted already (Services in key order): the sorts are cheap.
    units.sort((a, b) => compareStrings(a.key, b.key));
    announcements.sort(
      (a, b) =>
        compareStrings(a.service, b.service) ||
        a.family - b.family ||
        compareStrings(a.address, b.address),
    );
    return freezeModel(this.nodeName, units, announcements, decisions, this.nodeDecisions);
  }
}

/** The first index in `xs` (sorted by `key`) whose key is not below `k`. */
function lowerBound<T>(xs: readonly T[], k: string, key: (x: T) => string): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareStrings(key(xs[mid]!), k) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index in `xs` (sorted by `key`) whose key is above `k`. */
function upperBound<T>(xs: readonly T[], k: string, key: (x: T) => string): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareStrings(key(xs[mid]!), k) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The previous model with the changed Services' parts replaced, in copies
 * of its arrays: what assembling every Service again would give, for the
 * cost of the changed ones (units are ordered by their unique keys; a
 * Service's announcements and decisions lie together, in key order).
 */
function patch(
  prev: NodeModel,
  changed: readonly ServiceModelChange[],
  nodeDecisions: readonly NodeDecision[],
): NodeModel {
  const units = [...prev.units];
  const announcements = [...prev.announcements];
  const decisions = [...prev.decisions];
  const unitKey = (u: Unit): string => u.key;
  const serviceOf = (x: { service: string }): string => x.service;
  for (const c of changed) {
    for (const u of c.before?.units ?? []) {
      const i = lowerBound(units, u.key, unitKey);
      if (units[i]?.key === u.key) units.splice(i, 1);
    }
    for (const u of c.after?.units ?? []) units.splice(lowerBound(units, u.key, unitKey), 0, u);
    const own = [...(c.after?.announcements ?? [])].sort(
      (a, b) => a.family - b.family || compareStrings(a.address, b.address),
    );
    const a = lowerBound(announcements, c.service, serviceOf);
    announcements.splice(a, upperBound(announcements, c.service, serviceOf) - a, ...own);
    const d = lowerBound(decisions, c.service, serviceOf);
    decisions.splice(
      d,
      upperBound(decisions, c.service, serviceOf) - d,
      ...(c.after?.decisions ?? []),
    );
  }
  return freezeModel(prev.nodeName, units, announcements, decisions, nodeDecisions);
}

function freezeModel(
  nodeName: string,
  units: Unit[],
  announcements: NodeModel['announcements'],
  decisions: NodeModel['decisions'],
  nodeDecisions: readonly NodeDecision[],
): NodeModel {
  return Object.freeze({
    nodeName,
    units: Object.freeze(units) as Unit[],
    announcements: Object.freeze(announcements) as NodeModel['announcements'],
    decisions: Object.freeze(decisions) as NodeModel['decisions'],
    nodeDecisions: nodeDecisions as NodeDecision[],
  });
}

/**
 * `next`, with every part equal to `prev`'s replaced by it: the same Unit
 * objects for units that did not change, the same model if nothing did.
 */
function share(prev: ServiceModel, next: ServiceModel): ServiceModel {
  const old = new Map(prev.units.map((u) => [u.key, u]));
  let same = prev.units.length === next.units.length;
  const units = next.units.map((u, i) => {
    const o = old.get(u.key);
    if (o !== undefined && sameContent(o, u)) {
      if (prev.units[i] !== o) same = false;
      return o;
    }
    same = false;
    return u;
  });
  if (
    same &&
    sameContent(prev.ownership, next.ownership) &&
    sameContent(prev.announcements, next.announcements) &&
    sameContent(prev.decisions, next.decisions)
  )
    return prev;
  // A plain literal: one that starts with a spread gets a hidden class of its own.
  return {
    service: next.service,
    ownership: next.ownership,
    units,
    announcements: next.announcements,
    decisions: next.decisions,
  };
}
