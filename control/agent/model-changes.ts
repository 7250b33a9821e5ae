// What changed between two NodeModels, as the log sees it: decisions that
// appeared, changed or stopped applying, and announcements that changed.
// Unchanged decisions produce nothing, so a Service that has had "no
// endpoints" for a week is said once, not on every rescan. Pure, except
// logModelChanges.
import type { Logger } from '../observe/log.js';
import type {
  Announcement,
  Decision,
  ModelUpdate,
  NodeDecision,
  NodeModel,
  Reason,
  Severity,
} from '../model/index.js';

export type ChangeKind = 'added' | 'changed' | 'resolved';

export interface DecisionChange {
  kind: 'decision';
  change: ChangeKind;
  service: string;
  unit?: string;
  reason: Reason;
  severity: Severity;
  message: string;
  /** The message before, for 'changed'. */
  previous?: string;
}

export interface NodeDecisionChange {
  kind: 'node';
  change: ChangeKind;
  node: string;
  reason: Reason;
  severity: Severity;
  message: string;
}

export interface AnnouncementChange {
  kind: 'announcement';
  change: 'added' | 'changed' | 'removed';
  service: string;
  address: string;
  announce: boolean;
  reason: Announcement['reason'];
  weight: number;
  message: string;
  previous?: Pick<Announcement, 'announce' | 'reason' | 'weight'>;
}

export type ModelChange = DecisionChange | NodeDecisionChange | AnnouncementChange;

const EMPTY: Pick<NodeModel, 'decisions' | 'nodeDecisions' | 'announcements'> = {
  decisions: [],
  nodeDecisions: [],
  announcements: [],
};

/** Counts of each value, so a decision said twice and then once is one resolution. */
function multiset<T>(items: readonly T[], id: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = id(item);
    const list = out.get(k);
    if (list === undefined) out.set(k, [item]);
    else list.push(item);
  }
  return out;
}

/** Items of `a` not matched one-for-one in `b`. */
function minus<T>(a: Map<string, T[]>, b: Map<string, T[]>): T[] {
  const out: T[] = [];
  for (const [k, items] of a) out.push(...items.slice(b.get(k)?.length ?? 0));
  return out;
}

/**
 * Added and gone items with the same subject (service, unit, reason) pair up
 * as one 'changed' when there is exactly one of each: the message moved
 * (e.g. a count), the decision did not.
 */
function pairUp<T extends { message: string }>(
  added: T[],
  gone: T[],
  subject: (t: T) => string,
): { added: T[]; gone: T[]; changed: [T, T][] } {
  const a = multiset(added, subject);
  const g = multiset(gone, subject);
  const changed: [T, T][] = [];
  for (const [k, list] of a) {
    const old = g.get(k);
    if (list.length === 1 && old?.length === 1) changed.push([old[0]!, list[0]!]);
  }
  const paired = new Set(changed.flat());
  return {
    added: added.filter((x) => !paired.has(x)),
    gone: gone.filter((x) => !paired.has(x)),
    changed,
  };
}

function decisionChanges(
  before: readonly Decision[],
  after: readonly Decision[],
): DecisionChange[] {
  const full = (d: Decision): string =>
    JSON.stringify([d.service, d.unit ?? '', d.reason, d.message]);
  const subject = (d: Decision): string => JSON.stringify([d.service, d.unit ?? '', d.reason]);
  const b = multiset(before, full);
  const a = multiset(after, full);
  const p = pairUp(minus(a, b), minus(b, a), subject);
  const change = (d: Decision, c: ChangeKind, previous?: string): DecisionChange => ({
    kind: 'decision',
    change: c,
    service: d.service,
    ...(d.unit !== undefined ? { unit: d.unit } : {}),
    reason: d.reason,
    severity: d.severity,
    message: d.message,
    ...(previous !== undefined ? { previous } : {}),
  });
  return [
    ...p.changed.map(([old, now]) => change(now, 'changed', old.message)),
    ...p.added.map((d) => change(d, 'added')),
    ...p.gone.map((d) => change(d, 'resolved')),
  ];
}

