// Everything this node's datapath should hold and announce, from the whole
// store. Adds to deriveService what needs all Services at once: duplicate
// objects and frontends claimed by two Services.
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';

import { SERVICE_NAME_LABEL } from './endpoints.js';
import { asArray, asRecord, asStringMap, compareStrings, objectKey } from './guards.js';
import { indexNodes } from './nodes.js';
import { resolveOptions } from './options.js';
import { severityOf } from './reasons.js';
import { deriveService, serviceKey, toDecision, type ServiceInput } from './service.js';
import type {
  Decision,
  Frontend,
  ModelOptions,
  NodeDecision,
  NodeModel,
  ServiceModel,
} from './types.js';

export interface NodeInput {
  services: readonly V1Service[];
  endpointSlices: readonly V1EndpointSlice[];
  nodes: readonly V1Node[];
  /** The node this agent programs. */
  nodeName: string;
  options?: Partial<ModelOptions>;
}

export function deriveNode(input: NodeInput): NodeModel {
  const options = resolveOptions(input.options);
  const nodes = indexNodes(input.nodes);
  const nodeDecisions: NodeDecision[] = [];
  if (!nodes.has(input.nodeName)) {
    nodeDecisions.push({
      node: input.nodeName,
      reason: 'thisNodeUnknown',
      severity: severityOf('thisNodeUnknown'),
      message: `no Node object named ${input.nodeName}: its exclusion label cannot be checked`,
    });
  }

  const slicesByService = new Map<string, V1EndpointSlice[]>();
  for (const raw of asArray(input.endpointSlices)) {
    const key = sliceOwner(raw);
    if (key === undefined) continue;
    const list = slicesByService.get(key) ?? [];
    list.push(raw as V1EndpointSlice);
    slicesByService.set(key, list);
  }

  const models: ServiceModel[] = [];
  const created = new Map<string, number>();
  for (const [key, copies] of groupServices(input.services)) {
    const derived = deriveServiceCopies(key, copies, {
      endpointSlices: slicesByService.get(key) ?? [],
      nodes,
      nodeName: input.nodeName,
      options,
    });
    if (derived === undefined) continue;
    created.set(key, derived.created);
    models.push(derived.model);
  }

  const resolved = resolveFrontendConflicts(models, created);
  return {
    nodeName: input.nodeName,
    units: resolved.flatMap((m) => m.units).sort((a, b) => compareStrings(a.key, b.key)),
    announcements: resolved
      .flatMap((m) => m.announcements)
      .sort(
        (a, b) =>
          compareStrings(a.service, b.service) ||
          a.family - b.family ||
          compareStrings(a.address, b.address),
      ),
    // Services are already in key order; within one, the order they were found in.
    decisions: resolved.flatMap((m) => m.decisions),
    nodeDecisions,
  };
}

/** `namespace/service` of the Service an EndpointSlice says it belongs to. */
export function sliceOwner(raw: unknown): string | undefined {
  const metadata = asRecord(asRecord(raw)?.['metadata']);
  const owner = asStringMap(metadata?.['labels'])[SERVICE_NAME_LABEL];
  return owner === undefined ? undefined : `${objectKey(metadata).namespace}/${owner}`;
}

/**
 * One Service key's model from its objects (more than one only from a broken
 * source; `copies` in the order sortCopies gives), and its creation time,
 * which decides frontend conflicts.
 */
export function deriveServiceCopies(
  key: string,
  copies: readonly V1Service[],
  input: Omit<ServiceInput, 'service'>,
): { model: ServiceModel; created: number } | undefined {
  const [service, ...extra] = copies;
  if (service === undefined) return undefined;
  const model = safeDeriveService(key, { ...input, service });
  if (extra.length > 0) {
    model.decisions.unshift(
      toDecision(key, {
        reason: 'duplicateService',
        message: `${copies.length} Service objects share this name; using one of them`,
      }),
    );
  }
  return { model, created: creationTime(service) };
}

/** What identifies a frontend across Services. */
export const frontendId = (f: Frontend): string => `${f.address}|${f.port}|${f.protocol}`;

