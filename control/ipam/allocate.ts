// The LB IP allocator: pools + Services (+ namespace labels) -> the addresses
// each Service should hold, the events that explain the changes, and each
// pool's status. A pure function of its input, so a level-triggered reconciler
// can call it after any change and after a restart alike:
//
//  1. addresses in the status of LoadBalancer Services of other
//     implementations are reserved (never handed out twice on one network);
//  2. every Service of ours keeps the addresses it holds, as long as they are
//     still valid (in a serving pool that takes it, matching its request,
//     shareable with whoever else holds them), oldest Service first;
//  3. then explicit requests (a named address) are served, oldest first;
//  4. then everything else, oldest first, from the lowest free address.
//
// Restoring before allocating is what keeps a restart from moving any address;
// the fixed order (creation time, then namespace/name) is what makes the
// result independent of the order of the input.
import { compareStrings } from '../model/guards.js';
import { resolveOptions } from '../model/options.js';
import { classifyService } from '../model/ownership.js';
import type { Ownership } from '../model/types.js';

import { byAge } from './order.js';
import { eventsOf, outcome } from './outcome.js';
import { poolStatuses } from './pool-status.js';
import { buildPoolTable } from './pools.js';
import { readRequest, type ServiceRequest } from './requests.js';
import { AllocationRun } from './run.js';
import type { ServiceState } from './state.js';
import type {
  AllocationEvent,
  AllocationInput,
  AllocationResult,
  ServiceAllocation,
} from './types.js';

const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** Whether another implementation serves the Service (its addresses stay reserved). */
function isForeignLoadBalancer(ownership: Ownership): boolean {
  return (
    !ownership.owned &&
    (ownership.reason === 'otherClass' || ownership.reason === 'noClassNotDefault')
  );
}

export function allocate(input: AllocationInput): AllocationResult {
  const options = resolveOptions(input.options);
  const pools = buildPoolTable(input.pools);
  const run = new AllocationRun(pools);
  const namespaceLabels = (namespace: string): Record<string, string> => ({
    ...(input.namespaces?.[namespace] ?? {}),
    [NAMESPACE_NAME_LABEL]: namespace,
  });

  const ours: ServiceState[] = [];
  const foreign: ServiceRequest[] = [];
  for (const service of input.services) {
    const ownership = classifyService(service, options);
    if (ownership.owned) {
      const req = readRequest(service, input.inFlight);
      ours.push({
        req,
        namespaceLabels: namespaceLabels(req.namespace),
        kept: new Map(),
        events: [],
        notes: [],
      });
    } else if (isForeignLoadBalancer(ownership)) {
      foreign.push(readRequest(service, undefined));
    }
  }
  ours.sort((a, b) => byAge(a.req, b.req));
  // One state per key: a caller passing a Service twice must not double its addresses.
  const unique: ServiceState[] = [];
  const seen = new Set<string>();
  for (const st of ours) {
    if (seen.has(st.req.key)) continue;
    seen.add(st.req.key);
    unique.push(st);
  }
  const byKeyOrder = [...unique].sort((a, b) => compareStrings(a.req.key, b.req.key));

  foreign.sort(byAge);
  for (const f of foreign) run.reserveForeign(f.key, f.held);
  for (const st of unique) run.restore(st);
  run.loadSpaces();
  const active = unique.filter((st) => !st.req.deleting && st.req.problems.length === 0);
  for (const st of active) if (st.req.ips.size > 0) run.allocate(st);
  for (const st of active) if (st.req.ips.size === 0) run.allocate(st);

  const services: ServiceAllocation[] = [];
  const events: AllocationEvent[] = [];
  for (const st of byKeyOrder) {
    const result = outcome(st);
    services.push(result);
    events.push(...eventsOf(st, result));
  }
  return { services, events, pools: poolStatuses(pools) };
}