function nodeDecisionChanges(
  before: readonly NodeDecision[],
  after: readonly NodeDecision[],
): NodeDecisionChange[] {
  const full = (d: NodeDecision): string => JSON.stringify([d.node, d.reason, d.message]);
  const b = multiset(before, full);
  const a = multiset(after, full);
  const change = (d: NodeDecision, c: ChangeKind): NodeDecisionChange => ({
    kind: 'node',
    change: c,
    node: d.node,
    reason: d.reason,
    severity: d.severity,
    message: d.message,
  });
  return [
    ...minus(a, b).map((d) => change(d, 'added')),
    ...minus(b, a).map((d) => change(d, 'resolved')),
  ];
}

function announcementChanges(
  before: readonly Announcement[],
  after: readonly Announcement[],
): AnnouncementChange[] {
  const id = (a: Announcement): string => `${a.service}|${a.address}`;
  const old = new Map(before.map((a) => [id(a), a]));
  const now = new Map(after.map((a) => [id(a), a]));
  const out: AnnouncementChange[] = [];
  const change = (
    a: Announcement,
    c: AnnouncementChange['change'],
    previous?: Announcement,
  ): AnnouncementChange => ({
    kind: 'announcement',
    change: c,
    service: a.service,
    address: a.address,
    announce: c === 'removed' ? false : a.announce,
    reason: a.reason,
    weight: c === 'removed' ? 0 : a.weight,
    message: c === 'removed' ? `${a.address} is no longer an address of ${a.service}` : a.message,
    ...(previous !== undefined
      ? {
          previous: {
            announce: previous.announce,
            reason: previous.reason,
            weight: previous.weight,
          },
        }
      : {}),
  });
  for (const [k, a] of now) {
    const p = old.get(k);
    if (p === undefined) out.push(change(a, 'added'));
    else if (p.announce !== a.announce || p.reason !== a.reason || p.weight !== a.weight)
      out.push(change(a, 'changed', p));
  }
  for (const [k, p] of old) if (!now.has(k)) out.push(change(p, 'removed', p));
  return out;
}

export function diffModel(
  before: Pick<NodeModel, 'decisions' | 'nodeDecisions' | 'announcements'> | undefined,
  after: Pick<NodeModel, 'decisions' | 'nodeDecisions' | 'announcements'>,
): ModelChange[] {
  const b = before ?? EMPTY;
  return [
    ...nodeDecisionChanges(b.nodeDecisions, after.nodeDecisions),
    ...decisionChanges(b.decisions, after.decisions),
    ...announcementChanges(b.announcements, after.announcements),
  ];
}

/**
 * diffModel of the models before and after an update, looking only at the
 * Services it changed: the others hold the same objects on both sides, so
 * they would cancel out (the result is the same, in the same order).
 */
export function diffModelUpdate(update: ModelUpdate): ModelChange[] {
  const side = (pick: 'before' | 'after') => ({
    decisions: update.changed.flatMap((c) => c[pick]?.decisions ?? []),
    announcements: update.changed.flatMap((c) => c[pick]?.announcements ?? []),
  });
  return diffModel(
    { ...side('before'), nodeDecisions: [...update.nodeDecisionsBefore] },
    { ...side('after'), nodeDecisions: update.model.nodeDecisions },
  );
}

/** One structured line per change; warnings at warn level while they apply. */
export function logModelChanges(log: Logger, changes: readonly ModelChange[]): void {
  for (const c of changes) {
    const { kind: _kind, ...fields } = c;
    if (c.kind === 'announcement') {
      const verb =
        c.change === 'removed' ? 'address gone' : c.announce ? 'announce' : 'do not announce';
      log.info(fields, `${verb} ${c.address} (${c.service}): ${c.message}`);
      continue;
    }
    const subject = c.kind === 'node' ? `node ${c.node}` : c.service;
    if (c.change === 'resolved') {
      log.info(fields, `${subject}: no longer ${c.reason}`);
    } else if (c.severity === 'warning') {
      log.warn(fields, `${subject}: ${c.message}`);
    } else {
      log.info(fields, `${subject}: ${c.message}`);
    }
  }
}