/**
 * Two Services may share an LB IP, but not a (VIP, port, protocol): the
 * datapath can send one frontend to one unit only. The older Service keeps
 * it, so a new Service cannot take traffic away from one already serving;
 * the newer loses that frontend and says why.
 */
export function resolveFrontendConflicts(
  models: readonly ServiceModel[],
  created: ReadonlyMap<string, number>,
): ServiceModel[] {
  const age = (m: ServiceModel): number => created.get(m.service) ?? Number.POSITIVE_INFINITY;
  const byAge = [...models].sort((a, b) => age(a) - age(b) || compareStrings(a.service, b.service));
  const owner = new Map<string, string>();
  for (const model of byAge) {
    for (const unit of model.units) {
      for (const f of unit.frontends) {
        const id = frontendId(f);
        if (!owner.has(id)) owner.set(id, unit.key);
      }
    }
  }
  return byAge
    .map((m) => keepOwnFrontends(m, (id) => owner.get(id)))
    .sort((a, b) => compareStrings(a.service, b.service));
}

/**
 * The model with each unit's frontends cut to those it owns (`ownerOf`: the
 * unit key that gets a frontend), and a decision per frontend lost. The
 * same object when nothing is lost.
 */
export function keepOwnFrontends(
  model: ServiceModel,
  ownerOf: (frontendId: string) => string | undefined,
): ServiceModel {
  const lost: Decision[] = [];
  const units = model.units.map((unit) => {
    const frontends = unit.frontends.filter((f) => {
      const holder = ownerOf(frontendId(f));
      if (holder === undefined || holder === unit.key) return true;
      lost.push(
        toDecision(
          model.service,
          {
            reason: 'frontendConflict',
            message: `${f.address} port ${f.port}/${f.protocol} is already served by ${holder}, an older Service; this unit does not get it`,
          },
          unit.key,
        ),
      );
      return false;
    });
    return frontends.length === unit.frontends.length ? unit : { ...unit, frontends };
  });
  return lost.length === 0 ? model : { ...model, units, decisions: [...model.decisions, ...lost] };
}

/** Services by key, each key's copies in a fixed order (more than one only from a broken source). */
export function groupServices(services: readonly V1Service[]): Map<string, V1Service[]> {
  const groups = new Map<string, V1Service[]>();
  for (const raw of asArray(services)) {
    const service = raw as V1Service;
    const key = serviceKey(service);
    const list = groups.get(key) ?? [];
    list.push(service);
    groups.set(key, list);
  }
  const sorted = new Map<string, V1Service[]>();
  for (const key of [...groups.keys()].sort(compareStrings)) {
    sorted.set(key, sortCopies(groups.get(key) ?? []));
  }
  return sorted;
}

/** Copies of one Service in a fixed order, whatever order they came in. */
export function sortCopies(copies: readonly V1Service[]): V1Service[] {
  if (copies.length < 2) return [...copies];
  return copies
    .map((s) => ({ s, j: safeJson(s) }))
    .sort((a, b) => compareStrings(a.j, b.j))
    .map(({ s }) => s);
}

function creationTime(service: V1Service): number {
  const stamp: unknown = asRecord(asRecord(service)?.['metadata'])?.['creationTimestamp'];
  const ms =
    stamp instanceof Date ? stamp.getTime() : typeof stamp === 'string' ? Date.parse(stamp) : NaN;
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
}

/**
 * deriveService is written not to throw on any input; this is the backstop
 * that keeps one object the code did not foresee from taking every other
 * Service on the node down with it.
 */
function safeDeriveService(key: string, input: Parameters<typeof deriveService>[0]): ServiceModel {
  try {
    return deriveService(input);
  } catch (e) {
    return {
      service: key,
      ownership: {
        owned: false,
        reason: 'malformedService',
        message: `the Service could not be read: ${e instanceof Error ? e.message : String(e)}`,
      },
      units: [],
      announcements: [],
      decisions: [
        toDecision(key, {
          reason: 'malformedService',
          message: `the Service could not be read: ${e instanceof Error ? e.message : String(e)}`,
        }),
      ],
    };
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return '';
  }
}
