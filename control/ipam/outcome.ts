// A Service's result and events, from what the run left in its state.
import { allocationSeverity, type AllocationReason } from './reasons.js';
import type { Kept, ServiceState } from './state.js';
import type { AllocationEvent, ServiceAllocation } from './types.js';

/** The Service lacks an address its ipFamilyPolicy needs. */
function lacking(st: ServiceState): boolean {
  return st.req.policy === 'RequireDualStack'
    ? st.kept.size < st.req.families.length
    : st.kept.size === 0;
}

/** Kept addresses, primary family first (an invalid request may keep an unlisted family). */
function keptInOrder(st: ServiceState): Kept[] {
  const order = [
    ...st.req.families,
    ...([4, 6] as const).filter((f) => !st.req.families.includes(f)),
  ];
  return order.map((f) => st.kept.get(f)).filter((k): k is Kept => k !== undefined);
}

function describe(st: ServiceState): string {
  return keptInOrder(st)
    .map((k) => {
      const shared = k.sharedWith.length > 0 ? `, shared with ${k.sharedWith.join(', ')}` : '';
      return `${k.address.address} from IPPool '${k.pool.name}'${shared}`;
    })
    .join('; ');
}

export function outcome(st: ServiceState): ServiceAllocation {
  const { req } = st;
  const kept = keptInOrder(st);
  const addresses = kept.map((k) => ({
    address: k.address.address,
    family: k.address.family,
    pool: k.pool.name,
  }));
  const pending = !req.deleting && lacking(st);
  const holds = describe(st);
  let reason: AllocationReason;
  let message: string;
  if (req.deleting) {
    reason = 'deleting';
    message =
      kept.length > 0
        ? `being deleted: keeps ${holds} until its finalizer is removed, and gets nothing new`
        : 'being deleted: gets no address';
  } else if (req.problems.length > 0) {
    reason = 'invalidRequest';
    message =
      `${req.problems.join('; ')}; ` +
      (kept.length > 0
        ? `keeps ${holds} and gets nothing new until the request is fixed`
        : 'no address is assigned until the request is fixed');
  } else if (st.failure !== undefined) {
    ({ reason, message } = st.failure);
  } else {
    reason = kept.some((k) => k.isNew) ? 'allocated' : 'restored';
    message = [holds, ...st.notes].join('; ');
  }
  const changed =
    addresses.length !== req.statusIps.length ||
    addresses.some((a, i) => a.address !== req.statusIps[i]);
  return { service: req.key, addresses, pending, reason, message, changed };
}

/** The events of one Service: releases, allocations, then why it is still short. */
export function eventsOf(st: ServiceState, result: ServiceAllocation): AllocationEvent[] {
  const events = [...st.events];
  if (result.reason !== 'deleting' && allocationSeverity(result.reason) === 'warning')
    events.push({
      service: st.req.key,
      type: 'Warning',
      reason: 'AllocationFailed',
      detail: result.reason,
      message: result.message,
    });
  return events;
}
