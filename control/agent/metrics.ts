// The agent's own metrics: what the model decided (announcements, decisions
// by reason), what the manifest directory holds back, and whether each step
// of the pipeline works. Label values are the model's reason strings, the
// same words as in the logs.
import { rejectsFile, type ManifestProblem } from '../standalone/manifests.js';
import { counter, gauge } from '../observe/metrics.js';
import {
  reasonNames,
  severityOf,
  type ModelUpdate,
  type NodeModel,
  type ServiceModel,
} from '../model/index.js';

/** The pipeline steps whose failures are counted; each is retried by the next change. */
export type AgentStep = 'derive' | 'observe' | 'submit' | 'reconcile' | 'source';
export const AGENT_STEPS: readonly AgentStep[] = [
  'derive',
  'observe',
  'submit',
  'reconcile',
  'source',
];

interface Row<L extends string> {
  labels: Record<L, string>;
  value: number;
}

const announcementKey = (labels: Record<'announce' | 'reason', string>): string =>
  `${labels.announce}\0${labels.reason}`;

/** Pure: announcements by (announce, reason). */
export function announcementRows(
  model: Pick<NodeModel, 'announcements'>,
): Row<'announce' | 'reason'>[] {
  const counts = new Map<string, Row<'announce' | 'reason'>>();
  for (const a of model.announcements) {
    const labels = { announce: String(a.announce), reason: a.reason };
    const k = JSON.stringify(labels);
    const row = counts.get(k) ?? { labels, value: 0 };
    row.value++;
    counts.set(k, row);
  }
  return [...counts.values()];
}

/** Pure: every reason the model knows, with how many current decisions (service and node) give it. */
export function decisionRows(
  model: Pick<NodeModel, 'decisions' | 'nodeDecisions'>,
): Row<'reason' | 'severity'>[] {
  const counts = new Map<string, number>();
  for (const d of [...model.decisions, ...model.nodeDecisions])
    counts.set(d.reason, (counts.get(d.reason) ?? 0) + 1);
  return reasonNames.map((reason) => ({
    labels: { reason, severity: severityOf(reason) },
    value: counts.get(reason) ?? 0,
  }));
}

/** Pure: how many files are held back (their last valid content stays in effect). */
export function rejectedFiles(problems: readonly ManifestProblem[]): number {
  return new Set(problems.filter(rejectsFile).map((p) => p.file)).size;
}

export class AgentMetrics {
  private readonly announcements = gauge({
    name: 'xlb_announcements',
    help: "This node's announce decisions for LB IPs, by decision and the model's reason",
    labelNames: ['announce', 'reason'],
  });
  private readonly decisions = gauge({
    name: 'xlb_model_decisions',
    help: "The model's current decisions about Services and this node, by reason",
    labelNames: ['reason', 'severity'],
  });
  private readonly units = gauge({
    name: 'xlb_model_units',
    help: 'Datapath units (Service, port, IP family) the model wants on this node',
  });
  private readonly manifestProblems = gauge({
    name: 'xlb_standalone_manifest_problems',
    help: 'Manifest files currently rejected; the objects they last defined while valid stay in effect',
  });
  private readonly failures = counter({
    name: 'xlb_agent_step_failures_total',
    help: 'Exceptions in a step of the agent pipeline; the next change or retry runs the step again',
    labelNames: ['step'],
  });
  private readonly ready = gauge({
    name: 'xlb_agent_ready',
    help: '1 once the first read of the cluster (manifests or API) and the first reconcile are done',
  });
  private readonly leader = gauge({
    name: 'xlb_agent_leader',
    help: '1 while this agent holds the Lease: it allocates addresses and writes Service status',
  });
  /** Label sets shown before: they go to 0 instead of vanishing from the scrape. */
  private readonly seenAnnouncements = new Map<string, Record<'announce' | 'reason', string>>();
  /** Running counts of the model's announcements and Service decisions, kept from updates. */
  private readonly announcementCounts = new Map<string, number>();
  private readonly serviceDecisionCounts = new Map<string, number>();

  constructor() {
    for (const step of AGENT_STEPS) this.failures.inc({ step }, 0);
    this.setModel({ announcements: [], decisions: [], nodeDecisions: [], units: [] });
    this.manifestProblems.set(0);
    this.ready.set(0);
  }

  setModel(
    model: Pick<NodeModel, 'announcements' | 'decisions' | 'nodeDecisions' | 'units'>,
  ): void {
    const rows = announcementRows(model);
    const current = new Set<string>();
    for (const row of rows) {
      const k = announcementKey(row.labels);
      current.add(k);
      this.seenAnnouncements.set(k, row.labels);
      this.announcements.set(row.labels, row.value);
    }
    for (const [k, labels] of this.seenAnnouncements)
      if (!current.has(k)) this.announcements.set(labels, 0);
    for (const row of decisionRows(model)) this.decisions.set(row.labels, row.value);
    this.units.set(model.units.length);
  }

  /**
   * setModel from what an update changed: a change to one Service of ten
   * thousand costs as much as that Service, not the whole model.
   */
  applyModelUpdate(update: ModelUpdate): void {
    if (update.full) {
      this.announcementCounts.clear();
      this.serviceDecisionCounts.clear();
      for (const k of this.seenAnnouncements.keys()) this.announcementCounts.set(k, 0);
      this.count(update.model, 1);
    } else {
      for (const c of update.changed) {
        if (c.before !== undefined) this.count(c.before, -1);
        if (c.after !== undefined) this.count(c.after, 1);
      }
    }
    for (const [k, value] of this.announcementCounts) {
      const labels = this.seenAnnouncements.get(k)!;
      this.announcements.set(labels, value);
    }
    const reasons = new Map(this.serviceDecisionCounts);
    for (const d of update.model.nodeDecisions)
      reasons.set(d.reason, (reasons.get(d.reason) ?? 0) + 1);
    for (const reason of reasonNames)
      this.decisions.set({ reason, severity: severityOf(reason) }, reasons.get(reason) ?? 0);
    this.units.set(update.model.units.length);
  }

  private count(model: Pick<ServiceModel, 'announcements' | 'decisions'>, by: number): void {
    for (const a of model.announcements) {
      const labels = { announce: String(a.announce), reason: a.reason };
      const k = announcementKey(labels);
      if (!this.seenAnnouncements.has(k)) this.seenAnnouncements.set(k, labels);
      this.announcementCounts.set(k, (this.announcementCounts.get(k) ?? 0) + by);
    }
    for (const d of model.decisions)
      this.serviceDecisionCounts.set(
        d.reason,
        (this.serviceDecisionCounts.get(d.reason) ?? 0) + by,
      );
  }

  setManifestProblems(problems: readonly ManifestProblem[]): void {
    this.manifestProblems.set(rejectedFiles(problems));
  }

  failed(step: AgentStep): void {
    this.failures.inc({ step });
  }

  setReady(ready: boolean): void {
    this.ready.set(ready ? 1 : 0);
  }

  setLeader(leading: boolean): void {
    this.leader.set(leading ? 1 : 0);
  }
}
